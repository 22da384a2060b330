# ruff: noqa: S608 - SQL text from constants, ints and validated filter values only
"""The KPI definitions: one SQL text per KPI, run unchanged by DuckDB and by Spark SQL.

Every query reads the snapshot's Parquet files through a few shared views (below) and returns
the same columns: `kpi, mi, series, currency, dimension, dimension_value, numerator,
denominator, x1, x2`. `mi` is a month index (`year * 12 + month - 1`), so no engine-specific
date arithmetic is needed; the calendar, stage order and funnel steps are small tables built
here in Python and registered with the engine. Customer-level KPIs are grouped once over
`GROUPING SETS`: the overall value and one row per country, segment (value tier) and account
owner. The exact definitions are in docs/analytics.md, section "KPIs".

The SQL sticks to what both dialects spell the same way: `year()`, `month()`, `CAST(... AS
STRING|DOUBLE)`, `LEAST/GREATEST`, `ROW_NUMBER()` and `LEAD()` windows, `GROUPING SETS`
with `GROUPING()`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

from accord.models.customer import LIFECYCLE_STAGES, VALUE_TIERS

Kind = Literal["count", "sum", "ratio", "percent", "nps", "hours"]
COLUMNS = ("kpi", "mi", "series", "currency", "dimension", "dimension_value",
           "numerator", "denominator", "x1", "x2")
EXCLUDED_STATUSES = ("pending", "cancelled", "refunded")  # not (yet) revenue
ACTIVE_MONTHS = 12
FUNNEL = tuple(s for s in LIFECYCLE_STAGES if s != "churned")
Z95 = 1.959963984540054


@dataclass(frozen=True)
class Filters:
    """Restrict the customers (and so every customer-based KPI) and the reported months."""

    start: date | None = None
    end: date | None = None
    country: str | None = None
    segment: str | None = None
    owner_id: int | None = None

    def __post_init__(self) -> None:
        if self.country is not None and not re.fullmatch(r"[A-Z]{2}", self.country):
            raise ValueError("country: an ISO 3166-1 alpha-2 code such as GB")
        if self.segment is not None and self.segment not in (*VALUE_TIERS, "none"):
            raise ValueError(f"segment: one of {', '.join(VALUE_TIERS)}")
        if self.start and self.end and self.start > self.end:
            raise ValueError("from: after to")

    @property
    def customer_sql(self) -> str:
        """Values are validated above (code, tier name, int), so they can be inlined safely."""
        parts = []
        if self.country is not None:
            parts.append(f"country = '{self.country}'")
        if self.segment == "none":
            parts.append("value_tier IS NULL")
        elif self.segment is not None:
            parts.append(f"value_tier = '{self.segment}'")
        if self.owner_id is not None:
            parts.append(f"owner_id = {int(self.owner_id)}")
        return "".join(f" AND {p}" for p in parts)


@dataclass(frozen=True)
class Kpi:
    key: str
    kind: Kind
    sql: str
    label: str
    cumulative: bool = False


def month_index(d: date | datetime) -> int:
    return d.year * 12 + d.month - 1


def month_start(mi: int) -> date:
    return date(mi // 12, mi % 12 + 1, 1)


# --- shared views, in dependency order ----------------------------------------------------

def views(f: Filters, start_mi: int, end_mi: int) -> list[tuple[str, str, bool]]:
    """(name, SQL, materialise): the building blocks every KPI reads."""
    excluded = ", ".join(f"'{s}'" for s in EXCLUDED_STATUSES)
    return [
        ("customers", f"""
            SELECT id AS customer_id, created_at,
                   year(created_at) * 12 + month(created_at) - 1 AS created_mi,
                   lifecycle_stage,
                   COALESCE(value_tier, 'none') AS segment,
                   COALESCE(country, 'unknown') AS country,
                   COALESCE(CAST(owner_id AS STRING), 'none') AS owner
            FROM raw_customers WHERE merged_into_id IS NULL{f.customer_sql}""", True),
        ("orders_q", f"""
            SELECT o.id, o.customer_id, o.currency, o.total, o.channel, o.ordered_at,
                   year(o.ordered_at) * 12 + month(o.ordered_at) - 1 AS mi
            FROM raw_orders o JOIN customers c ON c.customer_id = o.customer_id
            WHERE o.status NOT IN ({excluded})
              AND year(o.ordered_at) * 12 + month(o.ordered_at) - 1 <= {end_mi}""", True),
        # one row per customer, month and currency: what most KPIs aggregate further
        ("cust_month_orders", """
            SELECT customer_id, mi, currency, COUNT(*) AS orders, SUM(total) AS revenue
            FROM orders_q GROUP BY customer_id, mi, currency""", True),
        ("cust_months", "SELECT DISTINCT customer_id, mi FROM cust_month_orders", True),
        # A(M): customers with a qualifying order in the 12 months ending with month M; for
        # every reported month and the one before it (the churn denominator). An order month m
        # keeps its customer active from m until the next order month or m + 12, whichever
        # comes first: each (customer, month) is produced once, no DISTINCT needed.
        ("active", f"""
            SELECT m.customer_id, k.mi,
                   -- in A(M) but not in A(M + 1): the last month of a lapsing interval
                   CASE WHEN k.mi = m.mi + {ACTIVE_MONTHS - 1}
                         AND (m.next_mi IS NULL OR m.next_mi > m.mi + {ACTIVE_MONTHS})
                        THEN 1 ELSE 0 END AS lapses
            FROM (SELECT customer_id, mi,
                         LEAD(mi) OVER (PARTITION BY customer_id ORDER BY mi) AS next_mi
                  FROM cust_months) m
            JOIN calendar k
              ON k.mi >= m.mi
             AND k.mi < LEAST(COALESCE(m.next_mi, m.mi + {ACTIVE_MONTHS}),
                              m.mi + {ACTIVE_MONTHS})""", True),
        # the first qualifying order (month, channel): ranked within the first month only
        ("first_orders", """
            SELECT customer_id, mi, channel FROM (
              SELECT o.customer_id, o.mi, o.channel,
                     ROW_NUMBER() OVER (PARTITION BY o.customer_id
                                        ORDER BY o.ordered_at, o.id) AS rn
              FROM orders_q o
              JOIN (SELECT customer_id, MIN(mi) AS mi FROM cust_months GROUP BY customer_id) f
                ON f.customer_id = o.customer_id AND f.mi = o.mi) t
            WHERE rn = 1""", True),
        # customers in A(M−1) and whether they are still in A(M): churn and retention
        ("churn_fact", "SELECT customer_id, mi + 1 AS mi, lapses AS churned FROM active",
         False),
        ("reach", f"""
            SELECT c.customer_id, c.created_mi AS mi,
                   GREATEST(COALESCE(s.stage_rank, -1), COALESCE(MAX(h.stage_rank), -1))
                     AS stage_rank
            FROM customers c
            LEFT JOIN stages s ON s.stage = c.lifecycle_stage
            LEFT JOIN (SELECT l.customer_id, st.stage_rank FROM raw_lifecycle_changes l
                       JOIN stages st ON st.stage = l.to_stage) h
              ON h.customer_id = c.customer_id
            WHERE c.created_mi >= {start_mi}
            GROUP BY c.customer_id, c.created_mi, s.stage_rank""", False),
    ]


NULL_TEXT = "CAST(NULL AS STRING)"


def grouped(key: str, fact: str, numerator: str, denominator: str = "CAST(NULL AS DOUBLE)",
            *, x1: str = "CAST(NULL AS DOUBLE)", x2: str = "CAST(NULL AS DOUBLE)",
            series: bool = False, currency: bool = False) -> str:
    """Aggregate a per-customer fact table overall and per country, segment and owner."""
    keys = ["f.mi"] + (["f.series"] if series else []) + (["f.currency"] if currency else [])
    base = ", ".join(keys)
    sets = ", ".join(f"({base}{extra})" for extra in
                     ("", ", c.country", ", c.segment", ", c.owner"))
    return f"""
        SELECT '{key}' AS kpi, f.mi AS mi,
               {"f.series" if series else NULL_TEXT} AS series,
               {"f.currency" if currency else NULL_TEXT} AS currency,
               CASE WHEN GROUPING(c.country) = 0 THEN 'country'
                    WHEN GROUPING(c.segment) = 0 THEN 'segment'
                    WHEN GROUPING(c.owner) = 0 THEN 'owner' END AS dimension,
               CASE WHEN GROUPING(c.country) = 0 THEN c.country
                    WHEN GROUPING(c.segment) = 0 THEN c.segment
                    WHEN GROUPING(c.owner) = 0 THEN c.owner END AS dimension_value,
               CAST({numerator} AS DOUBLE) AS numerator,
               CAST({denominator} AS DOUBLE) AS denominator,
               CAST({x1} AS DOUBLE) AS x1, CAST({x2} AS DOUBLE) AS x2
        FROM ({fact}) f JOIN customers c ON c.customer_id = f.customer_id
        GROUP BY GROUPING SETS ({sets})"""


_CHURN_FACT = "SELECT customer_id, mi, churned FROM churn_fact"

_FIRST_IN_CURRENCY = """
    SELECT customer_id, mi, currency, revenue,
           CASE WHEN mi = MIN(mi) OVER (PARTITION BY customer_id, currency)
                THEN 1 ELSE 0 END AS is_first
    FROM cust_month_orders"""

_SURVEYS = """
    SELECT customer_id, year(responded_at) * 12 + month(responded_at) - 1 AS mi, score
    FROM raw_survey_responses WHERE kind = '{kind}' AND score IS NOT NULL"""

_TICKETS = """
    SELECT customer_id, year(created_at) * 12 + month(created_at) - 1 AS mi,
           {column} / 3600.0 AS hours
    FROM raw_tickets WHERE {column} IS NOT NULL"""

_CAC = """
    WITH spend AS (
      SELECT s.channel, s.currency, k.mi,
             SUM(s.amount * (LEAST(s.end_day + 1, k.end_day) - GREATEST(s.start_day, k.start_day))
                 / (s.end_day - s.start_day + 1)) AS amount
      FROM raw_marketing_spend s JOIN calendar k
        ON s.start_day < k.end_day AND s.end_day >= k.start_day
      GROUP BY s.channel, s.currency, k.mi),
    by_channel AS (SELECT mi, channel, COUNT(*) AS n FROM first_orders GROUP BY mi, channel),
    total AS (SELECT mi, COUNT(*) AS n FROM first_orders GROUP BY mi)
    SELECT 'cac' AS kpi, s.mi, CAST(NULL AS STRING) AS series, s.currency,
           CAST(NULL AS STRING) AS dimension, CAST(NULL AS STRING) AS dimension_value,
           CAST(SUM(s.amount) AS DOUBLE) AS numerator, CAST(MAX(t.n) AS DOUBLE) AS denominator,
           CAST(NULL AS DOUBLE) AS x1, CAST(NULL AS DOUBLE) AS x2
    FROM spend s LEFT JOIN total t ON t.mi = s.mi
    GROUP BY s.mi, s.currency
    UNION ALL
    SELECT 'cac', s.mi, CAST(NULL AS STRING), s.currency, 'channel', s.channel,
           CAST(s.amount AS DOUBLE), CAST(b.n AS DOUBLE), CAST(NULL AS DOUBLE),
           CAST(NULL AS DOUBLE)
    FROM spend s LEFT JOIN by_channel b ON b.mi = s.mi AND b.channel = s.channel"""

_COHORTS = """
    WITH sizes AS (SELECT mi AS cohort, COUNT(*) AS n FROM first_orders GROUP BY mi)
    SELECT 'cohort_retention' AS kpi, m.mi, CAST(f.mi AS STRING) AS series,
           CAST(NULL AS STRING) AS currency, CAST(NULL AS STRING) AS dimension,
           CAST(NULL AS STRING) AS dimension_value,
           CAST(COUNT(*) AS DOUBLE) AS numerator, CAST(MAX(s.n) AS DOUBLE) AS denominator,
           CAST(NULL AS DOUBLE) AS x1, CAST(NULL AS DOUBLE) AS x2
    FROM cust_months m JOIN first_orders f ON f.customer_id = m.customer_id
    JOIN sizes s ON s.cohort = f.mi
    WHERE f.mi >= {start_mi} AND m.mi >= f.mi
    GROUP BY m.mi, f.mi"""

_FUNNEL = """
    SELECT r.customer_id, r.mi, st.label AS series,
           CASE WHEN r.stage_rank >= st.stage_rank + 1 THEN 1 ELSE 0 END AS converted
    FROM reach r JOIN funnel_steps st ON r.stage_rank >= st.stage_rank"""


def catalogue(start_mi: int) -> tuple[Kpi, ...]:
    """Every KPI; the order is the order of the dashboard."""
    return (
        Kpi("active_customers", "count",
            grouped("active_customers", "SELECT customer_id, mi FROM active", "COUNT(*)"),
            "Active customers"),
        Kpi("new_customers", "count",
            grouped("new_customers", "SELECT customer_id, mi FROM first_orders", "COUNT(*)"),
            "New customers"),
        Kpi("churn_rate", "percent",
            grouped("churn_rate", _CHURN_FACT, "SUM(f.churned)", "COUNT(*)"), "Churn rate"),
        Kpi("retention_rate", "percent",
            grouped("retention_rate", _CHURN_FACT, "SUM(1 - f.churned)", "COUNT(*)"),
            "Retention rate"),
        Kpi("cohort_retention", "percent", _COHORTS.format(start_mi=start_mi),
            "Retention by acquisition cohort"),
        Kpi("revenue", "sum",
            grouped("revenue", "SELECT * FROM cust_month_orders", "SUM(f.revenue)",
                    currency=True), "Revenue"),
        Kpi("average_order_value", "ratio",
            grouped("average_order_value", "SELECT * FROM cust_month_orders",
                    "SUM(f.revenue)", "SUM(f.orders)", currency=True), "Average order value"),
        Kpi("purchase_frequency", "ratio",
            grouped("purchase_frequency", """
                SELECT customer_id, mi, SUM(orders) AS orders FROM cust_month_orders
                GROUP BY customer_id, mi""", "SUM(f.orders)", "COUNT(*)"),
            "Purchase frequency"),
        Kpi("historic_clv", "ratio",
            grouped("historic_clv", _FIRST_IN_CURRENCY, "SUM(f.revenue)", "SUM(f.is_first)",
                    currency=True), "Historic customer lifetime value", cumulative=True),
        Kpi("cac", "ratio", _CAC, "Customer acquisition cost"),
        Kpi("nps", "nps",
            grouped("nps", _SURVEYS.format(kind="nps"),
                    "SUM(CASE WHEN f.score >= 9 THEN 1 WHEN f.score <= 6 THEN -1 ELSE 0 END)",
                    "COUNT(*)", x1="SUM(CASE WHEN f.score >= 9 THEN 1 ELSE 0 END)",
                    x2="SUM(CASE WHEN f.score <= 6 THEN 1 ELSE 0 END)"), "Net Promoter Score"),
        Kpi("csat", "percent",
            grouped("csat", _SURVEYS.format(kind="csat"),
                    "SUM(CASE WHEN f.score >= 4 THEN 1 ELSE 0 END)", "COUNT(*)"), "CSAT"),
        Kpi("first_response_hours", "ratio",
            grouped("first_response_hours", _TICKETS.format(column="first_response_seconds"),
                    "SUM(f.hours)", "COUNT(*)"), "First response time (hours)"),
        Kpi("resolution_hours", "ratio",
            grouped("resolution_hours", _TICKETS.format(column="resolution_seconds"),
                    "SUM(f.hours)", "COUNT(*)"), "Resolution time (hours)"),
        Kpi("funnel_conversion", "percent",
            grouped("funnel_conversion", _FUNNEL, "SUM(f.converted)", "COUNT(*)", series=True),
            "Funnel conversion between lifecycle stages"),
    )


KPI_KEYS = tuple(k.key for k in catalogue(0))


# --- engines ------------------------------------------------------------------------------

class SqlEngine:
    """The few operations a KPI run needs, spelt for one engine."""

    name = "base"

    def register_parquet(self, name: str, path: Path) -> None:
        raise NotImplementedError

    def register_rows(self, name: str, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
        raise NotImplementedError

    def view(self, name: str, sql: str, materialise: bool) -> None:
        raise NotImplementedError

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def close(self) -> None:
        pass


class DuckDBEngine(SqlEngine):
    name = "duckdb"

    def __init__(self) -> None:
        import duckdb

        self.con = duckdb.connect()

    def register_parquet(self, name: str, path: Path) -> None:
        quoted = str(path).replace("'", "''")
        self.con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM read_parquet('{quoted}')")

    def register_rows(self, name: str, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
        import pyarrow as pa

        table = pa.Table.from_pylist([dict(zip(columns, r, strict=True)) for r in rows],
                                     schema=_row_schema(columns))
        self.con.register(f"_{name}_arrow", table)
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM _{name}_arrow")

    def view(self, name: str, sql: str, materialise: bool) -> None:
        kind = "TEMP TABLE" if materialise else "TEMP VIEW"
        self.con.execute(f"CREATE OR REPLACE {kind} {name} AS {sql}")

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        return self.con.execute(sql).fetchall()

    def close(self) -> None:
        self.con.close()


class SparkEngine(SqlEngine):
    """Spark SQL in its own session (temporary views isolated, shared SparkContext)."""

    name = "spark"

    def __init__(self) -> None:
        from accord.integration.matching import spark_session

        self.spark = spark_session().newSession()
        self.spark.conf.set("spark.sql.session.timeZone", "UTC")
        self.cached: list[str] = []

    def register_parquet(self, name: str, path: Path) -> None:
        self.spark.read.parquet(str(path)).createOrReplaceTempView(name)

    def register_rows(self, name: str, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
        import pyarrow as pa

        table = pa.Table.from_pylist([dict(zip(columns, r, strict=True)) for r in rows],
                                     schema=_row_schema(columns))
        self.spark.createDataFrame(table.to_pandas()).createOrReplaceTempView(name)

    def view(self, name: str, sql: str, materialise: bool) -> None:
        self.spark.sql(f"CREATE OR REPLACE TEMP VIEW {name} AS {sql}")
        if materialise:
            self.spark.sql(f"CACHE LAZY TABLE {name}")
            self.cached.append(name)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self.spark.sql(sql).collect()]

    def close(self) -> None:
        for name in self.cached:
            self.spark.sql(f"UNCACHE TABLE IF EXISTS {name}")


_ROW_TYPES = {"mi": "int64", "start_day": "int64", "end_day": "int64", "stage_rank": "int64",
              "stage": "string", "label": "string"}


def _row_schema(columns: list[str]) -> Any:
    import pyarrow as pa

    return pa.schema([(c, pa.int64() if _ROW_TYPES[c] == "int64" else pa.string())
                      for c in columns])


def make_engine(name: str | None = None) -> SqlEngine:
    from accord.integration.matching import engine_name

    name = name or engine_name()
    if name == "duckdb":
        return DuckDBEngine()
    if name == "spark":
        return SparkEngine()
    raise ValueError(f"unknown analytics engine {name!r}: use duckdb or spark")


# --- a run --------------------------------------------------------------------------------

@dataclass
class KpiRow:
    kpi: str
    period_start: date
    period_end: date
    series: str | None
    currency: str | None
    dimension: str | None
    dimension_value: str | None
    value: float | None
    numerator: float | None
    denominator: float | None
    ci_low: float | None = None
    ci_high: float | None = None

    def key(self) -> tuple[Any, ...]:
        return (self.kpi, self.period_start, self.series, self.currency, self.dimension,
                self.dimension_value)


def window(as_of: date, months: int, f: Filters) -> tuple[int, int]:
    end_mi = month_index(f.end) if f.end else month_index(as_of)
    start_mi = month_index(f.start) if f.start else end_mi - months + 1
    return start_mi, end_mi


def compute(snapshot_dir: Path, as_of: date, *, engine: SqlEngine | str | None = None,
            filters: Filters | None = None, months: int = 24,
            keys: Iterable[str] | None = None) -> list[KpiRow]:
    """Run the KPI set over one snapshot; values for the months of the window only."""
    f = filters or Filters()
    start_mi, end_mi = window(as_of, months, f)
    eng = engine if isinstance(engine, SqlEngine) else make_engine(engine)
    try:
        for path in sorted(snapshot_dir.glob("*.parquet")):
            eng.register_parquet(f"raw_{path.stem}", path)
        calendar = [(mi, _epoch_day(month_start(mi)), _epoch_day(month_start(mi + 1)))
                    for mi in range(start_mi - 1, end_mi + 1)]
        eng.register_rows("calendar", ["mi", "start_day", "end_day"], calendar)
        eng.register_rows("stages", ["stage", "stage_rank"],
                          [(s, i) for i, s in enumerate(FUNNEL)])
        eng.register_rows("funnel_steps", ["stage_rank", "label"],
                          [(i, f"{a}>{b}") for i, (a, b) in enumerate(zip(FUNNEL, FUNNEL[1:],
                                                                          strict=False))])
        for name, sql, materialise in views(f, start_mi, end_mi):
            eng.view(name, sql, materialise)
        wanted = set(keys) if keys is not None else None
        out: list[KpiRow] = []
        for kpi in catalogue(start_mi):
            if wanted is not None and kpi.key not in wanted:
                continue
            raw = eng.query(kpi.sql)
            if kpi.cumulative:
                raw = _cumulate(raw, start_mi)
            out.extend(finalise(kpi, r, start_mi, end_mi) for r in raw
                       if start_mi <= r[1] <= end_mi)
        return out
    finally:
        if not isinstance(engine, SqlEngine):
            eng.close()


def _epoch_day(d: date) -> int:
    return (d - date(1970, 1, 1)).days


def _cumulate(rows: list[tuple[Any, ...]], start_mi: int) -> list[tuple[Any, ...]]:
    """Running totals of numerator and denominator per slice, month by month (all history)."""
    rows = sorted(rows, key=lambda r: (tuple("" if v is None else str(v) for v in
                                             (r[2], r[3], r[4], r[5])), r[1]))
    out: list[tuple[Any, ...]] = []
    last: tuple[Any, ...] | None = None
    num = den = 0.0
    for r in rows:
        slice_key = (r[2], r[3], r[4], r[5])
        if slice_key != last:
            last, num, den = slice_key, 0.0, 0.0
        num += r[6] or 0.0
        den += r[7] or 0.0
        out.append((*r[:6], num, den, r[8], r[9]))
    return out


def _ratio(num: float | None, den: float | None) -> float | None:
    if num is None or not den:
        return None
    return num / den


def wilson(successes: float, n: float) -> tuple[float, float]:
    """95% Wilson score interval of a proportion."""
    p = successes / n
    centre = (p + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / (1 + Z95**2 / n)
    return centre - half, centre + half


def nps_interval(promoters: float, detractors: float, n: float) -> tuple[float, float]:
    """95% normal interval of NPS: each answer scores +1, 0 or -1; NPS is their mean × 100."""
    pp, pd = promoters / n, detractors / n
    nps = pp - pd
    se = math.sqrt(max(0.0, pp + pd - nps**2) / n)
    return 100 * (nps - Z95 * se), 100 * (nps + Z95 * se)


LABELS: dict[str, Callable[[str], str]] = {
    "cohort_retention": lambda s: month_start(int(s)).strftime("%Y-%m"),
}


def finalise(kpi: Kpi, r: tuple[Any, ...], start_mi: int, end_mi: int) -> KpiRow:
    _, mi, series, currency, dimension, dimension_value, num, den, x1, x2 = r
    value: float | None
    low = high = None
    if kpi.kind in ("count", "sum"):
        value, den = num, None
    elif kpi.kind == "percent":
        value = None if _ratio(num, den) is None else 100 * _ratio(num, den)  # type: ignore[operator]
        if value is not None and kpi.key not in ("churn_rate", "retention_rate"):
            lo, hi = wilson(num, den)
            low, high = 100 * lo, 100 * hi
    elif kpi.kind == "nps":
        value = None if not den else 100 * num / den
        if den:
            low, high = nps_interval(x1 or 0.0, x2 or 0.0, den)
    else:
        value = _ratio(num, den)
    if series is not None and kpi.key in LABELS:
        series = LABELS[kpi.key](series)
    return KpiRow(kpi.key, month_start(mi), month_start(mi + 1), series, currency, dimension,
                  None if dimension_value is None else str(dimension_value), value, num, den,
                  low, high)
