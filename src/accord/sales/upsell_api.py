"""Upsell opportunities and "open a deal from a suggestion": parse, call the service, serialise."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Response

from accord.access.deps import Ctx, api_ctx
from accord.core.concurrency import etag
from accord.core.validation import StrictIn
from accord.sales import deals, upsell
from accord.sales.deals_schemas import DealOut

router = APIRouter()


class UpsellDealIn(StrictIn):
    product_id: int


@router.get("/upsell/opportunities", tags=["deals"],
            response_model=list[upsell.Opportunity],
            summary="Upsell opportunities",
            description="The strongest suggested product per customer the caller may read "
            "(from `accord analytics run`), strongest first; with `customer_id`, every "
            "suggestion for that customer. `open_deal_id` names an open deal that already "
            "holds the product.")
def list_opportunities(limit: int = Query(default=25, ge=1, le=200),
                       customer_id: int | None = Query(default=None, ge=1),
                       ctx: Ctx = Depends(api_ctx)) -> list[upsell.Opportunity]:
    return upsell.opportunities(ctx.session, ctx.principal, limit, customer_id)


@router.post("/customers/{customer_id}/upsell-deals", tags=["deals"], status_code=201,
             response_model=DealOut, summary="Open a deal from a suggestion",
             description="A deal in the upsell pipeline with the suggested product as its line "
             "(the product's price and currency); the caller becomes the owner. 409 when an "
             "open deal for the customer already holds the product.")
def open_deal(customer_id: int, body: UpsellDealIn, ctx: Ctx = Depends(api_ctx)) -> Response:
    return ctx.created(
        lambda: deals.to_out(ctx.session, upsell.open_deal(ctx.session, ctx.principal,
                                                           customer_id, body.product_id)),
        body,
        headers=lambda out: {"ETag": etag(out.version), "Location": f"/api/v1/deals/{out.id}"},
    )
