"""Lead routing: assignment rules (managed by `sales_config`) and the owner a new lead gets.

The first active rule (by `position`, then id) whose conditions all hold decides. Methods:
`owner` names the user; `round_robin` walks the team's active `sales` users in id order,
starting after `cursor_user_id` (which then advances); `least_loaded` picks the one with the
fewest open leads (new, working, nurturing; ties to the lowest id). With no matching rule a
lead keeps the team it came with (a form's team) and no owner: it waits in the team's queue.
Every captured lead gets `first_touch_due_at = now + first_touch_hours` (24 h without a rule).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from accord.access import audit
from accord.access.policy import Principal
from accord.access.service import require
from accord.core.clock import utcnow
from accord.core.db import is_postgres
from accord.core.errors import NotFound, ValidationProblem
from accord.core.events import emit
from accord.models import Team, User
from accord.models.sales import AssignmentRule, Lead
from accord.sales.leads_schemas import AssignmentRuleCreate, AssignmentRuleUpdate

CONFIG = "sales_config"
DEFAULT_FIRST_TOUCH_HOURS = 24
OPEN_STATUSES = ("new", "working", "nurturing")


# --- rules: the write path -----------------------------------------------------------------------

def list_rules(session: Session, principal: Principal) -> list[AssignmentRule]:
    require(principal, CONFIG, "read")
    return list(session.scalars(select(AssignmentRule)
                                .order_by(AssignmentRule.position, AssignmentRule.id)))


def get_rule(session: Session, principal: Principal, rule_id: int,
             action: str = "read") -> AssignmentRule:
    require(principal, CONFIG, action)
    rule = session.get(AssignmentRule, rule_id)
    if rule is None:
        raise NotFound(f"assignment rule {rule_id} does not exist")
    return rule


def _check(session: Session, values: dict[str, Any], rule: AssignmentRule | None) -> None:
    team_id = values.get("team_id", rule.team_id if rule else None)
    owner_id = values.get("owner_id", rule.owner_id if rule else None)
    method = values.get("method", rule.method if rule else "round_robin")
    if values.get("team_id") is not None and session.get(Team, values["team_id"]) is None:
        raise ValidationProblem(f"team {values['team_id']} does not exist", field="team_id")
    if values.get("owner_id") is not None and session.get(User, values["owner_id"]) is None:
        raise ValidationProblem(f"user {values['owner_id']} does not exist", field="owner_id")
    if method == "owner" and owner_id is None:
        raise ValidationProblem("the owner method needs owner_id", field="owner_id")
    if method in ("round_robin", "least_loaded") and team_id is None:
        raise ValidationProblem(f"the {method} method needs team_id", field="team_id")


def create_rule(session: Session, principal: Principal,
                data: AssignmentRuleCreate) -> AssignmentRule:
    require(principal, CONFIG, "create")
    values = data.model_dump()
    _check(session, values, None)
    rule = AssignmentRule(**values)
    session.add(rule)
    session.flush()
    audit.record(session, principal, "create", "assignment_rules", rule.id,
                 data.model_dump(exclude_unset=True).keys())
    emit(session, "assignment_rule.created", "assignment_rule", rule.id,
         {"method": rule.method}, principal.user_id)
    return rule


def update_rule(session: Session, principal: Principal, rule: AssignmentRule,
                data: AssignmentRuleUpdate) -> AssignmentRule:
    require(principal, CONFIG, "update")
    changes = data.model_dump(exclude_unset=True)
    for key in ("name", "position", "active", "method", "first_touch_hours", "conditions"):
        if key in changes and changes[key] is None:
            raise ValidationProblem(f"{key} cannot be null", field=key)
    _check(session, changes, rule)
    changed = [k for k, v in changes.items() if getattr(rule, k) != v]
    if not changed:
        return rule
    for key in changed:
        setattr(rule, key, changes[key])
    if "team_id" in changed:
        rule.cursor_user_id = None
    session.flush()
    audit.record(session, principal, "update", "assignment_rules", rule.id, changed)
    emit(session, "assignment_rule.updated", "assignment_rule", rule.id,
         {"fields": sorted(changed)}, principal.user_id)
    return rule


def delete_rule(session: Session, principal: Principal, rule: AssignmentRule) -> None:
    require(principal, CONFIG, "delete")
    audit.record(session, principal, "delete", "assignment_rules", rule.id, (),
                 {"name": rule.name})
    session.delete(rule)
    session.flush()


# --- matching a lead -----------------------------------------------------------------------------

def matches(rule: AssignmentRule, lead: Lead, form_slug: str | None) -> bool:
    """Every condition given must hold; an empty condition set matches every lead."""
    c = rule.conditions or {}
    if c.get("countries") and (lead.country or "") not in c["countries"]:
        return False
    if c.get("industries") and (lead.industry or "").strip().casefold() not in {
            str(i).strip().casefold() for i in c["industries"]}:
        return False
    if c.get("sources") and lead.source not in c["sources"]:
        return False
    if c.get("forms") and (form_slug or "") not in c["forms"]:
        return False
    low, high = c.get("min_employees"), c.get("max_employees")
    if low is not None or high is not None:
        if lead.employees is None:
            return False
        if low is not None and lead.employees < low:
            return False
        if high is not None and lead.employees > high:
            return False
    return True


def _candidates(session: Session, team_id: int | None) -> list[int]:
    if team_id is None:
        return []
    return list(session.scalars(
        select(User.id).where(User.team_id == team_id, User.role == "sales",
                              User.is_active.is_(True)).order_by(User.id)))


def _round_robin(session: Session, rule: AssignmentRule) -> int | None:
    users = _candidates(session, rule.team_id)
    if not users:
        return None
    cursor = rule.cursor_user_id
    chosen = next((u for u in users if cursor is None or u > cursor), users[0])
    rule.cursor_user_id = chosen
    return chosen


def _least_loaded(session: Session, rule: AssignmentRule) -> int | None:
    users = _candidates(session, rule.team_id)
    if not users:
        return None
    counts = dict(session.execute(
        select(Lead.owner_id, func.count(Lead.id))
        .where(Lead.owner_id.in_(users), Lead.status.in_(OPEN_STATUSES))
        .group_by(Lead.owner_id)).all())
    return min(users, key=lambda u: (counts.get(u, 0), u))


def _rules(session: Session) -> list[AssignmentRule]:
    stmt = (select(AssignmentRule).where(AssignmentRule.active.is_(True))
            .order_by(AssignmentRule.position, AssignmentRule.id))
    return list(session.scalars(stmt))


def route(session: Session, lead: Lead, form_slug: str | None = None,
          at: datetime | None = None) -> AssignmentRule | None:
    """Give a new lead its owner, team, assignment time and first-touch deadline."""
    now = at or utcnow()
    chosen: AssignmentRule | None = None
    for rule in _rules(session):
        if matches(rule, lead, form_slug):
            chosen = rule
            break
    hours = DEFAULT_FIRST_TOUCH_HOURS
    if chosen is not None:
        if chosen.method == "round_robin" and is_postgres(session):
            # concurrent captures walk the cursor one after the other
            session.execute(select(AssignmentRule.id).where(AssignmentRule.id == chosen.id)
                            .with_for_update())
            session.refresh(chosen)
        owner: int | None
        if chosen.method == "owner":
            owner = chosen.owner_id
        elif chosen.method == "round_robin":
            owner = _round_robin(session, chosen)
        else:
            owner = _least_loaded(session, chosen)
        team = chosen.team_id
        if team is None and owner is not None:
            team = session.scalar(select(User.team_id).where(User.id == owner))
        lead.owner_id = owner
        lead.team_id = team if team is not None else lead.team_id
        lead.assignment_rule_id = chosen.id
        hours = chosen.first_touch_hours or DEFAULT_FIRST_TOUCH_HOURS
    if lead.owner_id is not None or lead.team_id is not None:
        lead.assigned_at = now
    lead.first_touch_due_at = now + timedelta(hours=hours)
    return chosen
