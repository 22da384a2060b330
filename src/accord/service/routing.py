"""Ticket routing: which team and agent a new ticket goes to, and manual reassignment.

The first active `routing_rules` row (by `position`, then id) whose criteria all hold decides;
a criterion left NULL matches anything (category and language compare case-insensitively,
language on its primary subtag: a rule for ``de`` takes ``de-AT``). The rule names the team
(a ticket that already has a team keeps it) and how an agent is chosen:

* candidates are the team's `service_agents` that are available, whose user is active with
  role ``support`` or ``manager``, that have the rule's `required_skill` (case-insensitive),
  speak the ticket's language (an agent listing no languages takes any) and hold fewer open
  tickets than their `max_open_tickets`;
* ``round_robin``: the candidate assigned least recently (`last_assigned_at`, never first,
  ties by id). Claiming an agent is a guarded UPDATE (``WHERE last_assigned_at = <as read>``),
  so two tickets routed at once never both take the same turn: the loser re-reads and moves on;
* ``least_loaded``: the fewest open tickets, ties by least recently assigned, then id;
* ``team_queue``: no agent; the ticket waits in the team's queue.

No candidate (everyone away or full) also leaves the ticket in the team's queue. No matching
rule leaves it where it is (the default queue when it has no team). A routed ticket gets an
``assigned`` event with ``{rule_id, method, team_id, assignee_id}``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from accord.access import audit
from accord.access.policy import Principal, record_in_scope, scope_for
from accord.core.clock import utcnow
from accord.core.errors import Forbidden, ValidationProblem
from accord.core.events import emit
from accord.models import Team, User
from accord.models.service import OPEN_STATUSES, RoutingRule, ServiceAgent, Ticket
from accord.service import sla_tracking

AGENT_ROLES = ("support", "manager")
CLAIM_ATTEMPTS = 5
_TICK = timedelta(microseconds=1)


def _norm(value: str | None) -> str:
    return (value or "").strip().casefold()


def _lang(value: str | None) -> str:
    return _norm(value).replace("_", "-").split("-")[0]


def matches(rule: RoutingRule, ticket: Ticket) -> bool:
    """Every criterion the rule sets holds for the ticket."""
    if rule.category is not None and _norm(rule.category) != _norm(ticket.category):
        return False
    if rule.channel is not None and rule.channel != ticket.channel:
        return False
    if rule.priority is not None and rule.priority != ticket.priority:
        return False
    return rule.language is None or _lang(rule.language) == _lang(ticket.language)


def matching_rule(session: Session, ticket: Ticket) -> RoutingRule | None:
    rules = session.scalars(select(RoutingRule).where(RoutingRule.active.is_(True))
                            .order_by(RoutingRule.position, RoutingRule.id))
    return next((r for r in rules if matches(r, ticket)), None)


def open_counts(session: Session, user_ids: list[int]) -> dict[int, int]:
    """Open tickets per assignee (one grouped query on `ix_tickets_assignee_queue`)."""
    if not user_ids:
        return {}
    return {uid: n for uid, n in session.execute(
        select(Ticket.assignee_id, func.count(Ticket.id))
        .where(Ticket.assignee_id.in_(user_ids), Ticket.status.in_(OPEN_STATUSES))
        .group_by(Ticket.assignee_id)).all()}


def candidates(session: Session, team_id: int, skill: str | None,
               language: str | None) -> list[tuple[ServiceAgent, int]]:
    """Available agents of the team with the skill and language and room for one more."""
    agents = list(session.scalars(
        select(ServiceAgent).join(User, User.id == ServiceAgent.user_id)
        .where(User.team_id == team_id, User.is_active.is_(True), User.role.in_(AGENT_ROLES),
               ServiceAgent.available.is_(True))
        .order_by(ServiceAgent.id)
        .execution_options(populate_existing=True)))
    if skill:
        agents = [a for a in agents if _norm(skill) in {_norm(str(s)) for s in a.skills or []}]
    if language:
        agents = [a for a in agents
                  if not a.languages or _lang(language) in {_lang(str(x)) for x in a.languages}]
    counts = open_counts(session, [a.user_id for a in agents])
    return [(a, counts.get(a.user_id, 0)) for a in agents
            if counts.get(a.user_id, 0) < a.max_open_tickets]


def _turn(agent: ServiceAgent) -> tuple[bool, datetime | None, int]:
    return (agent.last_assigned_at is not None, agent.last_assigned_at, agent.id)


def _claim(session: Session, agent: ServiceAgent, floor: datetime | None) -> bool:
    """Stamp the agent's turn, only if nobody stamped it since we read it."""
    now = utcnow()
    if floor is not None and now <= floor:
        now = floor + _TICK  # turns stay strictly ordered even on a coarse clock
    seen = agent.last_assigned_at
    guard = (ServiceAgent.last_assigned_at.is_(None) if seen is None
             else ServiceAgent.last_assigned_at == seen)
    done = session.execute(
        update(ServiceAgent).where(ServiceAgent.id == agent.id, guard)
        .values(last_assigned_at=now, updated_at=ServiceAgent.updated_at)
        .execution_options(synchronize_session=False)).rowcount
    return bool(done)


def choose_agent(session: Session, team_id: int, method: str, skill: str | None,
                 language: str | None) -> int | None:
    """The user id of the agent who takes the ticket (and whose turn is now used)."""
    if method == "team_queue":
        return None
    for _ in range(CLAIM_ATTEMPTS):
        pool = candidates(session, team_id, skill, language)
        if not pool:
            return None
        floor = max((a.last_assigned_at for a, _ in pool if a.last_assigned_at), default=None)
        if method == "least_loaded":
            agent = min(pool, key=lambda p: (p[1], *_turn(p[0])))[0]
        else:
            agent = min((a for a, _ in pool), key=_turn)
        if _claim(session, agent, floor):
            return agent.user_id
    return agent.user_id  # contended every time: take the last pick rather than nobody


def route(session: Session, ticket: Ticket) -> None:
    """Fill the ticket's team, assignee and rule when unset (see the module docstring)."""
    if ticket.assignee_id is not None:
        if ticket.team_id is None:
            ticket.team_id = session.scalar(select(User.team_id)
                                            .where(User.id == ticket.assignee_id))
        return
    rule = matching_rule(session, ticket)
    if rule is None:
        return
    team_id = ticket.team_id if ticket.team_id is not None else rule.team_id
    assignee = None
    if team_id is not None:
        assignee = choose_agent(session, team_id, rule.method, rule.required_skill,
                                ticket.language)
    ticket.team_id = team_id
    ticket.assignee_id = assignee
    ticket.routing_rule_id = rule.id
    session.flush()
    sla_tracking.add_event(session, ticket, "assigned", data={
        "rule_id": rule.id, "method": rule.method, "team_id": team_id, "assignee_id": assignee})


def reassign(session: Session, principal: Principal, ticket_id: int, *,
             assignee_id: int | None, team_id: int | None, note: str | None = None) -> Ticket:
    """Move a ticket to another agent and/or team by hand (team-scoped roles within their team).

    The new assignee must be an active support agent or manager; giving only an agent puts the
    ticket in that agent's team. The agent is told in-app."""
    from accord.sales.notifications import notify
    from accord.service.tickets import get_ticket

    ticket = get_ticket(session, principal, ticket_id)
    scope = scope_for(principal, "tickets", "update")
    if scope not in ("team", "all") or not record_in_scope(principal, scope, ticket.assignee_id,
                                                           ticket.team_id):
        raise Forbidden("your role may not reassign tickets")
    user = None
    if assignee_id is not None:
        user = session.get(User, assignee_id)
        if user is None or not user.is_active or user.role not in (*AGENT_ROLES, "admin"):
            raise ValidationProblem(f"user {assignee_id} is not an active service agent",
                                    field="assignee_id")
        if team_id is None:
            team_id = user.team_id if user.team_id is not None else ticket.team_id
    elif team_id is None:
        raise ValidationProblem("give assignee_id, team_id or both", field="assignee_id")
    if team_id is not None and session.get(Team, team_id) is None:
        raise ValidationProblem(f"team {team_id} does not exist", field="team_id")
    if scope == "team" and team_id != principal.team_id:
        raise Forbidden("you may only assign tickets within your team", field="team_id")
    before: dict[str, Any] = {"assignee_id": ticket.assignee_id, "team_id": ticket.team_id}
    changed = [k for k, v in (("assignee_id", assignee_id), ("team_id", team_id))
               if before[k] != v]
    if not changed:
        return ticket
    ticket.assignee_id, ticket.team_id = assignee_id, team_id
    sla_tracking.refresh(session, ticket)  # another team may keep other hours
    sla_tracking.add_event(session, ticket, "assigned", actor_id=principal.user_id, data={
        "rule_id": None, "method": "manual", "team_id": team_id, "assignee_id": assignee_id,
        "from": before, "note": note})
    audit.record(session, principal, "reassign", "tickets", ticket.id, changed,
                 {"from": before})
    emit(session, "ticket.assigned", "ticket", ticket.id,
         {"ticket_id": ticket.id, "assignee_id": assignee_id, "team_id": team_id},
         principal.user_id)
    if assignee_id is not None and assignee_id != principal.user_id:
        notify(session, assignee_id, "ticket_assigned", f"Ticket assigned to you: {ticket.subject}",
               "", f"/service/tickets/{ticket.id}")
    return ticket
