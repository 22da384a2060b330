"""KPI refresh and marketing spend: snapshot → KPI queries → bulk write-back → run record.

Plain functions taking a session; they never commit (the command, job or request does).
"""

from __future__ import annotations

import time
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from accord.access import audit
from accord.access.policy import Principal
from accord.access.service import require
from accord.analytics import kpis as kpimod
from accord.analytics import snapshot as snapmod
from accord.core.clock import utcnow
from accord.core.db import executemany
from accord.core.errors import ValidationProblem
from accord.core.settings import get_settings
from accord.models import AnalyticsRun, KpiValue, MarketingSpend

RESOURCE = "analytics"
KEEP_RUN_VALUES = 3  # the values of older runs are deleted (their run records stay)


def refresh_kpis(session: Session, engine: str | None = None) -> AnalyticsRun:
    """Snapshot the store, compute every KPI and replace the run's values in bulk."""
    from accord.integration.matching import engine_name

    settings = get_settings()
    name = engine or engine_name()
    run = AnalyticsRun(engine=name, status="running", started_at=utcnow(), figures={})
    session.add(run)
    session.flush()
    figures: dict[str, Any] = {}
    started = time.perf_counter()
    # a separate read-only connection: one consistent read, without holding the write lock
    with session.get_bind().connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        else:  # a WAL read transaction (DEFERRED): writers carry on meanwhile
            conn = conn.execution_options(sqlite_begin="DEFERRED")
        snap = snapmod.take_snapshot(conn)
        conn.rollback()
    figures["snapshot_seconds"] = round(snap.seconds, 3)
    figures["rows"] = snap.rows
    figures["sources_present"] = sorted(snap.present)
    run.snapshot = str(snap.path)
    t0 = time.perf_counter()
    rows = kpimod.compute(snap.path, snap.taken_at.date(), engine=name,
                          months=settings.analytics_months)
    figures["compute_seconds"] = round(time.perf_counter() - t0, 3)
    t0 = time.perf_counter()
    write_values(session, run.id, rows)
    figures["write_seconds"] = round(time.perf_counter() - t0, 3)
    figures["values"] = len(rows)
    have = {r.kpi for r in rows}
    figures["no_data"] = [k for k in kpimod.KPI_KEYS if k not in have]
    figures["total_seconds"] = round(time.perf_counter() - started, 3)
    run.figures = figures
    run.status = "done"
    run.finished_at = utcnow()
    _forget_old_values(session, run.id)
    snapmod.prune()
    return run


def write_values(session: Session, run_id: int, rows: list[kpimod.KpiRow]) -> None:
    """Replace the run's values with one driver-level executemany."""
    session.execute(delete(KpiValue).where(KpiValue.run_id == run_id))
    now = utcnow()
    payload = [
        {"run_id": run_id, "kpi": r.kpi, "period_start": r.period_start,
         "period_end": r.period_end, "series": r.series, "currency": r.currency,
         "dimension": r.dimension, "dimension_value": r.dimension_value, "value": r.value,
         "numerator": r.numerator, "denominator": r.denominator, "ci_low": r.ci_low,
         "ci_high": r.ci_high, "computed_at": now}
        for r in rows
    ]
    executemany(session, insert(KpiValue.__table__), payload)


def _forget_old_values(session: Session, run_id: int) -> None:
    keep = session.scalars(
        select(AnalyticsRun.id).where(AnalyticsRun.status == "done")
        .order_by(AnalyticsRun.id.desc()).limit(KEEP_RUN_VALUES)
    ).all()
    session.execute(delete(KpiValue).where(KpiValue.run_id.not_in([*keep, run_id])))


def latest_run(session: Session) -> AnalyticsRun | None:
    return session.scalar(select(AnalyticsRun).where(AnalyticsRun.status == "done")
                          .order_by(AnalyticsRun.id.desc()).limit(1))


def kpi_series(session: Session, principal: Principal, kpi: str, filters: kpimod.Filters,
               ) -> dict[str, Any]:
    """The latest run's series of one KPI for one slice, each value with the previous one."""
    require(principal, RESOURCE, "read")
    if kpi not in kpimod.KPI_KEYS:
        raise ValidationProblem(f"kpi: one of {', '.join(kpimod.KPI_KEYS)}", field="kpi")
    dims = [(d, v) for d, v in (("country", filters.country), ("segment", filters.segment),
                                ("owner", filters.owner_id)) if v is not None]
    run = latest_run(session)
    if run is None:
        return {"kpi": kpi, "run": None, "status": "no data", "items": []}
    if len(dims) > 1:
        raise ValidationProblem("filter by at most one of country, segment and owner_id",
                                field=dims[1][0] if dims[1][0] != "owner" else "owner_id")
    q = select(KpiValue).where(KpiValue.run_id == run.id, KpiValue.kpi == kpi)
    if dims:
        q = q.where(KpiValue.dimension == dims[0][0], KpiValue.dimension_value == str(dims[0][1]))
    elif kpi != "cac":
        q = q.where(KpiValue.dimension.is_(None))
    rows = session.scalars(q.order_by(KpiValue.series, KpiValue.currency, KpiValue.dimension,
                                      KpiValue.dimension_value, KpiValue.period_start)).all()
    items: list[dict[str, Any]] = []
    previous: dict[tuple[Any, ...], KpiValue] = {}
    for r in rows:
        slice_key = (r.series, r.currency, r.dimension, r.dimension_value)
        before = previous.get(slice_key)
        adjacent = before is not None and before.period_end == r.period_start
        previous[slice_key] = r
        if filters.start and r.period_end <= filters.start:
            continue
        if filters.end and r.period_start > filters.end:
            continue
        items.append({
            "period_start": r.period_start, "period_end": r.period_end, "series": r.series,
            "currency": r.currency, "dimension": r.dimension,
            "dimension_value": r.dimension_value, "value": r.value, "numerator": r.numerator,
            "denominator": r.denominator, "ci_low": r.ci_low, "ci_high": r.ci_high,
            "previous_value": before.value if adjacent and before is not None else None,
        })
    return {"kpi": kpi, "run": {"id": run.id, "finished_at": run.finished_at,
                                "engine": run.engine},
            "status": "ok" if items else "no data", "items": items}


def add_spend(session: Session, principal: Principal, channel: str, period_start: date,
              period_end: date, amount: Decimal, currency: str) -> MarketingSpend:
    require(principal, RESOURCE, "create")
    spend = MarketingSpend(channel=channel, period_start=period_start, period_end=period_end,
                           amount=amount, currency=currency, created_by=principal.user_id)
    session.add(spend)
    session.flush()
    audit.record(session, principal, "create", "marketing_spend", str(spend.id),
                 ["channel", "period_start", "period_end", "amount", "currency"])
    return spend


def list_spend(session: Session, principal: Principal, limit: int = 500,
               after_id: int | None = None) -> list[MarketingSpend]:
    require(principal, RESOURCE, "read")
    q = select(MarketingSpend).order_by(MarketingSpend.id).limit(limit)
    if after_id is not None:
        q = q.where(MarketingSpend.id > after_id)
    return list(session.scalars(q))


def record_failure(engine: str | None, error: str, url: str | None = None) -> None:
    """Keep a failed run on record (its own transaction: the refresh's one rolled back)."""
    from accord.core.db import session_scope
    from accord.integration.matching import engine_name

    with session_scope(url) as session:
        now = utcnow()
        session.add(AnalyticsRun(engine=engine or engine_name(), status="failed",
                                 started_at=now, finished_at=now, error=error[-4000:],
                                 figures={}))
