"""Forecast endpoints: parse, call `accord.sales.forecast`, serialise (money as strings)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from accord.access.deps import Ctx, api_ctx
from accord.core.errors import ValidationProblem
from accord.sales import forecast as service
from accord.sales.forecast_schemas import BacktestOut, ForecastOut, MetricsOut, Period

router = APIRouter(prefix="/forecast", tags=["forecast"])

# Empty values (`?pipeline_id=&owner_id=`, as a form sends them) mean "no filter".
OptText = Annotated[str | None, Query(max_length=20)]


def _id(name: str, value: str | None) -> int | None:
    if not value:
        return None
    if not value.isdigit() or len(value) > 18:
        raise ValidationProblem(f"{name} must be a positive integer", field=name)
    return int(value)


def _date(name: str, value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationProblem(f"{name} must be a date (YYYY-MM-DD)", field=name) from None

_SCOPE_NOTE = (
    "Sums only the deals the caller may read (own, team or all, as the role's `deals:read` "
    "grant says); `owner_id`, `team_id` and `pipeline_id` narrow within that, never widen it. "
    "Amounts are per currency, never added across currencies."
)


@router.get("", response_model=ForecastOut, summary="Forecast of a period",
            description="Weighted pipeline, commit / best case / pipeline and the historical "
            "forecast per month and quarter, by owner and by team. " + _SCOPE_NOTE)
def get_forecast(
    period: Period = Query("quarter", description="Horizon length from `start`"),
    start: Annotated[str | None, Query(max_length=10, description="First day of a month "
                                       "(default: this quarter's first day)")] = None,
    end: Annotated[str | None, Query(max_length=10, description="Exclusive end, first day "
                                     "of a month (default: start + period)")] = None,
    pipeline_id: OptText = None,
    owner_id: OptText = None,
    team_id: OptText = None,
    ctx: Ctx = Depends(api_ctx),
) -> ForecastOut:
    return service.forecast(ctx.session, ctx.principal, _date("start", start), _date("end", end),
                            period=period, pipeline_id=_id("pipeline_id", pipeline_id),
                            owner_id=_id("owner_id", owner_id), team_id=_id("team_id", team_id))


@router.get("/metrics", response_model=MetricsOut, summary="Sales metrics",
            description="Win rate, average won deal size, median sales cycle and pipeline "
            "velocity; closed deals by `closed_at` in [start, end). " + _SCOPE_NOTE)
def get_metrics(
    start: OptText = None,
    end: OptText = None,
    pipeline_id: OptText = None,
    owner_id: OptText = None,
    team_id: OptText = None,
    ctx: Ctx = Depends(api_ctx),
) -> MetricsOut:
    return service.metrics(ctx.session, ctx.principal, _date("start", start), _date("end", end),
                           pipeline_id=_id("pipeline_id", pipeline_id),
                           owner_id=_id("owner_id", owner_id), team_id=_id("team_id", team_id))


@router.get("/backtest", response_model=BacktestOut, summary="Backtest of the historical model",
            description="For each of the last `quarters` full quarters: the won amount the "
            "historical model predicted from the deals open at the quarter's start, what they "
            "actually won, the error and the MAPE per currency. " + _SCOPE_NOTE)
def get_backtest(
    quarters: int = Query(4, ge=1, le=20),
    pipeline_id: OptText = None,
    owner_id: OptText = None,
    team_id: OptText = None,
    ctx: Ctx = Depends(api_ctx),
) -> BacktestOut:
    return service.backtest(ctx.session, ctx.principal, quarters,
                            pipeline_id=_id("pipeline_id", pipeline_id),
                            owner_id=_id("owner_id", owner_id), team_id=_id("team_id", team_id))
