"""`GET /api/v1/customers/{id}/scores`: one customer's scores, with the field rules applied."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response
from pydantic import TypeAdapter

from accord.access.deps import Ctx, api_ctx
from accord.analytics import score_view
from accord.core.errors import NotFound
from accord.customers import service as customers

router = APIRouter(tags=["analytics"])
_BODY = TypeAdapter(dict[str, Any])


@router.get(
    "/customers/{customer_id}/scores",
    response_model=dict[str, Any],
    summary="A customer's RFM segment, CLV, churn risk (with reasons) and value tier",
)
def get_customer_scores(customer_id: int, ctx: Ctx = Depends(api_ctx)) -> Response:
    """Fields the caller's role may not see are absent and named in `masked_fields`."""
    customers.get_customer(ctx.session, ctx.principal, customer_id)  # 404 unless readable
    scores = score_view.customer_scores(ctx.session, ctx.principal, customer_id)
    if scores is None:
        raise NotFound(f"customer {customer_id} has not been scored yet (accord analytics score)")
    ctx.session.rollback()  # hand the connection back before waiting for the audit commit
    score_view.audit_read(ctx.principal, customer_id, scores, "api.scores")
    return Response(_BODY.dump_json(scores), media_type="application/json")
