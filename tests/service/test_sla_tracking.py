"""SLA timers stored on tickets, checked against hand-computed business times.

Calendar "berlin": Europe/Berlin, Mon-Fri 09:00-17:00, holiday Mon 2026-03-30. Offsets:
CET = UTC+1 until Sun 2026-03-29 02:00, then CEST = UTC+2 until Sun 2026-10-25 03:00, then CET.
2026-03-27 and 2026-10-23 are Fridays. Policy "std" (normal): first response 240 min, next
response 120 min, resolution 960 min, warning at 0.8.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from accord.models import Customer, Team, User
from accord.models.analytics_scores import CustomerScore
from accord.models.service import BusinessCalendar as CalendarRow
from accord.models.service import SlaPolicy as PolicyRow
from accord.models.service import SlaTarget, Ticket, TicketEvent
from accord.service import sla_tracking
from accord.service.calendar import ALWAYS

H = 3600


def z(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- helpers (shared with the other service tests) ----------------------------------------------


def make_team(s: Any, name: str = "Support") -> int:
    team = s.scalars(select(Team).where(Team.name == name)).first()
    if team is None:
        team = Team(name=name)
        s.add(team)
        s.flush()
    return team.id


def make_user(s: Any, role: str = "support", team_id: int | None = None,
              active: bool = True) -> User:
    """A user row without the password hashing of the API fixtures (fast)."""
    n = s.scalar(select(func.count(User.id))) + 1
    user = User(email=f"{role}{n}@example.com", full_name=f"{role.title()} {n}",
                password_hash="-", role=role, team_id=team_id, is_active=active)
    s.add(user)
    s.flush()
    return user


def make_calendar(s: Any, team_id: int | None = None, name: str = "berlin",
                  holidays: tuple[str, ...] = ("2026-03-30",)) -> CalendarRow:
    row = CalendarRow(name=name, team_id=team_id, timezone="Europe/Berlin",
                      hours={d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
                      holidays=list(holidays))
    s.add(row)
    s.flush()
    return row


def make_policy(s: Any, name: str = "std", *, team_id: int | None = None, is_default: bool = True,
                targets: tuple[tuple[str, str | None, int | None, int | None, int | None], ...] = (
                    ("normal", None, 240, 120, 960),), **kw: Any) -> PolicyRow:
    row = PolicyRow(name=name, team_id=team_id, is_default=is_default, **kw)
    s.add(row)
    s.flush()
    for priority, tier, first, nxt, res in targets:
        s.add(SlaTarget(policy_id=row.id, priority=priority, tier=tier,
                        first_response_minutes=first, next_response_minutes=nxt,
                        resolution_minutes=res))
    s.flush()
    return row


def make_customer(s: Any, tier: str | None = None, *, churn: float | None = None,
                  at_risk: bool = False, score: bool = True) -> int:
    c = Customer(display_name="Ada Lovelace", first_name="Ada", last_name="Lovelace",
                 name_key="lovelace ada", name_key_alt="ada lovelace")
    s.add(c)
    s.flush()
    if score:
        s.add(CustomerScore(customer_id=c.id, value_tier=tier, churn_risk=churn,
                            at_risk_valuable=at_risk, run_id="t"))
        s.flush()
    return c.id


def make_ticket(s: Any, at: datetime, *, priority: str = "normal", team_id: int | None = None,
                customer_id: int | None = None, **kw: Any) -> Ticket:
    t = Ticket(subject="Broken", channel="email", priority=priority, team_id=team_id,
               customer_id=customer_id, created_at=at, updated_at=at, **kw)
    s.add(t)
    s.flush()
    s.add(TicketEvent(ticket_id=t.id, at=at, kind="created", priority=priority))
    s.flush()
    return t


def add(s: Any, t: Ticket, kind: str, at: datetime, *, status: str | None = None,
        priority: str | None = None, data: dict[str, Any] | None = None) -> None:
    s.add(TicketEvent(ticket_id=t.id, at=at, kind=kind, status=status, priority=priority,
                      data=data or {}))
    if status is not None:
        t.status = status
    if priority is not None:
        t.priority = priority
    s.flush()


# --- the stored fields through a whole life -----------------------------------------------------


def test_create_reply_pending_customer_reply_solve_across_spring_dst(session):
    s = session
    make_calendar(s)
    make_policy(s)
    # Fri 2026-03-27 15:00 UTC = 16:00 CET: one business hour left that day
    t = make_ticket(s, z(2026, 3, 27, 15, 0))

    state = sla_tracking.refresh(s, t, now=z(2026, 3, 27, 15, 30))
    assert state is not None and state.policy == "std"
    assert t.sla_policy_id is not None
    assert t.sla_state == "running"
    # 4 h = 1 h Fri + (Mon holiday) 3 h Tue from 09:00 CEST = 07:00 UTC -> 10:00 UTC
    assert t.first_response_due_at == z(2026, 3, 31, 10, 0)
    # 3.2 h = 1 h Fri + 2 h 12 min Tue -> 09:12 UTC
    assert t.warn_at == z(2026, 3, 31, 9, 12)
    # 16 h = 1 h Fri + 8 h Tue + 7 h Wed (07:00 UTC + 7 h)
    assert t.resolution_due_at == z(2026, 4, 1, 14, 0)
    assert t.due_at == t.first_response_due_at
    assert t.next_response_due_at is None
    assert t.first_response_seconds is None and t.first_responded_at is None
    assert t.sla_checked_at == z(2026, 3, 27, 15, 30)

    # Tue 08:00 UTC (10:00 CEST): public reply and pending the customer
    add(s, t, "public_reply_by_agent", z(2026, 3, 31, 8, 0))
    add(s, t, "status_changed", z(2026, 3, 31, 8, 0), status="pending_customer")
    sla_tracking.refresh(s, t, now=z(2026, 3, 31, 8, 0))
    assert t.first_response_seconds == 2 * H  # 1 h Fri + 1 h Tue
    assert t.first_responded_at == z(2026, 3, 31, 8, 0)
    assert t.sla_state == "paused"
    assert t.resolution_due_at is None and t.due_at is None and t.warn_at is None

    # Wed 09:00 UTC (11:00 CEST): the customer answers, the ticket reopens
    add(s, t, "customer_message", z(2026, 4, 1, 9, 0))
    add(s, t, "status_changed", z(2026, 4, 1, 9, 0), status="open")
    sla_tracking.refresh(s, t, now=z(2026, 4, 1, 9, 0))
    assert t.sla_state == "running"
    assert t.next_response_due_at == z(2026, 4, 1, 11, 0)  # 2 h
    # resolution: 2 h used, 14 h left: Wed 11:00-17:00 CEST (6 h) + Thu 8 h -> 17:00 CEST
    assert t.resolution_due_at == z(2026, 4, 2, 15, 0)
    assert t.due_at == z(2026, 4, 1, 11, 0)
    assert t.warn_at == z(2026, 4, 1, 10, 36)  # next response: 0.8 x 2 h = 96 min

    add(s, t, "public_reply_by_agent", z(2026, 4, 1, 10, 0))
    sla_tracking.refresh(s, t, now=z(2026, 4, 1, 10, 0))
    assert t.next_response_due_at is None
    assert t.due_at == z(2026, 4, 2, 15, 0)
    assert t.warn_at == z(2026, 4, 2, 11, 48)  # 12.8 h: 2 + 6 + Thu 4.8 h (07:00 + 4:48)

    # Thu 08:00 UTC (10:00 CEST): solved
    add(s, t, "status_changed", z(2026, 4, 2, 8, 0), status="solved")
    sla_tracking.refresh(s, t, now=z(2026, 4, 2, 8, 0))
    assert t.resolution_seconds == 9 * H  # 2 h + Wed 6 h + Thu 1 h
    assert t.first_response_seconds == 2 * H
    assert t.sla_state == "met"
    assert t.due_at is None and t.warn_at is None


def test_autumn_dst_and_late_reply_is_breached(session):
    s = session
    make_calendar(s)
    make_policy(s)
    # Fri 2026-10-23 14:00 UTC = 16:00 CEST; Mon 26 Oct is CET (09:00 = 08:00 UTC)
    t = make_ticket(s, z(2026, 10, 23, 14, 0))
    sla_tracking.refresh(s, t, now=z(2026, 10, 23, 14, 0))
    assert t.first_response_due_at == z(2026, 10, 26, 11, 0)  # 1 h Fri + 3 h Mon
    # Mon 12:00 UTC: still unanswered, past due
    sla_tracking.refresh(s, t, now=z(2026, 10, 26, 12, 0))
    assert t.sla_state == "breached"
    assert t.due_at == z(2026, 10, 26, 11, 0)
    add(s, t, "public_reply_by_agent", z(2026, 10, 26, 12, 0))
    sla_tracking.refresh(s, t, now=z(2026, 10, 26, 12, 0))
    assert t.first_response_seconds == 5 * H
    # the first response finished breached; resolution still runs: the ticket shows running
    assert t.sla_state == "running"
    views = {v.metric: v for v in sla_tracking.timers(s, t, now=z(2026, 10, 26, 12, 0)).timers}
    assert views["first_response"].status == "breached"
    assert views["first_response"].remaining_seconds == -1 * H
    assert views["resolution"].status == "running"
    assert views["resolution"].remaining_seconds == 16 * H - 5 * H


def test_priority_and_tier_pick_targets_and_team_policy_wins(session):
    s = session
    team = make_team(s)
    make_policy(s, "default", targets=(("normal", None, 600, None, None),))
    make_policy(s, "team", team_id=team, is_default=False, targets=(
        ("normal", None, 240, None, None), ("normal", "platinum", 60, None, None),
        ("high", None, 120, None, None)))
    vip = make_customer(s, "platinum")
    start = z(2026, 1, 5, 10, 0)  # no calendar rows: round the clock
    plain = make_ticket(s, start, team_id=team)
    special = make_ticket(s, start, team_id=team, customer_id=vip)
    other = make_ticket(s, start)
    for t in (plain, special, other):
        sla_tracking.refresh(s, t, now=start)
    assert plain.first_response_due_at == z(2026, 1, 5, 14, 0)
    assert special.first_response_due_at == z(2026, 1, 5, 11, 0)
    assert other.first_response_due_at == z(2026, 1, 5, 20, 0)  # the default policy
    assert sla_tracking.timers(s, special, now=start).tier == "platinum"
    # a raised priority measures the running timer from its start with the new target
    add(s, plain, "priority_changed", z(2026, 1, 5, 10, 30), priority="high")
    sla_tracking.refresh(s, plain, now=z(2026, 1, 5, 10, 30))
    assert plain.first_response_due_at == z(2026, 1, 5, 12, 0)
    # no target for resolution: not applicable, nothing due for it
    assert plain.resolution_due_at is None


def test_no_policy_still_measures_kpis_and_state_none(session):
    s = session
    start = z(2026, 1, 5, 10, 0)
    t = make_ticket(s, start)
    assert sla_tracking.refresh(s, t, now=start) is None
    assert t.sla_state == "none" and t.due_at is None and t.sla_policy_id is None
    add(s, t, "public_reply_by_agent", z(2026, 1, 5, 10, 45))
    sla_tracking.refresh(s, t, now=z(2026, 1, 5, 11, 0))
    assert t.first_response_seconds == 45 * 60
    assert sla_tracking.policy_for(s, t) is None
    assert sla_tracking.timers(s, t, now=z(2026, 1, 5, 11, 0)).timers == []


def test_calendar_choice_team_then_default_then_always(session):
    s = session
    team = make_team(s)
    assert sla_tracking.calendar_for(s, team) is ALWAYS
    make_calendar(s, None, "default", holidays=())
    assert sla_tracking.calendar_for(s, team).tz == "Europe/Berlin"
    own = CalendarRow(name="ny", team_id=team, timezone="America/New_York",
                      hours={"mon": [["09:00", "17:00"]]}, holidays=[])
    s.add(own)
    s.flush()
    assert sla_tracking.calendar_for(s, team).tz == "America/New_York"
    assert sla_tracking.calendar_for(s, None).tz == "Europe/Berlin"


def test_pinned_policy_is_kept_and_missing_created_event_is_tolerated(session):
    s = session
    first = make_policy(s, "first", targets=(("normal", None, 60, None, None),))
    start = z(2026, 1, 5, 10, 0)
    t = Ticket(subject="Imported", channel="email", priority="normal", created_at=start,
               updated_at=start)
    s.add(t)
    s.flush()
    sla_tracking.refresh(s, t, now=start)  # no created event: the ticket's created_at counts
    assert t.sla_policy_id == first.id
    assert t.first_response_due_at == z(2026, 1, 5, 11, 0)
    first.is_default = False
    make_policy(s, "second", targets=(("normal", None, 30, None, None),))
    sla_tracking.refresh(s, t, now=start)
    assert t.first_response_due_at == z(2026, 1, 5, 11, 0)  # still measured by "first"


@pytest.mark.parametrize("kind", ["sla_warning", "sla_breached"])
def test_recorded_instances_drop_out_of_warn_at(session, kind):
    s = session
    make_policy(s, targets=(("normal", None, 100, None, None),))
    start = z(2026, 1, 5, 10, 0)
    t = make_ticket(s, start)
    sla_tracking.refresh(s, t, now=start)
    assert t.warn_at == z(2026, 1, 5, 11, 20)
    add(s, t, kind, z(2026, 1, 5, 11, 20), data={
        "metric": "first_response", "started_at": start.isoformat()})
    sla_tracking.refresh(s, t, now=z(2026, 1, 5, 11, 20))
    assert t.warn_at == (z(2026, 1, 5, 11, 40) if kind == "sla_warning" else None)


@pytest.fixture
def desk(session: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, dict[str, datetime]]:
    """The Berlin calendar, the default policy, an admin agent and a clock the tickets and
    SLA modules both read (set `clock["now"]` to move time)."""
    from accord.access.policy import Principal
    from accord.service import tickets

    make_calendar(session)
    make_policy(session)
    admin = make_user(session, "admin")
    agent = Principal(user_id=admin.id, email=admin.email, role="admin")
    clock = {"now": z(2026, 1, 1, 0, 0)}
    monkeypatch.setattr(tickets, "utcnow", lambda: clock["now"])
    monkeypatch.setattr(sla_tracking, "utcnow", lambda: clock["now"])
    return agent, clock


def test_the_same_life_through_the_tickets_module(session, desk):
    """The ticket workflow records the events and refreshes the timers at each step."""
    from accord.service import tickets

    s = session
    agent, clock = desk
    clock["now"] = z(2026, 3, 27, 15, 0)

    t = tickets.create_ticket(s, tickets.system_principal("email"), subject="Late parcel",
                              channel="email", body_text="Where is my parcel?",
                              requester_email="ann@example.com", at=clock["now"])
    assert (t.sla_state, t.first_response_due_at) == ("running", z(2026, 3, 31, 10, 0))
    clock["now"] = z(2026, 3, 31, 8, 0)
    tickets.reply(s, agent, t.id, body_text="Checking with the carrier.",
                  status="pending_customer")
    assert (t.first_response_seconds, t.sla_state, t.due_at) == (2 * H, "paused", None)
    clock["now"] = z(2026, 4, 1, 9, 0)
    tickets.add_customer_message(s, t, body_text="Any news?", channel="email")
    assert t.status == "open"
    assert (t.next_response_due_at, t.resolution_due_at) == (z(2026, 4, 1, 11, 0),
                                                              z(2026, 4, 2, 15, 0))
    clock["now"] = z(2026, 4, 1, 10, 0)
    tickets.reply(s, agent, t.id, body_text="It arrives tomorrow.")
    assert t.next_response_due_at is None and t.due_at == z(2026, 4, 2, 15, 0)
    clock["now"] = z(2026, 4, 2, 8, 0)
    tickets.reply(s, agent, t.id, body_text="Delivered.", status="solved")
    assert (t.resolution_seconds, t.sla_state, t.sla_checked_at) == (9 * H, "met", clock["now"])


def test_an_auto_reply_starts_no_next_response_timer(session, desk):
    """An out-of-office after the agent's answer is not a customer waiting for us."""
    from accord.service import tickets

    s = session
    agent, clock = desk
    clock["now"] = z(2026, 4, 1, 8, 0)
    t = tickets.create_ticket(s, tickets.system_principal("email"), subject="Zip broken",
                              channel="email", body_text="The zip broke.",
                              requester_email="ann@example.com", at=clock["now"])
    clock["now"] = z(2026, 4, 1, 9, 0)
    tickets.reply(s, agent, t.id, body_text="Sorry! Photos please.")
    clock["now"] = z(2026, 4, 1, 9, 5)
    tickets.add_customer_message(s, t, body_text="I am out of the office until Monday.",
                                 channel="email", is_auto_reply=True)
    assert t.next_response_due_at is None and t.status == "open"
    kinds = list(s.scalars(select(TicketEvent.kind).where(TicketEvent.ticket_id == t.id)))
    assert "auto_reply" in kinds and kinds.count("customer_message") == 0
    clock["now"] = z(2026, 4, 1, 10, 0)
    tickets.add_customer_message(s, t, body_text="Here are the photos.", channel="email")
    assert t.next_response_due_at == z(2026, 4, 1, 12, 0)  # 2 h from the real message
