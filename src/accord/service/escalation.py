"""Escalation: an unhappy valuable customer gets a manager's attention at once.

Automatic (`on_inbound`, called for every inbound customer message): a message whose
sentiment is negative (compound <= `ACCORD_SERVICE_NEGATIVE_SENTIMENT`, default -0.3; an
unscored message never is) from a customer who is high-value (analytics value tier ``gold``
or ``platinum``) or at risk (`at_risk_valuable`, or churn risk >=
`ACCORD_SERVICE_ESCALATION_CHURN_RISK`, default 0.6) escalates the ticket to level 1: its
priority goes up one step (low → normal → high → urgent) through `tickets.set_priority`
(which refreshes the SLA timers), the reason is kept on the ticket, an ``escalated`` event is
recorded, the outbox gets ``ticket.escalated`` (ids, level, priority: never the reason's
free text), and the team's managers (active users with
role manager in the ticket's team; without any, the active admins) are alerted in-app and by
e-mail. It happens once per ticket: later negative messages on an escalated ticket alert
nobody again.

Manual (`escalate`): an agent who may update the ticket raises it one level further with a
reason; each level alerts the managers once (notifications and mails carry the level in their
de-duplication keys).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from accord.access import audit
from accord.access.policy import Principal
from accord.core.clock import utcnow
from accord.core.errors import ValidationProblem
from accord.core.events import emit
from accord.core.settings import get_settings
from accord.models import Customer, User
from accord.models.analytics_scores import CustomerScore
from accord.models.service import TICKET_PRIORITIES, Ticket, TicketMessage
from accord.service import sla_tracking

HIGH_VALUE_TIERS = ("gold", "platinum")  # accord.analytics.scores.HIGH_TIERS
REASON_MAX = 200


def raised(priority: str) -> str:
    """One step up; urgent stays urgent (an unknown priority becomes high)."""
    if priority not in TICKET_PRIORITIES:
        return "high"
    i = TICKET_PRIORITIES.index(priority)
    return TICKET_PRIORITIES[min(i + 1, len(TICKET_PRIORITIES) - 1)]


def customer_standing(session: Session, customer_id: int | None) -> tuple[bool, bool, str | None]:
    """(high value, at risk, tier) from the analytics scores (the customer's own tier when the
    score row is missing)."""
    if customer_id is None:
        return False, False, None
    score = session.scalars(
        select(CustomerScore).where(CustomerScore.customer_id == customer_id)).first()
    if score is None:
        tier = session.scalar(select(Customer.value_tier).where(Customer.id == customer_id))
        return tier in HIGH_VALUE_TIERS, False, tier
    threshold = get_settings().service_escalation_churn_risk
    at_risk = bool(score.at_risk_valuable) or (
        score.churn_risk is not None and score.churn_risk >= threshold)
    return score.value_tier in HIGH_VALUE_TIERS, at_risk, score.value_tier


def is_negative(message: TicketMessage) -> bool:
    return (message.sentiment is not None
            and message.sentiment <= get_settings().service_negative_sentiment)


def managers_of(session: Session, team_id: int | None) -> list[User]:
    """The team's active managers; none (or no team): the active admins."""
    found: list[User] = []
    if team_id is not None:
        found = list(session.scalars(
            select(User).where(User.team_id == team_id, User.role == "manager",
                               User.is_active.is_(True)).order_by(User.id)))
    if not found:
        found = list(session.scalars(
            select(User).where(User.role == "admin", User.is_active.is_(True)).order_by(User.id)))
    return found


def _alert(session: Session, ticket: Ticket, level: int, reason: str) -> list[int]:
    from accord.core.mail import enqueue_mail
    from accord.sales.notifications import notify

    link = f"/service/tickets/{ticket.id}"
    title = f"Escalated ticket {ticket.reference}: {ticket.subject}"[:300]
    body = (f"{reason}\nPriority: {ticket.priority}. Escalation level {level}.")
    alerted: list[int] = []
    for user in managers_of(session, ticket.team_id):
        notify(session, user.id, "ticket_escalated", title, body, link,
               dedupe_key=f"escalation:{ticket.id}:{level}:{user.id}")
        enqueue_mail(session, user.email, title,
                     f"{title}\n\n{body}\n\nOpen the ticket in Accord: {link}\n",
                     tag="ticket.escalated", dedupe_key=f"mail:escalation:{ticket.id}:{level}:"
                     f"{user.id}")
        alerted.append(user.id)
    return alerted


# Who an automatic escalation is audited as (the same actor `tickets.set_priority` names).
SYSTEM = Principal(user_id=None, email="system:service.escalation", role="admin", via="system")


def _escalate(session: Session, principal: Principal, ticket: Ticket, reason: str, *,
              data: dict[str, Any], at: datetime | None = None) -> int:
    """One level up, automatic or manual alike: priority, fields, alerts, event, outbox and
    the audit entry (an automatic escalation changes the ticket too, so it is audited)."""
    actor_id = principal.user_id
    level = ticket.escalation_level + 1
    new_priority = raised(ticket.priority)
    if new_priority != ticket.priority:
        from accord.service.tickets import set_priority

        set_priority(session, ticket, new_priority, actor_id=actor_id, reason=reason)
    ticket.escalation_level = level
    ticket.escalated_at = at or utcnow()
    ticket.escalation_reason = reason[:REASON_MAX]
    session.flush()
    alerted = _alert(session, ticket, level, reason)
    sla_tracking.add_event(session, ticket, "escalated", actor_id=actor_id, data={
        **data, "level": level, "reason": reason[:REASON_MAX], "priority": ticket.priority,
        "alerted": alerted})
    # ids and codes only: the reason is free text (an agent may name the customer), so it
    # stays on the ticket and its event, out of the outbox
    emit(session, "ticket.escalated", "ticket", ticket.id,
         {"ticket_id": ticket.id, "level": level, "auto": bool(data.get("auto")),
          "priority": ticket.priority, "team_id": ticket.team_id}, actor_id)
    audit.record(session, principal, "escalate", "tickets", ticket.id,
                 ["escalation_level", "escalated_at", "escalation_reason", "priority"],
                 {"level": level, "auto": bool(data.get("auto"))})
    return level


def on_inbound(session: Session, ticket: Ticket, message: TicketMessage) -> bool:
    """Escalate on a negative message from a high-value or at-risk customer (once per ticket)."""
    if ticket.escalation_level > 0 or not is_negative(message):
        return False
    high_value, at_risk, tier = customer_standing(session, ticket.customer_id)
    if not (high_value or at_risk):
        return False
    why = "high-value" if high_value else "at-risk"
    if high_value and at_risk:
        why = "high-value, at-risk"
    reason = f"Negative message ({message.sentiment:+.2f}) from a {why} customer"
    _escalate(session, SYSTEM, ticket, reason, data={
        "auto": True, "message_id": message.id, "sentiment": message.sentiment,
        "tier": tier, "high_value": high_value, "at_risk": at_risk})
    return True


def escalate(session: Session, principal: Principal, ticket_id: int, reason: str) -> Ticket:
    """Raise the ticket one escalation level by hand (needs update rights on the ticket)."""
    from accord.service.tickets import get_ticket

    reason = (reason or "").strip()
    if not reason:
        raise ValidationProblem("a reason is required", field="reason")
    ticket = get_ticket(session, principal, ticket_id, "update")  # 404 unread, 403 read-only
    _escalate(session, principal, ticket, reason, data={"auto": False})
    return ticket
