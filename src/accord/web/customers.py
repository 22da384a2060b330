"""Customer list (search, filters, keyset pages), the customer 360° page, and the forms that
create and edit customers and log interactions.

The list uses the very same allow-listed filter definition as `GET /api/v1/customers`
(`service.list_spec` + `parse_list_params`), so the UI can never filter on something the API
refuses, and reads are audited the same way. Every write goes through the customer and
interaction services (policy, audit trail, events); this module only turns form fields into
their input schemas and their errors back into messages next to the right field.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Annotated, Any
from urllib.parse import urlencode

from babel import Locale
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlalchemy.orm.exc import StaleDataError

from accord.access import audit
from accord.access.policy import can, hidden_fields
from accord.analytics import recommend_view, score_view
from accord.core.contact import country_codes, fold
from accord.core.errors import Forbidden, NotFound, PreconditionRequired, Problem, ValidationProblem
from accord.core.query import parse_list_params
from accord.core.settings import get_settings
from accord.customers import custom_fields, service
from accord.customers.schemas import CustomerCreate, CustomerUpdate
from accord.integration import stewardship as integration_stewardship
from accord.interactions import service as interactions
from accord.interactions.schemas import InteractionFields
from accord.models import Customer, CustomFieldDefinition
from accord.models.customer import CHANNELS, LIFECYCLE_STAGES, VALUE_TIERS
from accord.models.interaction import DEPARTMENTS, DIRECTIONS
from accord.web import stewardship
from accord.web.admin import form_errors
from accord.web.context import WebCtx, is_htmx, wants_partial, web_ctx
from accord.web.rendering import PageRoute, channel_label, label, render

router = APIRouter(route_class=PageRoute, include_in_schema=False)

MAX_ID = 2**63 - 1
SORTS = (("-id", "Newest first"), ("name", "Name A–Z"), ("-updated_at", "Recently updated"),
         ("lifecycle_stage", "Lifecycle stage"))
SENSITIVE_LABELS = {"date_of_birth": "Date of birth", "national_id": "National ID",
                    "notes": "Notes"}
FIELD_LABELS = {"lifecycle_stage": "Lifecycle stage", "value_tier": "Value tier",
                "country": "Country", "q": "Search", "cursor": "Page", "limit": "Page size",
                "sort": "Sort order"}
# Fixed notices chosen by key: nothing from the query string is echoed into the page.
NOTICES = {"created": "Customer created.", "updated": "Changes saved.",
           "logged": "Interaction logged."}
# The profile fields every customer form carries (sensitive and custom fields are added per role).
PROFILE_FIELDS = ("title", "first_name", "last_name", "email", "phone", "country",
                  "lifecycle_stage", "value_tier", "preferred_channel", "preferred_language")
SCALAR_FIELDS = ("title", "first_name", "last_name", "country", "lifecycle_stage", "value_tier",
                 "preferred_channel", "preferred_language")
NAME_FIELDS = ("first_name", "last_name")  # text columns that are never null
INTERACTION_FIELDS = ("channel", "direction", "department", "subject", "body")
# The department a new interaction is filed under, by the role of whoever logs it.
ROLE_DEPARTMENT = {"sales": "sales", "support": "support", "marketing": "marketing",
                   "manager": "sales"}
STALE = ("Someone else changed this customer while you were editing it, so your changes were "
         "not saved. Reload the form to see the current values, then make your changes again.")


def _query_values(request: Request) -> dict[str, str]:
    """The submitted list parameters, without the empty ones a GET form sends for 'Any'."""
    values = {k: v.strip() for k, v in request.query_params.items() if v.strip() != ""}
    if "country" in values:
        values["country"] = values["country"].upper()
    return values


def _link(values: dict[str, str], **changes: str | None) -> str:
    merged = {**values, **changes}
    query = urlencode({k: v for k, v in merged.items() if v})
    return "/customers" + (f"?{query}" if query else "")


@router.get("/")
def home(ctx: WebCtx = Depends(web_ctx)) -> Response:
    return RedirectResponse("/customers", status_code=303)


@router.get("/customers")
def customer_list(request: Request, ctx: WebCtx = Depends(web_ctx)) -> Response:
    settings = get_settings()
    spec = service.list_spec(ctx.session, ctx.principal)
    values = _query_values(request)
    choice_fields = [d for d in custom_fields.list_fields(ctx.session, ctx.principal)
                     if d.type == "choice"] if can(ctx.principal, "custom_fields", "read") else []
    error: ValidationProblem | None = None
    items: list[Any] = []
    next_cursor: str | None = None
    try:
        params = parse_list_params(values, spec, hidden=service.hidden(ctx.principal),
                                   default_limit=settings.page_size_default,
                                   max_limit=settings.page_size_max)
        rows, next_cursor = service.list_customers(ctx.session, ctx.principal, params)
        items = [service.to_out(c, ctx.principal, with_contact_points=True) for c in rows]
    except ValidationProblem as exc:
        error = exc
    if items:
        audit.record_read(ctx.principal, "customers", [c.id for c in items],
                          service.read_fields(ctx.principal), {"via": "web.list"})
    error_field = ""
    if error is not None:
        name = (error.field or "").partition("__")[0]
        error_field = FIELD_LABELS.get(name, name.removeprefix("cf."))
    context = {
        "items": items, "values": values, "error": error, "error_field": error_field,
        "next_link": _link(values, cursor=next_cursor) if next_cursor else None,
        "first_link": _link(values, cursor=None) if "cursor" in values else None,
        "stages": spec.filters["lifecycle_stage"].choices or (),
        "tiers": spec.filters["value_tier"].choices or (),
        "choice_fields": choice_fields, "sorts": SORTS,
        "filtered": any(k not in ("cursor", "limit", "sort") for k in values),
        "can_create": can(ctx.principal, "customers", "create"),
    }
    status = 422 if error is not None else 200
    if wants_partial(request):
        return render(request, "customers/_results.html", context, status_code=status)
    return render(request, "customers/list.html", context, status_code=status)


# --- the customer form: choices, values, payloads, errors -----------------------------------------

@lru_cache(maxsize=32)
def _countries(locale: str) -> tuple[tuple[str, str], ...]:
    """ISO 3166 countries as (code, name in the viewer's language), sorted as people read them."""
    names = Locale.parse(locale).territories
    return tuple(sorted(((code, str(names.get(code, code))) for code in country_codes()),
                        key=lambda pair: fold(pair[1])))


@lru_cache(maxsize=32)
def _languages(locale: str) -> tuple[tuple[str, str], ...]:
    """ISO 639-1 languages as (code, name in the viewer's language)."""
    names = Locale.parse(locale).languages
    pairs = ((code, str(name)[:1].upper() + str(name)[1:]) for code, name in names.items()
             if len(code) == 2 and code.isalpha())
    return tuple(sorted(pairs, key=lambda pair: fold(pair[1])))


def _with_current(options: tuple[tuple[str, str], ...], current: str) -> list[tuple[str, str]]:
    """Keep a stored value selectable even when it is not among today's options."""
    out = list(options)
    if current and current not in {code for code, _ in out}:
        out.insert(0, (current, current))
    return out


def _sensitive_shown(ctx: WebCtx) -> list[str]:
    """Sensitive fields this role may see and so edit; the others are never read from a form."""
    hidden = hidden_fields(ctx.principal, "customers")
    return [name for name in SENSITIVE_LABELS if name not in hidden]


def _field_names(ctx: WebCtx, defs: list[CustomFieldDefinition], *, editing: bool) -> list[str]:
    names = [*PROFILE_FIELDS, *_sensitive_shown(ctx), *(f"cf.{d.key}" for d in defs)]
    return [*names, "stage_reason"] if editing else names


def _primary(points: list[Any]) -> Any | None:
    return next((p for p in points if p.is_primary), points[0] if points else None)


def _custom_text(defn: CustomFieldDefinition, value: Any) -> str:
    if value is None:
        return ""
    return value.isoformat() if isinstance(value, date) else str(value)


def _values_of(ctx: WebCtx, customer: Customer,
               defs: list[CustomFieldDefinition]) -> dict[str, str]:
    """The stored customer as form values (only what the role may see)."""
    email, phone = _primary(list(customer.emails)), _primary(list(customer.phones))
    values = {name: getattr(customer, name) or "" for name in SCALAR_FIELDS}
    values["email"] = email.email if email else ""
    values["phone"] = phone.phone if phone else ""
    for name in _sensitive_shown(ctx):
        raw = getattr(customer, name)
        values[name] = raw.isoformat() if isinstance(raw, date) else (raw or "")
    stored = custom_fields.values_for(ctx.session, ctx.principal, [customer.id])[customer.id]
    for d in defs:
        values[f"cf.{d.key}"] = _custom_text(d, stored.get(d.key))
    values["stage_reason"] = ""
    return values


def _same_custom(defn: CustomFieldDefinition, stored: Any, submitted: str) -> bool:
    if stored is None or submitted == "":
        return stored is None and submitted == ""
    try:
        if defn.type == "number":
            return Decimal(str(stored)) == Decimal(submitted)
        if defn.type == "date":
            return bool(stored == date.fromisoformat(submitted))
    except (InvalidOperation, ValueError):
        return False  # not a valid value: let the service say why
    return str(stored) == submitted


def _replace_primary(points: list[Any], attr: str, submitted: str) -> list[dict[str, Any]] | None:
    """The full list of contact points with the primary one replaced (None: unchanged).

    The form edits only the primary e-mail or phone; the others are sent back as they are,
    because a list sent to the service replaces the stored one.
    """
    current = _primary(points)
    if (getattr(current, attr) if current is not None else "") == submitted:
        return None
    out: list[dict[str, Any]] = []
    if current is None:
        out.append({attr: submitted, "is_primary": True})
    for p in points:
        if p is current:
            if submitted:  # a new address is not verified, whatever the old one was
                out.append({attr: submitted, "kind": p.kind, "is_primary": True})
            continue
        kept = {attr: getattr(p, attr), "kind": p.kind, "is_primary": False}
        if attr == "email":
            kept["verified"] = p.verified
        out.append(kept)
    return out


def _typed_input_errors(values: dict[str, str],
                        defs: list[CustomFieldDefinition]) -> dict[str, str]:
    """Number and date inputs that do not parse, in words people read (the browser's own
    checks are off: `novalidate`, so every message comes from one place)."""
    errors: dict[str, str] = {}
    for d in defs:
        raw = values[f"cf.{d.key}"]
        if not raw:
            continue
        try:
            if d.type == "number" and not Decimal(raw).is_finite():
                raise InvalidOperation
            if d.type == "date":
                date.fromisoformat(raw)
        except (InvalidOperation, ValueError):
            errors[f"cf.{d.key}"] = ("Must be a number." if d.type == "number"
                                     else "Must be a date (YYYY-MM-DD).")
    return errors


def _create_payload(values: dict[str, str], shown: list[str],
                    defs: list[CustomFieldDefinition]) -> dict[str, Any]:
    data: dict[str, Any] = {n: values[n] for n in (*SCALAR_FIELDS, *shown) if values[n] != ""}
    if values["email"]:
        data["emails"] = [{"email": values["email"], "is_primary": True}]
    if values["phone"]:
        data["phones"] = [{"phone": values["phone"], "is_primary": True}]
    custom = {d.key: values[f"cf.{d.key}"] for d in defs if values[f"cf.{d.key}"] != ""}
    if custom:
        data["custom"] = custom
    return data


def _update_payload(ctx: WebCtx, customer: Customer, values: dict[str, str], shown: list[str],
                    defs: list[CustomFieldDefinition]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name in (*SCALAR_FIELDS, *shown):
        data[name] = values[name] if values[name] != "" or name in NAME_FIELDS else None
    if values["stage_reason"]:
        data["stage_reason"] = values["stage_reason"]
    emails = _replace_primary(list(customer.emails), "email", values["email"])
    if emails is not None:
        data["emails"] = emails
    phones = _replace_primary(list(customer.phones), "phone", values["phone"])
    if phones is not None:
        data["phones"] = phones
    stored = custom_fields.values_for(ctx.session, ctx.principal, [customer.id])[customer.id]
    custom = {d.key: values[f"cf.{d.key}"] or None for d in defs
              if not _same_custom(d, stored.get(d.key), values[f"cf.{d.key}"])}
    if custom:
        data["custom"] = custom
    return data


def _form_field(problem_field: str | None) -> str:
    """A service or schema field path → the form field that shows its error."""
    head, _, rest = (problem_field or "").partition(".")
    if head == "custom":
        return f"cf.{rest}"
    return {"emails": "email", "phones": "phone"}.get(head, head)


def _message(detail: str, problem_field: str | None) -> str:
    text = detail.removeprefix(f"{problem_field}: ") if problem_field else detail
    return text[:1].upper() + text[1:]


def _errors_of(exc: ValidationError | Problem, names: list[str]) -> tuple[dict[str, str], str]:
    """Errors keyed by form field, and what concerns no field on the form (an alert)."""
    if isinstance(exc, ValidationError):
        found: dict[str, str] = {}
        for key, message in form_errors(exc, "first_name").items():
            found.setdefault(_form_field(key), message)
    else:
        found = {_form_field(exc.field): _message(exc.detail, exc.field)}
    errors = {k: v for k, v in found.items() if k in names}
    stray = [v for k, v in found.items() if k not in names]
    return errors, " ".join(stray)


def _kept_hint(others: int, one: str, many: str) -> str:
    if not others:
        return ""
    return (f"The customer's other {one} is kept." if others == 1
            else f"The customer's {others} other {many} are kept.")


def _form_page(request: Request, ctx: WebCtx, *, customer: Customer | None, version: int | None,
               values: dict[str, str], errors: dict[str, str] | None = None, alert: str = "",
               stale: bool = False, status_code: int = 200) -> Response:
    defs = custom_fields.visible_definitions(ctx.session, ctx.principal)
    locale = str(ctx.viewer.locale)
    other_emails = other_phones = 0
    if customer is not None:
        other_emails = max(len(customer.emails) - 1, 0)
        other_phones = max(len(customer.phones) - 1, 0)
    return render(request, "customers/form.html", {
        "customer": ({"id": customer.id, "display_name": customer.display_name}
                     if customer is not None else None),
        "record_version": version, "values": values, "errors": errors or {}, "alert": alert,
        "stale": stale,
        "countries": _with_current(_countries(locale), values.get("country", "")),
        "languages": _with_current(_languages(locale), values.get("preferred_language", "")),
        "stages": [(s, label(s)) for s in LIFECYCLE_STAGES],
        "tiers": [(t, label(t)) for t in VALUE_TIERS],
        "channels": [(c, channel_label(c)) for c in CHANNELS],
        "email_hint": _kept_hint(other_emails, "address", "addresses"),
        "phone_hint": (_kept_hint(other_phones, "number", "numbers")
                       or "International format, e.g. +44 20 7946 0958"),
        "sensitive": {n: SENSITIVE_LABELS[n] for n in _sensitive_shown(ctx)},
        "custom_defs": [{"key": d.key, "name": f"cf.{d.key}", "label": d.label, "type": d.type,
                         "choices": _with_current(tuple((c, c) for c in d.choices),
                                                  values.get(f"cf.{d.key}", "")),
                         "required": d.required, "help_text": d.help_text} for d in defs],
    }, status_code=status_code)


NOT_SAVED = "The customer was not saved: please correct the highlighted fields."


@router.get("/customers/new")
def new_customer(request: Request, ctx: WebCtx = Depends(web_ctx)) -> Response:
    if not can(ctx.principal, "customers", "create"):
        raise Forbidden("Your role may not create customers.")
    defs = custom_fields.visible_definitions(ctx.session, ctx.principal)
    values = dict.fromkeys(_field_names(ctx, defs, editing=False), "")
    values["lifecycle_stage"] = "awareness"
    return _form_page(request, ctx, customer=None, version=None, values=values)


@router.post("/customers")
def create_customer(request: Request, ctx: WebCtx = Depends(web_ctx)) -> Response:
    if not can(ctx.principal, "customers", "create"):
        raise Forbidden("Your role may not create customers.")
    defs = custom_fields.visible_definitions(ctx.session, ctx.principal)
    names = _field_names(ctx, defs, editing=False)
    values = {name: ctx.field(name) for name in names}
    errors = _typed_input_errors(values, defs)
    stray = ""
    try:
        data = CustomerCreate(**_create_payload(values, _sensitive_shown(ctx), defs))
        if not errors:
            customer = service.create_customer(ctx.session, ctx.principal, data)
            customer_id = customer.id
            ctx.commit()
            return RedirectResponse(f"/customers/{customer_id}?done=created", status_code=303)
    except ValidationError as exc:
        found, stray = _errors_of(exc, names)
        errors = {**found, **errors}
    except Forbidden:
        raise
    except Problem as exc:
        ctx.session.rollback()
        found, stray = _errors_of(exc, names)
        errors = {**found, **errors}
    return _form_page(request, ctx, customer=None, version=None, values=values, errors=errors,
                      alert=stray or NOT_SAVED, status_code=422)


@router.get("/customers/{customer_id}/edit")
def edit_customer(request: Request, customer_id: Annotated[int, Path(ge=1, le=MAX_ID)],
                  ctx: WebCtx = Depends(web_ctx)) -> Response:
    customer = service.get_customer(ctx.session, ctx.principal, customer_id, "update")
    defs = custom_fields.visible_definitions(ctx.session, ctx.principal)
    values = _values_of(ctx, customer, defs)
    audit.record_read(ctx.principal, "customers", [customer_id], service.read_fields(ctx.principal),
                      {"via": "web.edit"})
    return _form_page(request, ctx, customer=customer, version=customer.version, values=values)


@router.post("/customers/{customer_id}/edit")
def update_customer(request: Request, customer_id: Annotated[int, Path(ge=1, le=MAX_ID)],
                    ctx: WebCtx = Depends(web_ctx)) -> Response:
    customer = service.get_customer(ctx.session, ctx.principal, customer_id, "update")
    defs = custom_fields.visible_definitions(ctx.session, ctx.principal)
    names = _field_names(ctx, defs, editing=True)
    values = {name: ctx.field(name) for name in names}
    seen = ctx.field("version")
    if not (seen.isascii() and seen.isdigit() and len(seen) <= 19):
        raise PreconditionRequired("The form did not say which version of the customer it "
                                   "edits. Reload the form and try again.", field="version")
    if int(seen) != customer.version:  # what If-Match does for the API
        return _form_page(request, ctx, customer=customer, version=int(seen), values=values,
                          alert=STALE, stale=True, status_code=412)
    errors = _typed_input_errors(values, defs)
    stray = ""
    if not (values["first_name"] or values["last_name"]):
        errors["first_name"] = "A customer needs a first or last name."
    try:
        data = CustomerUpdate(**_update_payload(ctx, customer, values, _sensitive_shown(ctx),
                                                defs))
        if not errors:
            service.update_customer(ctx.session, ctx.principal, customer, data)
            ctx.commit()
            return RedirectResponse(f"/customers/{customer_id}?done=updated", status_code=303)
    except ValidationError as exc:
        found, stray = _errors_of(exc, names)
        errors = {**found, **errors}
    except Forbidden:
        raise
    except StaleDataError:  # changed between our check and the write
        ctx.session.rollback()
        return _form_page(request, ctx, customer=customer, version=int(seen), values=values,
                          alert=STALE, stale=True, status_code=412)
    except Problem as exc:
        ctx.session.rollback()
        found, stray = _errors_of(exc, names)
        errors = {**found, **errors}
    return _form_page(request, ctx, customer=customer, version=int(seen), values=values,
                      errors=errors, alert=stray or NOT_SAVED, status_code=422)


# --- the 360° page and logging interactions -------------------------------------------------------

def _may_log(ctx: WebCtx, customer_id: int) -> bool:
    try:
        interactions.customer_for(ctx.session, ctx.principal, customer_id, "create")
    except (Forbidden, NotFound):
        return False
    return True


def _log_defaults(ctx: WebCtx) -> dict[str, str]:
    return {"channel": "phone", "direction": "outbound",
            "department": ROLE_DEPARTMENT.get(ctx.principal.role, "other"),
            "subject": "", "body": ""}


def _detail_context(ctx: WebCtx, customer_id: int, *, log_values: dict[str, str] | None = None,
                    log_errors: dict[str, str] | None = None, notice: str = "") -> dict[str, Any]:
    """Everything the 360° page shows, as plain values (safe after the transaction ends)."""
    view = service.view_360(ctx.session, ctx.principal, customer_id)
    customer = view["customer"]
    stored = service.get_customer(ctx.session, ctx.principal, customer_id)
    stage_index = (LIFECYCLE_STAGES.index(customer.lifecycle_stage)
                   if customer.lifecycle_stage in LIFECYCLE_STAGES else -1)
    may_log = _may_log(ctx, customer_id)
    from accord.service import customer_summary  # service: the support panel below

    return {
        "view": view, "c": customer, "sensitive": SENSITIVE_LABELS,
        "journey": [s for s in LIFECYCLE_STAGES if s != "churned"], "stage_index": stage_index,
        "currency": get_settings().default_currency,
        "can_see_orders": can(ctx.principal, "orders", "read"),
        "can_see_interactions": can(ctx.principal, "interactions", "read"),
        "can_edit": service.in_scope(ctx.principal, stored, "update"),
        "log": {"values": log_values or _log_defaults(ctx), "errors": log_errors or {},
                "open": bool(log_errors), "channels": CHANNELS, "directions": DIRECTIONS,
                "departments": DEPARTMENTS} if may_log else None,
        "notice": notice, "log_notice": "",
        # data stewardship: the sources panel (None when the viewer may not see it)
        "identity": stewardship.sources_panel(ctx, customer_id),
        # analytics: the scores panel (field rules applied; None before the first scoring run)
        "scores": score_view.customer_scores(ctx.session, ctx.principal, customer_id),
        # analytics: "Suggested for this customer" (top 5, reasons in plain words)
        "suggestions": recommend_view.customer_recommendations(ctx.session, ctx.principal,
                                                               customer_id, limit=5),
        # sales: one click from a suggestion to an upsell deal
        "can_open_deal": can(ctx.principal, "deals", "create"),
        # sales: "Log a call or add a task" and the customer's activities (loaded by HTMX)
        "can_log_activity": can(ctx.principal, "activities", "read"),
        # service: sentiment trend and recent tickets (None when tickets are not readable)
        "service_panel": customer_summary.panel_360(ctx.session, ctx.principal, customer_id),
    }


def _end_transaction(ctx: WebCtx) -> None:
    """Release the write transaction before a read is audited in its own (SQLite has one writer)."""
    if ctx.request.method != "GET":
        ctx.session.rollback()


@router.get("/customers/{customer_id}")
def customer_detail(request: Request, customer_id: Annotated[int, Path(ge=1, le=MAX_ID)],
                    done: Annotated[str | None, Query(max_length=40)] = None,
                    ctx: WebCtx = Depends(web_ctx)) -> Response:
    # data stewardship: a merged customer's page is its survivor's
    merged_into = integration_stewardship.merged_target(ctx.session, customer_id)
    if merged_into is not None:
        return RedirectResponse(f"/customers/{merged_into}?identity=merged-away",
                                status_code=303)
    context = _detail_context(ctx, customer_id, notice=NOTICES.get(done or "", ""))
    audit.record_read(ctx.principal, "customers", [customer_id], service.read_fields(ctx.principal),
                      {"via": "web.360"})
    if context["scores"] is not None:
        score_view.audit_read(ctx.principal, customer_id, context["scores"], "web.360")
    recommend_view.audit_read(ctx.principal, customer_id, context["suggestions"], "web.360")
    return render(request, "customers/detail.html", context)


@router.post("/customers/{customer_id}/interactions")
def log_interaction(request: Request, customer_id: Annotated[int, Path(ge=1, le=MAX_ID)],
                    ctx: WebCtx = Depends(web_ctx)) -> Response:
    """A plain form post redirects back to the 360° page; an HTMX post gets the refreshed
    activity section (with the form and its errors, on a 422)."""
    interactions.customer_for(ctx.session, ctx.principal, customer_id, "create")  # 404 / 403 first
    values = {name: ctx.field(name) for name in INTERACTION_FIELDS}
    errors: dict[str, str] = {}
    try:
        data = InteractionFields(channel=values["channel"], direction=values["direction"],
                                 department=values["department"] or "other",
                                 subject=values["subject"], body=values["body"])
        interactions.create_interaction(ctx.session, ctx.principal, customer_id, data)
        ctx.commit()
    except ValidationError as exc:
        errors = {k: v for k, v in form_errors(exc, "subject").items()
                  if k in INTERACTION_FIELDS}
        errors = errors or {"subject": "The interaction is not valid."}
    except (Forbidden, NotFound):
        raise
    except Problem as exc:
        ctx.session.rollback()
        name = exc.field if exc.field in INTERACTION_FIELDS else "subject"
        errors = {name: _message(exc.detail, exc.field)}
    if not errors and not is_htmx(request):
        return RedirectResponse(f"/customers/{customer_id}?done=logged#activity", status_code=303)
    context = _detail_context(ctx, customer_id, log_values=values if errors else None,
                              log_errors=errors)
    status = 422 if errors else 200
    _end_transaction(ctx)
    if is_htmx(request):
        context["log_notice"] = "" if errors else NOTICES["logged"]
        shown = [e["record_id"] for e in context["view"]["timeline"] if e["kind"] == "interaction"]
        if shown:
            audit.record_read(ctx.principal, interactions.RESOURCE, shown, interactions.READ_FIELDS,
                              {"via": "web.timeline", "customer_id": customer_id})
        return render(request, "customers/_activity.html", context, status_code=status)
    audit.record_read(ctx.principal, "customers", [customer_id], service.read_fields(ctx.principal),
                      {"via": "web.360"})
    return render(request, "customers/detail.html", context, status_code=status)
