"""The forecast page (`/sales/forecast`): the same service as `/api/v1/forecast`, as tables and a
chart per currency. Chart data reaches the vendored ECharts through a JSON data block read by
`static/js/analytics.js` (no inline script: the CSP forbids it)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy import select

from accord.access.policy import can
from accord.core.clock import utcnow
from accord.core.errors import ValidationProblem
from accord.models.sales import Pipeline
from accord.sales import forecast as service
from accord.sales.forecast_schemas import ForecastOut
from accord.web.context import WebCtx, web_ctx
from accord.web.rendering import PageRoute, render

router = APIRouter(prefix="/sales/forecast", route_class=PageRoute, include_in_schema=False)

Text = Annotated[str | None, Query(max_length=20)]


def parse(period: str | None, start: str | None, pipeline_id: str | None,
          owner_id: str | None, team_id: str | None) -> tuple[dict[str, Any], str]:
    """The page's filters, or the defaults and a message naming the bad field."""
    out: dict[str, Any] = {"period": period or "quarter", "start": None, "pipeline_id": None,
                           "owner_id": None, "team_id": None}
    if out["period"] not in service.PERIOD_MONTHS:
        return {**out, "period": "quarter"}, "period: month, quarter or year"
    if start:
        try:
            out["start"] = date.fromisoformat(start)
        except ValueError:
            return out, "start: a date such as 2026-10-01"
    for name, value in (("pipeline_id", pipeline_id), ("owner_id", owner_id),
                        ("team_id", team_id)):
        if value:
            if not value.isdigit():
                return out, f"{name}: a number"
            out[name] = int(value)
    return out, ""


def chart_data(result: ForecastOut) -> dict[str, Any]:
    """One bar chart per currency: weighted, commit, best case and historical per month."""
    currencies = sorted({c.currency for m in result.months for c in m.currencies})
    charts: dict[str, Any] = {}
    for currency in currencies:
        def series(attr: str, currency: str = currency) -> list[float]:
            values = []
            for m in result.months:
                fig = next((c for c in m.currencies if c.currency == currency), None)
                values.append(float(getattr(fig, attr)) if fig is not None else 0.0)
            return values

        charts[f"forecast-{currency}"] = {
            "kind": "bar", "title": f"Forecast by month ({currency})",
            "x": [m.label for m in result.months],
            "series": [{"name": "Weighted", "data": series("weighted_amount")},
                       {"name": "Commit", "data": series("commit_amount")},
                       {"name": "Best case", "data": series("best_case_amount")},
                       {"name": "Historical", "data": series("historical_amount")}],
        }
    return charts


@router.get("")
def forecast_page(request: Request, period: Text = None, start: Text = None,
                  pipeline_id: Text = None, owner_id: Text = None, team_id: Text = None,
                  backtest: Text = None, ctx: WebCtx = Depends(web_ctx)) -> Response:
    params, error = parse(period, start, pipeline_id, owner_id, team_id)
    try:
        result = service.forecast(ctx.session, ctx.principal, params["start"],
                                  period=params["period"], pipeline_id=params["pipeline_id"],
                                  owner_id=params["owner_id"], team_id=params["team_id"])
    except ValidationProblem as exc:
        error = f"{exc.field}: {exc.detail}" if exc.field else exc.detail
        params = {**params, "start": None}
        result = service.forecast(ctx.session, ctx.principal, None, period=params["period"])
    # metrics over the last twelve months (this month included), whatever the horizon
    metrics_end = service.add_months(utcnow().date().replace(day=1), 1)
    metrics_start = service.add_months(metrics_end, -12)
    metrics = service.metrics(ctx.session, ctx.principal, metrics_start, metrics_end,
                              pipeline_id=params["pipeline_id"], owner_id=params["owner_id"],
                              team_id=params["team_id"])
    # the backtest replays every stage move of the past year: only on request
    replay = None
    if backtest == "1":
        replay = service.backtest(ctx.session, ctx.principal, 4,
                                  pipeline_id=params["pipeline_id"],
                                  owner_id=params["owner_id"], team_id=params["team_id"])
    pipelines: list[tuple[int, str]] = []
    if can(ctx.principal, "sales_config", "read"):
        pipelines = [(i, n) for i, n in ctx.session.execute(
            select(Pipeline.id, Pipeline.name).order_by(Pipeline.position, Pipeline.name))]
    return render(request, "sales/forecast/page.html", {
        "f": result, "metrics": metrics, "backtest": replay, "params": params,
        "backtest_query": urlencode({k: v.isoformat() if isinstance(v, date) else v
                                     for k, v in {**params, "start": result.start,
                                                  "backtest": 1}.items() if v is not None}),
        "error": error, "pipelines": pipelines, "periods": list(service.PERIOD_MONTHS),
        "chart_data": chart_data(result),
    }, status_code=422 if error else 200)
