"""REST endpoints for leads, lead forms (and their public submission), and assignment rules:
parse, call the service, serialise."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Header, Request, Response, UploadFile
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from accord.access import audit
from accord.access.deps import Ctx, api_ctx
from accord.core.concurrency import etag
from accord.core.db import session_factory
from accord.core.errors import Problem, ValidationProblem
from accord.core.ratelimit import throttle_client
from accord.models import Lead
from accord.sales import assignment, forms, lead_import, leads
from accord.sales.leads_schemas import (
    AssignmentRuleCreate,
    AssignmentRuleOut,
    AssignmentRuleUpdate,
    EngagementOut,
    ImportReportOut,
    LeadAssignIn,
    LeadCreate,
    LeadFormCreate,
    LeadFormOut,
    LeadFormUpdate,
    LeadOut,
    LeadStatusIn,
    LeadUpdate,
)

router = APIRouter()

LIST_HELP = (
    "Filters: `owner_id`, `team_id`, `status`, `source`, `country`, `industry`, `customer_id`, "
    "`assignment_rule_id`, `score`/`fit_score`/`engagement_score` (`__gte`, `__lte`, `__gt`, "
    "`__lt`), `created_at`, `updated_at`, `first_touch_due_at` (same operators), "
    "`sla=due|met|breached|overdue` (overdue: not touched and past the first-touch deadline), "
    "`email` (normalised); `__in` takes comma-separated values. `q` searches a name or company "
    "prefix, an e-mail or an id. `sort=-id` (default), `created_at`, `updated_at`, `score`, "
    "`first_touch_due_at` (prefix `-` for descending); keyset pagination with `cursor` and "
    "`limit`. The list filtered by `owner_id` (or `team_id`) and `status` sorted by id walks "
    "the index `ix_leads_owner_status_id` (`ix_leads_team_status_id`)."
)
READ_FIELDS = leads.PERSONAL_FIELDS
CORS = {"Access-Control-Allow-Origin": "*"}


# --- leads ---------------------------------------------------------------------------------------

@router.get("/leads", tags=["leads"], summary="List leads", description=LIST_HELP)
def list_leads(request: Request, ctx: Ctx = Depends(api_ctx)) -> dict[str, Any]:
    rows, cursor = leads.list_leads(ctx.session, ctx.principal,
                                      leads.list_params(dict(request.query_params)))
    items = [leads.to_out(lead) for lead in rows]
    ctx.session.rollback()
    audit.record_read(ctx.principal, leads.RESOURCE, [i.id for i in items], READ_FIELDS,
                      {"via": "api.list"})
    return {"items": items, "next_cursor": cursor}


@router.post("/leads", tags=["leads"], status_code=201, response_model=LeadOut,
             summary="Create a lead (source: api); the caller owns it")
def create_lead(body: LeadCreate, ctx: Ctx = Depends(api_ctx)) -> Response:
    return ctx.created(
        lambda: leads.to_out(leads.create_lead(ctx.session, ctx.principal, body)), body,
        headers=lambda out: {"ETag": etag(out.version), "Location": f"/api/v1/leads/{out.id}"})


@router.post("/leads/import", tags=["leads"], response_model=ImportReportOut,
             summary="Import leads from a CSV, JSON Lines or Excel file",
             description="Bad rows are reported with their line number and reason; the good "
             "rows land. Importing the same file again creates nothing new.")
def import_leads(file: UploadFile, ctx: Ctx = Depends(api_ctx)) -> ImportReportOut:
    suffix = Path(file.filename or "leads.csv").suffix[:10]
    with tempfile.NamedTemporaryFile(suffix=suffix) as tmp:
        while chunk := file.file.read(1 << 20):
            tmp.write(chunk)
        tmp.flush()
        report = lead_import.import_leads(ctx.session, ctx.principal, tmp.name,
                                          (file.filename or "upload")[:200])
    ctx.commit()
    return ImportReportOut(**report.as_dict())


@router.get("/leads/{lead_id}", tags=["leads"], response_model=LeadOut)
def get_lead(lead_id: int, response: Response, ctx: Ctx = Depends(api_ctx)) -> LeadOut:
    lead = leads.get_lead(ctx.session, ctx.principal, lead_id)
    out = leads.to_out(lead)
    ctx.session.rollback()
    audit.record_read(ctx.principal, leads.RESOURCE, [lead_id], READ_FIELDS, {"via": "api.get"})
    response.headers["ETag"] = etag(out.version)
    return out


@router.get("/leads/{lead_id}/engagements", tags=["leads"],
            response_model=list[EngagementOut])
def lead_engagements(lead_id: int, ctx: Ctx = Depends(api_ctx)) -> list[EngagementOut]:
    lead = leads.get_lead(ctx.session, ctx.principal, lead_id)
    return [EngagementOut.model_validate(e) for e in leads.engagements(ctx.session, lead)]


def _change_lead(ctx: Ctx, lead_id: int, if_match: str | None, response: Response,
                 change: Callable[[Lead], object]) -> LeadOut:
    """One write to a lead the caller may update: `change(lead)` under `If-Match`, answered
    with the lead as it is now."""
    lead = leads.get_lead(ctx.session, ctx.principal, lead_id, "update")
    return ctx.updated(lead, if_match, response, lambda: change(lead),
                       lambda: leads.to_out(lead))


@router.patch("/leads/{lead_id}", tags=["leads"], response_model=LeadOut,
              description="Needs `If-Match`. `status` follows the same transitions as "
              "`POST /leads/{id}/status`.")
def update_lead(lead_id: int, body: LeadUpdate, response: Response,
                if_match: str | None = Header(default=None),
                ctx: Ctx = Depends(api_ctx)) -> LeadOut:
    return _change_lead(ctx, lead_id, if_match, response,
                        lambda lead: leads.update_lead(ctx.session, ctx.principal, lead, body))


@router.post("/leads/{lead_id}/status", tags=["leads"], response_model=LeadOut,
             summary="Move a lead through qualification",
             description="new → working/nurturing/qualified/disqualified; working → "
             "nurturing/qualified/disqualified; nurturing → working/qualified/disqualified; "
             "qualified → working/nurturing/disqualified; disqualified → working/nurturing. "
             "Anything else is a 409; disqualifying needs `disqualify_reason`.")
def change_status(lead_id: int, body: LeadStatusIn, response: Response,
                  if_match: str | None = Header(default=None),
                  ctx: Ctx = Depends(api_ctx)) -> LeadOut:
    return _change_lead(ctx, lead_id, if_match, response,
                        lambda lead: leads.change_status(ctx.session, ctx.principal, lead, body))


@router.post("/leads/{lead_id}/assign", tags=["leads"], response_model=LeadOut)
def assign_lead(lead_id: int, body: LeadAssignIn, response: Response,
                if_match: str | None = Header(default=None),
                ctx: Ctx = Depends(api_ctx)) -> LeadOut:
    return _change_lead(ctx, lead_id, if_match, response,
                        lambda lead: leads.assign(ctx.session, ctx.principal, lead, body))


@router.delete("/leads/{lead_id}", tags=["leads"], status_code=204)
def delete_lead(lead_id: int, if_match: str | None = Header(default=None),
                ctx: Ctx = Depends(api_ctx)) -> Response:
    lead = leads.get_lead(ctx.session, ctx.principal, lead_id, "delete")
    return ctx.deleted(lead, if_match,
                       lambda: leads.delete_lead(ctx.session, ctx.principal, lead))


# --- lead forms: management ----------------------------------------------------------------------

@router.get("/lead-forms", tags=["lead forms"], response_model=list[LeadFormOut])
def list_forms(ctx: Ctx = Depends(api_ctx)) -> list[LeadFormOut]:
    return [LeadFormOut.model_validate(f) for f in forms.list_forms(ctx.session, ctx.principal)]


@router.post("/lead-forms", tags=["lead forms"], status_code=201, response_model=LeadFormOut)
def create_form(body: LeadFormCreate, ctx: Ctx = Depends(api_ctx)) -> Response:
    return ctx.created(
        lambda: LeadFormOut.model_validate(forms.create_form(ctx.session, ctx.principal, body)),
        body, headers=lambda out: {"ETag": etag(out.version),
                                   "Location": f"/api/v1/lead-forms/{out.id}"})


@router.get("/lead-forms/{form_id}", tags=["lead forms"], response_model=LeadFormOut)
def get_form(form_id: int, response: Response, ctx: Ctx = Depends(api_ctx)) -> LeadFormOut:
    form = forms.get_form(ctx.session, ctx.principal, form_id)
    response.headers["ETag"] = etag(form.version)
    return LeadFormOut.model_validate(form)


@router.patch("/lead-forms/{form_id}", tags=["lead forms"], response_model=LeadFormOut)
def update_form(form_id: int, body: LeadFormUpdate, response: Response,
                if_match: str | None = Header(default=None),
                ctx: Ctx = Depends(api_ctx)) -> LeadFormOut:
    form = forms.get_form(ctx.session, ctx.principal, form_id, "update")
    return ctx.updated(form, if_match, response,
                       lambda: forms.update_form(ctx.session, ctx.principal, form, body),
                       lambda: LeadFormOut.model_validate(form))


@router.delete("/lead-forms/{form_id}", tags=["lead forms"], status_code=204)
def delete_form(form_id: int, if_match: str | None = Header(default=None),
                ctx: Ctx = Depends(api_ctx)) -> Response:
    form = forms.get_form(ctx.session, ctx.principal, form_id, "delete")
    return ctx.deleted(form, if_match,
                       lambda: forms.delete_form(ctx.session, ctx.principal, form))


# --- lead forms: the public submission endpoint --------------------------------------------------

async def _submitted(request: Request) -> dict[str, Any]:
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > forms.MAX_FORM_BYTES:
            raise Problem(f"the submission is larger than {forms.MAX_FORM_BYTES // 1024} KB",
                          field="body", status=413, title="Payload too large")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        try:
            doc = json.loads(raw or b"{}")
        except (ValueError, UnicodeDecodeError):
            raise Problem("the body is not valid JSON", field="body",
                          title="Malformed JSON") from None
        if not isinstance(doc, dict):
            raise ValidationProblem("the body must be a JSON object", field="body")
        return doc
    if content_type == "application/x-www-form-urlencoded":
        try:
            pairs = parse_qsl(raw.decode(), keep_blank_values=True, max_num_fields=100)
        except (ValueError, UnicodeDecodeError):
            raise ValidationProblem("the form data cannot be read", field="body") from None
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise ValidationProblem(f"field {key[:60]!r} is sent twice", field=key[:60])
            out[key] = value
        return out
    raise Problem("send application/json or application/x-www-form-urlencoded",
                  field="Content-Type", status=415, title="Unsupported media type")


def _accepted(request: Request) -> Response:
    """One answer for every accepted submission (new, repeated or caught by the honeypot)."""
    if "text/html" in request.headers.get("accept", "") and "json" not in request.headers.get(
            "content-type", ""):
        from accord.web.rendering import render

        return render(request, "sales/leads/thanks.html", {}, headers=CORS)
    return JSONResponse({"status": "received"}, status_code=200, headers=CORS)


@router.post("/forms/{slug}", tags=["lead forms"], summary="Submit a public web form",
             description="No login. JSON or form-encoded (`application/x-www-form-urlencoded`). "
             "Only the form's fields are accepted, plus `consent` (a checkbox: on/true/1/yes) "
             f"and the honeypot `{forms.HONEYPOT}`, which must stay empty (hide it with CSS). "
             "Rate-limited per client address (429 with Retry-After). Always answers "
             "`{\"status\": \"received\"}` when accepted.",
             response_model=dict[str, str])
async def submit_form(slug: str, request: Request) -> Response:
    throttle_client(forms.SUBMISSIONS_PER_CLIENT, request, CORS,
                    message="too many submissions from this address; try again later")
    try:
        raw = await _submitted(request)
        await run_in_threadpool(_store, slug, raw)
    except Problem as exc:  # a page posting with fetch() may read why it was refused
        exc.headers = {**exc.headers, **CORS}
        raise
    return _accepted(request)


def _store(slug: str, raw: dict[str, Any]) -> None:
    session = session_factory(write=True)()
    try:
        form = forms.active_form(session, slug)
        forms.submit(session, form, raw)
        session.commit()
    finally:
        session.rollback()
        session.close()


@router.options("/forms/{slug}", include_in_schema=False)
def form_preflight(slug: str) -> Response:
    return Response(status_code=204, headers={
        **CORS, "Access-Control-Allow-Methods": "POST, OPTIONS",
        "Access-Control-Allow-Headers": "Content-Type", "Access-Control-Max-Age": "86400"})


# --- assignment rules ----------------------------------------------------------------------------

@router.get("/assignment-rules", tags=["assignment rules"],
            response_model=list[AssignmentRuleOut])
def list_rules(ctx: Ctx = Depends(api_ctx)) -> list[AssignmentRuleOut]:
    return [AssignmentRuleOut.model_validate(r)
            for r in assignment.list_rules(ctx.session, ctx.principal)]


@router.post("/assignment-rules", tags=["assignment rules"], status_code=201,
             response_model=AssignmentRuleOut)
def create_rule(body: AssignmentRuleCreate, ctx: Ctx = Depends(api_ctx)) -> Response:
    return ctx.created(
        lambda: AssignmentRuleOut.model_validate(
            assignment.create_rule(ctx.session, ctx.principal, body)),
        body, headers=lambda out: {"ETag": etag(out.version),
                                   "Location": f"/api/v1/assignment-rules/{out.id}"})


@router.get("/assignment-rules/{rule_id}", tags=["assignment rules"],
            response_model=AssignmentRuleOut)
def get_rule(rule_id: int, response: Response,
             ctx: Ctx = Depends(api_ctx)) -> AssignmentRuleOut:
    rule = assignment.get_rule(ctx.session, ctx.principal, rule_id)
    response.headers["ETag"] = etag(rule.version)
    return AssignmentRuleOut.model_validate(rule)


@router.patch("/assignment-rules/{rule_id}", tags=["assignment rules"],
              response_model=AssignmentRuleOut)
def update_rule(rule_id: int, body: AssignmentRuleUpdate, response: Response,
                if_match: str | None = Header(default=None),
                ctx: Ctx = Depends(api_ctx)) -> AssignmentRuleOut:
    rule = assignment.get_rule(ctx.session, ctx.principal, rule_id, "update")
    return ctx.updated(rule, if_match, response,
                       lambda: assignment.update_rule(ctx.session, ctx.principal, rule, body),
                       lambda: AssignmentRuleOut.model_validate(rule))


@router.delete("/assignment-rules/{rule_id}", tags=["assignment rules"], status_code=204)
def delete_rule(rule_id: int, if_match: str | None = Header(default=None),
                ctx: Ctx = Depends(api_ctx)) -> Response:
    rule = assignment.get_rule(ctx.session, ctx.principal, rule_id, "delete")
    return ctx.deleted(rule, if_match,
                       lambda: assignment.delete_rule(ctx.session, ctx.principal, rule))

