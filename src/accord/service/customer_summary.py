"""The customer beside a ticket: a short 360° summary for the agent, and the sentiment trend.

Everything follows the viewer's rights, exactly as the customer's 360° page does: the customer
must be readable (else there is no summary), scores go through
`accord.analytics.score_view.customer_scores` (so churn risk is masked for roles that may not
see it, e.g. support), deals are only those the viewer may read (`accord.sales.deals`
visibility), orders only with `orders` read over the customer, previous tickets only those the
viewer may read. Each part is one small query (no per-row look-ups).

`sentiment_trend` averages the compound sentiment of the customer's inbound ticket messages per
calendar month (UTC), grouped in SQL on the `(customer_id, created_at)` index.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from accord.access.policy import Principal, can, record_in_scope, scope_clause, scope_for
from accord.analytics import score_view
from accord.core.clock import as_utc, utcnow
from accord.core.errors import Problem
from accord.models import Customer, Deal
from accord.models.commerce import Order
from accord.models.sales import PipelineStage
from accord.models.service import Ticket, TicketMessage

RECENT = 5  # rows per list in the side panel
SPARK_WIDTH = 240
SPARK_HEIGHT = 48


@dataclass(frozen=True)
class MonthSentiment:
    month: date  # the first day of the month
    average: float | None  # mean compound score, -1..1; None without scored messages
    count: int

    @property
    def label(self) -> str:
        return self.month.strftime("%b %Y")

    @property
    def mood(self) -> str:
        """negative / neutral / positive (VADER's usual ±0.05 bands), '' without data."""
        if self.average is None:
            return ""
        return "negative" if self.average <= -0.05 else "positive" if self.average >= 0.05 \
            else "neutral"


def mood_of(score: float | None) -> str:
    """The icon class of one compound score (queue rows, messages)."""
    return MonthSentiment(date.min, score, 1).mood


# --- sentiment trend ----------------------------------------------------------------------------

def _month_start(value: date) -> date:
    return date(value.year, value.month, 1)


def _shift(month: date, delta: int) -> date:
    index = month.year * 12 + month.month - 1 + delta
    return date(index // 12, index % 12 + 1, 1)


def sentiment_trend(session: Session, customer_id: int, months: int = 12,
                    now: datetime | None = None, principal: Principal | None = None
                    ) -> list[MonthSentiment]:
    """The last `months` calendar months (oldest first, the current one last): the average
    compound sentiment of the customer's scored inbound ticket messages and their count.

    With `principal`, only messages of tickets in the viewer's `tickets` read scope count (an
    agent scoped to a team must not learn how another team's conversations went, even as an
    average); without it the caller answers for the viewer's rights (jobs, analytics)."""
    months = max(1, min(int(months), 120))
    current = _month_start(as_utc(now or utcnow()).date())
    first = _shift(current, -(months - 1))
    since = datetime(first.year, first.month, 1, tzinfo=UTC)
    if session.get_bind().dialect.name == "postgresql":
        bucket: Any = func.to_char(func.timezone("UTC", TicketMessage.created_at), "YYYY-MM")
    else:
        bucket = func.strftime("%Y-%m", TicketMessage.created_at)
    stmt = (select(bucket.label("month"), func.avg(TicketMessage.sentiment),
                   func.count(TicketMessage.id))
            .where(TicketMessage.customer_id == customer_id,
                   TicketMessage.created_at >= since,
                   TicketMessage.direction == "inbound",
                   TicketMessage.sentiment.is_not(None))
            .group_by(bucket))
    if principal is not None:
        scope = scope_for(principal, "tickets", "read")
        if scope != "all":  # "all" needs no join; no scope at all matches nothing
            stmt = stmt.join(Ticket, Ticket.id == TicketMessage.ticket_id).where(
                scope_clause(principal, scope, Ticket.assignee_id, Ticket.team_id))
    rows = session.execute(stmt)
    found = {str(m): (float(avg), int(n)) for m, avg, n in rows if m is not None}
    out = []
    for i in range(months):
        month = _shift(first, i)
        avg, n = found.get(month.strftime("%Y-%m"), (None, 0))
        out.append(MonthSentiment(month, None if avg is None else round(avg, 4), n))
    return out


def sparkline(trend: list[MonthSentiment], width: int = SPARK_WIDTH,
              height: int = SPARK_HEIGHT) -> dict[str, Any]:
    """SVG geometry for the trend (so the template only places numbers): the polyline through
    the months with data (-1 at the bottom, +1 at the top) and the zero line."""
    step = width / max(len(trend) - 1, 1)
    points = []
    dots = []
    for i, m in enumerate(trend):
        if m.average is None:
            continue
        x = round(i * step, 1)
        y = round((1 - (m.average + 1) / 2) * height, 1)
        points.append(f"{x},{y}")
        dots.append({"x": x, "y": y, "title": f"{m.label}: {m.average:+.2f} ({m.count})",
                     "mood": m.mood})
    return {"width": width, "height": height, "zero": height / 2, "points": " ".join(points),
            "dots": dots}


# --- the side panel -----------------------------------------------------------------------------

def _readable_customer(session: Session, principal: Principal, customer_id: int
                       ) -> Customer | None:
    from accord.customers import service as customers

    try:
        return customers.get_customer(session, principal, customer_id)
    except Problem:  # not readable (404) or merged away (the survivor is the one to show)
        return None


def open_deals(session: Session, principal: Principal, customer_id: int,
               limit: int = RECENT) -> list[dict[str, Any]]:
    """The customer's open deals the viewer may read, soonest expected close first."""
    if not can(principal, "deals", "read"):
        return []
    from accord.sales import deals

    rows = session.execute(
        select(Deal.id, Deal.name, Deal.amount, Deal.currency, Deal.expected_close_date,
               PipelineStage.name.label("stage"))
        .join(PipelineStage, PipelineStage.id == Deal.stage_id)
        .where(Deal.customer_id == customer_id, Deal.status == "open",
               deals.visible_clause(principal))
        .order_by(Deal.expected_close_date.is_(None), Deal.expected_close_date, Deal.id)
        .limit(limit))
    return [{"id": r.id, "name": r.name, "amount": Decimal(r.amount), "currency": r.currency,
             "expected_close_date": r.expected_close_date, "stage": r.stage} for r in rows]


def recent_orders(session: Session, principal: Principal, customer: Customer,
                  limit: int = RECENT) -> list[dict[str, Any]] | None:
    """The customer's latest orders; None when the viewer may not read orders."""
    scope = scope_for(principal, "orders", "read")
    if scope is None or not record_in_scope(principal, scope, customer.owner_id,
                                            customer.team_id):
        return None
    rows = session.execute(
        select(Order.id, Order.number, Order.status, Order.total, Order.currency,
               Order.ordered_at)
        .where(Order.customer_id == customer.id)
        .order_by(Order.ordered_at.desc(), Order.id.desc()).limit(limit))
    return [{"id": r.id, "number": r.number, "status": r.status, "total": Decimal(r.total),
             "currency": r.currency, "ordered_at": as_utc(r.ordered_at)} for r in rows]


def previous_tickets(session: Session, principal: Principal, customer_id: int, *,
                     exclude_id: int | None = None, limit: int = RECENT
                     ) -> list[dict[str, Any]]:
    """The customer's other tickets the viewer may read, newest first."""
    from accord.service import tickets

    if scope_for(principal, tickets.RESOURCE, "read") is None:
        return []
    stmt = (tickets.visible_query(principal)
            .where(Ticket.customer_id == customer_id)
            .order_by(Ticket.created_at.desc(), Ticket.id.desc()).limit(limit))
    if exclude_id is not None:
        stmt = stmt.where(Ticket.id != exclude_id)
    return [{"id": t.id, "reference": t.reference, "subject": t.subject, "status": t.status,
             "priority": t.priority, "created_at": as_utc(t.created_at),
             "sentiment": t.sentiment, "mood": mood_of(t.sentiment)}
            for t in session.scalars(stmt)]


def summary(session: Session, principal: Principal, customer_id: int | None, *,
            ticket_id: int | None = None) -> dict[str, Any] | None:
    """The ticket page's side panel, or None when there is no customer the viewer may read.

    `scores` is `score_view.customer_scores` (None before the first scoring run; hidden fields
    absent and listed in `masked_fields`); `orders` is None when orders are not readable."""
    if customer_id is None:
        return None
    customer = _readable_customer(session, principal, customer_id)
    if customer is None:
        return None
    scores = score_view.customer_scores(session, principal, customer_id)
    hidden = set(scores["masked_fields"]) if scores else set()
    return {
        "customer_id": customer.id,
        "display_name": customer.display_name,
        "lifecycle_stage": customer.lifecycle_stage,
        "scores": scores,
        "value_tier": scores.get("value_tier") if scores else None,
        "churn_masked": "churn_risk" in hidden,
        "churn_risk": scores.get("churn_risk") if scores else None,
        "churn_level": scores.get("churn_level") if scores else None,
        "at_risk_valuable": bool(scores.get("at_risk_valuable")) if scores else False,
        "deals": open_deals(session, principal, customer.id),
        "can_see_deals": can(principal, "deals", "read"),
        "orders": recent_orders(session, principal, customer),
        "tickets": previous_tickets(session, principal, customer.id, exclude_id=ticket_id),
        "url": f"/customers/{customer.id}",
    }


def audit_summary(principal: Principal, shown: dict[str, Any] | None, via: str) -> None:
    """Record the personal-data reads of a shown summary (scores are profiling)."""
    from accord.access import audit

    if shown is None:
        return
    audit.record_read(principal, "customers", [shown["customer_id"]], ["display_name"],
                      {"via": via})
    if shown["scores"] is not None:
        score_view.audit_read(principal, shown["customer_id"], shown["scores"], via)


def panel_360(session: Session, principal: Principal, customer_id: int,
              months: int = 12) -> dict[str, Any] | None:
    """The 360 page's service panel: the monthly sentiment trend and the recent tickets; None
    when the viewer may not read tickets. The 360 route has already checked the customer."""
    from accord.service import tickets

    if scope_for(principal, tickets.RESOURCE, "read") is None:
        return None
    trend = sentiment_trend(session, customer_id, months, principal=principal)
    return {"trend": trend, "spark": sparkline(trend),
            "has_data": any(m.count for m in trend),
            "tickets": previous_tickets(session, principal, customer_id, limit=RECENT)}
