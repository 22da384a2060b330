"""Lead pages: the list (filters, search, SLA badge, score), a lead's page (fields, BANT,
status change, reassignment, conversion, activities, engagements, score factors), and the
create and edit forms.

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
from sqlalchemy.orm.exc import StaleDataError

from accord.access import audit
from accord.access.policy import GRANTS, can, scope_for
from accord.core.errors import (
    Conflict,
    Forbidden,
    NotFound,
    PreconditionRequired,
    Problem,
    ValidationProblem,
)
from accord.core.settings import get_settings
from accord.customers import accounts as accounts_service
from accord.models import Deal, Lead, User
from accord.models.sales import AUTHORITY_LEVELS, DISQUALIFY_REASONS, LEAD_STATUSES, TIMELINES
from accord.sales import conversion, leads, pipelines
from accord.sales.leads_schemas import LeadAssignIn, LeadCreate, LeadStatusIn, LeadUpdate
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
NOTICES = {"created": "Lead created.", "status": "Status changed.", "updated": "Changes saved.",
           "assigned": "Lead reassigned."}
CONVERT_FIELDS = ("deal_name", "pipeline_id", "amount", "currency", "expected_close_date",
                  "customer_id")
ID_FIELDS = ("pipeline_id", "customer_id")
# Service and schema field names → the convert form's fields.
CONVERT_FIELD_OF = {"name": "deal_name", "deal_name": "deal_name", "pipeline_id": "pipeline_id",
                    "amount": "amount", "currency": "currency", "customer_id": "customer_id",
                    "expected_close_date": "expected_close_date"}
# A record the convert form names that does not exist (or is out of scope): its field.
NOT_FOUND_FIELD = {"customer": "customer_id", "pipeline": "pipeline_id"}
# Roles that may own a lead: those the policy lets update leads at all.
OWNER_ROLES = tuple(role for role, grants in GRANTS.items() if "update" in grants.get("leads", {}))
STALE = ("Someone else changed this lead while you were working on it, so your changes were not "
         "saved. Reload the page to see the current values, then make your changes again.")
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
    values = _values(request)
    query = dict(values)
    if query.get("owner_id") == "me":
        query["owner_id"] = str(ctx.principal.user_id)
    error: ValidationProblem | None = None
    rows: list[Any] = []
    next_cursor = None
    try:
        found, next_cursor = leads.list_leads(ctx.session, ctx.principal,
                                              leads.list_params(query))
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
               alert: str = "", status_code: int = 200, *, stale: bool = False,
               lead: dict[str, Any] | None = None, version: int | None = None) -> Response:
    """The lead form: a new lead, or (with `lead` and `version`) an edit."""
    return render(request, "sales/leads/form.html", {
        "values": values, "errors": errors or {}, "alert": alert, "stale": stale,
        "lead": lead, "record_version": version,
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
        errors = form_errors(exc, "last_name")
    except Forbidden:
        raise
    except Problem as exc:
        ctx.session.rollback()
        errors = {(exc.field or "last_name").partition(".")[0]: exc.detail}
    alert = " ".join(v for k, v in errors.items() if k not in FORM_FIELDS)
    return _form_page(request, values, {k: v for k, v in errors.items() if k in FORM_FIELDS},
                      alert or "The lead was not saved: please correct the highlighted fields.",
                      status_code=422)


# --- detail, status change, reassignment, conversion -------------------------------------------

def _may_assign(ctx: WebCtx, lead: Lead) -> bool:
    """What `leads.assign` allows: update over the team's or everyone's leads (display only;
    the service decides)."""
    return (scope_for(ctx.principal, leads.RESOURCE, "update") in ("team", "all")
            and leads.in_scope(ctx.principal, lead, "update"))


def _owner_choices(ctx: WebCtx) -> dict[int, tuple[str, int | None]]:
    """People a lead can be given to: active users who may work leads, within the viewer's
    update scope (the team, or everyone). Id → (name, team)."""
    scope = scope_for(ctx.principal, leads.RESOURCE, "update")
    stmt = select(User.id, User.full_name, User.team_id).where(
        User.is_active.is_(True), User.role.in_(OWNER_ROLES))
    if scope == "team":
        team = ctx.principal.team_id
        stmt = stmt.where(User.id == ctx.principal.user_id if team is None else
                          (User.team_id == team) | (User.id == ctx.principal.user_id))
    elif scope != "all":
        return {}
    return {r.id: (r.full_name, r.team_id)
            for r in ctx.session.execute(stmt.order_by(User.full_name, User.id))}


def _convert_defaults(lead: Lead, choices: list[Any]) -> dict[str, str]:
    d = conversion.deal_defaults(lead)
    default_pipeline = next((p.id for p in choices if p.kind == "new_business"),
                            choices[0].id if choices else None)
    return {"deal_name": d.name, "pipeline_id": str(default_pipeline or ""),
            "amount": str(d.amount), "currency": d.currency or get_settings().default_currency,
            "expected_close_date": d.expected_close_date.isoformat(), "customer_id": "",
            "create_deal": "yes"}


def _converted_links(ctx: WebCtx, lead: Lead) -> dict[str, Any]:
    account_name = ""
    if lead.account_id is not None:
        try:
            account_name = accounts_service.get_account(ctx.session, ctx.principal,
                                                        lead.account_id).name
        except (NotFound, Forbidden):
            account_name = ""
    deal_id = ctx.session.scalar(select(Deal.id).where(Deal.lead_id == lead.id)
                                 .order_by(Deal.id).limit(1))
    return {"customer_id": lead.customer_id, "account_id": lead.account_id,
            "account_name": account_name, "contact_id": lead.contact_id, "deal_id": deal_id}


def _detail(ctx: WebCtx, lead_id: int, *, notice: str = "", alert: str = "",
            status_errors: dict[str, str] | None = None,
            assign_errors: dict[str, str] | None = None,
            convert_values: dict[str, str] | None = None,
            convert_errors: dict[str, str] | None = None) -> dict[str, Any]:
    lead = leads.get_lead(ctx.session, ctx.principal, lead_id)
    owners = _owners(ctx, {lead.owner_id} if lead.owner_id else set())
    row = _row(lead, owners)
    factors = []
    for group in ("fit", "engagement", "predicted"):
        for f in (lead.score_factors or {}).get(group) or []:
            if isinstance(f, dict):
                factors.append({"group": group, "factor": str(f.get("factor", "")),
                                "points": f.get("points", f.get("log_odds"))})
    can_edit = leads.in_scope(ctx.principal, lead, "update")
    may_assign = can_edit and lead.status != "converted" and _may_assign(ctx, lead)
    owner_choices = [(uid, name) for uid, (name, _) in _owner_choices(ctx).items()] \
        if may_assign else []
    convert: dict[str, Any] | None = None
    if can_edit and lead.status == "qualified" and can(ctx.principal, "sales_config", "read"):
        choices = pipelines.list_pipelines(ctx.session, ctx.principal, active_only=True)
        convert = {
            "data": convert_values or _convert_defaults(lead, choices),
            "errors": convert_errors or {},
            "pipelines": [(p.id, p.name) for p in choices],
            "matched_customer_id": lead.customer_id,
        }
    return {
        **row, "notice": notice, "alert": alert,
        "engagements": [{"kind": e.kind, "at": e.occurred_at, "detail": e.detail}
                        for e in leads.engagements(ctx.session, lead)],
        "factors": factors, "formula": str((lead.score_factors or {}).get("formula") or ""),
        "can_edit": can_edit and lead.status != "converted",
        "moves": sorted(leads.TRANSITIONS[lead.status]),
        "reasons": DISQUALIFY_REASONS, "status_errors": status_errors or {},
        "version": lead.version,
        "assign": {"owners": owner_choices, "errors": assign_errors or {},
                   "current": lead.owner_id} if may_assign else None,
        "convert": convert,
        "converted": _converted_links(ctx, lead) if lead.status == "converted" else None,
        "show_activities": can(ctx.principal, "activities", "read"),
    }


def _show(request: Request, ctx: WebCtx, lead_id: int, status_code: int = 200,
          **parts: Any) -> Response:
    """The lead page (also re-shown after a refused form, with its errors), its read audited."""
    if request.method != "GET":
        ctx.session.rollback()  # nothing of a refused form is kept
    context = _detail(ctx, lead_id, **parts)  # plain values: safe after the transaction
    if request.method != "GET":
        ctx.session.rollback()  # SQLite: release the write lock before the read is audited
    audit.record_read(ctx.principal, leads.RESOURCE, [lead_id], leads.PERSONAL_FIELDS,
                      {"via": "web.detail"})
    return render(request, "sales/leads/detail.html", context, status_code=status_code)


@router.get(BASE + "/{lead_id}")
def lead_detail(request: Request, lead_id: Annotated[int, Path(ge=1, le=MAX_ID)],
                done: Annotated[str | None, Query(max_length=40)] = None,
                ctx: WebCtx = Depends(web_ctx)) -> Response:
    return _show(request, ctx, lead_id, notice=NOTICES.get(done or "", ""))


def _seen_version(ctx: WebCtx) -> int:
    seen = ctx.field("version")
    if not (seen.isascii() and seen.isdigit() and len(seen) <= 9):
        raise PreconditionRequired("The form did not say which version of the lead it changes. "
                                   "Reload the page and try again.", field="version")
    return int(seen)


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
        except StaleDataError:
            errors = {"status": "Someone else changed this lead; reload the page and try again."}
            status = 412
        except Problem as exc:
            errors = {exc.field or "status": exc.detail}
            status = exc.status
    return _show(request, ctx, lead_id, status, status_errors=errors)


@router.post(BASE + "/{lead_id}/assign")
def lead_assign(request: Request, lead_id: Annotated[int, Path(ge=1, le=MAX_ID)],
                ctx: WebCtx = Depends(web_ctx)) -> Response:
    lead = leads.get_lead(ctx.session, ctx.principal, lead_id, "update")
    if not _may_assign(ctx, lead):
        raise Forbidden("Your role may not reassign leads.")
    if _seen_version(ctx) != lead.version:
        return _show(request, ctx, lead_id, 412, alert=STALE)
    raw = ctx.field("owner_id")
    choices = _owner_choices(ctx)
    owner = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 19 else 0
    if owner not in choices:
        return _show(request, ctx, lead_id, 422,
                     assign_errors={"owner_id": "Choose one of the people listed."})
    try:
        # the lead follows its new owner into their team
        leads.assign(ctx.session, ctx.principal, lead,
                     LeadAssignIn(owner_id=owner, team_id=choices[owner][1]))
        ctx.commit()
    except Forbidden:
        raise
    except StaleDataError:
        return _show(request, ctx, lead_id, 412, alert=STALE)
    except Problem as exc:
        return _show(request, ctx, lead_id, 422, assign_errors={"owner_id": exc.detail})
    return RedirectResponse(f"{BASE}/{lead_id}?done=assigned", status_code=303)


def _convert_payload(lead: Lead, values: dict[str, str], create_deal: bool
                     ) -> tuple[dict[str, Any], dict[str, str]]:
    """The form as a `ConvertIn` body (blank fields left to the service's defaults), and the
    id fields that are not ids at all."""
    errors: dict[str, str] = {}
    payload: dict[str, Any] = {"create_deal": create_deal}
    names = ("deal_name", "pipeline_id", "amount", "currency", "expected_close_date") \
        if create_deal else ()
    if lead.customer_id is None:
        names = (*names, "customer_id")
    for name in names:
        value = values[name]
        if value == "":
            continue
        if name in ID_FIELDS and not (value.isascii() and value.isdigit()
                                      and 1 <= int(value) <= MAX_ID):
            errors[name] = "Must be a record number."
            continue
        payload[name] = value
    return payload, errors


def _convert_errors(exc: ValidationError | Problem) -> dict[str, str]:
    if isinstance(exc, ValidationError):
        found = form_errors(exc, "")
    else:
        field = (exc.field or "").partition(".")[0]
        if not field and isinstance(exc, NotFound):  # "customer 9 does not exist"
            field = NOT_FOUND_FIELD.get(exc.detail.partition(" ")[0], "")
        found = {field: exc.detail[:1].upper() + exc.detail[1:]}
    errors: dict[str, str] = {}
    for key, message in found.items():
        errors.setdefault(CONVERT_FIELD_OF.get(key, "_form"), message)
    return errors


@router.post(BASE + "/{lead_id}/convert")
def lead_convert(request: Request, lead_id: Annotated[int, Path(ge=1, le=MAX_ID)],
                 ctx: WebCtx = Depends(web_ctx)) -> Response:
    """All or nothing: on any refusal the service's savepoint is rolled back, and the page is
    shown again with the reason next to the field it concerns."""
    lead = leads.get_lead(ctx.session, ctx.principal, lead_id, "update")
    values = {name: ctx.field(name) for name in CONVERT_FIELDS}
    create_deal = ctx.field("create_deal") == "yes"
    values["create_deal"] = "yes" if create_deal else ""
    if _seen_version(ctx) != lead.version:
        return _show(request, ctx, lead_id, 412, alert=STALE)
    payload, errors = _convert_payload(lead, values, create_deal)
    status = 422
    if not errors:
        try:
            result = conversion.convert_lead(ctx.session, ctx.principal, lead,
                                             conversion.ConvertIn(**payload))
            ctx.commit()
            target = f"/sales/deals/{result.deal_id}" if result.deal_id is not None \
                else f"/customers/{result.customer_id}"
            return RedirectResponse(target, status_code=303)
        except ValidationError as exc:
            errors = _convert_errors(exc)
        except Forbidden:
            raise
        except StaleDataError:
            return _show(request, ctx, lead_id, 412, alert=STALE)
        except Problem as exc:
            errors = _convert_errors(exc)
            # a record named in the form and not found is a mistake in the form, not a 404 page
            status = 422 if isinstance(exc, NotFound | ValidationProblem) else exc.status
    return _show(request, ctx, lead_id, status, convert_values=values, convert_errors=errors,
                 alert="The lead was not converted; nothing was changed. "
                       + errors.get("_form", ""))


# --- edit ----------------------------------------------------------------------------------------

def _lead_values(lead: Lead) -> dict[str, str]:
    return {name: "" if getattr(lead, name) is None else str(getattr(lead, name))
            for name in FORM_FIELDS}


def _edit_page(request: Request, ctx: WebCtx, lead: Lead, values: dict[str, str], *,
               version: int, errors: dict[str, str] | None = None, alert: str = "",
               stale: bool = False, status_code: int = 200) -> Response:
    if request.method != "GET":
        ctx.session.rollback()  # drop a half-applied change; the name shown is the stored one
    return _form_page(request, values, errors, alert, status_code, stale=stale,
                      lead={"id": lead.id, "name": _row(lead, {})["name"]}, version=version)


def _editable(ctx: WebCtx, lead_id: int) -> Lead:
    lead = leads.get_lead(ctx.session, ctx.principal, lead_id, "update")
    if lead.status == "converted":
        raise Conflict("A converted lead cannot be changed; its customer and deal carry on.")
    return lead


@router.get(BASE + "/{lead_id}/edit")
def edit_lead(request: Request, lead_id: Annotated[int, Path(ge=1, le=MAX_ID)],
              ctx: WebCtx = Depends(web_ctx)) -> Response:
    lead = _editable(ctx, lead_id)
    audit.record_read(ctx.principal, leads.RESOURCE, [lead_id], leads.PERSONAL_FIELDS,
                      {"via": "web.edit"})
    return _edit_page(request, ctx, lead, _lead_values(lead), version=lead.version)


@router.post(BASE + "/{lead_id}/edit")
def update_lead(request: Request, lead_id: Annotated[int, Path(ge=1, le=MAX_ID)],
                ctx: WebCtx = Depends(web_ctx)) -> Response:
    lead = _editable(ctx, lead_id)
    values = {name: ctx.field(name) for name in FORM_FIELDS}
    seen = _seen_version(ctx)
    if seen != lead.version:  # what If-Match does for the API
        return _edit_page(request, ctx, lead, values, version=seen, alert=STALE, stale=True,
                          status_code=412)
    errors: dict[str, str] = {}
    if not any(values[k] for k in ("first_name", "last_name", "company", "email", "phone")):
        errors["last_name"] = "A lead needs a name, a company, an e-mail address or a phone."
    try:
        data = LeadUpdate(**{k: (v or None) for k, v in values.items()})
        if not errors:
            leads.update_lead(ctx.session, ctx.principal, lead, data)
            ctx.commit()
            return RedirectResponse(f"{BASE}/{lead_id}?done=updated", status_code=303)
    except ValidationError as exc:
        errors = {**form_errors(exc, "last_name"), **errors}
    except Forbidden:
        raise
    except StaleDataError:
        return _edit_page(request, ctx, lead, values, version=seen, alert=STALE, stale=True,
                          status_code=412)
    except Problem as exc:
        errors = {(exc.field or "last_name").partition(".")[0]: exc.detail, **errors}
    stray = " ".join(v for k, v in errors.items() if k not in FORM_FIELDS)
    return _edit_page(request, ctx, lead, values, version=seen,
                      errors={k: v for k, v in errors.items() if k in FORM_FIELDS},
                      alert=stray or "The lead was not saved: please correct the highlighted "
                      "fields.", status_code=422)
