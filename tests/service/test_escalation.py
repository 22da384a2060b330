"""Escalation: only a negative message from a high-value or at-risk customer escalates, the
priority goes up one step, the team's managers are alerted in-app and by mail, once."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from accord.access.policy import Principal
from accord.core.errors import NotFound, ValidationProblem
from accord.core.settings import reset_settings
from accord.models import Job, Notification, OutboxEvent
from accord.models.service import Ticket, TicketEvent, TicketMessage
from accord.service import escalation, tickets
from tests.service.test_sla_tracking import make_customer, make_team, make_user

ANGRY = "This is terrible. I am furious, the worst service ever, awful!"
HAPPY = "Thank you so much, wonderful help, great job!"


def open_ticket(s: Any, customer_id: int, team: int | None, body: str = "Hello there.",
                priority: str = "normal") -> Ticket:
    return tickets.create_ticket(
        s, tickets.system_principal("email"), subject="Order", channel="email",
        body_text=body, customer_id=customer_id, team_id=team, priority=priority,
        language="en")


def write(s: Any, t: Ticket, body: str) -> TicketMessage:
    return tickets.add_customer_message(s, t, body_text=body, channel="email")


def count(s: Any, model: Any, *where: Any) -> int:
    return s.scalar(select(func.count(model.id)).where(*where))


def mails_to(s: Any, email: str) -> int:
    return sum(1 for j in s.scalars(select(Job).where(Job.kind == "mail.send"))
               if j.payload["to"] == email)


@pytest.fixture
def desk(session):
    team = make_team(session)
    manager = make_user(session, "manager", team)
    make_user(session, "manager", make_team(session, "Elsewhere"))  # not this team's
    return team, manager


def test_negative_high_value_escalates_once_and_alerts_the_manager(session, desk):
    s = session
    team, manager = desk
    t = open_ticket(s, make_customer(s, "platinum"), team)
    assert t.escalation_level == 0
    message = write(s, t, ANGRY)
    assert message.sentiment is not None and message.sentiment <= -0.3
    assert (t.priority, t.escalation_level) == ("high", 1)
    assert t.escalated_at is not None and "high-value" in t.escalation_reason
    [event] = s.scalars(select(TicketEvent).where(TicketEvent.ticket_id == t.id,
                                                  TicketEvent.kind == "escalated")).all()
    assert event.data["auto"] is True and event.data["message_id"] == message.id
    assert event.data["alerted"] == [manager.id]
    assert count(s, TicketEvent, TicketEvent.ticket_id == t.id,
                 TicketEvent.kind == "priority_changed") == 1
    [note] = s.scalars(select(Notification).where(Notification.user_id == manager.id)).all()
    assert note.kind == "ticket_escalated" and note.link == f"/service/tickets/{t.id}"
    assert mails_to(s, manager.email) == 1
    [out] = s.scalars(select(OutboxEvent).where(OutboxEvent.type == "ticket.escalated")).all()
    assert out.payload["ticket_id"] == t.id and out.payload["priority"] == "high"

    # another angry message: no second escalation, no second alert
    write(s, t, ANGRY)
    assert (t.priority, t.escalation_level) == ("high", 1)
    assert count(s, Notification, Notification.user_id == manager.id) == 1
    assert mails_to(s, manager.email) == 1


@pytest.mark.parametrize(("tier", "churn", "flag", "body", "expected"), [
    ("gold", None, False, ANGRY, True),
    ("bronze", 0.7, False, ANGRY, True),  # at risk by churn
    ("silver", 0.1, True, ANGRY, True),  # at risk and valuable
    ("bronze", 0.5, False, ANGRY, False),  # neither
    ("platinum", 0.9, True, HAPPY, False),  # valuable but happy
])
def test_only_negative_and_valuable_or_at_risk(session, desk, tier, churn, flag, body, expected):
    s = session
    team, manager = desk
    t = open_ticket(s, make_customer(s, tier, churn=churn, at_risk=flag), team, body=body)
    assert (t.escalation_level == 1) is expected
    assert (t.priority == "high") is expected
    assert count(s, Notification, Notification.user_id == manager.id) == int(expected)


def test_thresholds_come_from_the_settings(session, desk, monkeypatch):
    s = session
    team, _ = desk
    t = open_ticket(s, make_customer(s, "bronze", churn=0.45), team)
    message = TicketMessage(ticket_id=t.id, direction="inbound", channel="email",
                            body_text="meh", sentiment=-0.2)
    s.add(message)
    s.flush()
    assert escalation.on_inbound(s, t, message) is False  # -0.2 > -0.3, churn 0.45 < 0.6
    monkeypatch.setenv("ACCORD_SERVICE_NEGATIVE_SENTIMENT", "-0.1")
    monkeypatch.setenv("ACCORD_SERVICE_ESCALATION_CHURN_RISK", "0.4")
    reset_settings()
    try:
        assert escalation.on_inbound(s, t, message) is True
    finally:
        monkeypatch.delenv("ACCORD_SERVICE_NEGATIVE_SENTIMENT")
        monkeypatch.delenv("ACCORD_SERVICE_ESCALATION_CHURN_RISK")
        reset_settings()
    unscored = TicketMessage(ticket_id=t.id, direction="inbound", channel="email",
                             body_text="?", sentiment=None)
    assert escalation.is_negative(unscored) is False


def test_without_team_managers_the_admins_are_alerted_and_urgent_stays(session):
    s = session
    admin = make_user(s, "admin")
    make_user(s, "admin", active=False)
    t = open_ticket(s, make_customer(s, "gold"), None, priority="urgent")
    write(s, t, ANGRY)
    assert (t.priority, t.escalation_level) == ("urgent", 1)
    assert count(s, Notification) == 1
    assert count(s, Notification, Notification.user_id == admin.id) == 1
    assert mails_to(s, admin.email) == 1


def test_no_score_falls_back_to_the_customer_tier(session, desk):
    s = session
    team, _ = desk
    cid = make_customer(s, score=False)
    from accord.models import Customer

    s.get(Customer, cid).value_tier = "platinum"
    s.flush()
    t = open_ticket(s, cid, team, body=ANGRY)
    assert t.escalation_level == 1


def test_manual_escalation_raises_a_level_each_time(session, desk):
    s = session
    team, manager = desk
    t = open_ticket(s, make_customer(s, "bronze"), team)
    agent = make_user(s, "support", team)
    who = Principal(user_id=agent.id, email=agent.email, role="support", team_id=team)
    with pytest.raises(ValidationProblem):
        escalation.escalate(s, who, t.id, "  ")
    escalation.escalate(s, who, t.id, "Customer threatens to cancel")
    escalation.escalate(s, who, t.id, "Still waiting on the warehouse")
    assert (t.escalation_level, t.priority) == (2, "urgent")
    assert t.escalation_reason == "Still waiting on the warehouse"
    assert count(s, Notification, Notification.user_id == manager.id) == 2
    assert mails_to(s, manager.email) == 2
    seller = make_user(s, "sales", make_team(s, "Sales"))
    outsider = Principal(user_id=seller.id, email=seller.email, role="sales",
                         team_id=seller.team_id)
    with pytest.raises(NotFound):  # not readable: 404
        escalation.escalate(s, outsider, t.id, "why not")


def test_outbox_event_carries_ids_not_the_reason_text(session, desk):
    """The reason is free text (it may name the customer): kept on the ticket, never in the
    outbox payload, which other systems read."""
    s = session
    team, _ = desk
    t = open_ticket(s, make_customer(s, "bronze"), team)
    agent = make_user(s, "support", team)
    who = Principal(user_id=agent.id, email=agent.email, role="support", team_id=team)
    escalation.escalate(s, who, t.id, "Ann Archer (ann@example.com) threatens to sue")
    [out] = s.scalars(select(OutboxEvent).where(OutboxEvent.type == "ticket.escalated")).all()
    assert out.payload == {"ticket_id": t.id, "level": 1, "auto": False, "priority": "high",
                           "team_id": team}
    assert t.escalation_reason == "Ann Archer (ann@example.com) threatens to sue"


def test_automatic_escalation_is_audited(session, desk):
    """It changes the ticket (level, reason, priority) like a manual one, so it is audited."""
    from accord.models import AuditEntry

    s = session
    team, _ = desk
    t = open_ticket(s, make_customer(s, "platinum"), team)
    write(s, t, ANGRY)
    assert t.escalation_level == 1
    [entry] = s.scalars(select(AuditEntry).where(AuditEntry.action == "escalate",
                                                 AuditEntry.record_id == str(t.id))).all()
    assert (entry.actor, entry.resource, entry.detail["auto"]) == (
        "system:service.escalation", "tickets", True)
