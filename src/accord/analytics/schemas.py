"""Analytics payloads: marketing spend in (strict), KPI series and spend out."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_serializer,
    field_validator,
)

from accord.commerce.schemas import CODE_PATTERN, Money, check_currency
from accord.core.validation import StrictIn


class SpendCreate(StrictIn):
    channel: str = Field(min_length=1, max_length=40, pattern=CODE_PATTERN)
    period_start: date
    period_end: date = Field(description="last day of the period (inclusive)")
    amount: Money
    currency: str

    _c = field_validator("currency")(check_currency)

    @field_validator("period_end")
    @classmethod
    def _order(cls, value: date, info: ValidationInfo) -> date:
        start = info.data.get("period_start")
        if start is not None and value < start:
            raise ValueError("the period ends before it starts")
        return value


class SpendOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    channel: str
    period_start: date
    period_end: date
    amount: Decimal
    currency: str
    created_by: int | None
    created_at: datetime
    version: int

    @field_serializer("amount")
    def _money(self, value: Decimal) -> str:
        return f"{value:.2f}"


class KpiPoint(BaseModel):
    period_start: date
    period_end: date
    series: str | None
    currency: str | None
    dimension: str | None
    dimension_value: str | None
    value: float | None
    numerator: float | None
    denominator: float | None
    ci_low: float | None
    ci_high: float | None
    previous_value: float | None


class RunOut(BaseModel):
    id: int
    finished_at: datetime | None
    engine: str


class KpiSeries(BaseModel):
    kpi: str
    status: str = Field(description="`ok`, or `no data` when nothing feeds the KPI yet")
    run: RunOut | None
    items: list[KpiPoint]
