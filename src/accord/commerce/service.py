"""Products, orders and order lines: the purchase history."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from accord.models import Order


def timeline_entries(session: Session, customer_id: int, limit: int) -> list[dict[str, Any]]:
    rows = session.execute(
        select(Order).where(Order.customer_id == customer_id)
        .order_by(Order.ordered_at.desc(), Order.id.desc()).limit(limit)).scalars()
    return [{"kind": "order", "id": f"o{r.id}", "at": r.ordered_at, "channel": r.channel or "web",
             "direction": "inbound", "department": "sales", "subject": f"Order {r.number}",
             "body": f"{r.status} · {r.total} {r.currency}", "record_id": r.id, "total": r.total,
             "currency": r.currency, "status": r.status} for r in rows]


def purchase_summary(session: Session, customer_id: int) -> dict[str, Any]:
    """Order count, first/last purchase and revenue per currency (money is never summed across currencies)."""
    rows = session.execute(
        select(Order.currency, func.count(Order.id), func.sum(Order.total), func.min(Order.ordered_at),
               func.max(Order.ordered_at))
        .where(Order.customer_id == customer_id, Order.status.not_in(("cancelled", "refunded")))
        .group_by(Order.currency)).all()
    return {
        "orders": sum(r[1] for r in rows),
        "revenue": {r[0]: Decimal(r[2] or 0).quantize(Decimal("0.01")) for r in rows},
        "first_order_at": min((r[3] for r in rows), default=None),
        "last_order_at": max((r[4] for r in rows), default=None),
    }
