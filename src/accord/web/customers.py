"""Customer list (search, filters, keyset pages) and the customer 360° page.

The list uses the very same allow-listed filter definition as `GET /api/v1/customers`
(`service.list_spec` + `parse_list_params`), so the UI can never filter on something the API
refuses, and reads are audited the same way.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.responses import RedirectResponse

from accord.access import audit
from accord.access.policy import can
from accord.core.errors import ValidationProblem
from accord.core.query import parse_list_params
from accord.core.settings import get_settings
from accord.customers import custom_fields, service
from accord.models.customer import LIFECYCLE_STAGES
from accord.web.context import WebCtx, wants_partial, web_ctx
from accord.web.rendering import PageRoute, render

router = APIRouter(route_class=PageRoute, include_in_schema=False)

MAX_ID = 2**63 - 1
SORTS = (("-id", "Newest first"), ("name", "Name A–Z"), ("-updated_at", "Recently updated"),
         ("lifecycle_stage", "Lifecycle stage"))
SENSITIVE_LABELS = {"date_of_birth": "Date of birth", "national_id": "National ID",
                    "notes": "Notes"}
FIELD_LABELS = {"lifecycle_stage": "Lifecycle stage", "value_tier": "Value tier",
                "country": "Country", "q": "Search", "cursor": "Page", "limit": "Page size",
                "sort": "Sort order"}


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
    }
    status = 422 if error is not None else 200
    if wants_partial(request):
        return render(request, "customers/_results.html", context, status_code=status)
    return render(request, "customers/list.html", context, status_code=status)


@router.get("/customers/{customer_id}")
def customer_detail(request: Request, customer_id: Annotated[int, Path(ge=1, le=MAX_ID)],
                    ctx: WebCtx = Depends(web_ctx)) -> Response:
    view = service.view_360(ctx.session, ctx.principal, customer_id)
    audit.record_read(ctx.principal, "customers", [customer_id], service.read_fields(ctx.principal),
                      {"via": "web.360"})
    customer = view["customer"]
    stage_index = (LIFECYCLE_STAGES.index(customer.lifecycle_stage)
                   if customer.lifecycle_stage in LIFECYCLE_STAGES else -1)
    return render(request, "customers/detail.html", {
        "view": view, "c": customer, "sensitive": SENSITIVE_LABELS,
        "journey": [s for s in LIFECYCLE_STAGES if s != "churned"], "stage_index": stage_index,
        "currency": get_settings().default_currency,
        "can_see_orders": can(ctx.principal, "orders", "read"),
        "can_see_interactions": can(ctx.principal, "interactions", "read"),
    })
