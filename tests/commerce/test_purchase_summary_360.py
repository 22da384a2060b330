"""The 360° purchase summary covers every order of the customer, not only the timeline's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from accord.commerce import service as commerce
from accord.models import Order


def _orders(session, cid: int, n: int) -> list[Order]:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    rows = [
        Order(customer_id=cid, number=f"S-{cid}-{k}", status=("paid", "shipped", "cancelled",
              "refunded")[k % 4], currency=("EUR", "USD")[k % 2],
              total=Decimal(f"{k + 1}.25"), ordered_at=start + timedelta(days=k), channel="web")
        for k in range(n)
    ]
    session.add_all(rows)
    session.commit()
    return rows


def _expected(rows: list[Order]) -> dict:
    kept = [o for o in rows if o.status not in ("cancelled", "refunded")]
    revenue: dict[str, Decimal] = {}
    for o in kept:
        revenue[o.currency] = revenue.get(o.currency, Decimal(0)) + o.total
    return {
        "orders": len(kept),
        "revenue": {c: f"{v:.2f}" for c, v in sorted(revenue.items())},
        "first_order_at": min(o.ordered_at for o in kept),
        "last_order_at": max(o.ordered_at for o in kept),
    }


def test_summary_counts_orders_beyond_the_timeline_and_leaves_out_cancelled(
    client, admin, session
):
    few = client.post("/api/v1/customers", json={"first_name": "Few"}, headers=admin.headers)
    many = client.post("/api/v1/customers", json={"first_name": "Many"}, headers=admin.headers)
    for customer, n in ((few.json()["id"], 7), (many.json()["id"], 57)):
        rows = _orders(session, customer, n)
        view = client.get(f"/api/v1/customers/{customer}/360", headers=admin.headers).json()
        summary = view["purchase_summary"]
        expected = _expected(rows)
        assert summary["orders"] == expected["orders"]
        assert summary["revenue"] == expected["revenue"]
        assert datetime.fromisoformat(summary["first_order_at"]) == expected["first_order_at"]
        assert datetime.fromisoformat(summary["last_order_at"]) == expected["last_order_at"]
        assert len([e for e in view["timeline"] if e["kind"] == "order"]) == min(n, 50)
        # the same figures as the summary's own query
        direct = commerce.purchase_summary(session, customer)
        assert summary["orders"] == direct["orders"]
        assert summary["revenue"] == {c: f"{v:.2f}" for c, v in direct["revenue"].items()}
