"""SLA timers checked against hand-computed cases (arithmetic in each comment).

Offsets: Berlin CET = UTC+1, CEST = UTC+2 (2026: Sun 29 March 02:00 CET -> 03:00 CEST,
Sun 25 October 03:00 CEST -> 02:00 CET); New York EST = UTC-5, EDT = UTC-4 (2026: Sun 8 March
02:00 EST -> 03:00 EDT, Sun 1 November 02:00 EDT -> 01:00 EST). 2026-01-16 is a Friday,
2026-01-19 a Monday.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from accord.service.calendar import BusinessCalendar
from accord.service.sla import (
    SlaPolicy,
    SlaTargets,
    TicketEvent,
    evaluate,
    first_response_seconds,
    resolution_seconds,
)

H = 3600
M = 60
BERLIN_TZ = ZoneInfo("Europe/Berlin")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")
ALL_DAYS = (*WEEKDAYS, "sat", "sun")


def z(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def cal(tz: str, days: tuple[str, ...], start: str, end: str, holidays: list[str] | None = None):
    return BusinessCalendar.from_spec(
        {"timezone": tz, "hours": {d: [[start, end]] for d in days}, "holidays": holidays or []}
    )


BERLIN = cal("Europe/Berlin", WEEKDAYS, "09:00", "17:00")
BERLIN_24_7 = cal("Europe/Berlin", ALL_DAYS, "00:00", "24:00")
NY_24_7 = cal("America/New_York", ALL_DAYS, "00:00", "24:00")


def policy(calendar: BusinessCalendar = BERLIN, **kw) -> SlaPolicy:
    targets = {
        ("normal", None): SlaTargets(first_response=4 * H, next_response=2 * H, resolution=20 * H),
        ("low", None): SlaTargets(first_response=8 * H),
        ("urgent", None): SlaTargets(first_response=1 * H),
        ("urgent", "enterprise"): SlaTargets(first_response=30 * M),
    }
    return SlaPolicy(name="std", calendar=calendar, targets=targets, **kw)


def created(at: datetime) -> TicketEvent:
    return TicketEvent(at, "created")


def reply(at: datetime) -> TicketEvent:
    return TicketEvent(at, "public_reply_by_agent")


def customer(at: datetime) -> TicketEvent:
    return TicketEvent(at, "customer_message")


def status(at: datetime, value: str) -> TicketEvent:
    return TicketEvent(at, "status_changed", status=value)  # type: ignore[arg-type]


def prio(at: datetime, value: str) -> TicketEvent:
    return TicketEvent(at, "priority_changed", priority=value)


# --- first response across a weekend and a holiday ---------------------------------------------


def test_friday_afternoon_due_monday() -> None:
    # Fri 16:30 CET (15:30Z) + 4 h: 0.5 h Friday, Mon 09:00 + 3.5 h = Mon 12:30 CET = 11:30Z.
    events = [created(z(2026, 1, 16, 15, 30))]
    s = evaluate(policy(), "normal", None, events, now=z(2026, 1, 17, 12))
    fr = s.first_response
    assert fr.status == "running"
    assert fr.target == 4 * H
    assert fr.elapsed == 0.5 * H  # Saturday: only the Friday half hour so far
    assert fr.due == z(2026, 1, 19, 11, 30)
    assert fr.due.astimezone(BERLIN_TZ).replace(tzinfo=None) == datetime(2026, 1, 19, 12, 30)
    # Warning at 80 % = 3.2 h: 0.5 h Friday + 2.7 h = Mon 11:42 CET = 10:42Z.
    assert fr.warn_at == z(2026, 1, 19, 10, 42)


def test_reply_monday_morning_is_met() -> None:
    # Reply Mon 10:00 CET (09:00Z): 0.5 h Friday + 1 h Monday = 1.5 h < 4 h -> met.
    events = [reply(z(2026, 1, 19, 9)), created(z(2026, 1, 16, 15, 30))]  # any order
    s = evaluate(policy(), "normal", None, events, now=z(2026, 1, 20))
    assert s.first_response.status == "met"
    assert s.first_response.elapsed == 1.5 * H
    assert s.first_response.stopped_at == z(2026, 1, 19, 9)
    assert s.first_response.breached_at is None
    assert first_response_seconds(policy(), events) == 1.5 * H


def test_holiday_monday_shifts_due_to_tuesday() -> None:
    # Holiday Mon 19 Jan: 0.5 h Friday, Tue 09:00 + 3.5 h = Tue 12:30 CET = 11:30Z.
    hol = cal("Europe/Berlin", WEEKDAYS, "09:00", "17:00", ["2026-01-19"])
    events = [created(z(2026, 1, 16, 15, 30))]
    s = evaluate(policy(hol), "normal", None, events, now=z(2026, 1, 19, 15))
    assert s.first_response.due == z(2026, 1, 20, 11, 30)
    assert s.first_response.elapsed == 0.5 * H
    assert s.first_response.status == "running"


# --- pauses --------------------------------------------------------------------------------------

# Created Thu 15 Jan 09:00 CET (08:00Z); pending Fri 14:00 CET (13:00Z) -> Mon 11:00 CET (10:00Z);
# pending again Mon 13:00 -> 14:00 CET (12:00Z -> 13:00Z); solved Mon 16:00 CET (15:00Z).
PENDING = [
    created(z(2026, 1, 15, 8)),
    reply(z(2026, 1, 15, 9)),
    status(z(2026, 1, 16, 13), "pending_customer"),
    status(z(2026, 1, 19, 10), "open"),
    status(z(2026, 1, 19, 12), "pending_customer"),
    status(z(2026, 1, 19, 13), "open"),
    status(z(2026, 1, 19, 15), "solved"),
]


def test_pending_over_weekend_pauses_resolution() -> None:
    # Saturday, still pending: Thu 8 h + Fri 09-14 5 h = 13 h; paused, no due.
    s = evaluate(policy(), "normal", None, PENDING[:3], now=z(2026, 1, 17, 12))
    assert s.resolution.status == "paused"
    assert s.resolution.elapsed == 13 * H
    assert s.resolution.due is None
    # Mon 12:00 CET (11:00Z), open again: 13 h + Mon 11-12 1 h = 14 h; 6 h left:
    # Mon 12-17 5 h + Tue 09:00 + 1 h = Tue 10:00 CET = 09:00Z. 80 % of 20 h = 16 h at
    # Mon 11:00 CET (13 h) + 3 h = 14:00 CET = 13:00Z.
    s = evaluate(policy(), "normal", None, PENDING[:4], now=z(2026, 1, 19, 11))
    assert s.resolution.status == "running"
    assert s.resolution.elapsed == 14 * H
    assert s.resolution.due == z(2026, 1, 20, 9)
    assert s.resolution.warn_at == z(2026, 1, 19, 13)


def test_pending_during_hours_and_resolution_total() -> None:
    # 8 h Thu + 5 h Fri + Mon 11-13 2 h + Mon 14-16 2 h = 17 h < 20 h -> met.
    s = evaluate(policy(), "normal", None, PENDING, now=z(2026, 1, 20, 12))
    assert s.resolution.status == "met"
    assert s.resolution.elapsed == 17 * H
    assert s.resolution.stopped_at == z(2026, 1, 19, 15)
    assert s.resolution.breached_at is None
    assert resolution_seconds(policy(), PENDING) == 17 * H
    assert resolution_seconds(policy(), PENDING[:-1]) is None  # not solved: no KPI figure


def test_on_hold_pauses_only_when_configured() -> None:
    # Created Mon 09:00 CET (08:00Z), on hold 10:00-14:00 CET, now 15:00 CET (14:00Z).
    events = [
        created(z(2026, 1, 19, 8)),
        status(z(2026, 1, 19, 9), "on_hold"),
        status(z(2026, 1, 19, 13), "open"),
    ]
    # Default: on_hold counts -> 6 h elapsed.
    assert evaluate(policy(), "normal", None, events, z(2026, 1, 19, 14)).resolution.elapsed == (
        6 * H
    )
    # pause_on_hold: 1 h + 1 h = 2 h; paused while on hold.
    p = policy(pause_on_hold=True)
    assert evaluate(p, "normal", None, events, z(2026, 1, 19, 14)).resolution.elapsed == 2 * H
    assert evaluate(p, "normal", None, events[:2], z(2026, 1, 19, 10)).resolution.status == (
        "paused"
    )


def test_reopened_after_solved_resumes_clock() -> None:
    # Created Mon 09:00 CET, solved 11:00 CET (2 h); reopened Tue 10:00 CET (09:00Z).
    events = [
        created(z(2026, 1, 19, 8)),
        status(z(2026, 1, 19, 10), "solved"),
        status(z(2026, 1, 20, 9), "open"),
        status(z(2026, 1, 20, 12), "solved"),
    ]
    p = SlaPolicy("r", BERLIN, {("normal", None): SlaTargets(resolution=8 * H)})
    # While solved (Mon 15:00 CET): met with 2 h.
    s = evaluate(p, "normal", None, events[:2], z(2026, 1, 19, 14))
    assert (s.resolution.status, s.resolution.elapsed) == ("met", 2 * H)
    assert resolution_seconds(p, events[:2]) == 2 * H
    # Reopened, Tue 11:00 CET (10:00Z): 2 h + 1 h = 3 h; 5 h left -> Tue 16:00 CET = 15:00Z.
    s = evaluate(p, "normal", None, events[:3], z(2026, 1, 20, 10))
    assert (s.resolution.status, s.resolution.elapsed) == ("running", 3 * H)
    assert s.resolution.due == z(2026, 1, 20, 15)
    assert s.resolution.stopped_at is None
    # Solved again Tue 13:00 CET: 2 h + 3 h = 5 h; the solved night is excluded.
    s = evaluate(p, "normal", None, events, z(2026, 1, 21))
    assert (s.resolution.status, s.resolution.elapsed) == ("met", 5 * H)
    assert s.resolution.stopped_at == z(2026, 1, 20, 12)
    assert resolution_seconds(p, events) == 5 * H


def test_solved_then_closed_keeps_solve_instant() -> None:
    # Solved Mon 11:00 CET, closed Wed: resolution stops at the solve, 2 h.
    events = [
        created(z(2026, 1, 19, 8)),
        status(z(2026, 1, 19, 10), "solved"),
        status(z(2026, 1, 21, 10), "closed"),
    ]
    assert resolution_seconds(policy(), events) == 2 * H


# --- priority change, tiers ---------------------------------------------------------------------


def test_targets_for_fallbacks() -> None:
    p = policy()
    assert p.targets_for("urgent", "enterprise").first_response == 30 * M  # exact
    assert p.targets_for("urgent", "standard").first_response == 1 * H  # priority, any tier
    assert p.targets_for("unknown", None) == SlaTargets()  # policy default
    d = SlaPolicy("d", BERLIN, default=SlaTargets(first_response=2 * H))
    assert d.targets_for("whatever", "x").first_response == 2 * H


def test_enterprise_tier_gets_its_own_target() -> None:
    # Urgent enterprise: 30 min from Mon 09:00 CET -> 09:30 CET = 08:30Z.
    s = evaluate(policy(), "urgent", "enterprise", [created(z(2026, 1, 19, 8))], z(2026, 1, 19, 8))
    assert s.first_response.due == z(2026, 1, 19, 8, 30)
    assert s.tier == "enterprise"


def test_priority_raise_recomputes_due_from_start() -> None:
    # Low (8 h) created Mon 09:00 CET; raised to urgent (1 h) at 09:30 CET.
    # Due = created + 1 h = 10:00 CET = 09:00Z; now 09:45 CET: 45 min of 60 = 75 % -> running.
    events = [created(z(2026, 1, 19, 8)), prio(z(2026, 1, 19, 8, 30), "urgent")]
    s = evaluate(policy(), "low", None, events, z(2026, 1, 19, 8, 45))
    assert s.priority == "urgent"
    assert s.first_response.target == 1 * H
    assert s.first_response.due == z(2026, 1, 19, 9)
    assert s.first_response.status == "running"
    # Raised only at 11:00 CET (2 h elapsed): breached at once, breached_at in the past (10:00).
    late = [created(z(2026, 1, 19, 8)), prio(z(2026, 1, 19, 10), "urgent")]
    s = evaluate(policy(), "low", None, late, z(2026, 1, 19, 10))
    assert s.first_response.status == "breached"
    assert s.first_response.breached_at == z(2026, 1, 19, 9)


def test_priority_change_after_completion_keeps_old_target() -> None:
    # Reply 10:30 CET (1.5 h) under low (8 h) -> met; raising to urgent afterwards changes nothing.
    events = [
        created(z(2026, 1, 19, 8)),
        reply(z(2026, 1, 19, 9, 30)),
        prio(z(2026, 1, 19, 10), "urgent"),
    ]
    s = evaluate(policy(), "low", None, events, z(2026, 1, 19, 11))
    assert (s.first_response.status, s.first_response.target) == ("met", 8 * H)


# --- warning and breach boundary ----------------------------------------------------------------


def test_warning_at_eighty_percent_and_configurable() -> None:
    # 4 h from Mon 09:00 CET (08:00Z); 80 % = 3 h 12 min -> 12:12 CET = 11:12Z.
    events = [created(z(2026, 1, 19, 8))]
    before = evaluate(policy(), "normal", None, events, z(2026, 1, 19, 11, 11))
    assert before.first_response.status == "running"
    at = evaluate(policy(), "normal", None, events, z(2026, 1, 19, 11, 12))
    assert at.first_response.status == "warning"
    assert at.first_response.warn_at == z(2026, 1, 19, 11, 12)
    # Ratio 0.5: 2 h -> 11:00 CET = 10:00Z.
    half = evaluate(policy(warning_ratio=0.5), "normal", None, events, z(2026, 1, 19, 10))
    assert half.first_response.status == "warning"
    assert half.first_response.warn_at == z(2026, 1, 19, 10)


def test_breach_exactly_at_due() -> None:
    # Due Mon 13:00 CET = 12:00Z. At the due instant: breached; one second before: warning.
    events = [created(z(2026, 1, 19, 8))]
    due = z(2026, 1, 19, 12)
    s = evaluate(policy(), "normal", None, events, due - timedelta(seconds=1))
    assert s.first_response.status == "warning"
    assert s.first_response.breached_at is None
    s = evaluate(policy(), "normal", None, events, due)
    assert s.first_response.status == "breached"
    assert s.first_response.breached_at == due
    # A reply at the due instant is breached; a second earlier it is met.
    s = evaluate(policy(), "normal", None, [*events, reply(due)], due)
    assert (s.first_response.status, s.first_response.breached_at) == ("breached", due)
    early = reply(due - timedelta(seconds=1))
    assert evaluate(policy(), "normal", None, [*events, early], due).first_response.status == "met"


def test_breached_stays_breached_while_paused() -> None:
    # 4 h used by 13:00 CET; pending from 14:00 CET: still breached, breached_at 13:00 CET.
    events = [created(z(2026, 1, 19, 8)), status(z(2026, 1, 19, 13), "pending_customer")]
    s = evaluate(policy(), "normal", None, events, z(2026, 1, 19, 15))
    assert s.first_response.status == "breached"
    assert s.first_response.breached_at == z(2026, 1, 19, 12)
    assert s.first_response.elapsed == 5 * H


def test_not_applicable_without_target() -> None:
    # Low has no resolution target: not_applicable but elapsed is still reported (1 h).
    s = evaluate(policy(), "low", None, [created(z(2026, 1, 19, 8))], z(2026, 1, 19, 9))
    assert s.resolution.status == "not_applicable"
    assert s.resolution.due is None
    assert s.resolution.elapsed == 1 * H


# --- next response ------------------------------------------------------------------------------


def test_next_response_current_and_last() -> None:
    # Mon (CET): created 09:00, customer 09:10 (before first response: ignored), reply 09:30,
    # customer 10:00 and 10:30, reply 11:00 -> completed 1 h (from 10:00) < 2 h: met.
    # Customer 13:00, now 14:00 -> running 1 h, due 13:00 + 2 h = 15:00 CET = 14:00Z.
    events = [
        created(z(2026, 1, 19, 8)),
        customer(z(2026, 1, 19, 8, 10)),
        reply(z(2026, 1, 19, 8, 30)),
        customer(z(2026, 1, 19, 9)),
        customer(z(2026, 1, 19, 9, 30)),
        reply(z(2026, 1, 19, 10)),
        customer(z(2026, 1, 19, 12)),
    ]
    s = evaluate(policy(), "normal", None, events, z(2026, 1, 19, 13))
    assert s.last_next_response is not None and s.next_response is not None
    assert s.last_next_response.status == "met"
    assert s.last_next_response.elapsed == 1 * H
    assert s.last_next_response.started_at == z(2026, 1, 19, 9)
    assert s.next_response.status == "running"
    assert s.next_response.elapsed == 1 * H
    assert s.next_response.due == z(2026, 1, 19, 14)
    # Nothing waiting after the first reply alone: no timers.
    s = evaluate(policy(), "normal", None, events[:3], z(2026, 1, 19, 13))
    assert s.next_response is None and s.last_next_response is None


def test_next_response_over_weekend() -> None:
    # Customer Fri 16:30 CET (15:30Z): 0.5 h Fri + 1.5 h Mon -> due Mon 10:30 CET = 09:30Z.
    events = [
        created(z(2026, 1, 16, 8)),
        reply(z(2026, 1, 16, 9)),
        customer(z(2026, 1, 16, 15, 30)),
    ]
    s = evaluate(policy(), "normal", None, events, z(2026, 1, 18))
    assert s.next_response is not None
    assert s.next_response.due == z(2026, 1, 19, 9, 30)
    assert s.next_response.elapsed == 0.5 * H


# --- daylight saving ----------------------------------------------------------------------------

FR_24 = {("normal", None): SlaTargets(first_response=24 * H)}


@pytest.mark.parametrize(
    ("calendar", "start", "due", "local_due"),
    [
        # Berlin spring forward: Sat 28 Mar 12:00 CET = 11:00Z; + 24 h real = Sun 11:00Z =
        # 13:00 CEST (the wall clock moved 25 h).
        (BERLIN_24_7, z(2026, 3, 28, 11), z(2026, 3, 29, 11), datetime(2026, 3, 29, 13)),
        # Berlin fall back: Sat 24 Oct 12:00 CEST = 10:00Z; + 24 h = Sun 10:00Z = 11:00 CET.
        (BERLIN_24_7, z(2026, 10, 24, 10), z(2026, 10, 25, 10), datetime(2026, 10, 25, 11)),
        # New York spring forward: Sat 7 Mar 12:00 EST = 17:00Z; + 24 h = 13:00 EDT.
        (NY_24_7, z(2026, 3, 7, 17), z(2026, 3, 8, 17), datetime(2026, 3, 8, 13)),
        # New York fall back: Sat 31 Oct 12:00 EDT = 16:00Z; + 24 h = Sun 1 Nov 11:00 EST.
        (NY_24_7, z(2026, 10, 31, 16), z(2026, 11, 1, 16), datetime(2026, 11, 1, 11)),
    ],
)
def test_dst_24_7_counts_real_seconds(
    calendar: BusinessCalendar, start: datetime, due: datetime, local_due: datetime
) -> None:
    p = SlaPolicy("dst", calendar, FR_24)
    s = evaluate(p, "normal", None, [created(start)], start + timedelta(hours=1))
    assert s.first_response.due == due
    local = s.first_response.due.astimezone(ZoneInfo(calendar.tz)).replace(tzinfo=None)
    assert local == local_due
    # A reply at the due instant used exactly 24 real hours.
    done = evaluate(p, "normal", None, [created(start), reply(due)], due)
    assert done.first_response.elapsed == 24 * H
    assert done.first_response.status == "breached"


def test_dst_weekend_changes_nothing_with_office_hours() -> None:
    # Fri 27 Mar 16:00 CET (15:00Z) + 2 h: 1 h Fri, Mon 30 Mar 09:00 CEST + 1 h = 10:00 CEST
    # = 08:00Z (the weekend's clock change is outside hours).
    p = SlaPolicy("o", BERLIN, {("normal", None): SlaTargets(first_response=2 * H)})
    s = evaluate(p, "normal", None, [created(z(2026, 3, 27, 15))], z(2026, 3, 28))
    assert s.first_response.due == z(2026, 3, 30, 8)
    # Same for fall back: Fri 23 Oct 16:00 CEST (14:00Z) -> Mon 26 Oct 10:00 CET = 09:00Z.
    s = evaluate(p, "normal", None, [created(z(2026, 10, 23, 14))], z(2026, 10, 24))
    assert s.first_response.due == z(2026, 10, 26, 9)
    reply_at = z(2026, 10, 26, 9)
    assert first_response_seconds(p, [created(z(2026, 10, 23, 14)), reply(reply_at)]) == 2 * H


# --- input validation ---------------------------------------------------------------------------


def test_naive_datetimes_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        TicketEvent(datetime(2026, 1, 19, 9), "created")
    with pytest.raises(ValueError, match="timezone-aware"):
        evaluate(policy(), "normal", None, [created(z(2026, 1, 19, 8))], datetime(2026, 1, 19))


def test_event_before_created_refused() -> None:
    events = [created(z(2026, 1, 19, 8)), reply(z(2026, 1, 19, 7))]
    with pytest.raises(ValueError, match="before 'created'"):
        evaluate(policy(), "normal", None, events, z(2026, 1, 19, 9))
    with pytest.raises(ValueError, match="before 'created'"):
        first_response_seconds(policy(), events)


def test_timeline_shape_refused() -> None:
    with pytest.raises(ValueError, match="exactly one 'created'"):
        evaluate(policy(), "normal", None, [reply(z(2026, 1, 19, 8))], z(2026, 1, 19, 9))
    with pytest.raises(ValueError, match="after now"):
        evaluate(
            policy(),
            "normal",
            None,
            [created(z(2026, 1, 19, 8)), reply(z(2026, 1, 19, 10))],
            z(2026, 1, 19, 9),
        )
    with pytest.raises(ValueError, match="needs a status"):
        TicketEvent(z(2026, 1, 19), "status_changed", status="waiting")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs a priority"):
        TicketEvent(z(2026, 1, 19), "priority_changed")
    with pytest.raises(ValueError, match="unknown"):
        TicketEvent(z(2026, 1, 19), "deleted")  # type: ignore[arg-type]


def test_policy_validation() -> None:
    with pytest.raises(ValueError, match="first_response"):
        SlaTargets(first_response=0)
    with pytest.raises(ValueError, match="warning_ratio"):
        SlaPolicy("x", BERLIN, warning_ratio=1.5)
