"""The analytics dashboard's data: KPI tiles, chart series and score distributions.

Plain functions over the stored KPI values (`kpi_values`, latest refresh) and the customer
scores; the web page and the CSV downloads both call `chart()` / `tiles()`, so a chart, its
data table and its CSV always show the same numbers. Templates only place what is built here.

Stored KPI values exist overall and per one dimension (country, segment, owner): with several
dimensions chosen, the KPIs use the first (country, then segment, then owner) and say so; the
score distributions are computed live from `customer_scores` and apply every filter.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from accord.access.policy import Principal, visible_sensitive_fields
from accord.access.service import require
from accord.analytics import service
from accord.analytics.kpis import FUNNEL, Filters, month_index
from accord.core.settings import get_settings
from accord.models import Customer, CustomerScore, KpiValue, User

RESOURCE = "analytics"


@dataclass(frozen=True)
class TileDef:
    kpi: str
    label: str
    unit: str  # count | percent | money | ratio | hours | nps
    lower_is_better: bool = False


TILES = (
    TileDef("active_customers", "Active customers", "count"),
    TileDef("churn_rate", "Churn rate", "percent", lower_is_better=True),
    TileDef("retention_rate", "Retention rate", "percent"),
    TileDef("nps", "Net Promoter Score", "nps"),
    TileDef("csat", "CSAT", "percent"),
    TileDef("cac", "Customer acquisition cost", "money", lower_is_better=True),
    TileDef("average_order_value", "Average order value", "money"),
    TileDef("purchase_frequency", "Purchase frequency", "ratio"),
    TileDef("historic_clv", "Customer lifetime value", "money"),
    TileDef("first_response_hours", "First response time", "hours", lower_is_better=True),
    TileDef("resolution_hours", "Resolution time", "hours", lower_is_better=True),
)


@dataclass
class Tile:
    kpi: str
    label: str
    unit: str
    value: float | None = None
    previous: float | None = None
    currency: str | None = None
    period_start: date | None = None
    period_end: date | None = None
    trend: str = "none"  # up | down | flat | none
    good: bool | None = None  # is the change an improvement?

    @property
    def delta(self) -> float | None:
        if self.value is None or self.previous is None:
            return None
        return self.value - self.previous


@dataclass
class Chart:
    """One chart: what ECharts draws (`spec`) and the table/CSV behind it (`columns`, `rows`)."""

    key: str
    title: str
    description: str
    kind: str  # line | heatmap | funnel | bar
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    spec: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    empty_text: str = "No data yet."

    @property
    def empty(self) -> bool:
        return not self.rows


CHARTS: dict[str, tuple[str, str]] = {
    "customers": ("Active and new customers", "Customers active at the end of each month "
                  "(a qualifying order in the 12 months before) and new customers."),
    "churn": ("Churn and retention", "Share of the previous month's active customers who "
              "lapsed (churn) or stayed active (retention), in %."),
    "revenue": ("Revenue", "Qualifying order totals per month and currency."),
    "order-value": ("Average order value", "Revenue per qualifying order, per currency."),
    "satisfaction": ("NPS and CSAT", "Net Promoter Score (−100…100) and CSAT (% of answers "
                     "4 or 5) by answer month."),
    "funnel": ("Lifecycle funnel", "Customers created in the period who reached each "
               "lifecycle stage, and the conversion to the next stage."),
    "cohorts": ("Cohort retention", "Share of each acquisition month's customers with a "
                "qualifying order n months later, in %."),
    "clv": ("12-month CLV distribution", "Customers by predicted 12-month lifetime value "
            "(current scores)."),
    "churn-risk": ("Churn risk distribution", "Customers by predicted churn probability "
                   "(current scores)."),
}


@dataclass(frozen=True)
class Selection:
    """What the viewer asked for; `kpi_filters` is the part the stored KPI values support."""

    start: date | None = None
    end: date | None = None
    country: str | None = None
    segment: str | None = None
    owner_id: int | None = None

    def __post_init__(self) -> None:
        Filters(start=self.start, end=self.end, country=self.country, segment=self.segment,
                owner_id=self.owner_id)  # raises ValueError("field: reason")

    @property
    def dimensions(self) -> list[str]:
        return [n for n, v in (("country", self.country), ("segment", self.segment),
                               ("owner", self.owner_id)) if v is not None]

    @property
    def kpi_filters(self) -> Filters:
        first = self.dimensions[:1]
        return Filters(start=self.start, end=self.end,
                       country=self.country if first == ["country"] else None,
                       segment=self.segment if first == ["segment"] else None,
                       owner_id=self.owner_id if first == ["owner"] else None)

    @property
    def note(self) -> str:
        dims = self.dimensions
        if len(dims) < 2:
            return ""
        return (f"KPIs are stored per one dimension at a time, so the KPI tiles and charts are "
                f"filtered by {dims[0]} only; the CLV and churn-risk distributions apply every "
                f"filter ({', '.join(dims)}).")


def _series(session: Session, principal: Principal, kpi: str, sel: Selection,
            ) -> list[dict[str, Any]]:
    items = service.kpi_series(session, principal, kpi, sel.kpi_filters)["items"]
    return [i for i in items if i["dimension"] != "channel"]  # CAC per channel: not a slice


def _main_currency(items: list[dict[str, Any]]) -> str | None:
    currencies = Counter(i["currency"] for i in items if i["currency"])
    if not currencies:
        return None
    default = get_settings().default_currency
    return default if default in currencies else currencies.most_common(1)[0][0]


def tiles(session: Session, principal: Principal, sel: Selection) -> list[Tile]:
    """The latest value of each tile's KPI with the previous month's, for the trend."""
    require(principal, RESOURCE, "read")
    out = []
    for d in TILES:
        tile = Tile(d.kpi, d.label, d.unit)
        items = [i for i in _series(session, principal, d.kpi, sel) if i["series"] is None]
        currency = _main_currency(items)
        items = [i for i in items if i["currency"] == currency and i["value"] is not None]
        if items:
            last = items[-1]
            tile.value, tile.previous = last["value"], last["previous_value"]
            tile.currency = currency
            tile.period_start, tile.period_end = last["period_start"], last["period_end"]
            delta = tile.delta
            if delta is not None:
                tile.trend = "flat" if abs(delta) < 1e-9 else ("up" if delta > 0 else "down")
                tile.good = None if tile.trend == "flat" else (delta < 0) == d.lower_is_better
        out.append(tile)
    return out


def _month(d: date) -> str:
    return d.strftime("%Y-%m")


def _rounded(v: float | None, digits: int = 2) -> float | None:
    return None if v is None else round(v, digits)


def _lines(session: Session, principal: Principal, sel: Selection, key: str,
           curves: list[tuple[str, str]], *, per_currency: bool = False) -> Chart:
    """Monthly line chart: one curve per (KPI, label), or per currency of one KPI."""
    title, description = CHARTS[key]
    values: dict[str, dict[str, float | None]] = defaultdict(dict)
    names: list[str] = []
    for kpi, name in curves:
        for i in _series(session, principal, kpi, sel):
            if i["series"] is not None:
                continue
            curve = f"{name} ({i['currency']})" if per_currency and i["currency"] else name
            if curve not in names:
                names.append(curve)
            values[_month(i["period_start"])][curve] = _rounded(i["value"])
    months = sorted(values)
    rows = [[m, *(values[m].get(n) for n in names)] for m in months]
    spec = {"x": months, "series": [{"name": n, "data": [values[m].get(n) for m in months]}
                                    for n in names]}
    return Chart(key, title, description, "line", ["month", *names], rows, spec)


def _funnel(session: Session, principal: Principal, sel: Selection) -> Chart:
    title, description = CHARTS["funnel"]
    items = _series(session, principal, "funnel_conversion", sel)
    reached: dict[str, float] = defaultdict(float)
    converted: dict[str, float] = defaultdict(float)
    for i in items:
        reached[i["series"]] += i["denominator"] or 0.0
        converted[i["series"]] += i["numerator"] or 0.0
    if not items:
        return Chart("funnel", title, description, "funnel", ["stage", "customers",
                     "conversion_to_next_pct"])
    stages: list[tuple[str, float, float | None]] = []
    for a, b in zip(FUNNEL, FUNNEL[1:], strict=False):
        step = f"{a}>{b}"
        rate = converted[step] / reached[step] * 100 if reached[step] else None
        stages.append((a, reached[step], _rounded(rate)))
    last = f"{FUNNEL[-2]}>{FUNNEL[-1]}"
    stages.append((FUNNEL[-1], converted[last], None))
    rows = [[s, int(n), r] for s, n, r in stages]
    spec = {"stages": [{"name": s, "value": int(n)} for s, n, _ in stages]}
    return Chart("funnel", title, description, "funnel",
                 ["stage", "customers", "conversion_to_next_pct"], rows, spec)


def _cohorts(session: Session, principal: Principal, sel: Selection) -> Chart:
    title, description = CHARTS["cohorts"]
    items = _series(session, principal, "cohort_retention", sel)
    cells: dict[tuple[str, int], float | None] = {}
    for i in items:
        cohort = i["series"]
        y, m = (int(p) for p in cohort.split("-"))
        age = month_index(i["period_start"]) - (y * 12 + m - 1)
        cells[(cohort, age)] = _rounded(i["value"], 1)
    cohorts = sorted({c for c, _ in cells})
    ages = list(range(max((a for _, a in cells), default=-1) + 1))
    rows = [[c, a, v] for (c, a), v in sorted(cells.items())]
    spec = {"x": [str(a) for a in ages], "y": cohorts,
            "data": [[a, cohorts.index(c), v] for (c, a), v in cells.items() if v is not None]}
    return Chart("cohorts", title, description, "heatmap",
                 ["cohort", "months_since_acquisition", "retention_pct"], rows, spec)


def _score_filter(sel: Selection) -> Any:
    conds = [Customer.merged_into_id.is_(None)]
    if sel.country is not None:
        conds.append(Customer.country == sel.country)
    if sel.segment == "none":
        conds.append(Customer.value_tier.is_(None))
    elif sel.segment is not None:
        conds.append(Customer.value_tier == sel.segment)
    if sel.owner_id is not None:
        conds.append(Customer.owner_id == sel.owner_id)
    return and_(*conds)


def nice_step(top: float, buckets: int = 10) -> float:
    """A round bucket width (1, 2 or 5 × 10^k) so that `buckets` of them cover 0…top."""
    raw = max(top, 1e-9) / buckets
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def _histogram(session: Session, column: Any, edges: list[float], where: Any) -> list[int]:
    """Counts per [edge_i, edge_i+1) (the last bucket closed) in one SQL aggregate query."""
    sums = []
    for n, (lo, hi) in enumerate(zip(edges, edges[1:], strict=False)):
        upper = column <= hi if n == len(edges) - 2 else column < hi
        sums.append(func.sum(case((and_(column >= lo, upper), 1), else_=0)))
    q = (select(*sums).select_from(CustomerScore)
         .join(Customer, Customer.id == CustomerScore.customer_id).where(where))
    return [int(v or 0) for v in session.execute(q).one()]


def _restricted(key: str, note: str) -> Chart:
    title, description = CHARTS[key]
    return Chart(key, title, description, "bar", ["bucket", "customers"], empty_text=note)


def _clv(session: Session, principal: Principal, sel: Selection) -> Chart:
    title, description = CHARTS["clv"]
    if "clv_12m" not in visible_sensitive_fields(principal, "customer_scores"):
        return _restricted("clv", "Your role does not see predicted lifetime value.")
    where = and_(_score_filter(sel), CustomerScore.clv_12m.is_not(None))
    currency = session.scalar(
        select(CustomerScore.currency).join(Customer, Customer.id == CustomerScore.customer_id)
        .where(where).group_by(CustomerScore.currency)
        .order_by(func.count().desc(), CustomerScore.currency).limit(1))
    where = and_(where, CustomerScore.currency == currency) if currency else where
    low, top = session.execute(
        select(func.min(CustomerScore.clv_12m), func.max(CustomerScore.clv_12m))
        .join(Customer, Customer.id == CustomerScore.customer_id).where(where)).one()
    if top is None:
        return Chart("clv", title, description, "bar", ["bucket", "customers"])
    low = min(float(low), 0.0)
    step = nice_step(float(top) - low)
    start = math.floor(low / step) * step
    edges = [start + n * step for n in range(11)]
    while edges[-1] < float(top):
        edges.append(edges[-1] + step)
    counts = _histogram(session, CustomerScore.clv_12m, edges, where)
    labels = [f"{lo:g}–{hi:g}" for lo, hi in zip(edges, edges[1:], strict=False)]
    cur = f" ({currency})" if currency else ""
    return Chart("clv", title + cur, description, "bar", [f"clv_12m{cur}", "customers"],
                 [[label, c] for label, c in zip(labels, counts, strict=True)],
                 {"x": labels, "series": [{"name": "Customers", "data": counts}]},
                 note="Other currencies are left out." if currency else "")


def _churn_risk(session: Session, principal: Principal, sel: Selection) -> Chart:
    title, description = CHARTS["churn-risk"]
    if "churn_risk" not in visible_sensitive_fields(principal, "customer_scores"):
        return _restricted("churn-risk", "Your role does not see churn risk.")
    edges = [n / 10 for n in range(11)]
    where = and_(_score_filter(sel), CustomerScore.churn_risk.is_not(None))
    counts = _histogram(session, CustomerScore.churn_risk, edges, where)
    if not any(counts):
        return Chart("churn-risk", title, description, "bar", ["churn_risk_pct", "customers"])
    labels = [f"{n * 10}–{n * 10 + 10} %" for n in range(10)]
    return Chart("churn-risk", title, description, "bar", ["churn_risk_pct", "customers"],
                 [[label, c] for label, c in zip(labels, counts, strict=True)],
                 {"x": labels, "series": [{"name": "Customers", "data": counts}]})


def chart(session: Session, principal: Principal, key: str, sel: Selection) -> Chart:
    """One chart by key (KeyError for an unknown one)."""
    require(principal, RESOURCE, "read")
    if key not in CHARTS:
        raise KeyError(key)
    if key == "customers":
        return _lines(session, principal, sel, key, [("active_customers", "Active customers"),
                                                     ("new_customers", "New customers")])
    if key == "churn":
        return _lines(session, principal, sel, key, [("churn_rate", "Churn rate %"),
                                                     ("retention_rate", "Retention rate %")])
    if key == "revenue":
        return _lines(session, principal, sel, key, [("revenue", "Revenue")], per_currency=True)
    if key == "order-value":
        return _lines(session, principal, sel, key,
                      [("average_order_value", "Average order value")], per_currency=True)
    if key == "satisfaction":
        return _lines(session, principal, sel, key, [("nps", "NPS"), ("csat", "CSAT %")])
    if key == "funnel":
        return _funnel(session, principal, sel)
    if key == "cohorts":
        return _cohorts(session, principal, sel)
    if key == "clv":
        return _clv(session, principal, sel)
    return _churn_risk(session, principal, sel)


def charts(session: Session, principal: Principal, sel: Selection) -> list[Chart]:
    return [chart(session, principal, key, sel) for key in CHARTS]


def filter_options(session: Session, principal: Principal) -> dict[str, Any]:
    """Countries and owners that have KPI slices in the latest run (cheap: no customer scan)."""
    require(principal, RESOURCE, "read")
    run = service.latest_run(session)
    if run is None:
        return {"countries": [], "owners": [], "run": None}
    values = session.execute(
        select(KpiValue.dimension, KpiValue.dimension_value).distinct()
        .where(KpiValue.run_id == run.id, KpiValue.kpi == "active_customers",
               KpiValue.dimension.in_(("country", "owner")))).all()
    countries = sorted(v for d, v in values if d == "country" and v and len(v) == 2)
    owner_ids = sorted(int(v) for d, v in values if d == "owner" and v and v.isdigit())
    names: dict[int, str] = {}
    if owner_ids:
        for uid, name in session.execute(select(User.id, User.full_name)
                                         .where(User.id.in_(owner_ids))):
            names[uid] = name
    owners = sorted(((i, names.get(i, f"User {i}")) for i in owner_ids), key=lambda o: o[1])
    return {"countries": countries, "owners": owners, "run": run}
