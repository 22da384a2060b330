"""REST endpoints for surveys: staff lists, results, manual sends and schedules (permission
resource `surveys`), and the public answer endpoint behind a survey link: parse, call the
service, serialise."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from accord.access import audit
from accord.access.deps import Ctx, api_ctx
from accord.core.clock import utcnow
from accord.core.concurrency import etag
from accord.core.errors import Problem, ValidationProblem
from accord.core.query import ListParams, ListSpec, request_params
from accord.core.ratelimit import client_address
from accord.service import surveys
from accord.service.assistant_api import public_session
from accord.service.surveys_schemas import (
    InvitationOut,
    ResponseOut,
    ResultRowOut,
    ResultsOut,
    ScheduleCreate,
    ScheduleOut,
    ScheduleUpdate,
    SendIn,
)

router = APIRouter(prefix="/surveys", tags=["surveys"])
MAX_ANSWER_BYTES = 8 * 1024


def _params(request: Request, spec: ListSpec) -> ListParams:
    return request_params(dict(request.query_params), spec)


@router.get("/invitations", summary="List survey invitations",
            description="Filters: `id`, `kind`, `trigger`, `customer_id`, `ticket_id`, "
            "`schedule_id`, `team_id`, `agent_id`, `sent_at__gte` (and `__lt`, `__lte`, "
            "`__gt`), `used_at` (same, and `__isnull`); `sort=-id` (default), `sent_at`; "
            "keyset pagination. Never the link itself.")
def list_invitations(request: Request, ctx: Ctx = Depends(api_ctx)) -> dict[str, Any]:
    rows, cursor = surveys.list_invitations(ctx.session, ctx.principal,
                                            _params(request, surveys.invitation_spec()))
    return {"items": [InvitationOut.model_validate(r) for r in rows], "next_cursor": cursor}


@router.post("/invitations", status_code=201, response_model=InvitationOut,
             summary="Send a survey to one customer",
             description="E-mails a single-use link to the customer's primary address. 422 "
             "when the customer has no e-mail or opted out of surveys, 409 when surveyed within "
             "`ACCORD_SURVEY_COOLDOWN_DAYS`.")
def send(body: SendIn, ctx: Ctx = Depends(api_ctx)) -> Response:
    return ctx.created(
        lambda: InvitationOut.model_validate(surveys.send_manual(
            ctx.session, ctx.principal, body.customer_id, body.kind, body.ticket_id)),
        body, headers=lambda out: {"Location": f"/api/v1/surveys/invitations?id={out.id}"})


@router.get("/responses", summary="List survey answers",
            description="Filters: `kind`, `score` (`__gte`, `__lte` ...), `customer_id`, "
            "`ticket_id`, `team_id`, `agent_id`, `responded_at__gte` ...; `sort=-id` "
            "(default), `responded_at`, `score`. Reading the comments is audited.")
def list_responses(request: Request, ctx: Ctx = Depends(api_ctx)) -> dict[str, Any]:
    rows, cursor = surveys.list_responses(ctx.session, ctx.principal,
                                          _params(request, surveys.response_spec()))
    audit.record_read(ctx.principal, "survey_responses", [r.id for r in rows],
                      ["score", "comment"], {"via": "api"})
    return {"items": [ResponseOut.model_validate(r) for r in rows], "next_cursor": cursor}


def period(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    """Defaults: the last 365 days up to now; naive values are read as UTC."""
    end = end or utcnow()
    return (start or end - timedelta(days=365)), end


@router.get("/results", response_model=ResultsOut, summary="NPS / CSAT results",
            description="NPS = % promoters (9–10) − % detractors (0–6); CSAT = % of answers "
            "4–5, with the mean score; response rate = answered / sent for the invitations sent "
            "in the period. `group_by`: team, agent, month (or `period`), week (ISO). Only the "
            "surveys in the caller's record scope count.")
def results(kind: str = Query("nps", description="nps or csat"),
            start: datetime | None = Query(None), end: datetime | None = Query(None),
            group_by: str = Query("month"), ctx: Ctx = Depends(api_ctx)) -> ResultsOut:
    lo, hi = period(start, end)
    res = surveys.results(ctx.session, ctx.principal, kind, lo, hi, group_by)
    return ResultsOut(kind=res.kind, group_by=res.group_by, start=res.start, end=res.end,
                      rows=[ResultRowOut(**r.out()) for r in res.rows],
                      total=ResultRowOut(**res.total.out()))


# --- schedules -----------------------------------------------------------------------------------

@router.get("/schedules", response_model=list[ScheduleOut], summary="List survey schedules")
def list_schedules(ctx: Ctx = Depends(api_ctx)) -> list[ScheduleOut]:
    return [ScheduleOut.model_validate(s)
            for s in surveys.list_schedules(ctx.session, ctx.principal)]


@router.post("/schedules", status_code=201, response_model=ScheduleOut,
             summary="Create a survey schedule",
             description="Every `every_days` the worker sends the survey to the customers of "
             "the audience (`{}`: all with an e-mail; or `lifecycle_stage` / `value_tier` "
             "lists), skipping opted-out and recently surveyed customers.")
def create_schedule(body: ScheduleCreate, ctx: Ctx = Depends(api_ctx)) -> Response:
    return ctx.created(
        lambda: ScheduleOut.model_validate(
            surveys.create_schedule(ctx.session, ctx.principal, body)),
        body, headers=lambda out: {"ETag": etag(out.version),
                                   "Location": f"/api/v1/surveys/schedules/{out.id}"})


@router.get("/schedules/{schedule_id}", response_model=ScheduleOut)
def get_schedule(schedule_id: int, response: Response,
                 ctx: Ctx = Depends(api_ctx)) -> ScheduleOut:
    row = surveys.get_schedule(ctx.session, ctx.principal, schedule_id)
    response.headers["ETag"] = etag(row.version)
    return ScheduleOut.model_validate(row)


@router.patch("/schedules/{schedule_id}", response_model=ScheduleOut)
def update_schedule(schedule_id: int, body: ScheduleUpdate, response: Response,
                    if_match: str | None = Header(default=None),
                    ctx: Ctx = Depends(api_ctx)) -> ScheduleOut:
    row = surveys.get_schedule(ctx.session, ctx.principal, schedule_id, "update")
    return ctx.updated(row, if_match, response,
                       lambda: surveys.update_schedule(ctx.session, ctx.principal, row, body),
                       lambda: ScheduleOut.model_validate(row))


@router.delete("/schedules/{schedule_id}", status_code=204)
def delete_schedule(schedule_id: int, if_match: str | None = Header(default=None),
                    ctx: Ctx = Depends(api_ctx)) -> Response:
    row = surveys.get_schedule(ctx.session, ctx.principal, schedule_id, "delete")
    return ctx.deleted(row, if_match,
                       lambda: surveys.delete_schedule(ctx.session, ctx.principal, row))


# --- the public answer ---------------------------------------------------------------------

def store_answer(token: str, score: Any, comment: Any) -> dict[str, Any]:
    """Answer in its own unit of work; returns what the customer may see (kind and score)."""
    with public_session(write=True) as session:
        response = surveys.answer(session, token, score, comment)
        out = {"status": "answered", "kind": response.kind, "score": response.score}
        session.commit()
        return out


@router.post("/answer/{token}", summary="Answer a survey (public, no login)",
             description="`{\"score\": n, \"comment\": \"...\"}` (NPS 0–10, CSAT 1–5; comment up "
             "to 2,000 characters). 422 when the link is not valid, 409 when already answered, "
             "410 when expired, 429 past the per-address rate limit. Never says whose survey "
             "it is.")
async def answer(token: str, request: Request) -> JSONResponse:
    surveys.rate_limit(client_address(request))
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_ANSWER_BYTES:
            raise Problem("the answer is too large", field="body", status=413,
                          title="Payload too large")
    try:
        doc = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise Problem("the body is not valid JSON", field="body", title="Malformed JSON") from None
    if not isinstance(doc, dict):
        raise ValidationProblem("the body must be a JSON object", field="body")
    unknown = sorted(set(doc) - {"score", "comment"})
    if unknown:
        raise ValidationProblem(f"unknown field {unknown[0][:40]!r}", field=unknown[0][:40])
    out = await run_in_threadpool(store_answer, token, doc.get("score"), doc.get("comment"))
    return JSONResponse(out)
