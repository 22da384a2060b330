"""Forecast read models: what `/api/v1/forecast*` returns (read-only, no input bodies)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Period = Literal["month", "quarter", "year"]


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class CurrencyFigures(_Out):
    """One currency's figures in one bucket: amounts of different currencies are never added."""

    currency: str
    open_count: int = 0
    pipeline_amount: Decimal = Field(
        default=Decimal("0"), description="Open deals (forecast category not omitted)")
    weighted_amount: Decimal = Field(
        default=Decimal("0"),
        description="Σ amount × probability (the deal's, else its stage's default)")
    won_count: int = 0
    won_amount: Decimal = Field(default=Decimal("0"), description="Won, closed in the bucket")
    commit_amount: Decimal = Field(
        default=Decimal("0"), description="Won + open deals in the commit category")
    best_case_amount: Decimal = Field(
        default=Decimal("0"), description="Commit + open deals in the best-case category")
    historical_count: int = Field(
        default=0, description="Open deals the historical model expects to close in the bucket")
    historical_amount: Decimal = Field(
        default=Decimal("0"),
        description="Σ amount × P(win) of the historical model over those deals")


class Bucket(_Out):
    label: str
    start: date
    end: date  # exclusive
    currencies: list[CurrencyFigures]


class Breakdown(_Out):
    """Weighted pipeline over the whole horizon for one owner or team and currency."""

    id: int | None
    name: str | None
    currency: str
    open_count: int
    pipeline_amount: Decimal
    weighted_amount: Decimal
    commit_amount: Decimal
    best_case_amount: Decimal


class StageStats(_Out):
    stage_id: int
    stage_name: str
    pipeline_id: int
    position: int
    default_probability: int
    reached: int = Field(description="Closed deals that entered the stage")
    won: int = Field(description="... and were won")
    conversion_rate: float = Field(description="P(win) used for open deals in the stage")
    median_days_to_close: float = Field(
        description="Median days from entering the stage to winning")
    basis: Literal["history", "stage_default"]


class HistoricalModel(_Out):
    closed_deals: int
    stages: list[StageStats]


class ForecastOut(_Out):
    period: Period
    start: date
    end: date
    as_of: datetime
    scope: Literal["own", "team", "all"]
    pipeline_id: int | None
    owner_id: int | None
    team_id: int | None
    months: list[Bucket]
    quarters: list[Bucket]
    total: list[CurrencyFigures]
    by_owner: list[Breakdown]
    by_team: list[Breakdown]
    historical: HistoricalModel


class CurrencyMetrics(_Out):
    currency: str
    won_count: int
    lost_count: int
    won_amount: Decimal
    lost_amount: Decimal
    win_rate_amount: float | None
    average_deal_size: Decimal | None
    open_count: int
    velocity_per_day: Decimal | None
    velocity_per_month: Decimal | None


class MetricsOut(_Out):
    """Win rate, deal size, cycle length and pipeline velocity of the deals the reader sees.

    velocity = open deals × win rate (by count) × average won deal size / median cycle days,
    per currency; per month = per day × 365.25 / 12."""

    start: date | None
    end: date | None
    scope: Literal["own", "team", "all"]
    won_count: int
    lost_count: int
    win_rate: float | None
    median_cycle_days: float | None
    currencies: list[CurrencyMetrics]


class BacktestQuarter(_Out):
    quarter: str
    start: date
    end: date
    currency: str
    open_at_start: int
    predicted_amount: Decimal
    actual_amount: Decimal = Field(description="Won in the quarter from the deals open at start")
    actual_total_won: Decimal = Field(description="All won in the quarter (new deals included)")
    error_pct: float | None = Field(description="(predicted − actual) / actual × 100")


class BacktestOut(_Out):
    quarters: list[BacktestQuarter]
    mape: dict[str, float | None] = Field(description="Mean absolute error %, per currency")
    scope: Literal["own", "team", "all"]
