"""Service configuration, the one write path: SLA policies (with targets), business calendars,
routing rules and agents' routing profiles, all under the `service_config` permission.

Rules kept here rather than in the database:

* one **default** policy: making a policy the default clears the flag on the others;
* one **active policy per team** (a second is a 409 naming `team_id`): which one measures a
  ticket must never depend on row order;
* a **calendar** is checked by `BusinessCalendar.from_spec`; a bad spec is a 422 naming the
  key at fault (``hours.wed[1]``, ``holidays[0]``, ``timezone``);
* an **agent profile** belongs to an active user with role support or manager (routing only
  picks those), one per user. Agents switch their own availability (`set_my_availability`)
  without config rights.

Every change is audited (resource `service_config`, the record kind in the detail) and bumps
the row's version (ETag / If-Match in the API). A change to a policy or calendar puts the open
tickets it measures in the SLA job's queue (`requeue`), so their stored timers follow within a
check interval.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from accord.access import audit
from accord.access.policy import Principal
from accord.access.service import require
from accord.core.clock import utcnow
from accord.core.errors import Conflict, NotFound, ValidationProblem
from accord.models import Team, User
from accord.models.service import (
    OPEN_STATUSES,
    RoutingRule,
    ServiceAgent,
    SlaPolicy,
    SlaTarget,
    Ticket,
)
from accord.models.service import BusinessCalendar as CalendarRow
from accord.service.calendar import BusinessCalendar
from accord.service.config_schemas import (
    AgentCreate,
    AgentUpdate,
    CalendarCreate,
    CalendarUpdate,
    RoutingRuleCreate,
    RoutingRuleUpdate,
    SlaPolicyCreate,
    SlaPolicyUpdate,
    SlaTargetIn,
)
from accord.service.routing import AGENT_ROLES

RESOURCE = "service_config"
_NOT_NULL = {"name", "position", "method", "active", "warning_ratio", "pause_on_hold",
             "is_default", "timezone", "hours", "holidays", "skills", "languages", "available",
             "max_open_tickets", "targets"}


def _changes(data: BaseModel) -> dict[str, Any]:
    changes = data.model_dump(exclude_unset=True)
    for key, value in changes.items():
        if value is None and key in _NOT_NULL:
            raise ValidationProblem(f"{key} cannot be null", field=key)
    return changes


def _team(session: Session, team_id: int | None) -> None:
    if team_id is not None and session.get(Team, team_id) is None:
        raise ValidationProblem(f"team {team_id} does not exist", field="team_id")


def _list(session: Session, principal: Principal, model: Any, *order: Any) -> list[Any]:
    require(principal, RESOURCE, "read")
    return list(session.scalars(select(model).order_by(*order)))


def _get(session: Session, principal: Principal, model: Any, row_id: int, label: str,
         action: str) -> Any:
    require(principal, RESOURCE, action)
    row = session.get(model, row_id)
    if row is None:
        raise NotFound(f"{label} {row_id} does not exist")
    return row


def _create(session: Session, principal: Principal, row: Any, data: BaseModel,
            kind: str) -> None:
    """Insert a checked row and audit the fields the caller sent (the caller has required
    `create` and validated the values)."""
    session.add(row)
    session.flush()
    audit.record(session, principal, "create", RESOURCE, row.id,
                 data.model_dump(exclude_unset=True).keys(), {"kind": kind})


def _delete(session: Session, principal: Principal, row: Any, kind: str,
            **detail: Any) -> None:
    """Audit and delete; `detail` identifies the row after it is gone (its name)."""
    require(principal, RESOURCE, "delete")
    audit.record(session, principal, "delete", RESOURCE, row.id, (), {"kind": kind, **detail})
    session.delete(row)
    session.flush()


def _apply(session: Session, principal: Principal, row: Any, changes: dict[str, Any],
           kind: str) -> list[str]:
    changed = [k for k, v in changes.items() if getattr(row, k) != v]
    for key in changed:
        setattr(row, key, changes[key])
    if changed:
        session.flush()
        audit.record(session, principal, "update", RESOURCE, row.id, changed, {"kind": kind})
    return changed


def _unique_name(session: Session, model: Any, name: str | None, row_id: int | None) -> None:
    if name is None:
        return
    clash = session.scalar(select(model.id).where(model.name == name))
    if clash is not None and clash != row_id:
        raise Conflict(f"the name {name!r} is taken", field="name")


def requeue(session: Session, *where: Any) -> None:
    """Have the SLA job re-evaluate these open tickets at its next run (their stored timers
    were computed under the old configuration): pulling `warn_at` to now puts them in its
    indexed queue. Nothing else about the tickets changes."""
    session.execute(update(Ticket).where(Ticket.status.in_(OPEN_STATUSES), *where)
                    .values(warn_at=utcnow(), updated_at=Ticket.updated_at)
                    .execution_options(synchronize_session=False))


# --- SLA policies --------------------------------------------------------------------------------


def list_policies(session: Session, principal: Principal) -> list[SlaPolicy]:
    return _list(session, principal, SlaPolicy, SlaPolicy.name, SlaPolicy.id)


def get_policy(session: Session, principal: Principal, policy_id: int,
               action: str = "read") -> SlaPolicy:
    return _get(session, principal, SlaPolicy, policy_id, "SLA policy", action)


def targets_of(session: Session, policy_id: int) -> list[SlaTarget]:
    return targets_by_policy(session, [policy_id])[policy_id]


def targets_by_policy(session: Session, policy_ids: list[int]) -> dict[int, list[SlaTarget]]:
    """The targets of several policies in one query (a list must not cost a query per row)."""
    out: dict[int, list[SlaTarget]] = {i: [] for i in policy_ids}
    if policy_ids:
        for t in session.scalars(select(SlaTarget).where(SlaTarget.policy_id.in_(policy_ids))
                                 .order_by(SlaTarget.priority, SlaTarget.tier, SlaTarget.id)):
            out[t.policy_id].append(t)
    return out


def _check_policy(session: Session, values: dict[str, Any], row: SlaPolicy | None) -> None:
    _unique_name(session, SlaPolicy, values.get("name"), row.id if row else None)
    _team(session, values.get("team_id"))
    team_id = values.get("team_id", row.team_id if row else None)
    active = values.get("active", row.active if row else True)
    if team_id is not None and active:
        other = session.scalar(select(SlaPolicy.id).where(
            SlaPolicy.team_id == team_id, SlaPolicy.active.is_(True),
            SlaPolicy.id != (row.id if row else -1)))
        if other is not None:
            raise Conflict(f"team {team_id} already has an active SLA policy ({other}); "
                           "deactivate it first", field="team_id")


def _set_targets(session: Session, policy_id: int, targets: list[SlaTargetIn]) -> None:
    session.execute(delete(SlaTarget).where(SlaTarget.policy_id == policy_id))
    for t in targets:
        session.add(SlaTarget(policy_id=policy_id, **t.model_dump()))
    session.flush()


def _only_default(session: Session, row: SlaPolicy) -> None:
    for other in session.scalars(select(SlaPolicy).where(SlaPolicy.id != row.id,
                                                         SlaPolicy.is_default.is_(True))):
        other.is_default = False
    session.flush()


def create_policy(session: Session, principal: Principal, data: SlaPolicyCreate) -> SlaPolicy:
    require(principal, RESOURCE, "create")
    values = data.model_dump(exclude={"targets"})
    _check_policy(session, values, None)
    row = SlaPolicy(**values)
    _create(session, principal, row, data, "sla_policy")
    _set_targets(session, row.id, data.targets)
    if row.is_default:
        _only_default(session, row)
    if row.active:
        requeue(session, Ticket.sla_policy_id.is_(None))  # unmeasured tickets may take it
    return row


def update_policy(session: Session, principal: Principal, row: SlaPolicy,
                  data: SlaPolicyUpdate) -> SlaPolicy:
    require(principal, RESOURCE, "update")
    changes = _changes(data)
    targets = changes.pop("targets", None)
    _check_policy(session, changes, row)
    changed = _apply(session, principal, row, changes, "sla_policy")
    if targets is not None:
        _set_targets(session, row.id, data.targets or [])
        if not changed:  # the targets are part of the policy: its version moves with them
            row.updated_at = utcnow()
            session.flush()
        audit.record(session, principal, "update", RESOURCE, row.id, ["targets"],
                     {"kind": "sla_policy"})
    if changes.get("is_default"):
        _only_default(session, row)
    if changed or targets is not None:
        requeue(session, (Ticket.sla_policy_id == row.id) | Ticket.sla_policy_id.is_(None))
    return row


def delete_policy(session: Session, principal: Principal, row: SlaPolicy) -> None:
    """Tickets it measured pick their team's or the default policy at their next refresh."""
    require(principal, RESOURCE, "delete")
    requeue(session, Ticket.sla_policy_id == row.id)  # before the FK nulls their link
    _delete(session, principal, row, "sla_policy", name=row.name)


# --- business calendars --------------------------------------------------------------------------


def list_calendars(session: Session, principal: Principal) -> list[CalendarRow]:
    return _list(session, principal, CalendarRow, CalendarRow.name, CalendarRow.id)


def get_calendar(session: Session, principal: Principal, calendar_id: int,
                 action: str = "read") -> CalendarRow:
    return _get(session, principal, CalendarRow, calendar_id, "business calendar", action)


def check_spec(timezone: str, hours: Any, holidays: Any) -> BusinessCalendar:
    """The calendar a spec describes, or a 422 naming the key at fault."""
    try:
        return BusinessCalendar.from_spec(
            {"timezone": timezone, "hours": hours, "holidays": holidays})
    except ValueError as exc:
        message = str(exc)
        key = message.split(":", 1)[0] if ":" in message else "hours"
        raise ValidationProblem(message, field=key) from None


def _check_calendar(session: Session, values: dict[str, Any], row: CalendarRow | None) -> None:
    check_spec(values.get("timezone", row.timezone if row else "UTC"),
               values.get("hours", row.hours if row else {}),
               values.get("holidays", row.holidays if row else []))
    _unique_name(session, CalendarRow, values.get("name"), row.id if row else None)
    _team(session, values.get("team_id"))
    if "team_id" in values:
        team_id = values["team_id"]
        clash = session.scalar(select(CalendarRow.id).where(
            CalendarRow.team_id.is_(None) if team_id is None else CalendarRow.team_id == team_id))
        if clash is not None and clash != (row.id if row else None):
            which = "the default calendar" if team_id is None else f"team {team_id}'s calendar"
            raise Conflict(f"{which} already exists ({clash})", field="team_id")


def _requeue_calendar(session: Session, team_id: int | None) -> None:
    """The team's tickets; for the default calendar every ticket (teams may lack their own)."""
    if team_id is None:
        requeue(session)
    else:
        requeue(session, Ticket.team_id == team_id)


def create_calendar(session: Session, principal: Principal, data: CalendarCreate) -> CalendarRow:
    require(principal, RESOURCE, "create")
    values = data.model_dump()
    _check_calendar(session, values, None)
    row = CalendarRow(**values)
    _create(session, principal, row, data, "business_calendar")
    _requeue_calendar(session, row.team_id)
    return row


def update_calendar(session: Session, principal: Principal, row: CalendarRow,
                    data: CalendarUpdate) -> CalendarRow:
    """The open tickets counted on it (before and after) are re-evaluated by the SLA job."""
    require(principal, RESOURCE, "update")
    changes = _changes(data)
    _check_calendar(session, changes, row)
    before = row.team_id
    if _apply(session, principal, row, changes, "business_calendar"):
        _requeue_calendar(session, before)
        if row.team_id != before:
            _requeue_calendar(session, row.team_id)
    return row


def delete_calendar(session: Session, principal: Principal, row: CalendarRow) -> None:
    require(principal, RESOURCE, "delete")
    _requeue_calendar(session, row.team_id)
    _delete(session, principal, row, "business_calendar", name=row.name)


# --- routing rules -------------------------------------------------------------------------------


def list_rules(session: Session, principal: Principal) -> list[RoutingRule]:
    return _list(session, principal, RoutingRule, RoutingRule.position, RoutingRule.id)


def get_rule(session: Session, principal: Principal, rule_id: int,
             action: str = "read") -> RoutingRule:
    return _get(session, principal, RoutingRule, rule_id, "routing rule", action)


def create_rule(session: Session, principal: Principal, data: RoutingRuleCreate) -> RoutingRule:
    require(principal, RESOURCE, "create")
    values = data.model_dump()
    _team(session, values["team_id"])
    row = RoutingRule(**values)
    _create(session, principal, row, data, "routing_rule")
    return row


def update_rule(session: Session, principal: Principal, row: RoutingRule,
                data: RoutingRuleUpdate) -> RoutingRule:
    require(principal, RESOURCE, "update")
    changes = _changes(data)
    if "team_id" in changes and changes["team_id"] is None:
        raise ValidationProblem("a routing rule needs a team", field="team_id")
    _team(session, changes.get("team_id"))
    _apply(session, principal, row, changes, "routing_rule")
    return row


def delete_rule(session: Session, principal: Principal, row: RoutingRule) -> None:
    _delete(session, principal, row, "routing_rule", name=row.name)


# --- agents --------------------------------------------------------------------------------------


def list_agents(session: Session, principal: Principal) -> list[ServiceAgent]:
    return _list(session, principal, ServiceAgent, ServiceAgent.id)


def get_agent(session: Session, principal: Principal, agent_id: int,
              action: str = "read") -> ServiceAgent:
    return _get(session, principal, ServiceAgent, agent_id, "service agent", action)


def create_agent(session: Session, principal: Principal, data: AgentCreate) -> ServiceAgent:
    require(principal, RESOURCE, "create")
    user = session.get(User, data.user_id)
    if user is None or not user.is_active or user.role not in AGENT_ROLES:
        raise ValidationProblem(
            f"user {data.user_id} is not an active user with role support or manager",
            field="user_id")
    if session.scalar(select(ServiceAgent.id).where(ServiceAgent.user_id == user.id)):
        raise Conflict(f"user {user.id} already has a routing profile", field="user_id")
    row = ServiceAgent(**data.model_dump())
    _create(session, principal, row, data, "service_agent")
    return row


def update_agent(session: Session, principal: Principal, row: ServiceAgent,
                 data: AgentUpdate) -> ServiceAgent:
    require(principal, RESOURCE, "update")
    _apply(session, principal, row, _changes(data), "service_agent")
    return row


def set_my_availability(session: Session, principal: Principal, available: bool
                        ) -> ServiceAgent:
    """An agent goes away or comes back (their own profile only: no config right needed, but
    the right to work tickets)."""
    row = None
    if principal.user_id is not None:
        row = session.scalars(select(ServiceAgent)
                              .where(ServiceAgent.user_id == principal.user_id)).first()
    if row is None:
        raise NotFound("you have no service agent profile")
    # Being available is taking ticket work: a token limited below that (e.g. `tickets:read`)
    # may not change it, although the profile is the caller's own.
    require(principal, "tickets", "update")
    if row.available != available:
        row.available = available
        session.flush()
        audit.record(session, principal, "update", RESOURCE, row.id, ["available"],
                     {"kind": "service_agent"})
    return row


def delete_agent(session: Session, principal: Principal, row: ServiceAgent) -> None:
    _delete(session, principal, row, "service_agent", user_id=row.user_id)
