"""Orders over HTTP: server-side totals, exact money on both engines, status transitions, record
scope through the customer, concurrency, idempotency and pagination."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from accord.core import db as dbmod
from accord.models import AuditEntry, Order, OrderLine, OutboxEvent

BASE = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


def new_customer(client, actor, name: str = "Ada") -> int:
    r = client.post(
        "/api/v1/customers", json={"first_name": name, "last_name": "Buyer"}, headers=actor.headers
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]


def place(client, actor, cid: int, lines: list[dict[str, Any]] | None = None, **body: Any):
    payload = {
        "currency": "EUR",
        "lines": [{"description": "Widget", "quantity": 2, "unit_price": "9.99"}]
        if lines is None
        else lines,
        **body,
    }
    return client.post(f"/api/v1/customers/{cid}/orders", json=payload, headers=actor.headers)


def counts(db: str) -> tuple[int, int, int, int]:
    """Orders, lines, outbox events and audit rows of changes (refusals and reads left out)."""
    with dbmod.session_factory(db)() as s:
        return (
            s.scalar(select(func.count()).select_from(Order)),
            s.scalar(select(func.count()).select_from(OrderLine)),
            s.scalar(select(func.count()).select_from(OutboxEvent)),
            s.scalar(
                select(func.count())
                .select_from(AuditEntry)
                .where(AuditEntry.action.not_in(("denied", "read")))
            ),
        )


@pytest.fixture
def teams(make_actor):
    """Two sales users in team A (a1 owns the customers they create) and one in team B."""
    return (
        make_actor("sales", team="A"),
        make_actor("sales", team="A"),
        make_actor("sales", team="B"),
    )


def test_place_and_read_order(client, admin, db):
    cid = new_customer(client, admin)
    pid = client.post(
        "/api/v1/products",
        json={"sku": "MUG", "name": "Mug", "price": "7.25", "currency": "EUR"},
        headers=admin.headers,
    ).json()["id"]
    r = place(
        client,
        admin,
        cid,
        lines=[
            {"description": "Widget", "quantity": 3, "unit_price": "19.99"},
            {"product_id": pid, "quantity": 2},
            {
                "product_id": pid,
                "description": "Mug (gift-wrapped)",
                "quantity": 1,
                "unit_price": "8.00",
            },
        ],
        channel="web",
        ordered_at="2024-05-01T10:00:00+01:00",
    )
    assert r.status_code == 201, r.text
    order = r.json()
    assert order["total"] == "82.47"  # 59.97 + 14.50 + 8.00
    assert order["currency"] == "EUR"
    assert order["status"] == "pending"
    assert order["customer_id"] == cid
    assert order["number"].startswith("ORD-20240501-")
    assert datetime.fromisoformat(order["ordered_at"]) == BASE
    assert [
        (ln["description"], ln["quantity"], ln["unit_price"], ln["line_total"])
        for ln in order["lines"]
    ] == [
        ("Widget", 3, "19.99", "59.97"),
        ("Mug", 2, "7.25", "14.50"),
        ("Mug (gift-wrapped)", 1, "8.00", "8.00"),
    ]
    assert r.headers["Location"] == f"/api/v1/orders/{order['id']}"

    r = client.get(f"/api/v1/orders/{order['id']}", headers=admin.headers)
    assert r.status_code == 200
    assert r.headers["ETag"] == '"1"'
    assert r.json() == order

    listed = client.get(f"/api/v1/customers/{cid}/orders", headers=admin.headers).json()["items"]
    assert [(o["id"], o["total"]) for o in listed] == [(order["id"], "82.47")]
    assert "lines" not in listed[0]

    with dbmod.session_factory(db)() as s:
        event = s.execute(
            select(OutboxEvent).where(OutboxEvent.type == "order.created")
        ).scalar_one()
        audit = s.execute(
            select(AuditEntry).where(AuditEntry.resource == "orders", AuditEntry.action == "create")
        ).scalar_one()
    assert event.payload["total"] == "82.47" and event.payload["customer_id"] == cid
    assert audit.record_id == str(order["id"])


def test_post_on_collection(client, admin):
    cid = new_customer(client, admin)
    r = client.post(
        "/api/v1/orders",
        json={
            "customer_id": cid,
            "currency": "usd",
            "number": "A-1",
            "lines": [{"description": "x", "quantity": 1, "unit_price": 0.1}],
        },
        headers=admin.headers,
    )
    assert r.status_code == 201, r.text
    assert (r.json()["number"], r.json()["currency"], r.json()["total"]) == ("A-1", "USD", "0.10")


def test_total_is_never_taken_from_the_client(client, admin, db):
    cid = new_customer(client, admin)
    before = counts(db)
    for body, field in [
        ({"total": "1.00"}, "total"),
        (
            {
                "lines": [
                    {"description": "x", "quantity": 1, "unit_price": "5.00", "line_total": "1.00"}
                ]
            },
            "lines.0.line_total",
        ),
    ]:
        r = place(client, admin, cid, **body)
        assert r.status_code == 422, r.text
        assert r.json()["field"] == field
    assert counts(db) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"currency": "EURO"}, "currency"),
        ({"currency": "QQQ"}, "currency"),
        ({"lines": []}, "lines"),
        (
            {"lines": [{"description": "x", "quantity": 0, "unit_price": "1.00"}]},
            "lines.0.quantity",
        ),
        (
            {"lines": [{"description": "x", "quantity": 1, "unit_price": "-1.00"}]},
            "lines.0.unit_price",
        ),
        (
            {"lines": [{"description": "x", "quantity": 1, "unit_price": "1.001"}]},
            "lines.0.unit_price",
        ),
        ({"lines": [{"description": "x", "quantity": 1}]}, "lines.0.unit_price"),
        ({"lines": [{"quantity": 1, "unit_price": "1.00"}]}, "lines.0.description"),
        ({"lines": [{"product_id": 999999, "quantity": 1}]}, "lines.0.product_id"),
        (
            {
                "lines": [
                    {"description": "x", "quantity": 1_000_000, "unit_price": "9999999999999.99"}
                ]
            },
            "lines.0.quantity",
        ),
        (
            {
                "lines": [
                    {"description": "x", "quantity": 1, "unit_price": "9999999999999.99"},
                    {"description": "y", "quantity": 1, "unit_price": "0.01"},
                ]
            },
            "lines",
        ),
        ({"status": "lost"}, "status"),
        ({"ordered_at": "2024-05-01T10:00:00"}, "ordered_at"),
        ({"number": "no spaces"}, "number"),
        ({"customer_id": 1}, "customer_id"),
        ({"version": 1}, "version"),
    ],
)
def test_validation(client, admin, db, body, field):
    cid = new_customer(client, admin)
    before = counts(db)
    r = place(client, admin, cid, **body)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["field"] == field
    assert counts(db) == before


def test_product_price_in_other_currency_needs_unit_price(client, admin):
    cid = new_customer(client, admin)
    pid = client.post(
        "/api/v1/products",
        json={"sku": "USD-1", "name": "Cap", "price": "12.00", "currency": "USD"},
        headers=admin.headers,
    ).json()["id"]
    r = place(client, admin, cid, lines=[{"product_id": pid, "quantity": 1}])
    assert r.status_code == 422 and r.json()["field"] == "lines.0.unit_price"
    r = place(client, admin, cid, lines=[{"product_id": pid, "quantity": 1, "unit_price": "11.00"}])
    assert r.status_code == 201 and r.json()["total"] == "11.00"


def test_money_precision_on_both_engines(client, admin):
    """Amounts a float would round come back digit for digit (up to 15 significant digits)."""
    cid = new_customer(client, admin)
    cases = [
        ([("0.10", 1), ("0.20", 1)], "0.30"),
        ([("0.10", 3)], "0.30"),
        ([("1234567890.12", 3)], "3703703670.36"),
        ([("9999999999999.99", 1)], "9999999999999.99"),
        ([("0.01", 999_999), ("4444444444.44", 2)], "8888898888.87"),
    ]
    for lines, total in cases:
        r = place(
            client,
            admin,
            cid,
            lines=[{"description": "x", "quantity": q, "unit_price": p} for p, q in lines],
        )
        assert r.status_code == 201, r.text
        oid = r.json()["id"]
        back = client.get(f"/api/v1/orders/{oid}", headers=admin.headers).json()
        assert back["total"] == total
        assert [ln["unit_price"] for ln in back["lines"]] == [p for p, _ in lines]
        assert sum(Decimal(ln["line_total"]) for ln in back["lines"]) == Decimal(total)


def test_order_numbers(client, admin, db):
    cid = new_customer(client, admin)
    numbers = {place(client, admin, cid).json()["number"] for _ in range(5)}
    assert len(numbers) == 5
    assert place(client, admin, cid, number="INV-7").status_code == 201
    before = counts(db)
    r = place(client, admin, cid, number="INV-7")
    assert r.status_code == 409 and r.json()["field"] == "number"
    assert counts(db) == before


def test_status_transitions(client, admin, db):
    cid = new_customer(client, admin)
    oid = place(client, admin, cid).json()["id"]
    url = f"/api/v1/orders/{oid}"
    version = 1
    for status in ("paid", "shipped", "delivered", "refunded"):
        r = client.patch(
            url, json={"status": status}, headers={**admin.headers, "If-Match": f'"{version}"'}
        )
        assert r.status_code == 200, r.text
        version += 1
        assert r.json()["status"] == status
        assert r.headers["ETag"] == f'"{version}"'
    r = client.patch(
        url, json={"status": "paid"}, headers={**admin.headers, "If-Match": f'"{version}"'}
    )
    assert r.status_code == 409 and r.json()["field"] == "status"

    with dbmod.session_factory(db)() as s:
        changes = [
            e.payload
            for e in s.execute(
                select(OutboxEvent)
                .where(OutboxEvent.type == "order.status_changed")
                .order_by(OutboxEvent.id)
            ).scalars()
        ]
    assert [(c["from"], c["to"]) for c in changes] == [
        ("pending", "paid"),
        ("paid", "shipped"),
        ("shipped", "delivered"),
        ("delivered", "refunded"),
    ]


@pytest.mark.parametrize(
    ("path", "bad"),
    [
        ((), "shipped"),
        ((), "delivered"),
        ((), "refunded"),
        (("paid",), "pending"),
        (("paid", "shipped"), "cancelled"),
        (("cancelled",), "paid"),
        (("paid", "shipped", "delivered"), "shipped"),
    ],
)
def test_invalid_transitions_are_409(client, admin, db, path, bad):
    cid = new_customer(client, admin)
    oid = place(client, admin, cid).json()["id"]
    version = 1
    for status in path:
        assert (
            client.patch(
                f"/api/v1/orders/{oid}",
                json={"status": status},
                headers={**admin.headers, "If-Match": f'"{version}"'},
            ).status_code
            == 200
        )
        version += 1
    before = counts(db)
    r = client.patch(
        f"/api/v1/orders/{oid}",
        json={"status": bad},
        headers={**admin.headers, "If-Match": f'"{version}"'},
    )
    assert r.status_code == 409, r.text
    assert counts(db) == before


def test_patch_needs_if_match_and_only_status(client, admin, db):
    cid = new_customer(client, admin)
    oid = place(client, admin, cid).json()["id"]
    url = f"/api/v1/orders/{oid}"
    r = client.patch(url, json={"status": "paid"}, headers=admin.headers)
    assert r.status_code == 428 and r.json()["field"] == "If-Match"
    assert (
        client.patch(
            url, json={"status": "paid"}, headers={**admin.headers, "If-Match": '"1"'}
        ).status_code
        == 200
    )
    before = counts(db)
    r = client.patch(url, json={"status": "shipped"}, headers={**admin.headers, "If-Match": '"1"'})
    assert r.status_code == 412
    for body, field in [
        ({"status": "shipped", "total": "0.00"}, "total"),
        ({"status": "lost"}, "status"),
        ({"customer_id": 5, "status": "shipped"}, "customer_id"),
    ]:
        r = client.patch(url, json=body, headers={**admin.headers, "If-Match": '"2"'})
        assert r.status_code == 422 and r.json()["field"] == field
    assert counts(db) == before
    assert client.get(url, headers=admin.headers).json()["status"] == "paid"


def test_idempotent_post_replay(client, admin, db):
    cid = new_customer(client, admin)
    headers = {**admin.headers, "Idempotency-Key": "checkout-42"}
    body = {
        "currency": "EUR",
        "lines": [{"description": "Widget", "quantity": 1, "unit_price": "3.00"}],
    }
    first = client.post(f"/api/v1/customers/{cid}/orders", json=body, headers=headers)
    again = client.post(f"/api/v1/customers/{cid}/orders", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert counts(db)[0] == 1
    r = client.post(
        f"/api/v1/customers/{cid}/orders", json={**body, "currency": "USD"}, headers=headers
    )
    assert r.status_code == 422 and r.json()["field"] == "Idempotency-Key"
    assert counts(db)[0] == 1


def test_other_team_gets_404(client, db, teams):
    a1, _a2, b = teams
    cid = new_customer(client, a1)
    oid = place(client, a1, cid).json()["id"]
    b_cid = new_customer(client, b, "Bea")
    place(client, b, b_cid)
    before = counts(db)
    assert client.get(f"/api/v1/orders/{oid}", headers=b.headers).status_code == 404
    assert client.get(f"/api/v1/customers/{cid}/orders", headers=b.headers).status_code == 404
    assert place(client, b, cid).status_code == 404
    assert (
        client.patch(
            f"/api/v1/orders/{oid}",
            json={"status": "paid"},
            headers={**b.headers, "If-Match": '"1"'},
        ).status_code
        == 404
    )
    listed = client.get("/api/v1/orders", headers=b.headers).json()["items"]
    assert {o["customer_id"] for o in listed} == {b_cid}
    assert client.get(f"/api/v1/orders?customer_id={cid}", headers=b.headers).json()["items"] == []
    assert counts(db) == before


def test_readable_but_not_writable_is_403(client, db, teams, make_actor):
    a1, a2, _b = teams
    cid = new_customer(client, a1)
    oid = place(client, a1, cid).json()["id"]
    support = make_actor("support")
    assert client.get(f"/api/v1/orders/{oid}", headers=a2.headers).status_code == 200
    before = counts(db)
    # a team mate may read a1's orders but only the owner may update them (sales: update own)
    r = client.patch(
        f"/api/v1/orders/{oid}", json={"status": "paid"}, headers={**a2.headers, "If-Match": '"1"'}
    )
    assert r.status_code == 403
    # support reads every order but has no order grants beyond read
    assert client.get(f"/api/v1/orders/{oid}", headers=support.headers).status_code == 200
    assert place(client, support, cid).status_code == 403
    assert counts(db) == before
    r = client.patch(
        f"/api/v1/orders/{oid}", json={"status": "paid"}, headers={**a1.headers, "If-Match": '"1"'}
    )
    assert r.status_code == 200


def test_list_filters_and_pagination(client, admin):
    c1, c2 = new_customer(client, admin), new_customer(client, admin, "Bob")
    times = [
        BASE,
        BASE + timedelta(days=1),
        BASE,
        BASE - timedelta(days=1),
        BASE + timedelta(hours=2),
        BASE,
        BASE + timedelta(days=9),
    ]
    ids = []
    for i, t in enumerate(times):
        r = place(
            client,
            admin,
            c1 if i % 2 else c2,
            ordered_at=t.isoformat(),
            currency="USD" if i == 6 else "EUR",
        )
        ids.append(r.json()["id"])
    paid = ids[1]
    client.patch(
        f"/api/v1/orders/{paid}",
        json={"status": "paid"},
        headers={**admin.headers, "If-Match": '"1"'},
    )
    expected = [i for _, i in sorted(zip(times, ids, strict=True), reverse=True)]

    seen, cursor, pages = [], None, 0
    while True:
        page = client.get(
            "/api/v1/orders?limit=2" + (f"&cursor={cursor}" if cursor else ""),
            headers=admin.headers,
        ).json()
        seen += [o["id"] for o in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == expected and pages == 4

    def ids_for(query: str) -> list[int]:
        r = client.get(f"/api/v1/orders?{query}", headers=admin.headers)
        assert r.status_code == 200, r.text
        return [o["id"] for o in r.json()["items"]]

    assert ids_for(f"customer_id={c1}") == [i for i in expected if ids.index(i) % 2]
    assert ids_for("status=paid") == [paid]
    assert ids_for("currency=USD") == [ids[6]]
    assert ids_for("ordered_at__gte=2024-05-02T00:00:00Z") == [ids[6], ids[1]]
    assert ids_for("ordered_at__lt=2024-05-01T09:00:00Z&sort=ordered_at") == [ids[3]]
    for query, field in [("status=lost", "status"), ("total=1", "total"), ("sort=total", "sort")]:
        r = client.get(f"/api/v1/orders?{query}", headers=admin.headers)
        assert r.status_code == 422 and r.json()["field"] == field


def test_a_narrower_orders_grant_narrows_the_customer_scope(client, monkeypatch, teams):
    from accord.access.policy import GRANTS

    a1, a2, _b = teams
    cid = new_customer(client, a1)
    oid = place(client, a1, cid).json()["id"]
    own_oid = place(client, a2, new_customer(client, a2, "Own")).json()["id"]
    monkeypatch.setitem(GRANTS["sales"]["orders"], "read", "own")

    assert client.get(f"/api/v1/customers/{cid}", headers=a2.headers).status_code == 200
    assert client.get(f"/api/v1/orders/{oid}", headers=a2.headers).status_code == 404
    assert client.get(f"/api/v1/customers/{cid}/orders", headers=a2.headers).status_code == 404
    listed = client.get("/api/v1/orders", headers=a2.headers).json()["items"]
    assert [o["id"] for o in listed] == [own_oid]
