"""The SLA check: record warnings and breaches as they fall due, once per timer instance.

Every `ACCORD_SERVICE_SLA_CHECK_SECONDS` (default 60; 0 turns it off) the `service.sla_check`
job takes the tickets whose `warn_at` has passed. `warn_at` is kept by
`sla_tracking.refresh` as the next instant something is pending for the ticket (see there), so
the job reads only those rows, through the index on `warn_at`, in batches; on PostgreSQL the
batch is locked with SKIP LOCKED so overlapping runs share the work instead of doubling it.

Per ticket it re-evaluates the timers from the timeline (no ORM objects: one query for a
batch's events, one for their tiers) and, for each warning or breach due and not yet
recorded: a `sla_warning` / `sla_breached` ticket event (data: metric, timer start, due), an
outbox event `ticket.sla_warning` / `ticket.sla_breached` {ticket_id, metric, due}, and an
in-app notification — a warning to the assignee (the team's managers while unassigned), a
breach to the team's managers (the admins when the team has none). The stored SLA fields are
then rewritten in one executemany UPDATE that leaves `version` and `updated_at` alone (derived
data must not make an agent's If-Match stale). Each batch commits on its own.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, bindparam, insert, select, update
from sqlalchemy.orm import Session

from accord.core import jobs
from accord.core.clock import utcnow
from accord.core.db import is_postgres
from accord.core.events import emit
from accord.core.settings import get_settings
from accord.models.analytics_scores import CustomerScore
from accord.models.service import SlaPolicy as PolicyRow
from accord.models.service import Ticket, TicketEvent
from accord.service import sla_tracking
from accord.service.calendar import BusinessCalendar
from accord.service.sla import SlaPolicy

log = logging.getLogger("accord.service.sla")

SLA_CHECK = "service.sla_check"
BATCH_SIZE = 500
MAX_PER_RUN = 20_000  # a backlog beyond this waits for the next run
FIELDS = ("sla_state", "first_response_due_at", "next_response_due_at", "resolution_due_at",
          "due_at", "warn_at", "first_response_seconds", "resolution_seconds",
          "first_responded_at", "sla_checked_at")
_TICKET_COLUMNS = (Ticket.id, Ticket.subject, Ticket.priority, Ticket.team_id,
                   Ticket.assignee_id, Ticket.customer_id, Ticket.sla_policy_id,
                   Ticket.created_at)


def check_interval() -> timedelta | None:
    seconds = get_settings().service_sla_check_seconds
    return timedelta(seconds=seconds) if seconds > 0 else None


@dataclass
class CheckResult:
    tickets: int = 0
    warnings: int = 0
    breaches: int = 0


class _Policies:
    """Policies and calendars of one run, each read once."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.calendars: dict[int | None, BusinessCalendar] = {}
        self.rows: dict[tuple[int | None, int | None], PolicyRow | None] = {}
        self.built: dict[tuple[int, int | None], SlaPolicy] = {}
        self.managers: dict[int | None, list[int]] = {}  # who hears of a team's breaches

    def calendar(self, team_id: int | None) -> BusinessCalendar:
        if team_id not in self.calendars:
            self.calendars[team_id] = sla_tracking.calendar_for(self.session, team_id)
        return self.calendars[team_id]

    def row(self, policy_id: int | None, team_id: int | None) -> PolicyRow | None:
        key = (policy_id, team_id if policy_id is None else None)
        if key not in self.rows:
            self.rows[key] = sla_tracking.policy_row(self.session, policy_id, team_id)
        return self.rows[key]

    def policy(self, row: PolicyRow, team_id: int | None) -> SlaPolicy:
        key = (row.id, team_id)
        if key not in self.built:
            self.built[key] = sla_tracking.build_policy(self.session, row, self.calendar(team_id))
        return self.built[key]


def due_query(now: datetime) -> Select[Any]:
    """The tickets with something due by `now`, earliest first (walks `ix_tickets_warn_at`)."""
    return (select(*_TICKET_COLUMNS).where(Ticket.warn_at <= now)
            .order_by(Ticket.warn_at, Ticket.id).limit(BATCH_SIZE))


def _due_batch(session: Session, now: datetime, seen: set[int]) -> list[Any]:
    stmt = due_query(now)
    if is_postgres(session):
        stmt = stmt.with_for_update(of=Ticket, skip_locked=True)
    return [r for r in session.execute(stmt).all() if r.id not in seen]


def _recipients(session: Session, kind: str, row: Any,
                managers: dict[int | None, list[int]]) -> list[int]:
    from accord.service.escalation import managers_of

    if kind == sla_tracking.WARNING and row.assignee_id is not None:
        return [row.assignee_id]
    if row.team_id not in managers:
        managers[row.team_id] = [u.id for u in managers_of(session, row.team_id)]
    return managers[row.team_id]


def _announce(session: Session, row: Any, p: sla_tracking.Pending,
              managers: dict[int | None, list[int]]) -> None:
    from accord.sales.notifications import notify

    label = p.metric.replace("_", " ")
    due = p.due.strftime("%Y-%m-%d %H:%M UTC") if p.due else "-"
    verb = "will breach" if p.kind == sla_tracking.WARNING else "breached"
    event = "ticket.sla_warning" if p.kind == sla_tracking.WARNING else "ticket.sla_breached"
    emit(session, event, "ticket", row.id,
         {"ticket_id": row.id, "metric": p.metric, "due": p.due.isoformat() if p.due else None})
    title = f"SLA {label} {verb}: T-{row.id} {row.subject}"[:300]
    stamp = int(p.started_at.timestamp())
    for user_id in _recipients(session, p.kind, row, managers):
        notify(session, user_id, p.kind, title, f"Due {due}.", f"/service/tickets/{row.id}",
               dedupe_key=f"{p.kind}:{row.id}:{p.metric}:{stamp}:{user_id}")


def _process(session: Session, rows: list[Any], now: datetime, policies: _Policies,
             result: CheckResult) -> None:
    ids = [r.id for r in rows]
    events: dict[int, list[Any]] = defaultdict(list)
    for ev in session.execute(
            select(TicketEvent.id, TicketEvent.ticket_id, TicketEvent.at, TicketEvent.kind,
                   TicketEvent.status, TicketEvent.priority, TicketEvent.data)
            .where(TicketEvent.ticket_id.in_(ids))
            .order_by(TicketEvent.ticket_id, TicketEvent.at, TicketEvent.id)):
        events[ev.ticket_id].append(ev)
    customers = {r.customer_id for r in rows if r.customer_id is not None}
    tiers = dict(session.execute(
        select(CustomerScore.customer_id, CustomerScore.value_tier)
        .where(CustomerScore.customer_id.in_(customers))).all()) if customers else {}
    new_events: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    broken: list[dict[str, Any]] = []
    for row in rows:
        timeline = events.get(row.id, [])
        policy_row = policies.row(row.sla_policy_id, row.team_id)
        try:
            ev = sla_tracking.evaluate_timeline(
                policies.policy(policy_row, row.team_id) if policy_row else None,
                policies.calendar(row.team_id), policy_row.id if policy_row else None,
                sla_tracking.initial_priority(timeline, row.priority), tiers.get(row.customer_id),
                sla_tracking.to_sla_events(timeline, row.created_at),
                sla_tracking.recorded_of(timeline), now)
        except ValueError as exc:  # a broken timeline must not be picked again every minute
            log.warning("ticket %s: SLA not evaluated (%s); warn_at cleared", row.id, exc)
            broken.append({"b_id": row.id, "b_sla_checked_at": now})
            continue
        due = [p for p in ev.pending if p.at <= now]
        for p in due:
            new_events.append({"ticket_id": row.id, "at": p.at, "kind": p.kind, "status": None,
                               "priority": None, "actor_id": None, "data": p.data()})
            _announce(session, row, p, policies.managers)
            if p.kind == sla_tracking.WARNING:
                result.warnings += 1
            else:
                result.breaches += 1
        done = {p.key() for p in due}
        fields = dict(ev.fields, warn_at=min(
            (p.at for p in ev.pending if p.key() not in done), default=None))
        params = {f"b_{name}": fields[name] for name in FIELDS}
        params["b_id"] = row.id
        params["b_sla_policy_id"] = ev.policy_id if row.sla_policy_id is None else \
            row.sla_policy_id
        updates.append(params)
        result.tickets += 1
    if new_events:
        session.execute(insert(TicketEvent), new_events)
    table = Ticket.__table__
    if updates:
        values: dict[str, Any] = {name: bindparam(f"b_{name}", type_=table.c[name].type)
                                  for name in (*FIELDS, "sla_policy_id")}
        values["updated_at"] = table.c.updated_at
        session.execute(update(table).where(table.c.id == bindparam("b_id")).values(values),
                        updates)
    if broken:
        session.execute(update(table).where(table.c.id == bindparam("b_id")).values(
            warn_at=None, updated_at=table.c.updated_at,
            sla_checked_at=bindparam("b_sla_checked_at", type_=table.c.sla_checked_at.type)),
            broken)


def run_sla_check(session: Session, now: datetime | None = None,
                  limit: int = MAX_PER_RUN) -> CheckResult:
    """Record every warning and breach due by `now`; commits batch by batch."""
    now = now or utcnow()
    result = CheckResult()
    policies = _Policies(session)
    seen: set[int] = set()
    while len(seen) < limit:
        rows = _due_batch(session, now, seen)
        if not rows:
            break
        seen.update(r.id for r in rows)
        _process(session, rows, now, policies, result)
        session.commit()
    if result.warnings or result.breaches:
        log.info("SLA check: %s warnings, %s breaches over %s tickets",
                 result.warnings, result.breaches, result.tickets)
    return result


@jobs.handler(SLA_CHECK)
def sla_check(session: Session, payload: dict[str, Any]) -> None:
    run_sla_check(session)


jobs.periodic(SLA_CHECK, check_interval)
