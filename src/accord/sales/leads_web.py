"""Lead pages: the list (filters, search, SLA badge, score), a lead's page (fields, BANT,
status change, engagements, score factors) and the create form.

The list uses the same allow-listed filter definition as `GET /api/v1/leads`; every write goes
through `accord.sales.leads` (policy, audit, events). Nothing from the query string is echoed
except through the autoescaping templates.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlalchemy import select

from accord.access import audit
from accord.access.policy import can
from accord.core.errors import Forbidden, NotFound, Problem, ValidationProblem
from accord.core.query import parse_list_params
from accord.core.settings import get_settings
from accord.models import User
from accord.models.sales import AUTHORITY_LEVELS, DISQUALIFY_REASONS, LEAD_STATUSES, TIMELINES
from accord.sales import leads
from accord.sales.leads_schemas import LeadCreate, LeadStatusIn
from accord.web.admin import form_errors
from accord.web.context import WebCtx, wants_partial, web_ctx
from accord.web.rendering import PageRoute, label, render

router = APIRouter(route_class=PageRoute, include_in_schema=False)

MAX_ID = 2**63 - 1
BASE = "/sales/leads"
SORTS = (("-id", "Newest first"), ("-score", "Highest score"),
         ("first_touch_due_at", "First-touch deadline"), ("-updated_at", "Recently updated"))
LIST_KEYS = ("q", "status", "owner_id", "sla", "sort", "cursor", "limit")
FORM_FIELDS = ("first_name", "last_name", "email", "phone", "company", "job_title", "website",
               "industry", "employees", "country", "notes", "budget", "budget_currency",
               "authority", "need", "timeline")
NOTICES = {"created": "Lead created.", "status": "Status changed."}
SLA_LABELS = {"due": "Due", "met": "Met", "breached": "Breached", "none": "—"}


def _values(request: Request) -> dict[str, str]:
    return {k: v.strip() for k, v in request.query_params.items()
            if v.strip() != "" and k in LIST_KEYS}


def _link(values: dict[str, str], **changes: str | None) -> str:
    merged = {k: v for k, v in {**values, **changes}.items() if v}
    return BASE + (f"?{urlencode(merged)}" if merged else "")


def _owners(ctx: WebCtx, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return dict(ctx.session.execute(select(User.id, User.full_name).where(User.id.in_(ids))).all())


def _row(lead: Any, owners: dict[int, str]) -> dict[str, Any]:
    out = leads.to_out(lead)
    name = " ".join(p for p in (out.first_name, out.last_name) if p) or out.email or \
        f"Lead {out.id}"
    return {"lead": out, "name": name, "owner": owners.get(out.owner_id or 0, ""),
            "sla": out.sla.state, "sla_label": SLA_LABELS[out.sla.state]}


@router.get(BASE)
def lead_list(request: Request, ctx: WebCtx = Depends(web_ctx)) -> Response:
    settings = get_settings()
    values = _values(request)
    query = dict(values)
    if query.get("owner_id") == "me":
        query["owner_id"] = str(ctx.principal.user_id)
    error: ValidationProblem | None = None
    rows: list[Any] = []
    next_cursor = None
    try:
        params = parse_list_params(query, leads.list_spec(), hidden=set(),
                                   default_limit=settings.page_size_default,
                                   max_limit=settings.page_size_max)
        found, next_cursor = leads.list_leads(ctx.session, ctx.principal, params)
        owners = _owners(ctx, {lead.owner_id for lead in found if lead.owner_id})
        rows = [_row(lead, owners) for lead in found]
    except ValidationProblem as exc:
        error = exc
    if rows:
        audit.record_read(ctx.principal, leads.RESOURCE, [r["lead"].id for r in rows],
                          leads.PERSONAL_FIELDS, {"via": "web.list"})
    context = {
        "rows": rows, "values": values, "error": error,
        "next_link": _link(values, cursor=next_cursor) if next_cursor else None,
        "first_link": _link(values, cursor=None) if "cursor" in values else None,
        "statuses": LEAD_STATUSES, "sorts": SORTS, "sla_states": leads.SLA_STATES,
        "filtered": any(k not in ("cursor", "limit", "sort") for k in values),
        "can_create": can(ctx.principal, "leads", "create"),
    }
    status = 422 if error is not None else 200
    if wants_partial(request):
        return render(request, "sales/leads/_results.html", context, status_code=status)
    return render(request, "sales/leads/list.html", context, status_code=status)


# --- create ------------------------------------------------------------------------------------

def _form_page(request: Request, values: dict[str, str], errors: dict[str, str] | None = None,
               alert: str = "", status_code: int = 200) -> Response:
    return render(request, "sales/leads/form.html", {
        "values": values, "errors": errors or {}, "alert": alert,
        "authorities": [(a, label(a)) for a in AUTHORITY_LEVELS],
        "timelines": [(t, label(t)) for t in TIMELINES],
    }, status_code=status_code)


@router.get(BASE + "/new")
def new_lead(request: Request, ctx: WebCtx = Depends(web_ctx)) -> Response:
    if not can(ctx.principal, "leads", "create"):
        raise Forbidden("Your role may not create leads.")
    return _form_page(request, dict.fromkeys(FORM_FIELDS, ""))


@router.post(BASE)
def create_lead(request: Request, ctx: WebCtx = Depends(web_ctx)) -> Response:
    if not can(ctx.principal, "leads", "create"):
        raise Forbidden("Your role may not create leads.")
    values = {name: ctx.field(name) for name in FORM_FIELDS}
    errors: dict[str, str] = {}
    try:
        data = LeadCreate(**{k: v for k, v in values.items() if v != ""})
        lead = leads.create_lead(ctx.session, ctx.principal, data, source="manual")
        lead_id = lead.id
        ctx.commit()
        return RedirectResponse(f"{BASE}/{lead_id}?done=created", status_code=303)
    except ValidationError as exc:
        errors = {k: v for k, v in form_errors(exc, "last_name").items()}
    except Forbidden:
        raise
    except Problem as exc:
        ctx.session.rollback()
        errors = {(exc.field or "last_name").partition(".")[0]: exc.detail}
    alert = " ".join(v for k, v in errors.items() if k not in FORM_FIELDS)
    return _form_page(request, values, {k: v for k, v in errors.items() if k in FORM_FIELDS},
                      alert or "The lead was not saved: please correct the highlighted fields.",
                      status_code=422)


# --- detail and status change -------------------------------------------------------------------

def _detail(ctx: WebCtx, lead_id: int, *, notice: str = "",
            status_errors: dict[str, str] | None = None) -> dict[str, Any]:
    lead = leads.get_lead(ctx.session, ctx.principal, lead_id)
    owners = _owners(ctx, {lead.owner_id} if lead.owner_id else set())
    row = _row(lead, owners)
    factors = []
    for group in ("fit", "engagement", "predicted"):
        for f in (lead.score_factors or {}).get(group) or []:
            if isinstance(f, dict):
                factors.append({"group": group, "factor": str(f.get("factor", "")),
                                "points": f.get("points", f.get("log_odds"))})
    return {
        **row, "notice": notice,
        "engagements": [{"kind": e.kind, "at": e.occurred_at, "detail": e.detail}
                        for e in leads.engagements(ctx.session, lead)],
        "factors": factors, "formula": str((lead.score_factors or {}).get("formula") or ""),
        "can_edit": leads.in_scope(ctx.principal, lead, "update"),
        "moves": sorted(leads.TRANSITIONS[lead.status]),
        "reasons": DISQUALIFY_REASONS, "status_errors": status_errors or {},
        "version": lead.version,
    }


@router.get(BASE + "/{lead_id}")
def lead_detail(request: Request, lead_id: Annotated[int, Path(ge=1, le=MAX_ID)],
                done: Annotated[str | None, Query(max_length=40)] = None,
                ctx: WebCtx = Depends(web_ctx)) -> Response:
    context = _detail(ctx, lead_id, notice=NOTICES.get(done or "", ""))
    audit.record_read(ctx.principal, leads.RESOURCE, [lead_id], leads.PERSONAL_FIELDS,
                      {"via": "web.detail"})
    return render(request, "sales/leads/detail.html", context)


@router.post(BASE + "/{lead_id}/status")
def lead_status(request: Request, lead_id: Annotated[int, Path(ge=1, le=MAX_ID)],
                ctx: WebCtx = Depends(web_ctx)) -> Response:
    lead = leads.get_lead(ctx.session, ctx.principal, lead_id, "update")
    seen = ctx.field("version")
    errors: dict[str, str] = {}
    status = 422
    if not (seen.isascii() and seen.isdigit()) or int(seen) != lead.version:
        errors = {"status": "Someone else changed this lead; reload the page and try again."}
        status = 412
    else:
        try:
            data = LeadStatusIn(status=ctx.field("status"),
                                disqualify_reason=ctx.field("disqualify_reason") or None,
                                note=ctx.field("note"))
            leads.change_status(ctx.session, ctx.principal, lead, data)
            ctx.commit()
            return RedirectResponse(f"{BASE}/{lead_id}?done=status", status_code=303)
        except ValidationError as exc:
            errors = form_errors(exc, "status")
        except (Forbidden, NotFound):
            raise
        except Problem as exc:
            ctx.session.rollback()
            errors = {exc.field or "status": exc.detail}
            status = exc.status
    ctx.session.rollback()
    context = _detail(ctx, lead_id, status_errors=errors)
    return render(request, "sales/leads/detail.html", context, status_code=status)
