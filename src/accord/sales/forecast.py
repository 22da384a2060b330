"""Sales forecasts over the deals the reader may see: weighted pipeline, categories, history.

Every figure is computed per currency (amounts in different currencies are never added) and
only over deals in the reader's record scope for `deals:read` (`scope_clause`), so a sales
user's forecast holds their own and their team's deals, a manager's the team's, an admin's all.

* **Weighted pipeline**: open deals by `expected_close_date` in [start, end), Σ amount ×
  probability, where probability is the deal's own or else its stage's default. Deals in the
  `omitted` forecast category are left out of every figure; open deals without an expected
  close date are not placed in the weighted months (the historical model still places them).
* **Categories** (per month and quarter): pipeline = every open deal; commit = won in the
  bucket (by `closed_at`) + open deals in `commit`; best case = commit + open `best_case`.
* **Historical model**: from closed deals' stage history (`deal_stage_changes`), for each open
  stage S the conversion rate (of the closed deals that ever entered S, the share won) and the
  median days from first entering S to winning. An open deal's P(win) is its stage's rate and
  its expected close is `stage_entered_at` + that median (never before `as_of`). Stages without
  history fall back to the stage's default probability and the median over all stages (or
  `DEFAULT_DAYS_TO_CLOSE`). The backtest replays this model on past quarters.
* **Metrics**: win rate, average won deal size, median sales cycle and pipeline velocity.

All weighted and categorical figures are GROUP BY queries: the cost is a few index-friendly
scans whatever the number of deals; month buckets are CASE expressions over bound dates, the
same SQL on SQLite and PostgreSQL.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, literal, select
from sqlalchemy.orm import Session

from accord.access.policy import Principal, Scope, scope_clause, scope_for
from accord.access.service import require
from accord.core.clock import as_utc, utcnow
from accord.core.errors import ValidationProblem
from accord.models import Team, User
from accord.models.sales import Deal, DealStageChange, PipelineStage
from accord.sales.forecast_schemas import (
    BacktestOut,
    BacktestQuarter,
    Breakdown,
    Bucket,
    CurrencyFigures,
    CurrencyMetrics,
    ForecastOut,
    HistoricalModel,
    MetricsOut,
    Period,
    StageStats,
)

CENT = Decimal("0.01")
PERIOD_MONTHS: dict[str, int] = {"month": 1, "quarter": 3, "year": 12}
DAYS_PER_MONTH = 365.25 / 12
DEFAULT_DAYS_TO_CLOSE = 30.0
MAX_HORIZON_MONTHS = 24


# --- dates ------------------------------------------------------------------------------------


def add_months(d: date, n: int) -> date:
    """The first day of the month `n` months after `d`'s month."""
    years, month0 = divmod(d.month - 1 + n, 12)
    return date(d.year + years, month0 + 1, 1)


def quarter_start(d: date) -> date:
    return date(d.year, 3 * ((d.month - 1) // 3) + 1, 1)


def quarter_label(d: date) -> str:
    return f"{d.year}-Q{(d.month - 1) // 3 + 1}"


def _midnight(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


def period_bounds(start: date | None, period: str, end: date | None = None,
                  today: date | None = None) -> tuple[date, date]:
    """[start, end): `start` (default: this quarter's first day) must be a month's first day."""
    if period not in PERIOD_MONTHS:
        raise ValidationProblem("period must be month, quarter or year", field="period")
    start = start or quarter_start(today or utcnow().date())
    if start.day != 1:
        raise ValidationProblem("start must be the first day of a month", field="start")
    end = end or add_months(start, PERIOD_MONTHS[period])
    if end <= start:
        raise ValidationProblem("end must be after start", field="end")
    if end.day != 1:
        raise ValidationProblem("end must be the first day of a month", field="end")
    if (end.year - start.year) * 12 + end.month - start.month > MAX_HORIZON_MONTHS:
        raise ValidationProblem(f"at most {MAX_HORIZON_MONTHS} months at once", field="end")
    return start, end


def _months(start: date, end: date) -> list[date]:
    out = [start]
    while (nxt := add_months(out[-1], 1)) < end:
        out.append(nxt)
    return out


def _dec(value: Any) -> Decimal:
    """Money from SQL (Decimal on PostgreSQL, float on SQLite) rounded to cents."""
    if value is None:
        return Decimal("0.00")
    return Decimal(str(value)).quantize(CENT)


# --- access -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DealFilter:
    """The reader's scope plus the optional narrowing filters (they never widen the scope)."""

    scope: Scope
    where: tuple[ColumnElement[bool], ...]

    @classmethod
    def of(cls, principal: Principal, pipeline_id: int | None = None,
           owner_id: int | None = None, team_id: int | None = None) -> DealFilter:
        require(principal, "deals", "read")
        scope = scope_for(principal, "deals", "read")
        assert scope is not None  # require() passed
        where: list[ColumnElement[bool]] = [
            scope_clause(principal, scope, Deal.owner_id, Deal.team_id)]
        if pipeline_id is not None:
            where.append(Deal.pipeline_id == pipeline_id)
        if owner_id is not None:
            where.append(Deal.owner_id == owner_id)
        if team_id is not None:
            where.append(Deal.team_id == team_id)
        return cls(scope, tuple(where))


# --- the weighted pipeline and categories -------------------------------------------------------


def _bucket_case(column: Any, bounds: Sequence[Any]) -> Any:
    """Index of the bucket [bounds[i], bounds[i+1]) holding `column` (the caller bounds it)."""
    whens = [(column < b, i) for i, b in enumerate(bounds[1:-1])]
    return case(*whens, else_=len(bounds) - 2) if whens else literal(0)


_PROB = func.coalesce(Deal.probability, PipelineStage.probability)
_NOT_OMITTED = Deal.forecast_category != "omitted"


@dataclass
class _Acc:
    """Per-currency accumulator for one bucket."""

    figures: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, currency: str, **values: Any) -> None:
        row = self.figures.setdefault(currency, defaultdict(lambda: 0))
        for key, value in values.items():
            row[key] += Decimal(str(value)) if isinstance(value, float) else value

    def out(self) -> list[CurrencyFigures]:
        result = []
        for currency in sorted(self.figures):
            row = self.figures[currency]
            won = _dec(row["won_amount"])
            commit = won + _dec(row["commit_open"])
            result.append(CurrencyFigures(
                currency=currency, open_count=int(row["open_count"]),
                pipeline_amount=_dec(row["pipeline_amount"]),
                weighted_amount=_dec(Decimal(str(row["weighted_x100"])) / 100),
                won_count=int(row["won_count"]), won_amount=won, commit_amount=commit,
                best_case_amount=commit + _dec(row["best_case_open"]),
                historical_count=int(row["historical_count"]),
                historical_amount=_dec(row["historical_amount"]),
            ))
        return result


def _open_by_bucket(session: Session, flt: DealFilter, months: list[date], end: date
                    ) -> list[Any]:
    bounds = [*months, end]
    bucket = _bucket_case(Deal.expected_close_date, bounds).label("bucket")
    stmt = (
        select(bucket, Deal.currency, func.count().label("n"),
               func.sum(Deal.amount).label("amount"),
               func.sum(Deal.amount * _PROB).label("weighted_x100"),
               func.sum(case((Deal.forecast_category == "commit", Deal.amount), else_=0))
               .label("commit_open"),
               func.sum(case((Deal.forecast_category == "best_case", Deal.amount), else_=0))
               .label("best_case_open"))
        .join(PipelineStage, PipelineStage.id == Deal.stage_id)
        .where(Deal.status == "open", _NOT_OMITTED, *flt.where,
               Deal.expected_close_date >= months[0], Deal.expected_close_date < end)
        .group_by(bucket, Deal.currency)
    )
    return list(session.execute(stmt))


def _won_by_bucket(session: Session, flt: DealFilter, months: list[date], end: date
                   ) -> list[Any]:
    bounds = [_midnight(m) for m in [*months, end]]
    bucket = _bucket_case(Deal.closed_at, bounds).label("bucket")
    stmt = (
        select(bucket, Deal.currency, func.count().label("n"),
               func.sum(Deal.amount).label("amount"))
        .where(Deal.status == "won", *flt.where,
               Deal.closed_at >= bounds[0], Deal.closed_at < bounds[-1])
        .group_by(bucket, Deal.currency)
    )
    return list(session.execute(stmt))


def _breakdown(session: Session, flt: DealFilter, start: date, end: date, key: Any,
               names: dict[int, str]) -> list[Breakdown]:
    stmt = (
        select(key.label("key"), Deal.currency, func.count().label("n"),
               func.sum(Deal.amount).label("amount"),
               func.sum(Deal.amount * _PROB).label("weighted_x100"),
               func.sum(case((Deal.forecast_category == "commit", Deal.amount), else_=0))
               .label("commit_open"),
               func.sum(case((Deal.forecast_category.in_(("commit", "best_case")),
                              Deal.amount), else_=0)).label("best_open"))
        .join(PipelineStage, PipelineStage.id == Deal.stage_id)
        .where(Deal.status == "open", _NOT_OMITTED, *flt.where,
               Deal.expected_close_date >= start, Deal.expected_close_date < end)
        .group_by(key, Deal.currency)
    )
    rows = list(session.execute(stmt))
    return sorted(
        (Breakdown(id=r.key, name=names.get(r.key) if r.key is not None else None,
                   currency=r.currency, open_count=r.n, pipeline_amount=_dec(r.amount),
                   weighted_amount=_dec(Decimal(str(r.weighted_x100 or 0)) / 100),
                   commit_amount=_dec(r.commit_open), best_case_amount=_dec(r.best_open))
         for r in rows),
        key=lambda b: (b.currency, -b.weighted_amount, b.id or 0))


# --- the historical model -----------------------------------------------------------------------


@dataclass(frozen=True)
class ClosedEntry:
    """A closed deal's first entry into one stage."""

    deal_id: int
    stage_id: int
    entered_at: datetime
    won: bool
    closed_at: datetime


@dataclass
class StageModel:
    """P(win) and median days to close per open stage, learnt from closed deals."""

    rates: dict[int, float]
    days: dict[int, float]
    reached: dict[int, int]
    won: dict[int, int]
    basis: dict[int, str]
    closed_deals: int

    def rate(self, stage_id: int) -> float:
        return self.rates.get(stage_id, 0.0)


def _stages(session: Session, pipeline_id: int | None = None) -> list[PipelineStage]:
    stmt = select(PipelineStage).order_by(PipelineStage.pipeline_id, PipelineStage.position)
    if pipeline_id is not None:
        stmt = stmt.where(PipelineStage.pipeline_id == pipeline_id)
    return list(session.scalars(stmt))


def closed_history(session: Session, flt: DealFilter, before: datetime | None = None
                   ) -> list[ClosedEntry]:
    """One query: each closed deal's first entry into each stage (the reader's deals only)."""
    entered = func.min(DealStageChange.changed_at).label("entered_at")
    stmt = (
        select(DealStageChange.deal_id, DealStageChange.to_stage_id, entered, Deal.status,
               Deal.closed_at)
        .join(Deal, Deal.id == DealStageChange.deal_id)
        .where(Deal.status.in_(("won", "lost")), Deal.closed_at.is_not(None), *flt.where)
        .group_by(DealStageChange.deal_id, DealStageChange.to_stage_id, Deal.status,
                  Deal.closed_at)
    )
    if before is not None:
        stmt = stmt.where(Deal.closed_at < before)
    return [ClosedEntry(r.deal_id, r.to_stage_id, as_utc(r.entered_at), r.status == "won",
                        as_utc(r.closed_at)) for r in session.execute(stmt)]


def _days_between(later: Any, earlier: Any, dialect: str) -> Any:
    """Fractional days from `earlier` to `later`, computed by the database."""
    if dialect == "sqlite":
        return func.julianday(later) - func.julianday(earlier)
    return func.extract("epoch", later - earlier) / 86400.0


def closed_durations(session: Session, flt: DealFilter
                     ) -> list[tuple[int, int, bool, float]]:
    """The forecast's fast read of the same history as `closed_history`: (deal, stage, won,
    days from first entering the stage to closing), computed in SQL (no datetimes to parse)."""
    dialect = session.get_bind().dialect.name
    entered = func.min(DealStageChange.changed_at)
    stmt = (
        select(DealStageChange.deal_id, DealStageChange.to_stage_id, Deal.status,
               _days_between(Deal.closed_at, entered, dialect).label("days"))
        .join(Deal, Deal.id == DealStageChange.deal_id)
        .where(Deal.status.in_(("won", "lost")), Deal.closed_at.is_not(None), *flt.where)
        .group_by(DealStageChange.deal_id, DealStageChange.to_stage_id, Deal.status,
                  Deal.closed_at)
    )
    return [(d, s, status == "won", float(days or 0.0))
            for d, s, status, days in session.execute(stmt)]


def stage_model(entries: Iterable[ClosedEntry], stages: Sequence[PipelineStage]) -> StageModel:
    """Conversion rate and median days to winning per open stage (pure: tests feed it by hand).

    An entry into a stage that is itself won or lost is not "reaching" an open stage."""
    return stage_model_of_durations(
        ((e.deal_id, e.stage_id, e.won, (e.closed_at - e.entered_at).total_seconds() / 86400.0)
         for e in entries), stages)


def stage_model_of_durations(rows: Iterable[tuple[int, int, bool, float]],
                             stages: Sequence[PipelineStage]) -> StageModel:
    """`stage_model` over (deal, stage, won, days to close) rows."""
    open_stages = {s.id: s for s in stages if s.outcome == "open"}
    reached: dict[int, set[int]] = defaultdict(set)
    won: dict[int, set[int]] = defaultdict(set)
    durations: dict[int, list[float]] = defaultdict(list)
    deals: set[int] = set()
    for deal_id, stage_id, is_won, days in rows:
        deals.add(deal_id)
        if stage_id not in open_stages:
            continue
        reached[stage_id].add(deal_id)
        if is_won:
            won[stage_id].add(deal_id)
            durations[stage_id].append(max(days, 0.0))
    all_durations = [d for ds in durations.values() for d in ds]
    fallback_days = statistics.median(all_durations) if all_durations else DEFAULT_DAYS_TO_CLOSE
    rates: dict[int, float] = {}
    days: dict[int, float] = {}
    basis: dict[int, str] = {}
    for sid, stage in open_stages.items():
        if reached[sid]:
            rates[sid] = len(won[sid]) / len(reached[sid])
            basis[sid] = "history"
        else:
            rates[sid] = stage.probability / 100.0
            basis[sid] = "stage_default"
        days[sid] = statistics.median(durations[sid]) if durations[sid] else fallback_days
    return StageModel(rates, days, {k: len(v) for k, v in reached.items()},
                      {k: len(v) for k, v in won.items()}, basis, len(deals))


def _historical_by_bucket(session: Session, flt: DealFilter, model: StageModel,
                          months: list[date], end: date, as_of: datetime) -> list[Any]:
    """Σ amount per (stage, currency, bucket) of open deals whose predicted close lands in the
    horizon. Predicted close = max(stage_entered_at + days[stage], as_of), as a CASE per stage
    over shifted bounds, so the database still does the grouping."""
    bounds = [_midnight(m) for m in [*months, end]]
    whens: list[tuple[ColumnElement[bool], int]] = []
    for sid, days in model.days.items():
        shift = timedelta(days=days)
        in_stage = Deal.stage_id == sid
        if as_of < bounds[0]:  # predictions before the horizon are not in it
            whens.append((and_(in_stage, Deal.stage_entered_at < bounds[0] - shift), -1))
        for k in range(len(bounds) - 1):
            if bounds[k + 1] <= as_of:
                continue  # no prediction lands before as_of
            whens.append((and_(in_stage, Deal.stage_entered_at < bounds[k + 1] - shift), k))
    if not whens:
        return []
    bucket = case(*whens, else_=-2).label("bucket")
    stmt = (
        select(Deal.stage_id, Deal.currency, bucket, func.count().label("n"),
               func.sum(Deal.amount).label("amount"))
        .where(Deal.status == "open", _NOT_OMITTED, *flt.where,
               Deal.stage_id.in_(list(model.days)))
        .group_by(Deal.stage_id, Deal.currency, bucket)
    )
    return [r for r in session.execute(stmt) if r.bucket >= 0]


def _stage_stats(model: StageModel, stages: Sequence[PipelineStage]) -> list[StageStats]:
    return [
        StageStats(stage_id=s.id, stage_name=s.name, pipeline_id=s.pipeline_id,
                   position=s.position, default_probability=s.probability,
                   reached=model.reached.get(s.id, 0), won=model.won.get(s.id, 0),
                   conversion_rate=round(model.rates[s.id], 4),
                   median_days_to_close=round(model.days[s.id], 2), basis=model.basis[s.id])
        for s in stages if s.id in model.rates
    ]


# --- the forecast -------------------------------------------------------------------------------


def _names(session: Session, model: Any, label: Any, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return {i: n for i, n in session.execute(select(model.id, label).where(model.id.in_(ids)))}


def forecast(
    session: Session, principal: Principal, start: date | None = None, end: date | None = None,
    *, period: Period = "quarter", pipeline_id: int | None = None, owner_id: int | None = None,
    team_id: int | None = None, as_of: datetime | None = None,
) -> ForecastOut:
    """The forecast of [start, end) (default: one `period` from `start`) over readable deals."""
    as_of = as_utc(as_of) if as_of is not None else utcnow()
    start, end = period_bounds(start, period, end, as_of.date())
    flt = DealFilter.of(principal, pipeline_id, owner_id, team_id)
    months = _months(start, end)
    accs = [_Acc() for _ in months]
    for r in _open_by_bucket(session, flt, months, end):
        accs[r.bucket].add(r.currency, open_count=r.n, pipeline_amount=r.amount or 0,
                           weighted_x100=Decimal(str(r.weighted_x100 or 0)),
                           commit_open=r.commit_open or 0, best_case_open=r.best_case_open or 0)
    for r in _won_by_bucket(session, flt, months, end):
        accs[r.bucket].add(r.currency, won_count=r.n, won_amount=r.amount or 0)

    stages = _stages(session, pipeline_id)
    model = stage_model_of_durations(closed_durations(session, flt), stages)
    for r in _historical_by_bucket(session, flt, model, months, end, as_of):
        accs[r.bucket].add(r.currency, historical_count=r.n,
                           historical_amount=Decimal(str(r.amount or 0))
                           * Decimal(str(model.rate(r.stage_id))))

    def merged(parts: Sequence[_Acc]) -> _Acc:
        out = _Acc()
        for part in parts:
            for currency, row in part.figures.items():
                out.add(currency, **row)
        return out

    month_buckets = [
        Bucket(label=m.strftime("%Y-%m"), start=m, end=add_months(m, 1), currencies=acc.out())
        for m, acc in zip(months, accs, strict=True)
    ]
    quarters: dict[date, list[int]] = {}
    for i, m in enumerate(months):
        quarters.setdefault(quarter_start(m), []).append(i)
    quarter_buckets = [
        Bucket(label=quarter_label(q), start=max(q, start), end=min(add_months(q, 3), end),
               currencies=merged([accs[i] for i in idx]).out())
        for q, idx in quarters.items()
    ]

    owner_rows = _breakdown(session, flt, start, end, Deal.owner_id, {})
    team_rows = _breakdown(session, flt, start, end, Deal.team_id, {})
    owner_names = _names(session, User, User.full_name,
                         {b.id for b in owner_rows if b.id is not None})
    team_names = _names(session, Team, Team.name, {b.id for b in team_rows if b.id is not None})
    for b in owner_rows:
        b.name = owner_names.get(b.id) if b.id is not None else None
    for b in team_rows:
        b.name = team_names.get(b.id) if b.id is not None else None

    return ForecastOut(
        period=period, start=start, end=end, as_of=as_of, scope=flt.scope,
        pipeline_id=pipeline_id, owner_id=owner_id, team_id=team_id,
        months=month_buckets, quarters=quarter_buckets, total=merged(accs).out(),
        by_owner=owner_rows, by_team=team_rows,
        historical=HistoricalModel(closed_deals=model.closed_deals,
                                   stages=_stage_stats(model, stages)),
    )


# --- metrics ------------------------------------------------------------------------------------


def metrics(
    session: Session, principal: Principal, start: date | None = None, end: date | None = None,
    *, pipeline_id: int | None = None, owner_id: int | None = None, team_id: int | None = None,
) -> MetricsOut:
    """Win rate, average deal size, sales cycle and velocity; closed deals by `closed_at` in
    [start, end) (open bounds when None), open deals as they are now."""
    flt = DealFilter.of(principal, pipeline_id, owner_id, team_id)
    closed_where: list[ColumnElement[bool]] = [Deal.status.in_(("won", "lost")), *flt.where]
    if start is not None:
        closed_where.append(Deal.closed_at >= _midnight(start))
    if end is not None:
        closed_where.append(Deal.closed_at < _midnight(end))
    per: dict[str, dict[str, Any]] = defaultdict(lambda: defaultdict(lambda: 0))
    for r in session.execute(
        select(Deal.currency, Deal.status, func.count().label("n"),
               func.sum(Deal.amount).label("amount"))
        .where(*closed_where).group_by(Deal.currency, Deal.status)
    ):
        per[r.currency][f"{r.status}_count"] += r.n
        per[r.currency][f"{r.status}_amount"] += _dec(r.amount)
    for r in session.execute(
        select(Deal.currency, func.count().label("n"))
        .where(Deal.status == "open", _NOT_OMITTED, *flt.where).group_by(Deal.currency)
    ):
        per[r.currency]["open_count"] += r.n
    # the cycle is a median: read the won deals' two timestamps (one narrow query)
    cycles = [
        (as_utc(closed) - as_utc(created)).total_seconds() / 86400.0
        for created, closed in session.execute(
            select(Deal.created_at, Deal.closed_at)
            .where(*closed_where, Deal.status == "won", Deal.closed_at.is_not(None)))
    ]
    median_cycle = statistics.median(cycles) if cycles else None
    won = sum(int(p["won_count"]) for p in per.values())
    lost = sum(int(p["lost_count"]) for p in per.values())
    win_rate = won / (won + lost) if won + lost else None
    out = []
    for currency in sorted(per):
        p = per[currency]
        won_amount, lost_amount = _dec(p["won_amount"]), _dec(p["lost_amount"])
        avg = _dec(won_amount / p["won_count"]) if p["won_count"] else None
        velocity = None
        if avg is not None and win_rate is not None and median_cycle:
            velocity = Decimal(str(p["open_count"] * win_rate)) * avg / Decimal(
                str(median_cycle))
        out.append(CurrencyMetrics(
            currency=currency, won_count=int(p["won_count"]), lost_count=int(p["lost_count"]),
            won_amount=won_amount, lost_amount=lost_amount,
            win_rate_amount=(float(won_amount / (won_amount + lost_amount))
                             if won_amount + lost_amount else None),
            average_deal_size=avg, open_count=int(p["open_count"]),
            velocity_per_day=_dec(velocity) if velocity is not None else None,
            velocity_per_month=(_dec(velocity * Decimal(str(DAYS_PER_MONTH)))
                                if velocity is not None else None),
        ))
    return MetricsOut(start=start, end=end, scope=flt.scope, won_count=won, lost_count=lost,
                      win_rate=round(win_rate, 4) if win_rate is not None else None,
                      median_cycle_days=round(median_cycle, 2) if median_cycle else None,
                      currencies=out)


# --- backtest -----------------------------------------------------------------------------------


@dataclass
class _DealLife:
    amount: Decimal
    currency: str
    created_at: datetime
    status: str
    closed_at: datetime | None
    moves: list[tuple[datetime, int, Decimal]] = field(default_factory=list)

    def at(self, when: datetime) -> tuple[int, datetime, Decimal] | None:
        """(stage, entered_at, amount) of the deal just before `when`, None if not open then."""
        if self.created_at >= when or (self.closed_at is not None and self.closed_at < when):
            return None
        last = None
        for changed_at, stage_id, amount in self.moves:
            if changed_at >= when:
                break
            last = (stage_id, changed_at, amount)
        return last


def backtest(
    session: Session, principal: Principal, quarters: int = 4, *,
    as_of: datetime | None = None, pipeline_id: int | None = None,
    owner_id: int | None = None, team_id: int | None = None,
) -> BacktestOut:
    """Replay the historical model on the `quarters` full quarters before `as_of`'s quarter.

    For each quarter Q: learn from deals closed before Q starts, predict the amount won in Q
    from the deals open at Q's start (their stage and amount then), compare with what those
    deals actually won in Q. MAPE per currency over the quarters with a non-zero actual."""
    if not 1 <= quarters <= 20:
        raise ValidationProblem("quarters must be between 1 and 20", field="quarters")
    as_of = as_utc(as_of) if as_of is not None else utcnow()
    flt = DealFilter.of(principal, pipeline_id, owner_id, team_id)
    stages = _stages(session, pipeline_id)
    open_ids = {s.id for s in stages if s.outcome == "open"}
    current = quarter_start(as_of.date())
    first = add_months(current, -3 * quarters)

    # one read of every stage move of the deals alive during the backtest window
    lives: dict[int, _DealLife] = {}
    for r in session.execute(
        select(Deal.id, Deal.amount, Deal.currency, Deal.created_at, Deal.status, Deal.closed_at,
               DealStageChange.changed_at, DealStageChange.to_stage_id, DealStageChange.amount)
        .join(DealStageChange, DealStageChange.deal_id == Deal.id)
        .where(*flt.where, Deal.created_at < _midnight(current))
        .order_by(Deal.id, DealStageChange.changed_at, DealStageChange.id)
    ):
        life = lives.get(r.id)
        if life is None:
            life = lives[r.id] = _DealLife(
                _dec(r.amount), r.currency, as_utc(r.created_at), r.status,
                as_utc(r.closed_at) if r.closed_at is not None else None)
        life.moves.append((as_utc(r.changed_at), r.to_stage_id, _dec(r.amount)))
    all_entries = closed_history(session, flt)

    rows: list[BacktestQuarter] = []
    for i in range(quarters):
        q0 = add_months(first, 3 * i)
        q1 = add_months(q0, 3)
        t0, t1 = _midnight(q0), _midnight(q1)
        model = stage_model([e for e in all_entries if e.closed_at < t0], stages)
        predicted: dict[str, Decimal] = defaultdict(Decimal)
        actual: dict[str, Decimal] = defaultdict(Decimal)
        total_won: dict[str, Decimal] = defaultdict(Decimal)
        n_open: dict[str, int] = defaultdict(int)
        for life in lives.values():
            if (life.status == "won" and life.closed_at is not None
                    and t0 <= life.closed_at < t1):
                total_won[life.currency] += life.amount
            state = life.at(t0)
            if state is None or state[0] not in open_ids:
                continue
            stage_id, entered_at, amount = state
            n_open[life.currency] += 1
            close = max(entered_at + timedelta(days=model.days[stage_id]), t0)
            if close < t1:
                predicted[life.currency] += amount * Decimal(str(model.rate(stage_id)))
            if life.status == "won" and life.closed_at is not None and life.closed_at < t1:
                actual[life.currency] += life.amount
        for currency in sorted(set(n_open) | set(total_won)):
            p, a = _dec(predicted[currency]), _dec(actual[currency])
            rows.append(BacktestQuarter(
                quarter=quarter_label(q0), start=q0, end=q1, currency=currency,
                open_at_start=n_open[currency], predicted_amount=p, actual_amount=a,
                actual_total_won=_dec(total_won[currency]),
                error_pct=round(float((p - a) / a * 100), 2) if a else None))
    mape: dict[str, float | None] = {}
    for currency in sorted({r.currency for r in rows}):
        errors = [abs(r.error_pct) for r in rows
                  if r.currency == currency and r.error_pct is not None]
        mape[currency] = round(sum(errors) / len(errors), 2) if errors else None
    return BacktestOut(quarters=rows, mape=mape, scope=flt.scope)


__all__ = [
    "ClosedEntry", "DealFilter", "StageModel", "add_months", "backtest", "closed_history",
    "forecast", "metrics", "period_bounds", "quarter_start", "stage_model",
]
