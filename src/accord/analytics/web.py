"""The analytics dashboard page (`/analytics`) and its chart data as CSV.

Numbers come from `accord.analytics.dashboard`; here they are only formatted for the viewer's
locale. Chart data reaches the page's script as a JSON data block (Jinja's `tojson` escapes
`<`, `>`, `&` and quotes), never as inline JavaScript: the CSP forbids inline script.
"""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from accord.access.service import require
from accord.analytics import dashboard
from accord.core.clock import utcnow
from accord.core.errors import NotFound
from accord.models.customer import VALUE_TIERS
from accord.web.context import WebCtx, web_ctx
from accord.web.rendering import Formatter, PageRoute, render

router = APIRouter(prefix="/analytics", route_class=PageRoute, include_in_schema=False)

Text = Annotated[str | None, Query(max_length=40)]
CSV_UNSAFE = ("=", "+", "-", "@", "\t", "\r")


def parse_selection(from_: str | None, to: str | None, country: str | None,
                    segment: str | None, owner_id: str | None,
                    ) -> tuple[dashboard.Selection, str]:
    """The filters from the query string, or none and a message naming the bad field."""
    try:
        start = date.fromisoformat(from_) if from_ else None
    except ValueError:
        return dashboard.Selection(), "from: a date such as 2025-01-31"
    try:
        end = date.fromisoformat(to) if to else None
    except ValueError:
        return dashboard.Selection(), "to: a date such as 2025-12-31"
    if owner_id and not owner_id.isdigit():
        return dashboard.Selection(), "owner_id: a user id"
    try:
        return dashboard.Selection(
            start=start, end=end, country=(country or "").strip().upper() or None,
            segment=segment or None, owner_id=int(owner_id) if owner_id else None), ""
    except ValueError as exc:
        return dashboard.Selection(), str(exc)


def query_of(sel: dashboard.Selection) -> str:
    params = {"from": sel.start.isoformat() if sel.start else None,
              "to": sel.end.isoformat() if sel.end else None, "country": sel.country,
              "segment": sel.segment, "owner_id": sel.owner_id}
    return urlencode({k: v for k, v in params.items() if v is not None})


def _value_text(fmt: Formatter, unit: str, value: float | None, currency: str | None,
                signed: bool = False) -> str:
    if value is None:
        return ""
    sign = "+" if signed and value > 0 else ""
    if unit == "money":
        return sign + fmt.money(round(value, 2), currency)
    if unit == "percent":
        return sign + fmt.number(round(value, 1)) + (" pp" if signed else " %")
    if unit == "hours":
        return sign + fmt.number(round(value, 1)) + " h"
    if unit == "count":
        return sign + fmt.number(round(value))
    return sign + fmt.number(round(value, 2))


def tile_view(fmt: Formatter, tile: dashboard.Tile) -> dict[str, Any]:
    words = {"up": "up", "down": "down", "flat": "unchanged"}
    trend = ""
    if tile.trend in words:
        change = "" if tile.trend == "flat" else " " + _value_text(
            fmt, tile.unit, tile.delta, tile.currency, signed=True)
        trend = f"{words[tile.trend]}{change} vs previous month"
    return {
        "kpi": tile.kpi, "label": tile.label, "has_value": tile.value is not None,
        "value": _value_text(fmt, tile.unit, tile.value, tile.currency),
        "period": tile.period_start.strftime("%b %Y") if tile.period_start else "",
        "partial": bool(tile.period_end and tile.period_end > utcnow().date()),
        "trend": tile.trend, "trend_text": trend,
        "good": {True: "good", False: "bad", None: "neutral"}[tile.good],
    }


@router.get("")
def dashboard_page(request: Request, from_: Annotated[str | None,
                   Query(alias="from", max_length=10)] = None,
                   to: Annotated[str | None, Query(max_length=10)] = None,
                   country: Text = None, segment: Text = None, owner_id: Text = None,
                   ctx: WebCtx = Depends(web_ctx)) -> Response:
    require(ctx.principal, dashboard.RESOURCE, "read")
    sel, error = parse_selection(from_, to, country, segment, owner_id)
    fmt = Formatter(ctx.viewer.locale)
    options = dashboard.filter_options(ctx.session, ctx.principal)
    tiles = [tile_view(fmt, t) for t in dashboard.tiles(ctx.session, ctx.principal, sel)]
    charts = dashboard.charts(ctx.session, ctx.principal, sel)
    run = options["run"]
    return render(request, "analytics/dashboard.html", {
        "tiles": tiles, "charts": charts, "sel": sel, "error": error, "note": sel.note,
        "query": query_of(sel), "segments": (*VALUE_TIERS, "none"),
        "countries": options["countries"], "owners": options["owners"],
        "run_finished": run.finished_at if run else None,
        "chart_data": {c.key: {"kind": c.kind, "title": c.title, **c.spec}
                       for c in charts if not c.empty},
    }, status_code=422 if error else 200)


def _cell(value: Any) -> Any:
    """Text cells that a spreadsheet would run as a formula are prefixed with a quote."""
    if isinstance(value, str) and value.startswith(CSV_UNSAFE):
        return "'" + value
    return "" if value is None else value


@router.get("/charts/{key}.csv")
def chart_csv(key: Annotated[str, Path(max_length=40)],
              from_: Annotated[str | None, Query(alias="from", max_length=10)] = None,
              to: Annotated[str | None, Query(max_length=10)] = None,
              country: Text = None, segment: Text = None, owner_id: Text = None,
              ctx: WebCtx = Depends(web_ctx)) -> Response:
    require(ctx.principal, dashboard.RESOURCE, "read")
    if key not in dashboard.CHARTS:
        raise NotFound("There is no such chart.")
    sel, error = parse_selection(from_, to, country, segment, owner_id)
    if error:
        return Response(error + "\n", status_code=422, media_type="text/plain")
    found = dashboard.chart(ctx.session, ctx.principal, key, sel)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(found.columns)
    writer.writerows([_cell(v) for v in row] for row in found.rows)
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="accord-{key}.csv"',
        "Cache-Control": "no-store"})
