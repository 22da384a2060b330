"""A ticket's SLA timers, evaluated from its stored timeline and kept on the ticket row.

`accord.service.sla.evaluate` decides every timer (the rules are in its docstring and in
docs/service.md); this module feeds it from the database and stores the result on indexed
columns so that queues sort by `due_at` and the SLA job finds its work by `warn_at`:

* **Policy**: the ticket keeps the policy it was first measured with (`sla_policy_id`); a new
  ticket takes its team's active policy, else the active default policy (`is_default`), else
  none (`sla_state` ``none``; the first response and resolution times are still measured, on
  the calendar alone, for the KPIs). Targets come from `sla_targets` (minutes → seconds); the
  tier is the customer's analytics value tier (`customer_scores.value_tier`).
* **Calendar**: the ticket team's `business_calendars` row, else the default one (team NULL),
  else round the clock (`accord.service.calendar.ALWAYS`).
* **Stored fields**: the three timers' due instants (`None` while paused), `due_at` = the
  earliest due of a timer still running (not paused, not finished), `first_response_seconds` /
  `resolution_seconds` (business seconds, pauses excluded) and `first_responded_at`.
  `sla_state` is the worst state of the running timers (breached > warning > running >
  paused); with none running it is ``breached`` if a finished timer breached, ``met`` if one
  was met, else ``none``.
* **`warn_at`** is the next instant at which the SLA job has something to record: the
  earliest warning or breach of a timer instance not yet recorded as a `sla_warning` /
  `sla_breached` ticket event (an instance is (metric, start instant), so each is recorded
  exactly once). A breach already due makes its warning moot (only the breach is recorded).
  NULL when nothing is pending.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from accord.core.clock import utcnow
from accord.models.analytics_scores import CustomerScore
from accord.models.service import BusinessCalendar as CalendarRow
from accord.models.service import SlaPolicy as PolicyRow
from accord.models.service import SlaTarget, Ticket, TicketEvent
from accord.service import sla
from accord.service.calendar import ALWAYS, BusinessCalendar

log = logging.getLogger("accord.service.sla")

SLA_EVENT_KINDS = frozenset(sla.EVENT_KINDS)
WARNING = "sla_warning"
BREACHED = "sla_breached"
RECORD_KINDS = (WARNING, BREACHED)
METRICS = ("first_response", "next_response", "resolution")
_RUNNING_RANK = {"breached": 4, "warning": 3, "running": 2, "paused": 1}

# (kind, metric, started_at ISO) of every warning / breach already recorded on a ticket
Recorded = set[tuple[str, str, str]]


@dataclass(frozen=True)
class Pending:
    """A warning or breach of one timer instance that the SLA job has yet to record."""

    kind: str  # sla_warning / sla_breached
    metric: str
    started_at: datetime
    at: datetime  # when it became (or becomes) due for recording
    due: datetime | None

    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.metric, self.started_at.isoformat())

    def data(self) -> dict[str, Any]:
        return {"metric": self.metric, "started_at": self.started_at.isoformat(),
                "due": self.due.isoformat() if self.due else None}


@dataclass(frozen=True)
class Evaluation:
    """What the stored fields are derived from: the state (None without a policy) and pending."""

    policy_id: int | None
    state: sla.SlaState | None
    fields: dict[str, Any]
    pending: list[Pending]


@dataclass(frozen=True)
class TimerView:
    """One timer as the ticket page shows it; times in business seconds."""

    metric: str
    status: str  # running / warning / paused / breached / met / not_applicable
    target_seconds: float | None
    elapsed_seconds: float
    remaining_seconds: float | None  # target - elapsed (negative once overdue)
    started_at: datetime
    stopped_at: datetime | None
    due: datetime | None
    warn_at: datetime | None


@dataclass(frozen=True)
class SlaView:
    policy: str | None
    priority: str
    tier: str | None
    sla_state: str
    timers: list[TimerView]


# --- policy and calendar ---------------------------------------------------------------------


def calendar_for(session: Session, team_id: int | None) -> BusinessCalendar:
    """The team's calendar, else the default one, else round the clock."""
    rows = list(session.scalars(
        select(CalendarRow).where(
            (CalendarRow.team_id == team_id) | CalendarRow.team_id.is_(None)
            if team_id is not None else CalendarRow.team_id.is_(None))))
    rows.sort(key=lambda r: r.team_id is None)  # the team's own first
    for row in rows:
        try:
            return BusinessCalendar.from_spec(
                {"timezone": row.timezone, "hours": row.hours or {},
                 "holidays": row.holidays or []})
        except ValueError as exc:  # only reachable by editing the table outside the API
            log.warning("business calendar %s is invalid (%s): skipped", row.id, exc)
    return ALWAYS


def policy_row(session: Session, policy_id: int | None, team_id: int | None) -> PolicyRow | None:
    """The pinned policy if it still exists, else the team's active one, else the default."""
    if policy_id is not None:
        pinned = session.get(PolicyRow, policy_id)
        if pinned is not None:
            return pinned
    if team_id is not None:
        row = session.scalars(
            select(PolicyRow).where(PolicyRow.team_id == team_id, PolicyRow.active.is_(True))
            .order_by(PolicyRow.id).limit(1)).first()
        if row is not None:
            return row
    return session.scalars(
        select(PolicyRow).where(PolicyRow.is_default.is_(True), PolicyRow.active.is_(True))
        .order_by(PolicyRow.id).limit(1)).first()


def _minutes(value: int | None) -> float | None:
    return None if value is None else float(value) * 60


def build_policy(session: Session, row: PolicyRow, calendar: BusinessCalendar) -> sla.SlaPolicy:
    """The pure policy of one `sla_policies` row and its targets on `calendar`."""
    targets = {
        (t.priority, t.tier): sla.SlaTargets(
            first_response=_minutes(t.first_response_minutes),
            next_response=_minutes(t.next_response_minutes),
            resolution=_minutes(t.resolution_minutes))
        for t in session.scalars(select(SlaTarget).where(SlaTarget.policy_id == row.id))
    }
    return sla.SlaPolicy(name=row.name, calendar=calendar, targets=targets,
                         warning_ratio=row.warning_ratio, pause_on_hold=row.pause_on_hold)


def policy_for(session: Session, ticket: Ticket) -> sla.SlaPolicy | None:
    """The policy that measures `ticket` (its pinned one, else its team's, else the default)."""
    row = policy_row(session, ticket.sla_policy_id, ticket.team_id)
    if row is None:
        return None
    return build_policy(session, row, calendar_for(session, ticket.team_id))


def tier_of(session: Session, customer_id: int | None) -> str | None:
    if customer_id is None:
        return None
    return session.scalar(
        select(CustomerScore.value_tier).where(CustomerScore.customer_id == customer_id))


# --- timeline ---------------------------------------------------------------------------------


def to_sla_events(rows: Iterable[Any], created_at: datetime) -> list[sla.TicketEvent]:
    """Map stored rows (anything with at/kind/status/priority) to the pure events.

    Kinds outside the SLA's are skipped; a ticket inserted without a `created` event (a bulk
    import) is taken as created at `created_at`; a malformed row is logged and skipped rather
    than stopping every timer of the ticket."""
    out: list[sla.TicketEvent] = []
    has_created = False
    for row in rows:
        if row.kind not in SLA_EVENT_KINDS:
            continue
        if row.kind == "created":
            if has_created:
                continue
            has_created = True
        try:
            out.append(sla.TicketEvent(
                at=row.at, kind=row.kind,
                status=row.status if row.kind == "status_changed" else None,
                priority=row.priority if row.kind == "priority_changed" else None))
        except ValueError as exc:
            log.warning("ticket event %s skipped for the SLA: %s", getattr(row, "id", "?"), exc)
    if not has_created:
        out.append(sla.TicketEvent(at=created_at, kind="created"))
    return out


def initial_priority(rows: Sequence[Any], current: str) -> str:
    """The priority at creation: the created event's, else the first change's `from`."""
    for row in rows:
        if row.kind == "created" and row.priority:
            return str(row.priority)
    for row in sorted((r for r in rows if r.kind == "priority_changed"), key=lambda r: r.at):
        previous = (row.data or {}).get("from")
        return str(previous) if previous else current
    return current


def recorded_of(rows: Iterable[Any]) -> Recorded:
    out: Recorded = set()
    for row in rows:
        if row.kind in RECORD_KINDS:
            data = row.data or {}
            out.add((row.kind, str(data.get("metric")), str(data.get("started_at"))))
    return out


# --- evaluation -------------------------------------------------------------------------------


def _pending(state: sla.SlaState, recorded: Recorded, now: datetime) -> list[Pending]:
    out: list[Pending] = []
    timers = [state.first_response, state.next_response, state.last_next_response,
              state.resolution]
    for m in timers:
        if m is None or m.status in ("paused", "met", "not_applicable"):
            continue
        started = m.started_at.isoformat()
        if (BREACHED, m.metric, started) in recorded:
            continue
        if m.stopped_at is not None:  # finished late, the breach not yet recorded
            if m.breached_at is not None:
                out.append(Pending(BREACHED, m.metric, m.started_at, m.breached_at, m.due))
            continue
        if m.due is None:
            continue
        if m.due <= now:
            out.append(Pending(BREACHED, m.metric, m.started_at, m.due, m.due))
            continue
        if m.warn_at is not None and (WARNING, m.metric, started) not in recorded:
            out.append(Pending(WARNING, m.metric, m.started_at, m.warn_at, m.due))
        out.append(Pending(BREACHED, m.metric, m.started_at, m.due, m.due))
    return out


def _state_name(state: sla.SlaState) -> str:
    running = [m for m in (state.first_response, state.next_response, state.resolution)
               if m is not None and m.stopped_at is None and m.status != "not_applicable"]
    if running:
        return max((m.status for m in running), key=lambda s: _RUNNING_RANK.get(s, 0))
    done = [m for m in (state.first_response, state.last_next_response, state.resolution)
            if m is not None and m.stopped_at is not None]
    if any(m.status == "breached" for m in done):
        return "breached"
    if any(m.status == "met" for m in done):
        return "met"
    return "none"


def evaluate_timeline(
    policy: sla.SlaPolicy | None,
    calendar: BusinessCalendar,
    policy_id: int | None,
    priority: str,
    tier: str | None,
    events: list[sla.TicketEvent],
    recorded: Recorded,
    now: datetime,
) -> Evaluation:
    """The stored fields and pending records of one ticket (no database access)."""
    latest = max(e.at for e in events)
    if latest > now:  # an event stamped a moment ahead of this clock reading
        now = latest
    fields: dict[str, Any] = {"sla_checked_at": now}
    measure = policy or sla.SlaPolicy(name="none", calendar=calendar)
    state = sla.evaluate(measure, priority, tier, events, now)
    fr, res = state.first_response, state.resolution
    fields["first_responded_at"] = fr.stopped_at
    fields["first_response_seconds"] = fr.elapsed if fr.stopped_at is not None else None
    fields["resolution_seconds"] = res.elapsed if res.stopped_at is not None else None
    if policy is None:
        fields.update(sla_state="none", first_response_due_at=None, next_response_due_at=None,
                      resolution_due_at=None, due_at=None, warn_at=None)
        return Evaluation(None, None, fields, [])
    nxt = state.next_response
    fields["first_response_due_at"] = fr.due
    fields["next_response_due_at"] = nxt.due if nxt is not None else None
    fields["resolution_due_at"] = res.due
    running_dues = [m.due for m in (fr, nxt, res)
                    if m is not None and m.stopped_at is None and m.due is not None]
    fields["due_at"] = min(running_dues) if running_dues else None
    pending = _pending(state, recorded, now)
    fields["warn_at"] = min((p.at for p in pending), default=None)
    fields["sla_state"] = _state_name(state)
    return Evaluation(policy_id, state, fields, pending)


def _rows(session: Session, ticket_id: int) -> list[TicketEvent]:
    return list(session.scalars(
        select(TicketEvent).where(TicketEvent.ticket_id == ticket_id)
        .order_by(TicketEvent.at, TicketEvent.id)))


def evaluate_ticket(session: Session, ticket: Ticket, now: datetime | None = None) -> Evaluation:
    """Evaluate `ticket` from the database without changing it."""
    now = now or utcnow()
    session.flush()  # the caller's new events and fields are read back below
    row = policy_row(session, ticket.sla_policy_id, ticket.team_id)
    calendar = calendar_for(session, ticket.team_id)
    policy = build_policy(session, row, calendar) if row is not None else None
    rows = _rows(session, ticket.id)
    events = to_sla_events(rows, ticket.created_at or now)
    return evaluate_timeline(
        policy, calendar, row.id if row is not None else None,
        initial_priority(rows, ticket.priority), tier_of(session, ticket.customer_id),
        events, recorded_of(rows), now)


def apply_fields(ticket: Ticket, fields: Mapping[str, Any]) -> None:
    """Set only what changed (an unchanged ticket is not rewritten)."""
    for key, value in fields.items():
        if key == "sla_checked_at":
            continue
        if getattr(ticket, key) != value:
            setattr(ticket, key, value)
    ticket.sla_checked_at = fields.get("sla_checked_at")


def refresh(session: Session, ticket: Ticket, now: datetime | None = None) -> sla.SlaState | None:
    """Re-evaluate the ticket's timers and store them on it (call after every timeline change).

    Pins the policy the first time one applies; returns None when no policy applies."""
    result = evaluate_ticket(session, ticket, now)
    if ticket.sla_policy_id is None and result.policy_id is not None:
        ticket.sla_policy_id = result.policy_id
    apply_fields(ticket, result.fields)
    return result.state


def timers(session: Session, ticket: Ticket, now: datetime | None = None) -> SlaView:
    """Each timer's state at `now` for display (read only: nothing is stored)."""
    result = evaluate_ticket(session, ticket, now)
    state = result.state
    if state is None:
        return SlaView(policy=None, priority=ticket.priority, tier=None, sla_state="none",
                       timers=[])
    views: list[TimerView] = []
    for m in (state.first_response, state.next_response or state.last_next_response,
              state.resolution):
        if m is None:
            continue
        remaining = None if m.target is None else m.target - m.elapsed
        views.append(TimerView(
            metric=m.metric, status=m.status, target_seconds=m.target,
            elapsed_seconds=m.elapsed, remaining_seconds=remaining, started_at=m.started_at,
            stopped_at=m.stopped_at, due=m.due, warn_at=m.warn_at))
    return SlaView(policy=state.policy, priority=state.priority, tier=state.tier,
                   sla_state=result.fields["sla_state"], timers=views)


def add_event(session: Session, ticket: Ticket, kind: str, *, data: dict[str, Any] | None = None,
              actor_id: int | None = None, priority: str | None = None) -> TicketEvent:
    """Record a timeline fact through the tickets module's write path (its one place)."""
    from accord.service.tickets import record_event

    return record_event(session, ticket, kind, actor_id=actor_id, priority=priority, data=data)
