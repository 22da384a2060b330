"""REST endpoints for service configuration (`/service/...`: SLA policies, business calendars,
routing rules, agents) and for one ticket's SLA timers and escalation: parse, call the
service, serialise."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Depends, Header, Response
from sqlalchemy.orm import Session

from accord.access.deps import Ctx, api_ctx
from accord.core.concurrency import etag
from accord.models.service import SlaPolicy, SlaTarget
from accord.service import config, escalation, sla_tracking
from accord.service.config_schemas import (
    AgentCreate,
    AgentOut,
    AgentUpdate,
    AvailabilityIn,
    CalendarCreate,
    CalendarOut,
    CalendarUpdate,
    EscalateIn,
    EscalationOut,
    RoutingRuleCreate,
    RoutingRuleOut,
    RoutingRuleUpdate,
    SlaPolicyCreate,
    SlaPolicyOut,
    SlaPolicyUpdate,
    SlaTargetOut,
    TicketSlaOut,
    TimerOut,
)

router = APIRouter()
T = TypeVar("T")
BASE = "/service"
POLICY_HELP = (
    "Targets are business minutes per priority and customer value tier (`tier` null: any "
    "tier; a metric left out has no target). A ticket is measured by its team's active policy, "
    "else the default one (`is_default`; setting it clears the flag elsewhere), on its team's "
    "business calendar (else the default calendar, else round the clock). `targets` in a PATCH "
    "replaces the whole set.")
CALENDAR_HELP = (
    "`timezone` is an IANA name; `hours` maps mon..sun to local `[start, end]` pairs "
    "(`24:00` ends a day; split night shifts at midnight); `holidays` are `YYYY-MM-DD` dates. "
    "A bad spec is a 422 whose `field` names the key (`hours.wed[1]`). One calendar per team; "
    "`team_id` null is the default calendar.")
RULE_HELP = (
    "The first active rule by `position` whose set criteria (category, channel, priority, "
    "language) all match routes a new ticket to its team; `method` picks the agent: "
    "`round_robin` (least recently assigned), `least_loaded` (fewest open tickets) or "
    "`team_queue` (none). Agents must be available, under their `max_open_tickets`, have "
    "`required_skill` and speak the ticket's language.")


def _policy_out(session: Session, row: SlaPolicy,
                targets: list[SlaTarget] | None = None) -> SlaPolicyOut:
    """One policy with its targets (read here unless the caller loaded them for a list)."""
    if targets is None:
        targets = config.targets_of(session, row.id)
    return SlaPolicyOut(
        id=row.id, version=row.version, name=row.name, team_id=row.team_id,
        warning_ratio=row.warning_ratio, pause_on_hold=row.pause_on_hold,
        is_default=row.is_default, active=row.active,
        targets=[SlaTargetOut.model_validate(t) for t in targets],
        created_at=row.created_at, updated_at=row.updated_at)


def _shown(response: Response, row: Any, out: Callable[[Any], T]) -> T:
    """One row as a GET answers it: serialised, its version as the ETag for a later If-Match."""
    response.headers["ETag"] = etag(row.version)
    return out(row)


def _location(kind: str) -> Any:
    return lambda out: {"ETag": etag(out.version), "Location": f"/api/v1{BASE}/{kind}/{out.id}"}


# --- SLA policies --------------------------------------------------------------------------------

@router.get(f"{BASE}/sla-policies", tags=["service config"], response_model=list[SlaPolicyOut],
            summary="List SLA policies", description=POLICY_HELP)
def list_policies(ctx: Ctx = Depends(api_ctx)) -> list[SlaPolicyOut]:
    rows = config.list_policies(ctx.session, ctx.principal)
    targets = config.targets_by_policy(ctx.session, [r.id for r in rows])
    return [_policy_out(ctx.session, r, targets[r.id]) for r in rows]


@router.post(f"{BASE}/sla-policies", tags=["service config"], status_code=201,
             response_model=SlaPolicyOut, summary="Create an SLA policy",
             description=POLICY_HELP)
def create_policy(body: SlaPolicyCreate, ctx: Ctx = Depends(api_ctx)) -> Response:
    return ctx.created(
        lambda: _policy_out(ctx.session, config.create_policy(ctx.session, ctx.principal, body)),
        body, headers=_location("sla-policies"))


@router.get(f"{BASE}/sla-policies/{{policy_id}}", tags=["service config"],
            response_model=SlaPolicyOut)
def get_policy(policy_id: int, response: Response, ctx: Ctx = Depends(api_ctx)) -> SlaPolicyOut:
    return _shown(response, config.get_policy(ctx.session, ctx.principal, policy_id),
                  lambda row: _policy_out(ctx.session, row))


@router.patch(f"{BASE}/sla-policies/{{policy_id}}", tags=["service config"],
              response_model=SlaPolicyOut, description=POLICY_HELP)
def update_policy(policy_id: int, body: SlaPolicyUpdate, response: Response,
                  if_match: str | None = Header(default=None),
                  ctx: Ctx = Depends(api_ctx)) -> SlaPolicyOut:
    row = config.get_policy(ctx.session, ctx.principal, policy_id, "update")
    return ctx.updated(row, if_match, response,
                       lambda: config.update_policy(ctx.session, ctx.principal, row, body),
                       lambda: _policy_out(ctx.session, row))


@router.delete(f"{BASE}/sla-policies/{{policy_id}}", tags=["service config"], status_code=204)
def delete_policy(policy_id: int, if_match: str | None = Header(default=None),
                  ctx: Ctx = Depends(api_ctx)) -> Response:
    row = config.get_policy(ctx.session, ctx.principal, policy_id, "delete")
    return ctx.deleted(row, if_match,
                       lambda: config.delete_policy(ctx.session, ctx.principal, row))


# --- business calendars --------------------------------------------------------------------------

@router.get(f"{BASE}/calendars", tags=["service config"], response_model=list[CalendarOut],
            summary="List business calendars", description=CALENDAR_HELP)
def list_calendars(ctx: Ctx = Depends(api_ctx)) -> list[CalendarOut]:
    return [CalendarOut.model_validate(r)
            for r in config.list_calendars(ctx.session, ctx.principal)]


@router.post(f"{BASE}/calendars", tags=["service config"], status_code=201,
             response_model=CalendarOut, summary="Create a business calendar",
             description=CALENDAR_HELP)
def create_calendar(body: CalendarCreate, ctx: Ctx = Depends(api_ctx)) -> Response:
    return ctx.created(
        lambda: CalendarOut.model_validate(
            config.create_calendar(ctx.session, ctx.principal, body)),
        body, headers=_location("calendars"))


@router.get(f"{BASE}/calendars/{{calendar_id}}", tags=["service config"],
            response_model=CalendarOut)
def get_calendar(calendar_id: int, response: Response,
                 ctx: Ctx = Depends(api_ctx)) -> CalendarOut:
    return _shown(response, config.get_calendar(ctx.session, ctx.principal, calendar_id),
                  CalendarOut.model_validate)


@router.patch(f"{BASE}/calendars/{{calendar_id}}", tags=["service config"],
              response_model=CalendarOut, description=CALENDAR_HELP)
def update_calendar(calendar_id: int, body: CalendarUpdate, response: Response,
                    if_match: str | None = Header(default=None),
                    ctx: Ctx = Depends(api_ctx)) -> CalendarOut:
    row = config.get_calendar(ctx.session, ctx.principal, calendar_id, "update")
    return ctx.updated(row, if_match, response,
                       lambda: config.update_calendar(ctx.session, ctx.principal, row, body),
                       lambda: CalendarOut.model_validate(row))


@router.delete(f"{BASE}/calendars/{{calendar_id}}", tags=["service config"], status_code=204)
def delete_calendar(calendar_id: int, if_match: str | None = Header(default=None),
                    ctx: Ctx = Depends(api_ctx)) -> Response:
    row = config.get_calendar(ctx.session, ctx.principal, calendar_id, "delete")
    return ctx.deleted(row, if_match,
                       lambda: config.delete_calendar(ctx.session, ctx.principal, row))


# --- routing rules -------------------------------------------------------------------------------

@router.get(f"{BASE}/routing-rules", tags=["service config"],
            response_model=list[RoutingRuleOut], summary="List routing rules",
            description=RULE_HELP)
def list_rules(ctx: Ctx = Depends(api_ctx)) -> list[RoutingRuleOut]:
    return [RoutingRuleOut.model_validate(r)
            for r in config.list_rules(ctx.session, ctx.principal)]


@router.post(f"{BASE}/routing-rules", tags=["service config"], status_code=201,
             response_model=RoutingRuleOut, summary="Create a routing rule",
             description=RULE_HELP)
def create_rule(body: RoutingRuleCreate, ctx: Ctx = Depends(api_ctx)) -> Response:
    return ctx.created(
        lambda: RoutingRuleOut.model_validate(
            config.create_rule(ctx.session, ctx.principal, body)),
        body, headers=_location("routing-rules"))


@router.get(f"{BASE}/routing-rules/{{rule_id}}", tags=["service config"],
            response_model=RoutingRuleOut)
def get_rule(rule_id: int, response: Response, ctx: Ctx = Depends(api_ctx)) -> RoutingRuleOut:
    return _shown(response, config.get_rule(ctx.session, ctx.principal, rule_id),
                  RoutingRuleOut.model_validate)


@router.patch(f"{BASE}/routing-rules/{{rule_id}}", tags=["service config"],
              response_model=RoutingRuleOut, description=RULE_HELP)
def update_rule(rule_id: int, body: RoutingRuleUpdate, response: Response,
                if_match: str | None = Header(default=None),
                ctx: Ctx = Depends(api_ctx)) -> RoutingRuleOut:
    row = config.get_rule(ctx.session, ctx.principal, rule_id, "update")
    return ctx.updated(row, if_match, response,
                       lambda: config.update_rule(ctx.session, ctx.principal, row, body),
                       lambda: RoutingRuleOut.model_validate(row))


@router.delete(f"{BASE}/routing-rules/{{rule_id}}", tags=["service config"], status_code=204)
def delete_rule(rule_id: int, if_match: str | None = Header(default=None),
                ctx: Ctx = Depends(api_ctx)) -> Response:
    row = config.get_rule(ctx.session, ctx.principal, rule_id, "delete")
    return ctx.deleted(row, if_match, lambda: config.delete_rule(ctx.session, ctx.principal, row))


# --- agents --------------------------------------------------------------------------------------

@router.get(f"{BASE}/agents", tags=["service config"], response_model=list[AgentOut],
            summary="List agents' routing profiles")
def list_agents(ctx: Ctx = Depends(api_ctx)) -> list[AgentOut]:
    return [AgentOut.model_validate(r) for r in config.list_agents(ctx.session, ctx.principal)]


@router.post(f"{BASE}/agents", tags=["service config"], status_code=201, response_model=AgentOut,
             summary="Create an agent's routing profile",
             description="Skills, languages, availability and capacity of a support agent or "
             "manager (one profile per user).")
def create_agent(body: AgentCreate, ctx: Ctx = Depends(api_ctx)) -> Response:
    return ctx.created(
        lambda: AgentOut.model_validate(config.create_agent(ctx.session, ctx.principal, body)),
        body, headers=_location("agents"))


@router.put(f"{BASE}/agents/me/availability", tags=["service config"], response_model=AgentOut,
            summary="Set my availability",
            description="An agent goes away (no new tickets routed to them) or comes back. "
            "Only the caller's own profile; needs the `tickets` update right (a token limited "
            "to `tickets:read` gets a 403).")
def set_my_availability(body: AvailabilityIn, ctx: Ctx = Depends(api_ctx)) -> AgentOut:
    row = config.set_my_availability(ctx.session, ctx.principal, body.available)
    out = AgentOut.model_validate(row)
    ctx.commit()
    return out


@router.get(f"{BASE}/agents/{{agent_id}}", tags=["service config"], response_model=AgentOut)
def get_agent(agent_id: int, response: Response, ctx: Ctx = Depends(api_ctx)) -> AgentOut:
    return _shown(response, config.get_agent(ctx.session, ctx.principal, agent_id),
                  AgentOut.model_validate)


@router.patch(f"{BASE}/agents/{{agent_id}}", tags=["service config"], response_model=AgentOut)
def update_agent(agent_id: int, body: AgentUpdate, response: Response,
                 if_match: str | None = Header(default=None),
                 ctx: Ctx = Depends(api_ctx)) -> AgentOut:
    row = config.get_agent(ctx.session, ctx.principal, agent_id, "update")
    return ctx.updated(row, if_match, response,
                       lambda: config.update_agent(ctx.session, ctx.principal, row, body),
                       lambda: AgentOut.model_validate(row))


@router.delete(f"{BASE}/agents/{{agent_id}}", tags=["service config"], status_code=204)
def delete_agent(agent_id: int, if_match: str | None = Header(default=None),
                 ctx: Ctx = Depends(api_ctx)) -> Response:
    row = config.get_agent(ctx.session, ctx.principal, agent_id, "delete")
    return ctx.deleted(row, if_match,
                       lambda: config.delete_agent(ctx.session, ctx.principal, row))


# --- one ticket: SLA timers and escalation -------------------------------------------------------

@router.get("/tickets/{ticket_id}/sla", tags=["tickets"], response_model=TicketSlaOut,
            summary="The ticket's SLA timers",
            description="Each timer (first response, the current or last next response, "
            "resolution) now: status, target, business seconds elapsed and remaining (negative "
            "once overdue), due and warning instants. Read right on the ticket required.")
def ticket_sla(ticket_id: int, ctx: Ctx = Depends(api_ctx)) -> TicketSlaOut:
    from accord.service.tickets import get_ticket

    ticket = get_ticket(ctx.session, ctx.principal, ticket_id)
    view = sla_tracking.timers(ctx.session, ticket)
    return TicketSlaOut(
        ticket_id=ticket.id, policy=view.policy, priority=view.priority, tier=view.tier,
        sla_state=view.sla_state, due_at=ticket.due_at,
        first_response_seconds=ticket.first_response_seconds,
        resolution_seconds=ticket.resolution_seconds,
        timers=[TimerOut(**vars(t)) for t in view.timers])


@router.post("/tickets/{ticket_id}/escalate", tags=["tickets"], response_model=EscalationOut,
             summary="Escalate a ticket",
             description="Raises the escalation level and the priority one step and alerts "
             "the team's managers in-app and by e-mail. Needs update rights on the ticket.")
def escalate(ticket_id: int, body: EscalateIn, ctx: Ctx = Depends(api_ctx)) -> Response:
    def run() -> EscalationOut:
        t = escalation.escalate(ctx.session, ctx.principal, ticket_id, body.reason)
        return EscalationOut(ticket_id=t.id, escalation_level=t.escalation_level,
                             escalated_at=t.escalated_at, escalation_reason=t.escalation_reason,
                             priority=t.priority)

    return ctx.created(run, body, status_code=200)
