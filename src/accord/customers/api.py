"""REST endpoints for customers and custom fields: parse, call the service, serialise."""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter, Depends, Header, Request, Response
from pydantic import TypeAdapter

from accord.access import audit
from accord.access.deps import Ctx, api_context, api_ctx
from accord.access.policy import Principal
from accord.core.concurrency import etag
from accord.core.db import get_engine
from accord.core.query import parse_list_params
from accord.core.settings import get_settings
from accord.customers import custom_fields, service
from accord.customers.schemas import (
    AssignIn,
    CustomerCreate,
    CustomerOut,
    CustomerUpdate,
    CustomFieldIn,
    CustomFieldOut,
    CustomFieldUpdate,
)

# The hot reads' database work runs in at most this many threads at once. With the GIL, more
# threads add no parallelism, only hand-offs: sixteen concurrent reads in sixteen threads cost
# ~1.3x the CPU per read of the same reads queued for two (bench/README.md, customer reads).
_READS = anyio.CapacityLimiter(2)

router = APIRouter(tags=["customers"])
_BODY = TypeAdapter(dict[str, Any])


def is_embedded() -> bool:
    """Whether the database is the embedded SQLite, whose reads are CPU work in this process:
    the 360° view (a dozen indexed lookups of one customer) then runs on the event loop. In a
    thread it paid for hand-offs of the GIL, which SQLite's driver releases around every
    statement and fetch: on two idle cores 2.0 against 1.5 ms of CPU per read, 571 against
    756 reads/s (bench/README.md). Such reads use the loop's own session (`api_context(...,
    on_loop=True)`) and audit entry batches (`audit._LoopCommit`). PostgreSQL's reads wait on
    the network: a thread each."""
    return get_engine().dialect.name == "sqlite"


_LOOKUPS = frozenset({"email", "phone"})


def _lookup(request: Request) -> bool:
    """A search for one e-mail address or phone number (an indexed lookup of a few rows),
    not a filter or free-text scan that may read many rows."""
    names = set(request.query_params) - {"limit"}
    return len(names) == 1 and names <= _LOOKUPS and len(request.query_params.getlist(
        next(iter(names)))) == 1


def _json(body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    """The bytes FastAPI itself sends for a `dict[str, Any]` result (the same TypeAdapter dump),
    minus its validation copy of the whole body and the extra thread-pool hop it takes for it."""
    return Response(_BODY.dump_json(body, by_alias=True), media_type="application/json",
                    headers=headers)


def list_params(request: Request, ctx: Ctx, spec: Any, hidden: set[str]):
    settings = get_settings()
    return parse_list_params(
        dict(request.query_params),
        spec,
        hidden=hidden,
        default_limit=settings.page_size_default,
        max_limit=settings.page_size_max,
    )


@router.get(
    "/customers",
    response_model=dict[str, Any],
    summary="List and search customers",
    description="Filters are query parameters named after allow-listed fields "
    "(`country=DE`, `created_at__gte=2024-01-01`, `cf.<key>=...`); "
    "`q` searches name, e-mail, phone and id; `sort=-created_at`; keyset "
    "pagination with `cursor`.",
)
async def list_customers(request: Request) -> Response:
    # The hot read paths (this and the 360° view) are async: the database work runs in ONE
    # thread-pool call (on the loop itself for a lookup on SQLite, see `is_embedded`) and the
    # wait for the audit entry's commit holds no thread, where a sync dependency plus a sync
    # endpoint cost three thread hops and a parked thread per request.
    lookup = _lookup(request)
    on_loop = is_embedded() and lookup

    def read() -> tuple[Principal, list[int], Response]:
        with api_context(request, on_loop=on_loop) as ctx:
            spec = service.list_spec(ctx.session, ctx.principal)
            params = list_params(request, ctx, spec, service.hidden(ctx.principal))
            if lookup:
                field = next(n for n in request.query_params if n != "limit")
                items, cursor = service.lookup_customer_dicts(
                    ctx.session, ctx.principal, params, field, request.query_params[field], spec)
            else:
                items, cursor = service.list_customer_dicts(
                    ctx.session, ctx.principal, params, spec)
            return (ctx.principal, [c["id"] for c in items],
                    _json({"items": items, "next_cursor": cursor}))

    if on_loop:
        principal, ids, response = read()  # one indexed lookup: on the loop, as the 360 view
    else:
        principal, ids, response = await anyio.to_thread.run_sync(read, limiter=_READS)
    await audit.record_read_async(
        principal, "customers", ids, service.read_fields(principal), {"via": "api.list"}
    )
    return response


@router.post("/customers", status_code=201, response_model=CustomerOut)
def create_customer(body: CustomerCreate, ctx: Ctx = Depends(api_ctx)) -> Response:
    def run() -> CustomerOut:
        customer = service.create_customer(ctx.session, ctx.principal, body)
        custom = custom_fields.values_for(ctx.session, ctx.principal, [customer.id])[customer.id]
        return service.to_out(customer, ctx.principal, custom)

    return ctx.created(
        run,
        body,
        headers=lambda out: {"ETag": etag(out.version), "Location": f"/api/v1/customers/{out.id}"},
    )


@router.get("/customers/{customer_id}", response_model=CustomerOut)
def get_customer(customer_id: int, response: Response, ctx: Ctx = Depends(api_ctx)) -> CustomerOut:
    customer = service.get_customer(ctx.session, ctx.principal, customer_id)
    custom = custom_fields.values_for(ctx.session, ctx.principal, [customer.id])[customer.id]
    out = service.to_out(customer, ctx.principal, custom)
    audit.record_read(
        ctx.principal,
        "customers",
        [customer.id],
        service.read_fields(ctx.principal),
        {"via": "api.get"},
    )
    response.headers["ETag"] = etag(customer.version)
    return out


@router.get(
    "/customers/{customer_id}/360",
    response_model=dict[str, Any],
    summary="The customer 360° view",
)
async def get_customer_360(customer_id: int, request: Request) -> Response:
    on_loop = is_embedded()

    def read() -> tuple[Principal, Response]:  # one thread-pool call, as in `list_customers`
        with api_context(request, on_loop=on_loop) as ctx:
            view = service.view_360_data(ctx.session, ctx.principal, customer_id)
            return ctx.principal, _json(view, {"ETag": etag(view["customer"]["version"])})

    if on_loop:
        principal, response = read()  # on the loop: see `is_embedded`
    else:
        principal, response = await anyio.to_thread.run_sync(read, limiter=_READS)
    await audit.record_read_async(
        principal, "customers", [customer_id], service.read_fields(principal), {"via": "api.360"}
    )
    return response


@router.patch("/customers/{customer_id}", response_model=CustomerOut)
def update_customer(
    customer_id: int,
    body: CustomerUpdate,
    response: Response,
    if_match: str | None = Header(default=None),
    ctx: Ctx = Depends(api_ctx),
) -> CustomerOut:
    customer = service.get_customer(ctx.session, ctx.principal, customer_id, "update")
    return ctx.updated(
        customer, if_match, response,
        lambda: service.update_customer(ctx.session, ctx.principal, customer, body),
        lambda: _out(ctx, customer),
    )


def _out(ctx: Ctx, customer: Any) -> CustomerOut:
    custom = custom_fields.values_for(ctx.session, ctx.principal, [customer.id])[customer.id]
    return service.to_out(customer, ctx.principal, custom)


@router.post("/customers/{customer_id}/assign", response_model=CustomerOut)
def assign_customer(
    customer_id: int,
    body: AssignIn,
    response: Response,
    if_match: str | None = Header(default=None),
    ctx: Ctx = Depends(api_ctx),
) -> CustomerOut:
    customer = service.get_customer(ctx.session, ctx.principal, customer_id, "update")
    return ctx.updated(
        customer,
        if_match,
        response,
        lambda: service.assign(ctx.session, ctx.principal, customer, body),
        lambda: service.to_out(customer, ctx.principal),
    )


@router.delete("/customers/{customer_id}", status_code=204)
def delete_customer(
    customer_id: int, if_match: str | None = Header(default=None), ctx: Ctx = Depends(api_ctx)
) -> Response:
    customer = service.get_customer(ctx.session, ctx.principal, customer_id, "delete")
    return ctx.deleted(
        customer, if_match, lambda: service.delete_customer(ctx.session, ctx.principal, customer)
    )


@router.get("/custom-fields", response_model=list[CustomFieldOut], tags=["custom fields"])
def list_custom_fields(ctx: Ctx = Depends(api_ctx)) -> list[Any]:
    return custom_fields.list_fields(ctx.session, ctx.principal)


@router.post(
    "/custom-fields", status_code=201, response_model=CustomFieldOut, tags=["custom fields"]
)
def create_custom_field(body: CustomFieldIn, ctx: Ctx = Depends(api_ctx)) -> Response:
    return ctx.created(
        lambda: CustomFieldOut.model_validate(
            custom_fields.create_field(ctx.session, ctx.principal, body)
        ),
        body,
        headers=lambda out: {"ETag": etag(out.version)},
    )


@router.get("/custom-fields/{field_id}", response_model=CustomFieldOut, tags=["custom fields"])
def get_custom_field(field_id: int, response: Response, ctx: Ctx = Depends(api_ctx)) -> Any:
    field = custom_fields.get_field(ctx.session, ctx.principal, field_id)
    response.headers["ETag"] = etag(field.version)
    return field


@router.patch("/custom-fields/{field_id}", response_model=CustomFieldOut, tags=["custom fields"])
def update_custom_field(
    field_id: int,
    body: CustomFieldUpdate,
    response: Response,
    if_match: str | None = Header(default=None),
    ctx: Ctx = Depends(api_ctx),
) -> Any:
    field = custom_fields.get_field(ctx.session, ctx.principal, field_id)
    return ctx.updated(
        field,
        if_match,
        response,
        lambda: custom_fields.update_field(ctx.session, ctx.principal, field, body),
        lambda: CustomFieldOut.model_validate(field),
    )


@router.delete("/custom-fields/{field_id}", status_code=204, tags=["custom fields"])
def delete_custom_field(
    field_id: int, if_match: str | None = Header(default=None), ctx: Ctx = Depends(api_ctx)
) -> Response:
    field = custom_fields.get_field(ctx.session, ctx.principal, field_id)
    return ctx.deleted(
        field, if_match, lambda: custom_fields.delete_field(ctx.session, ctx.principal, field)
    )
