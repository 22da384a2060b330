"""Ticket routing: rule matching, round robin (even, skipping the unavailable and the full,
safe against a concurrent claim), least loaded, skills and languages, team queues, and manual
reassignment."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select, update

from accord.access.policy import Principal
from accord.core.errors import Forbidden, ValidationProblem
from accord.models import Notification
from accord.models.service import RoutingRule, ServiceAgent, Ticket, TicketEvent
from accord.service import routing, tickets
from tests.service.test_sla_tracking import make_team, make_user


def agent(s: Any, team: int, role: str = "support", **kw: Any) -> int:
    user = make_user(s, role, team, active=kw.pop("active", True))
    s.add(ServiceAgent(user_id=user.id, **kw))
    s.flush()
    return user.id


def rule(s: Any, team: int | None, method: str = "round_robin", position: int = 0,
         **kw: Any) -> RoutingRule:
    row = RoutingRule(name=f"r{position}-{method}", team_id=team, method=method,
                      position=position, **kw)
    s.add(row)
    s.flush()
    return row


def new(s: Any, n: int = 0, **kw: Any) -> Ticket:
    return tickets.create_ticket(
        s, tickets.system_principal(kw.pop("channel", "email")), subject=f"Help {n}",
        channel="email", body_text="Hello, a question.", requester_email=f"c{n}@example.com",
        **kw)


def test_round_robin_distributes_evenly_in_turn(session):
    s = session
    team = make_team(s)
    ids = [agent(s, team) for _ in range(3)]
    r = rule(s, team)
    got = [new(s, i).assignee_id for i in range(9)]
    assert got == ids * 3
    t = s.scalars(select(Ticket).order_by(Ticket.id)).first()
    assert t.team_id == team and t.routing_rule_id == r.id
    [event] = s.scalars(select(TicketEvent).where(TicketEvent.ticket_id == t.id,
                                                  TicketEvent.kind == "assigned")).all()
    assert event.data["rule_id"] == r.id and event.data["method"] == "round_robin"
    assert event.data["assignee_id"] == ids[0]


def test_round_robin_skips_unavailable_inactive_other_roles_and_full_agents(session):
    s = session
    team = make_team(s)
    a = agent(s, team)
    agent(s, team, available=False)
    agent(s, team, active=False)
    agent(s, team, role="sales")
    full = agent(s, team, max_open_tickets=1)
    manager = agent(s, team, role="manager")
    rule(s, team)
    got = [new(s, i).assignee_id for i in range(5)]
    # `full` takes one ticket, then holds its maximum and is passed over
    assert got == [a, full, manager, a, manager]
    # solving frees the place
    first_of_full = s.scalars(select(Ticket).where(Ticket.assignee_id == full)).one()
    first_of_full.status = "solved"
    s.flush()
    assert new(s, 9).assignee_id == full


def test_nobody_available_leaves_the_ticket_in_the_team_queue(session):
    s = session
    team = make_team(s)
    agent(s, team, available=False)
    rule(s, team)
    t = new(s)
    assert t.team_id == team and t.assignee_id is None


def test_least_loaded_takes_the_agent_with_fewest_open_tickets(session):
    s = session
    team = make_team(s)
    busy, quiet = agent(s, team), agent(s, team)
    rule(s, team, "team_queue", position=0, category="seed")
    for i in range(2):
        t = new(s, i, category="seed")
        t.assignee_id = busy
    s.flush()
    rule(s, team, "least_loaded", position=1)
    got = [new(s, 10 + i).assignee_id for i in range(4)]
    # quiet (0) then quiet (1, busy has 2), then both at 2: the least recently assigned, busy
    assert got == [quiet, quiet, busy, quiet]


def test_required_skill_and_language(session):
    s = session
    team = make_team(s)
    agent(s, team, skills=["returns"])
    billing = agent(s, team, skills=["Billing", "returns"], languages=["de", "en"])
    any_language = agent(s, team, skills=["billing"])
    rule(s, team, required_skill="billing", category="invoices")
    assert new(s, 1, category="Invoices", language="de-AT").assignee_id == billing
    assert new(s, 2, category="invoices", language="fr").assignee_id == any_language


def test_first_matching_rule_by_position_and_criteria(session):
    s = session
    sales_team, vip_team = make_team(s, "Sales desk"), make_team(s, "VIP")
    agent(s, sales_team)
    vip = agent(s, vip_team)
    rule(s, vip_team, position=5, priority="urgent")
    rule(s, sales_team, "team_queue", position=1, category="quote", channel="email")
    rule(s, None, position=9, language="xx")  # never matches below
    assert new(s, 1, priority="urgent").assignee_id == vip
    quote = new(s, 2, category="quote", priority="urgent")  # position 1 wins over 5
    assert (quote.team_id, quote.assignee_id) == (sales_team, None)
    other = new(s, 3)
    assert (other.team_id, other.assignee_id, other.routing_rule_id) == (None, None, None)
    assert s.scalars(select(TicketEvent).where(TicketEvent.ticket_id == other.id,
                                               TicketEvent.kind == "assigned")).all() == []


def test_claim_is_guarded_against_a_concurrent_turn(session):
    s = session
    team = make_team(s)
    first, second = agent(s, team), agent(s, team)
    pool = routing.candidates(s, team, None, None)
    stale = next(a for a, _ in pool if a.user_id == first)
    # another transaction takes first's turn after we read it
    s.execute(update(ServiceAgent).where(ServiceAgent.user_id == first)
              .values(last_assigned_at=routing.utcnow())
              .execution_options(synchronize_session=False))
    assert routing._claim(s, stale, None) is False
    assert routing.choose_agent(s, team, "round_robin", None, None) == second


def test_manual_reassignment(session):
    s = session
    team, other_team = make_team(s), make_team(s, "Other")
    a, b = agent(s, team), agent(s, other_team)
    rule(s, team)
    t = new(s)
    assert t.assignee_id == a
    manager = make_user(s, "manager", team)
    boss = Principal(user_id=manager.id, email=manager.email, role="manager", team_id=team)
    with pytest.raises(Forbidden):  # a team-scoped role stays within its team
        routing.reassign(s, boss, t.id, assignee_id=b, team_id=None)
    admin = make_user(s, "admin")
    root = Principal(user_id=admin.id, email=admin.email, role="admin")
    inactive = make_user(s, "support", team, active=False)
    with pytest.raises(ValidationProblem) as err:
        routing.reassign(s, root, t.id, assignee_id=inactive.id, team_id=None)
    assert err.value.field == "assignee_id"
    routing.reassign(s, root, t.id, assignee_id=b, team_id=None, note="knows the product")
    assert (t.assignee_id, t.team_id) == (b, other_team)
    event = s.scalars(select(TicketEvent).where(TicketEvent.ticket_id == t.id,
                                                TicketEvent.kind == "assigned")
                      .order_by(TicketEvent.id.desc())).first()
    assert event.data["method"] == "manual" and event.data["from"]["assignee_id"] == a
    assert s.scalars(select(Notification).where(Notification.user_id == b)).one().link == (
        f"/service/tickets/{t.id}")
