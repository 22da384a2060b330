"""A small data set whose KPIs are worked out by hand in test_kpis.py (as of 2025-06-15)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy.orm import Session

from accord.models import Customer, LifecycleChange, MarketingSpend, Order, User

AS_OF = date(2025, 6, 15)


def at(y: int, m: int, d: int, h: int = 12) -> datetime:
    return datetime(y, m, d, h, tzinfo=UTC)


def seed(session: Session) -> dict[str, int]:
    """Customers C1..C6 (C5 merged into C1); orders, stage history and spend; committed."""
    owner = User(email="owner@example.com", full_name="Owner", password_hash="x", role="sales")
    session.add(owner)
    session.flush()
    specs = {
        "C1": (at(2024, 1, 10), "GB", "gold", owner.id, "loyalty"),
        "C2": (at(2024, 5, 1), "DE", "silver", None, "purchase"),
        "C3": (at(2025, 1, 15), "GB", "gold", owner.id, "purchase"),
        "C4": (at(2025, 2, 1), "FR", None, None, "evaluation"),
        "C5": (at(2024, 6, 1), "GB", "gold", None, "purchase"),
        "C6": (at(2025, 3, 10), "GB", "gold", owner.id, "loyalty"),
    }
    ids: dict[str, int] = {"owner": owner.id}
    for name, (created, country, tier, owner_id, stage) in specs.items():
        c = Customer(display_name=name, name_key=name, name_key_alt=name, first_name=name,
                     country=country, value_tier=tier, owner_id=owner_id,
                     lifecycle_stage=stage, created_at=created, updated_at=created)
        session.add(c)
        session.flush()
        ids[name] = c.id
    session.get(Customer, ids["C5"]).merged_into_id = ids["C1"]  # type: ignore[union-attr]
    orders = [
        ("C1", at(2024, 3, 5), "paid", "EUR", "100", "web"),
        ("C1", at(2025, 2, 10), "delivered", "EUR", "50", "web"),
        ("C1", at(2025, 2, 20), "cancelled", "EUR", "30", "web"),
        ("C2", at(2024, 5, 2), "paid", "EUR", "200", "store"),
        ("C3", at(2025, 1, 20), "paid", "EUR", "40", "app"),
        ("C3", at(2025, 3, 3), "shipped", "EUR", "60", "app"),
        ("C3", at(2025, 3, 25), "paid", "EUR", "20", "web"),
        ("C5", at(2025, 1, 5), "paid", "EUR", "999", "web"),
        ("C6", at(2025, 3, 12), "paid", "GBP", "10", "web"),
        ("C6", at(2025, 4, 1), "pending", "GBP", "5", "web"),
    ]
    for n, (who, when, status, currency, total, channel) in enumerate(orders):
        session.add(Order(customer_id=ids[who], number=f"T-{n}", status=status,
                          currency=currency, total=Decimal(total), ordered_at=when,
                          channel=channel))
    for frm, to, when in ((None, "awareness", at(2025, 2, 1)),
                          ("awareness", "discovery", at(2025, 2, 3)),
                          ("discovery", "evaluation", at(2025, 2, 9))):
        session.add(LifecycleChange(customer_id=ids["C4"], from_stage=frm, to_stage=to,
                                    changed_at=when, reason="private reason"))
    session.add_all([
        MarketingSpend(channel="web", period_start=date(2025, 3, 1),
                       period_end=date(2025, 3, 31), amount=Decimal("300"), currency="EUR"),
        MarketingSpend(channel="social", period_start=date(2025, 2, 15),
                       period_end=date(2025, 3, 16), amount=Decimal("300"), currency="EUR"),
    ])
    session.commit()
    return ids


SURVEYS = [(10, "nps"), (9, "nps"), (10, "nps"), (8, "nps"), (6, "nps"), (2, "nps"),
           (5, "csat"), (4, "csat"), (3, "csat"), (5, "csat")]


def add_feedback(snapshot_dir: Path, customer_id: int) -> None:
    """Survey answers and tickets as the service domain holds them (March 2025)."""
    ts = pa.timestamp("us")
    pq.write_table(pa.table({
        "id": pa.array(range(1, len(SURVEYS) + 1), pa.int64()),
        "customer_id": pa.array([customer_id] * len(SURVEYS), pa.int64()),
        "kind": [k for _, k in SURVEYS],
        "score": pa.array([float(s) for s, _ in SURVEYS]),
        "responded_at": pa.array([datetime(2025, 3, 10)] * len(SURVEYS), ts),
    }), snapshot_dir / "survey_responses.parquet")
    created = [datetime(2025, 3, 1, 10), datetime(2025, 3, 5, 0)]
    pq.write_table(pa.table({
        "id": pa.array([1, 2], pa.int64()),
        "customer_id": pa.array([customer_id] * 2, pa.int64()),
        "created_at": pa.array(created, ts),
        "first_response_seconds": [7200.0, 14400.0], "resolution_seconds": [86400.0, None],
    }), snapshot_dir / "tickets.parquet")
