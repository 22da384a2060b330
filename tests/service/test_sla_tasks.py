"""The SLA job: warnings then breaches recorded exactly once per timer instance, announced on
the outbox and in-app, through the `warn_at` index."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select

from accord.core import jobs
from accord.core.settings import reset_settings
from accord.models import Notification, OutboxEvent
from accord.models.service import Ticket, TicketEvent
from accord.service import sla_tasks, sla_tracking
from tests.service.test_sla_tracking import (
    add,
    make_policy,
    make_team,
    make_ticket,
    make_user,
    z,
)

START = z(2026, 1, 5, 10, 0)  # no calendar rows: round the clock


def minutes(n: float):
    return START + timedelta(minutes=n)


def recorded(s, kind: str) -> list[TicketEvent]:
    return list(s.scalars(select(TicketEvent).where(TicketEvent.kind == kind)
                          .order_by(TicketEvent.id)))


def outbox(s, type_: str) -> list[OutboxEvent]:
    return list(s.scalars(select(OutboxEvent).where(OutboxEvent.type == type_)))


def notes(s, user_id: int, kind: str) -> int:
    return s.scalar(select(func.count(Notification.id)).where(
        Notification.user_id == user_id, Notification.kind == kind))


def setup(s, *, assigned: bool = True):
    team = make_team(s)
    agent = make_user(s, "support", team)
    manager = make_user(s, "manager", team)
    make_policy(s, targets=(("normal", None, 100, 50, None),))
    t = make_ticket(s, START, team_id=agent.team_id,
                    assignee_id=agent.id if assigned else None)
    sla_tracking.refresh(s, t, now=START)
    s.commit()
    return t, agent, manager


def test_warning_then_breach_each_exactly_once(session):
    s = session
    t, agent, manager = setup(s)
    version = t.version
    assert t.warn_at == minutes(80)
    assert sla_tasks.run_sla_check(s, now=minutes(79)).warnings == 0

    got = sla_tasks.run_sla_check(s, now=minutes(80))
    assert (got.tickets, got.warnings, got.breaches) == (1, 1, 0)
    [warning] = recorded(s, "sla_warning")
    assert warning.data["metric"] == "first_response" and warning.at == minutes(80)
    assert warning.data["due"] == minutes(100).isoformat()
    [event] = outbox(s, "ticket.sla_warning")
    assert event.payload == {"ticket_id": t.id, "metric": "first_response",
                             "due": minutes(100).isoformat()}
    assert notes(s, agent.id, "sla_warning") == 1
    assert notes(s, manager.id, "sla_warning") == 0
    s.expire_all()
    row = s.get(Ticket, t.id)
    assert row.sla_state == "warning" and row.warn_at == minutes(100)
    assert row.version == version  # derived data: an agent's If-Match stays valid

    assert sla_tasks.run_sla_check(s, now=minutes(90)).warnings == 0
    got = sla_tasks.run_sla_check(s, now=minutes(100))
    assert (got.warnings, got.breaches) == (0, 1)
    assert [e.data["metric"] for e in recorded(s, "sla_breached")] == ["first_response"]
    assert len(outbox(s, "ticket.sla_breached")) == 1
    assert notes(s, manager.id, "sla_breached") == 1
    assert notes(s, agent.id, "sla_breached") == 0
    s.expire_all()
    assert s.get(Ticket, t.id).sla_state == "breached"
    assert s.get(Ticket, t.id).warn_at is None

    again = sla_tasks.run_sla_check(s, now=minutes(500))
    assert (again.tickets, again.warnings, again.breaches) == (0, 0, 0)
    assert len(recorded(s, "sla_warning")) == 1 and len(recorded(s, "sla_breached")) == 1
    # a refresh after the fact does not bring recorded instances back
    ticket = s.get(Ticket, t.id)
    sla_tracking.refresh(s, ticket, now=minutes(500))
    assert ticket.warn_at is None


def test_late_run_records_only_the_breach_and_unassigned_warns_managers(session):
    s = session
    t, agent, manager = setup(s, assigned=False)
    got = sla_tasks.run_sla_check(s, now=minutes(300))
    assert (got.warnings, got.breaches) == (0, 1)
    assert recorded(s, "sla_warning") == []
    assert notes(s, manager.id, "sla_breached") == 1


def test_each_next_response_instance_is_its_own_timer(session):
    s = session
    t, agent, manager = setup(s)
    ticket = s.get(Ticket, t.id)
    add(s, ticket, "public_reply_by_agent", minutes(10))
    add(s, ticket, "customer_message", minutes(20))
    sla_tracking.refresh(s, ticket, now=minutes(20))
    s.commit()
    assert ticket.warn_at == minutes(60)  # next response: 0.8 x 50 min after minute 20
    assert sla_tasks.run_sla_check(s, now=minutes(60)).warnings == 1
    ticket = s.get(Ticket, t.id)
    add(s, ticket, "public_reply_by_agent", minutes(65))
    add(s, ticket, "customer_message", minutes(70))
    sla_tracking.refresh(s, ticket, now=minutes(70))
    s.commit()
    assert ticket.warn_at == minutes(110)
    got = sla_tasks.run_sla_check(s, now=minutes(125))
    assert (got.warnings, got.breaches) == (0, 1)  # the second window, past due at 120
    starts = sorted(e.data["started_at"] for e in recorded(s, "sla_warning")
                    + recorded(s, "sla_breached"))
    assert starts == [minutes(20).isoformat(), minutes(70).isoformat()]


def test_batches_cover_every_due_ticket(session, monkeypatch):
    s = session
    make_policy(s, targets=(("normal", None, 10, None, None),))
    tickets = [make_ticket(s, START) for _ in range(7)]
    for t in tickets:
        sla_tracking.refresh(s, t, now=START)
    s.commit()
    monkeypatch.setattr(sla_tasks, "BATCH_SIZE", 3)
    got = sla_tasks.run_sla_check(s, now=minutes(60))
    assert (got.tickets, got.breaches) == (7, 7)
    assert len(outbox(s, "ticket.sla_breached")) == 7


def test_registered_periodic_and_uses_the_warn_at_index(session, monkeypatch):
    assert sla_tasks.SLA_CHECK in jobs.HANDLERS
    assert jobs.PERIODIC[sla_tasks.SLA_CHECK]() == timedelta(seconds=60)
    monkeypatch.setenv("ACCORD_SERVICE_SLA_CHECK_SECONDS", "0")
    reset_settings()
    try:
        assert jobs.PERIODIC[sla_tasks.SLA_CHECK]() is None
    finally:
        monkeypatch.delenv("ACCORD_SERVICE_SLA_CHECK_SECONDS")
        reset_settings()
    bind = session.get_bind()
    if bind.dialect.name == "sqlite":
        compiled = sla_tasks.due_query(START).compile(dialect=bind.dialect)
        params = tuple("2026-01-05 10:00:00" if isinstance(v, datetime) else v
                       for v in (compiled.params[n] for n in compiled.positiontup or []))
        plan = " ".join(str(r) for r in session.connection().exec_driver_sql(
            "EXPLAIN QUERY PLAN " + compiled.string, params))
        assert "ix_tickets_warn_at" in plan


def test_changed_policy_or_calendar_is_applied_by_the_next_run(session):
    from accord.access.policy import SYSTEM
    from accord.service import config
    from accord.service.config_schemas import CalendarCreate, SlaPolicyUpdate

    s = session
    t, agent, manager = setup(s)
    add(s, s.get(Ticket, t.id), "status_changed", minutes(5), status="pending_customer")
    sla_tracking.refresh(s, s.get(Ticket, t.id), now=minutes(5))
    s.commit()
    assert s.get(Ticket, t.id).warn_at is None  # paused: nothing pending
    policy = s.get(sla_tracking.PolicyRow, t.sla_policy_id)
    config.update_policy(s, SYSTEM, policy, SlaPolicyUpdate(targets=[
        {"priority": "normal", "first_response_minutes": 30}]))
    s.commit()
    s.expire_all()
    queued = s.get(Ticket, t.id).warn_at
    assert queued is not None  # in the job's queue now
    sla_tasks.run_sla_check(s, now=queued)
    s.expire_all()
    row = s.get(Ticket, t.id)
    assert row.sla_checked_at == queued and row.warn_at is None  # re-evaluated, still paused
    assert sla_tracking.timers(s, row, now=queued).timers[0].target_seconds == 30 * 60
    # a new default calendar queues every open ticket again
    config.create_calendar(s, SYSTEM, CalendarCreate(
        name="short", timezone="Europe/Berlin", hours={"mon": [["09:00", "10:00"]]}))
    s.commit()
    s.expire_all()
    assert s.get(Ticket, t.id).warn_at is not None
    assert sla_tasks.run_sla_check(s, now=s.get(Ticket, t.id).warn_at).tickets == 1
