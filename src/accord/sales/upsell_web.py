"""Upsell pages: the opportunities list and the one-click "open a deal" from a suggestion."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse

from accord.access.policy import can
from accord.core.errors import Conflict, Forbidden, ValidationProblem
from accord.sales import upsell
from accord.web.context import WebCtx, web_ctx
from accord.web.rendering import PageRoute, render

router = APIRouter(prefix="/sales/upsell", route_class=PageRoute, include_in_schema=False)
LIMIT = 50


def _page(request: Request, ctx: WebCtx, alert: str = "", status_code: int = 200) -> Response:
    context: dict[str, Any] = {
        "items": upsell.opportunities(ctx.session, ctx.principal, LIMIT),
        "can_open": can(ctx.principal, "deals", "create"), "alert": alert}
    return render(request, "sales/upsell/list.html", context, status_code=status_code)


@router.get("")
def opportunities(request: Request, ctx: WebCtx = Depends(web_ctx)) -> Response:
    return _page(request, ctx)


def _id(raw: str) -> int | None:
    return int(raw) if raw.isascii() and raw.isdigit() and 0 < len(raw) <= 18 else None


@router.post("/open")
def open_deal(request: Request, ctx: WebCtx = Depends(web_ctx)) -> Response:
    """From the 360 page or the list: a new upsell deal, then its page (or the open one)."""
    if not can(ctx.principal, "deals", "create"):
        raise Forbidden("Your role may not open deals.")
    customer_id, product_id = _id(ctx.field("customer_id")), _id(ctx.field("product_id"))
    if customer_id is None or product_id is None:
        raise ValidationProblem("The form did not name a customer and a product.",
                                field="product_id")
    try:
        deal = upsell.open_deal(ctx.session, ctx.principal, customer_id, product_id)
    except Conflict:
        ctx.session.rollback()
        existing = upsell.opportunities(ctx.session, ctx.principal, 50, customer_id)
        taken = next((o.open_deal_id for o in existing if o.product_id == product_id), None)
        if taken is not None:
            return RedirectResponse(f"/sales/deals/{taken}", status_code=303)
        raise
    except ValidationProblem as exc:
        ctx.session.rollback()
        return _page(request, ctx, alert=exc.detail, status_code=422)
    deal_id = deal.id
    ctx.commit()
    return RedirectResponse(f"/sales/deals/{deal_id}", status_code=303)
