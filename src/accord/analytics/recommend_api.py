"""`GET /api/v1/customers/{id}/recommendations`: one customer's suggestions with reasons."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import TypeAdapter

from accord.access.deps import Ctx, api_ctx
from accord.analytics import recommend_view
from accord.customers import service as customers

router = APIRouter(tags=["analytics"])
_BODY = TypeAdapter(dict[str, Any])


@router.get(
    "/customers/{customer_id}/recommendations",
    response_model=dict[str, Any],
    summary="A customer's suggested products (upsell, cross-sell), each with its reason",
)
def get_customer_recommendations(
    customer_id: int, limit: int = Query(10, ge=1, le=50), ctx: Ctx = Depends(api_ctx)
) -> Response:
    """404 unless the caller may read the customer; `items` is empty before the first refresh
    (`accord analytics run`) or for a customer without purchases."""
    customers.get_customer(ctx.session, ctx.principal, customer_id)  # 404 unless readable
    shown = recommend_view.customer_recommendations(ctx.session, ctx.principal, customer_id, limit)
    ctx.session.rollback()  # hand the connection back before waiting for the audit commit
    recommend_view.audit_read(ctx.principal, customer_id, shown, "api.recommendations")
    return Response(_BODY.dump_json(shown), media_type="application/json")
