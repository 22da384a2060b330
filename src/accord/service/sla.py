"""SLA evaluation: a ticket's timeline plus a policy give each timer's exact state.

Pure functions over plain data (no database, no clock): the service layer, the timer jobs and
the analytics KPIs all call these so that one set of rules decides "met" and "breached".

Rules (each one is tested in ``tests/service/test_sla.py``):

* **Targets** are business seconds on the policy's :class:`BusinessCalendar`.
  ``SlaPolicy.targets_for(priority, tier)`` looks up ``(priority, tier)``, then
  ``(priority, None)`` (that priority, any tier), then ``policy.default``. A metric whose target
  is ``None`` is ``not_applicable`` (elapsed time is still reported).
* **Timeline**: events are sorted by instant (ties: ``created`` first, then the given order).
  Exactly one ``created`` event; an event before it, an event after ``now`` or a naive datetime
  is a ``ValueError``. The status after ``created`` is ``new``. Status changes are explicit:
  a customer message does not reopen or un-pend a ticket by itself (the service layer records a
  ``status_changed`` when its workflow does that).
* **Pauses**: every timer stops while the status is ``pending_customer``, ``solved`` or
  ``closed``; ``on_hold`` pauses only when ``policy.pause_on_hold`` is true (default false:
  waiting on a third party is still our time).
* **First response**: from ``created`` to the first ``public_reply_by_agent``.
* **Next response**: from the first ``customer_message`` after the latest agent reply (and after
  the first response) to the next agent reply; further customer messages before that reply do
  not restart it. ``SlaState.next_response`` is the open timer (``None`` when nothing is
  waiting), ``SlaState.last_next_response`` the last completed one.
* **Resolution**: from ``created`` while not solved/closed; it completes when the ticket is
  solved or closed at ``now``. Reopening resumes the clock from where it stopped (the solved
  period is excluded); solving again completes it with the total.
* **Priority change**: a running timer uses the target of the priority in force *now*,
  measured from the timer's original start (due = start + new target, pauses skipped), so
  raising a priority can make a timer breached at once, with ``breached_at`` in the past.
  A completed timer keeps the target of the priority in force when it completed.
* **Boundary**: a timer is breached once elapsed >= target, i.e. *at* the due instant; a reply
  at the due instant is breached, one second earlier is met. ``breached_at`` is the due.
* **Warning**: a running timer whose elapsed time is >= ``warning_ratio`` x target (default 0.8)
  and not yet breached is ``warning``; ``warn_at`` is when that threshold is/was reached.
* **Status**: ``not_applicable`` (no target), ``met`` / ``breached`` (completed),
  ``breached`` (running past due), ``paused`` (running, inside a pause, not breached; ``due``
  is ``None`` then), ``warning``, ``running``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from accord.service.calendar import BusinessCalendar, Pause, require_aware

EventKind = Literal[
    "created", "public_reply_by_agent", "customer_message", "status_changed", "priority_changed"
]
TicketStatus = Literal["new", "open", "pending_customer", "on_hold", "solved", "closed"]
MetricStatus = Literal["running", "paused", "warning", "breached", "met", "not_applicable"]

EVENT_KINDS: frozenset[str] = frozenset(
    {"created", "public_reply_by_agent", "customer_message", "status_changed", "priority_changed"}
)
TICKET_STATUSES: frozenset[str] = frozenset(
    {"new", "open", "pending_customer", "on_hold", "solved", "closed"}
)
_DONE = frozenset({"solved", "closed"})


def _target(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name}: must be a number of seconds or None")
    if math.isnan(value) or math.isinf(value) or value <= 0:
        raise ValueError(f"{name}: must be a finite number of seconds > 0")
    return float(value)


@dataclass(frozen=True)
class SlaTargets:
    """Business-second budgets; ``None`` means the metric has no SLA."""

    first_response: float | None = None
    next_response: float | None = None
    resolution: float | None = None

    def __post_init__(self) -> None:
        for name in ("first_response", "next_response", "resolution"):
            object.__setattr__(self, name, _target(name, getattr(self, name)))


@dataclass(frozen=True)
class SlaPolicy:
    """Targets keyed by ``(priority, tier)``; a ``None`` tier matches any tier."""

    name: str
    calendar: BusinessCalendar
    targets: Mapping[tuple[str, str | None], SlaTargets] = field(default_factory=dict)
    default: SlaTargets = field(default_factory=SlaTargets)
    warning_ratio: float = 0.8
    pause_on_hold: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.calendar, BusinessCalendar):
            raise TypeError("calendar must be a BusinessCalendar")
        ratio = self.warning_ratio
        if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 < ratio <= 1:
            raise ValueError("warning_ratio: must be a number in (0, 1]")
        for key, value in self.targets.items():
            if not isinstance(key, tuple) or len(key) != 2 or not isinstance(key[0], str):
                raise ValueError(f"targets: key {key!r} must be (priority, tier or None)")
            if not isinstance(value, SlaTargets):
                raise TypeError(f"targets[{key!r}]: must be SlaTargets")
        object.__setattr__(self, "targets", dict(self.targets))

    def targets_for(self, priority: str, tier: str | None) -> SlaTargets:
        """Exact (priority, tier), then (priority, any tier), then the policy default."""
        for key in ((priority, tier), (priority, None)):
            found = self.targets.get(key)
            if found is not None:
                return found
        return self.default

    def pausing_statuses(self) -> frozenset[str]:
        extra = {"on_hold"} if self.pause_on_hold else set()
        return frozenset({"pending_customer", *_DONE, *extra})


_KIND_ORDER = {"created": 0}


@dataclass(frozen=True)
class TicketEvent:
    """One timeline fact; ``status``/``priority`` carry the new value for change events."""

    at: datetime
    kind: EventKind
    status: TicketStatus | None = None
    priority: str | None = None

    def __post_init__(self) -> None:
        require_aware("event.at", self.at)
        if self.kind not in EVENT_KINDS:
            raise ValueError(f"event kind {self.kind!r} is unknown")
        if self.kind == "status_changed":
            if self.status not in TICKET_STATUSES:
                raise ValueError(f"status_changed needs a status in {sorted(TICKET_STATUSES)}")
        elif self.status is not None:
            raise ValueError("only status_changed events carry a status")
        if self.kind == "priority_changed":
            if not isinstance(self.priority, str) or not self.priority:
                raise ValueError("priority_changed needs a priority")
        elif self.priority is not None:
            raise ValueError("only priority_changed events carry a priority")


@dataclass(frozen=True)
class MetricState:
    """One timer: times are business seconds, instants are as given (aware)."""

    metric: str
    status: MetricStatus
    target: float | None
    elapsed: float
    started_at: datetime
    stopped_at: datetime | None
    due: datetime | None
    warn_at: datetime | None
    breached_at: datetime | None


@dataclass(frozen=True)
class SlaState:
    policy: str
    priority: str
    tier: str | None
    first_response: MetricState
    next_response: MetricState | None
    last_next_response: MetricState | None
    resolution: MetricState


@dataclass(frozen=True)
class _Timeline:
    created: datetime
    events: list[TicketEvent]
    pauses: list[Pause]
    initial_priority: str


def _timeline(
    policy: SlaPolicy, priority: str, events: Iterable[TicketEvent], now: datetime | None
) -> _Timeline:
    items = list(events)
    for i, e in enumerate(items):
        if not isinstance(e, TicketEvent):
            raise TypeError(f"events[{i}]: must be a TicketEvent")
    created = [e for e in items if e.kind == "created"]
    if len(created) != 1:
        raise ValueError(f"events: need exactly one 'created' event, got {len(created)}")
    start = created[0].at
    ordered = sorted(items, key=lambda e: (e.at, _KIND_ORDER.get(e.kind, 1)))
    for e in ordered:
        if e.at < start:
            raise ValueError(f"events: {e.kind} at {e.at.isoformat()} is before 'created'")
        if now is not None and e.at > now:
            raise ValueError(f"events: {e.kind} at {e.at.isoformat()} is after now")
    pausing = policy.pausing_statuses()
    pauses: list[Pause] = []
    paused_since: datetime | None = None
    for e in ordered:
        if e.kind != "status_changed":
            continue
        if e.status in pausing and paused_since is None:
            paused_since = e.at
        elif e.status not in pausing and paused_since is not None:
            pauses.append((paused_since, e.at))
            paused_since = None
    if paused_since is not None:
        pauses.append((paused_since, None))
    return _Timeline(start, ordered, pauses, priority)


def _last_at(tl: _Timeline, instant: datetime, field: str, initial: str) -> str:
    """The ticket's `field` ("priority" or "status") at `instant`: the value of the last
    `<field>_changed` event up to it, else `initial`."""
    current = initial
    kind = f"{field}_changed"
    for e in tl.events:
        if e.at > instant:
            break
        if e.kind == kind:
            value = getattr(e, field)
            assert value is not None
            current = value
    return current


def _priority_at(tl: _Timeline, instant: datetime) -> str:
    return _last_at(tl, instant, "priority", tl.initial_priority)


def _status_at(tl: _Timeline, instant: datetime) -> str:
    return _last_at(tl, instant, "status", "new")


def _metric(
    policy: SlaPolicy,
    tl: _Timeline,
    tier: str | None,
    metric: str,
    start: datetime,
    stop: datetime | None,
    now: datetime,
) -> MetricState:
    cal = policy.calendar
    end = stop if stop is not None else now
    priority = _priority_at(tl, end)
    target = getattr(policy.targets_for(priority, tier), metric)
    elapsed = cal.elapsed_with_pauses(start, end, tl.pauses)
    if target is None:
        return MetricState(metric, "not_applicable", None, elapsed, start, stop, None, None, None)
    due = cal.due_with_pauses(start, target, tl.pauses)
    warn_at = cal.due_with_pauses(start, target * policy.warning_ratio, tl.pauses)
    breached = elapsed >= target
    breached_at = due if breached else None
    status: MetricStatus
    due_out = due
    if stop is not None:
        status = "breached" if breached else "met"
    elif breached:
        status = "breached"
    elif _status_at(tl, now) in policy.pausing_statuses():
        status, due_out = "paused", None
    else:
        status = "warning" if elapsed >= target * policy.warning_ratio else "running"
    return MetricState(metric, status, target, elapsed, start, stop, due_out, warn_at, breached_at)


def _replies(tl: _Timeline) -> list[datetime]:
    return [e.at for e in tl.events if e.kind == "public_reply_by_agent"]


def _next_response_windows(tl: _Timeline) -> list[tuple[datetime, datetime | None]]:
    """(first unanswered customer message, answering agent reply or None), in order."""
    windows: list[tuple[datetime, datetime | None]] = []
    answered_once = False
    waiting: datetime | None = None
    for e in tl.events:
        if e.kind == "public_reply_by_agent":
            if waiting is not None:
                windows.append((waiting, e.at))
                waiting = None
            answered_once = True
        elif e.kind == "customer_message" and answered_once and waiting is None:
            waiting = e.at
    if waiting is not None:
        windows.append((waiting, None))
    return windows


def _resolution_stop(tl: _Timeline, now: datetime | None) -> datetime | None:
    """The instant of the last solve if the ticket is solved/closed (at ``now``), else None."""
    stop: datetime | None = None
    for e in tl.events:
        if now is not None and e.at > now:
            break
        if e.kind != "status_changed":
            continue
        if e.status not in _DONE:
            stop = None
        elif stop is None:
            stop = e.at
    return stop


def evaluate(
    policy: SlaPolicy,
    priority: str,
    tier: str | None,
    events: Iterable[TicketEvent],
    now: datetime,
) -> SlaState:
    """Every timer's state at ``now``; ``priority`` is the ticket's priority at creation."""
    require_aware("now", now)
    tl = _timeline(policy, priority, events, now)
    replies = _replies(tl)
    first = _metric(
        policy, tl, tier, "first_response", tl.created, replies[0] if replies else None, now
    )
    windows = _next_response_windows(tl)
    current: MetricState | None = None
    last: MetricState | None = None
    if windows and windows[-1][1] is None:
        current = _metric(policy, tl, tier, "next_response", windows[-1][0], None, now)
        windows = windows[:-1]
    if windows:
        last = _metric(policy, tl, tier, "next_response", windows[-1][0], windows[-1][1], now)
    resolution = _metric(policy, tl, tier, "resolution", tl.created, _resolution_stop(tl, now), now)
    return SlaState(
        policy=policy.name,
        priority=_priority_at(tl, now),
        tier=tier,
        first_response=first,
        next_response=current,
        last_next_response=last,
        resolution=resolution,
    )


def first_response_seconds(policy: SlaPolicy, events: Iterable[TicketEvent]) -> float | None:
    """KPI "first response time": business seconds to the first agent reply, pauses excluded."""
    tl = _timeline(policy, "", events, None)
    replies = _replies(tl)
    if not replies:
        return None
    return policy.calendar.elapsed_with_pauses(tl.created, replies[0], tl.pauses)


def resolution_seconds(policy: SlaPolicy, events: Iterable[TicketEvent]) -> float | None:
    """KPI "resolution time": business seconds while unsolved; None unless solved/closed now."""
    tl = _timeline(policy, "", events, None)
    stop = _resolution_stop(tl, None)
    if stop is None:
        return None
    return policy.calendar.elapsed_with_pauses(tl.created, stop, tl.pauses)
