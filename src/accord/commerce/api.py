"""REST endpoints for products and orders: parse, call the service, serialise.

Money leaves as strings (`"19.99"`) next to its currency, never as a JSON number."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Header, Request, Response

from accord.access import audit
from accord.access.deps import Ctx, api_ctx
from accord.commerce import service
from accord.commerce.schemas import (
    OrderCreate,
    OrderFields,
    OrderOut,
    OrderStatusUpdate,
    OrderSummaryOut,
    ProductCreate,
    ProductOut,
    ProductUpdate,
)
from accord.core.concurrency import etag
from accord.core.query import ListParams, ListSpec, parse_list_params
from accord.core.settings import get_settings

router = APIRouter()

ORDER_LIST_HELP = (
    "Filters: `customer_id`, `number`, `status`, `currency`, `channel`, "
    "`ordered_at__gte=2024-01-01T00:00:00Z` (and `__lt`, `__lte`, `__gt`); "
    "`sort=-ordered_at` (default), `ordered_at`, `id`, `created_at`; keyset "
    "pagination with `cursor` and `limit`. Items carry no lines; GET one order "
    "for them."
)
ORDER_READ_FIELDS = ("number", "status", "total", "lines")


def _params(request: Request, spec: ListSpec) -> ListParams:
    settings = get_settings()
    return parse_list_params(
        dict(request.query_params),
        spec,
        hidden=set(),
        default_limit=settings.page_size_default,
        max_limit=settings.page_size_max,
    )


# --- products ----------------------------------------------------------------------------------


@router.get(
    "/products",
    tags=["products"],
    summary="List products",
    description="Filters: `sku` (`sku__prefix=`), `category`, `currency`, `active`, "
    "`created_at`; `sort=sku` (default), `id`, `created_at`; keyset "
    "pagination.",
)
def list_products(request: Request, ctx: Ctx = Depends(api_ctx)) -> dict[str, Any]:
    rows, cursor = service.list_products(
        ctx.session, ctx.principal, _params(request, service.product_list_spec())
    )
    return {"items": [ProductOut.model_validate(p) for p in rows], "next_cursor": cursor}


@router.post("/products", tags=["products"], status_code=201, response_model=ProductOut)
def create_product(body: ProductCreate, ctx: Ctx = Depends(api_ctx)) -> Response:
    return ctx.created(
        lambda: ProductOut.model_validate(service.create_product(ctx.session, ctx.principal, body)),
        body,
        headers=lambda out: {"ETag": etag(out.version), "Location": f"/api/v1/products/{out.id}"},
    )


@router.get("/products/{product_id}", tags=["products"], response_model=ProductOut)
def get_product(product_id: int, response: Response, ctx: Ctx = Depends(api_ctx)) -> ProductOut:
    product = service.get_product(ctx.session, ctx.principal, product_id)
    response.headers["ETag"] = etag(product.version)
    return ProductOut.model_validate(product)


@router.patch("/products/{product_id}", tags=["products"], response_model=ProductOut)
def update_product(
    product_id: int,
    body: ProductUpdate,
    response: Response,
    if_match: str | None = Header(default=None),
    ctx: Ctx = Depends(api_ctx),
) -> ProductOut:
    product = service.get_product(ctx.session, ctx.principal, product_id, "update")
    return ctx.updated(
        product,
        if_match,
        response,
        lambda: service.update_product(ctx.session, ctx.principal, product, body),
        lambda: ProductOut.model_validate(product),
    )


@router.delete("/products/{product_id}", tags=["products"], status_code=204)
def delete_product(
    product_id: int, if_match: str | None = Header(default=None), ctx: Ctx = Depends(api_ctx)
) -> Response:
    product = service.get_product(ctx.session, ctx.principal, product_id, "delete")
    return ctx.deleted(
        product, if_match, lambda: service.delete_product(ctx.session, ctx.principal, product)
    )


# --- orders ------------------------------------------------------------------------------------


def _order_page(ctx: Ctx, rows: list[Any], cursor: str | None, via: str) -> dict[str, Any]:
    audit.record_read(
        ctx.principal, service.ORDERS, [o.id for o in rows], ORDER_READ_FIELDS, {"via": via}
    )
    return {"items": [OrderSummaryOut.model_validate(o) for o in rows], "next_cursor": cursor}


def _created(ctx: Ctx, customer_id: int, body: Any, fields: OrderFields) -> Response:
    def run() -> OrderOut:
        order = service.create_order(ctx.session, ctx.principal, customer_id, fields)
        return OrderOut.model_validate(order)

    return ctx.created(
        run,
        body,
        headers=lambda out: {"ETag": etag(out.version), "Location": f"/api/v1/orders/{out.id}"},
    )


@router.get(
    "/orders",
    tags=["orders"],
    summary="List orders of readable customers",
    description=ORDER_LIST_HELP,
)
def list_orders(request: Request, ctx: Ctx = Depends(api_ctx)) -> dict[str, Any]:
    rows, cursor = service.list_orders(
        ctx.session, ctx.principal, _params(request, service.order_list_spec())
    )
    return _order_page(ctx, rows, cursor, "api.list")


@router.post(
    "/orders",
    tags=["orders"],
    status_code=201,
    response_model=OrderOut,
    summary="Place an order; the total is computed from the lines",
)
def create_order(body: OrderCreate, ctx: Ctx = Depends(api_ctx)) -> Response:
    fields = OrderFields.model_validate(
        body.model_dump(exclude={"customer_id"}, exclude_unset=True)
    )
    return _created(ctx, body.customer_id, body, fields)


@router.get(
    "/customers/{customer_id}/orders",
    tags=["orders"],
    summary="One customer's orders",
    description=ORDER_LIST_HELP,
)
def list_customer_orders(
    customer_id: int, request: Request, ctx: Ctx = Depends(api_ctx)
) -> dict[str, Any]:
    rows, cursor = service.list_orders(
        ctx.session, ctx.principal, _params(request, service.order_list_spec()), customer_id
    )
    return _order_page(ctx, rows, cursor, "api.customer_orders")


@router.post(
    "/customers/{customer_id}/orders",
    tags=["orders"],
    status_code=201,
    response_model=OrderOut,
    summary="Place an order for this customer",
)
def create_customer_order(
    customer_id: int, body: OrderFields, ctx: Ctx = Depends(api_ctx)
) -> Response:
    return _created(ctx, customer_id, body, body)


@router.get("/orders/{order_id}", tags=["orders"], response_model=OrderOut)
def get_order(order_id: int, response: Response, ctx: Ctx = Depends(api_ctx)) -> OrderOut:
    order = service.get_order(ctx.session, ctx.principal, order_id)
    out = OrderOut.model_validate(order)
    audit.record_read(
        ctx.principal, service.ORDERS, [order.id], ORDER_READ_FIELDS, {"via": "api.get"}
    )
    response.headers["ETag"] = etag(order.version)
    return out


@router.patch(
    "/orders/{order_id}",
    tags=["orders"],
    response_model=OrderOut,
    summary="Change an order's status",
    description="pending → paid → shipped → delivered; pending/paid → cancelled; "
    "paid/shipped/delivered → refunded. Anything else is a 409.",
)
def update_order(
    order_id: int,
    body: OrderStatusUpdate,
    response: Response,
    if_match: str | None = Header(default=None),
    ctx: Ctx = Depends(api_ctx),
) -> OrderOut:
    order = service.get_order(ctx.session, ctx.principal, order_id, "update")
    return ctx.updated(
        order,
        if_match,
        response,
        lambda: service.change_status(ctx.session, ctx.principal, order, body),
        lambda: OrderOut.model_validate(order),
    )
