"""REST endpoints for the interaction timeline: parse, call the service, serialise."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Header, Request, Response

from accord.access import audit
from accord.access.deps import Ctx, api_ctx
from accord.core.concurrency import etag
from accord.core.query import ListParams, parse_list_params
from accord.core.settings import get_settings
from accord.interactions import service
from accord.interactions.schemas import (
    InteractionCreate,
    InteractionFields,
    InteractionOut,
    InteractionUpdate,
)

router = APIRouter(tags=["interactions"])

LIST_HELP = (
    "Filters: `customer_id`, `channel`, `direction`, `department`, `source`, "
    "`occurred_at__gte=2024-01-01T00:00:00Z` (and `__lt`, `__lte`, `__gt`); "
    "`sort=-occurred_at` (default), `occurred_at`, `id`, `created_at`; keyset pagination "
    "with `cursor` and `limit`."
)


def _params(request: Request) -> ListParams:
    settings = get_settings()
    return parse_list_params(
        dict(request.query_params),
        service.list_spec(),
        hidden=set(),
        default_limit=settings.page_size_default,
        max_limit=settings.page_size_max,
    )


def _page(ctx: Ctx, rows: list[Any], cursor: str | None, via: str) -> dict[str, Any]:
    audit.record_read(
        ctx.principal, service.RESOURCE, [r.id for r in rows], service.READ_FIELDS, {"via": via}
    )
    return {"items": [service.to_out(r) for r in rows], "next_cursor": cursor}


def _created(ctx: Ctx, customer_id: int, body: Any, fields: InteractionFields) -> Response:
    def run() -> InteractionOut:
        row = service.create_interaction(ctx.session, ctx.principal, customer_id, fields)
        return service.to_out(row)

    return ctx.created(
        run,
        body,
        headers=lambda out: {
            "ETag": etag(out.version),
            "Location": f"/api/v1/interactions/{out.id}",
        },
    )


@router.get(
    "/interactions", summary="List interactions across readable customers", description=LIST_HELP
)
def list_interactions(request: Request, ctx: Ctx = Depends(api_ctx)) -> dict[str, Any]:
    rows, cursor = service.list_interactions(ctx.session, ctx.principal, _params(request))
    return _page(ctx, rows, cursor, "api.list")


@router.post("/interactions", status_code=201, response_model=InteractionOut)
def create_interaction(body: InteractionCreate, ctx: Ctx = Depends(api_ctx)) -> Response:
    fields = InteractionFields.model_validate(
        body.model_dump(exclude={"customer_id"}, exclude_unset=True)
    )
    return _created(ctx, body.customer_id, body, fields)


@router.get(
    "/customers/{customer_id}/interactions",
    summary="One customer's interaction timeline",
    description=LIST_HELP,
)
def list_customer_interactions(
    customer_id: int, request: Request, ctx: Ctx = Depends(api_ctx)
) -> dict[str, Any]:
    rows, cursor = service.list_interactions(
        ctx.session, ctx.principal, _params(request), customer_id
    )
    return _page(ctx, rows, cursor, "api.timeline")


@router.post(
    "/customers/{customer_id}/interactions", status_code=201, response_model=InteractionOut
)
def create_customer_interaction(
    customer_id: int, body: InteractionFields, ctx: Ctx = Depends(api_ctx)
) -> Response:
    return _created(ctx, customer_id, body, body)


@router.get("/interactions/{interaction_id}", response_model=InteractionOut)
def get_interaction(
    interaction_id: int, response: Response, ctx: Ctx = Depends(api_ctx)
) -> InteractionOut:
    row = service.get_interaction(ctx.session, ctx.principal, interaction_id)
    out = service.to_out(row)
    audit.record_read(
        ctx.principal, service.RESOURCE, [row.id], service.READ_FIELDS, {"via": "api.get"}
    )
    response.headers["ETag"] = etag(row.version)
    return out


@router.patch("/interactions/{interaction_id}", response_model=InteractionOut)
def update_interaction(
    interaction_id: int,
    body: InteractionUpdate,
    response: Response,
    if_match: str | None = Header(default=None),
    ctx: Ctx = Depends(api_ctx),
) -> InteractionOut:
    row = service.get_interaction(ctx.session, ctx.principal, interaction_id, "update")
    return ctx.updated(
        row,
        if_match,
        response,
        lambda: service.update_interaction(ctx.session, ctx.principal, row, body),
        lambda: service.to_out(row),
    )


@router.delete("/interactions/{interaction_id}", status_code=204)
def delete_interaction(
    interaction_id: int, if_match: str | None = Header(default=None), ctx: Ctx = Depends(api_ctx)
) -> Response:
    row = service.get_interaction(ctx.session, ctx.principal, interaction_id, "delete")
    return ctx.deleted(
        row, if_match, lambda: service.delete_interaction(ctx.session, ctx.principal, row)
    )
