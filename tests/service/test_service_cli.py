"""`accord service sla-check | run-surveys | deflection`: the operator's one-off runs."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import func, select
from typer.testing import CliRunner

from accord.cli import app
from accord.core import db as dbmod
from accord.core.clock import utcnow
from accord.models.service import (
    AssistantConversation,
    AssistantTurn,
    SurveyInvitation,
    SurveySchedule,
    TicketEvent,
)
from accord.service import sla_tracking
from tests.service.test_sla_tracking import make_customer, make_policy, make_ticket


def test_sla_check_records_overdue_breaches_once(db: str) -> None:
    created = utcnow() - timedelta(days=10)
    with dbmod.session_scope(db) as s:
        make_policy(s)  # normal: first response 4 h, resolution 16 h, always-open calendar
        ticket = make_ticket(s, created)
        sla_tracking.refresh(s, ticket, now=created + timedelta(minutes=1))
        tid = ticket.id
    first = CliRunner().invoke(app, ["service", "sla-check"])
    assert first.exit_code == 0, first.output
    assert first.output.strip() == "checked 1 tickets: 0 warnings, 2 breaches recorded"
    again = CliRunner().invoke(app, ["service", "sla-check"])
    assert again.output.strip() == "checked 0 tickets: 0 warnings, 0 breaches recorded"
    with dbmod.session_scope(db) as s:
        kinds = sorted(s.scalars(select(TicketEvent.data["metric"].as_string()).where(
            TicketEvent.ticket_id == tid, TicketEvent.kind == "sla_breached")))
    assert kinds == ["first_response", "resolution"]


def _conversation(s, *, answered: bool, handed_off: bool) -> None:
    n = s.scalar(select(func.count(AssistantConversation.id)))
    c = AssistantConversation(public_id=f"c{n}",
                              status="handed_off" if handed_off else "answered",
                              handed_off_at=utcnow() if handed_off else None)
    s.add(c)
    s.flush()
    s.add_all([AssistantTurn(conversation_id=c.id, role="customer", text="How do I return?"),
               AssistantTurn(conversation_id=c.id, role="assistant", text="...",
                             answered=answered)])


def test_deflection_counts_answers_without_a_ticket(db: str) -> None:
    empty = CliRunner().invoke(app, ["service", "deflection"])
    assert empty.exit_code == 0 and "no questions asked" in empty.output
    with dbmod.session_scope(db) as s:
        _conversation(s, answered=True, handed_off=False)  # deflected
        _conversation(s, answered=True, handed_off=False)  # deflected
        _conversation(s, answered=False, handed_off=True)  # a person took over
        _conversation(s, answered=True, handed_off=True)  # answered, still wanted a person
    out = CliRunner().invoke(app, ["service", "deflection", "--days", "7", "--json"])
    figures = json.loads(out.output)
    assert (figures["with_question"], figures["deflected"], figures["handed_off"]) == (4, 2, 2)
    assert figures["deflection_rate"] == 0.5
    text = CliRunner().invoke(app, ["service", "deflection"])
    assert "deflection rate 50.0%" in text.output


def test_run_surveys_sends_a_due_schedule_once(db: str) -> None:
    with dbmod.session_scope(db) as s:
        customer_id = make_customer(s, score=False)
        from accord.models import CustomerEmail

        s.add(CustomerEmail(customer_id=customer_id, email="ada@example.com",
                            email_normalized="ada@example.com", is_primary=True))
        s.add(SurveySchedule(name="Quarterly NPS", kind="nps", every_days=90, audience={}))
    due = CliRunner().invoke(app, ["service", "run-surveys"])
    assert due.exit_code == 0, due.output
    assert due.output.startswith("schedule ") and "sent 1" in due.output
    again = CliRunner().invoke(app, ["service", "run-surveys"])
    assert again.output.strip() == "no survey schedule is due"
    with dbmod.session_scope(db) as s:
        sent = s.scalars(select(SurveyInvitation)).all()
    assert [(i.kind, i.customer_id, i.trigger) for i in sent] == [("nps", customer_id,
                                                                   "schedule")]
