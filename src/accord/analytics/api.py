"""REST endpoints for KPI series and marketing spend: parse, call the service, serialise."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Depends, Query, Response

from accord.access.deps import Ctx, api_ctx
from accord.analytics import kpis, service
from accord.analytics.schemas import KpiSeries, SpendCreate, SpendOut
from accord.core.errors import ValidationProblem

router = APIRouter(prefix="/analytics", tags=["analytics"])


@router.get("/kpis", response_model=KpiSeries, summary="A KPI's series from the latest refresh",
            description="`kpi`: one of " + ", ".join(f"`{k}`" for k in kpis.KPI_KEYS) + ". "
            "Optional `from`/`to` (dates; months overlapping them), and at most one of "
            "`country`, `segment` (value tier) or `owner_id`. Each point carries the previous "
            "month's value for the trend.")
def get_kpis(
    kpi: str = Query(...),
    from_: date | None = Query(default=None, alias="from"),
    to: date | None = Query(default=None),
    country: str | None = Query(default=None),
    segment: str | None = Query(default=None),
    owner_id: int | None = Query(default=None),
    ctx: Ctx = Depends(api_ctx),
) -> Any:
    try:
        filters = kpis.Filters(start=from_, end=to, country=country, segment=segment,
                               owner_id=owner_id)
    except ValueError as exc:
        field = str(exc).split(":", 1)[0]
        raise ValidationProblem(str(exc), field=field) from None
    return service.kpi_series(ctx.session, ctx.principal, kpi, filters)


@router.post("/marketing-spend", status_code=201, response_model=SpendOut,
             summary="Enter marketing spend for a channel and period (feeds CAC)")
def create_spend(body: SpendCreate, ctx: Ctx = Depends(api_ctx)) -> Response:
    return ctx.created(
        lambda: SpendOut.model_validate(service.add_spend(
            ctx.session, ctx.principal, body.channel, body.period_start, body.period_end,
            body.amount, body.currency)),
        body,
    )


@router.get("/marketing-spend", summary="List marketing spend (keyset: `after_id`, `limit`)")
def list_spend(after_id: int | None = Query(default=None),
               limit: int = Query(default=100, ge=1, le=500),
               ctx: Ctx = Depends(api_ctx)) -> dict[str, Any]:
    rows = service.list_spend(ctx.session, ctx.principal, limit, after_id)
    return {"items": [SpendOut.model_validate(r) for r in rows],
            "next_after_id": rows[-1].id if len(rows) == limit else None}
