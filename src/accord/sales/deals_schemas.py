"""Pipeline, stage and deal payloads.

Money is `Decimal` with two places and an ISO 4217 currency and leaves the API as a string.
Input models forbid unknown and read-only fields (`id`, `version`, `owner_id`, `status`,
`stage_id` on a PATCH, `line_total`, `closed_at` ...): status, totals and stage history are the
server's, and a stage changes only through `POST /deals/{id}/move`, which records it.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from accord.commerce.schemas import CENT, MONEY_DIGITS, Money, check_currency
from accord.core.validation import RowId, StrictIn
from accord.models.sales import (
    FORECAST_CATEGORIES,
    LOST_REASONS,
    PIPELINE_KINDS,
    STAGE_OUTCOMES,
)

Kind = Literal["new_business", "upsell", "renewal"]
Outcome = Literal["open", "won", "lost"]
Forecast = Literal["pipeline", "best_case", "commit", "closed", "omitted"]
LostReason = Literal["price", "competitor", "no_decision", "timing", "product_fit", "other"]
assert set(Kind.__args__) == set(PIPELINE_KINDS)  # type: ignore[attr-defined]
assert set(Outcome.__args__) == set(STAGE_OUTCOMES)  # type: ignore[attr-defined]
assert set(Forecast.__args__) == set(FORECAST_CATEGORIES)  # type: ignore[attr-defined]
assert set(LostReason.__args__) == set(LOST_REASONS)  # type: ignore[attr-defined]

Percent = Annotated[int, Field(ge=0, le=100)]
Name = Annotated[str, Field(min_length=1, max_length=120)]
SOURCE_PATTERN = r"^[a-z][a-z0-9_]*$"


def _not_null(value: object) -> object:
    if value is None:
        raise ValueError("may not be null")
    return value


# --- pipelines and stages ----------------------------------------------------------------------

class StageCreate(StrictIn):
    name: Name
    probability: Percent = 0
    outcome: Outcome = "open"
    position: int | None = Field(default=None, ge=0, le=1000,
                                 description="Where to insert (0 = first); default last")


class StageUpdate(StrictIn):
    name: Name | None = None
    probability: Percent | None = None
    outcome: Outcome | None = Field(default=None,
                                    description="Only for a stage no deal is in")

    @field_validator("name", "probability", "outcome", mode="before")
    @classmethod
    def _nn(cls, value: object) -> object:
        return _not_null(value)


class StageOrder(StrictIn):
    stage_ids: list[RowId] = Field(min_length=1, max_length=100,
                                   description="Every stage of the pipeline, in the new order")


class PipelineCreate(StrictIn):
    name: Name
    kind: Kind = "new_business"
    position: int = Field(default=0, ge=0, le=1000)
    active: bool = True
    stages: list[StageCreate] = Field(min_length=1, max_length=50)


class PipelineUpdate(StrictIn):
    name: Name | None = None
    kind: Kind | None = None
    position: int | None = Field(default=None, ge=0, le=1000)
    active: bool | None = None

    @field_validator("name", "kind", "position", "active", mode="before")
    @classmethod
    def _nn(cls, value: object) -> object:
        return _not_null(value)


class StageOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    version: int
    pipeline_id: int
    name: str
    position: int
    probability: int
    outcome: str


class PipelineOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    version: int
    name: str
    kind: str
    position: int
    active: bool
    stages: list[StageOut]
    created_at: datetime
    updated_at: datetime


# --- deals -------------------------------------------------------------------------------------

class DealLineIn(StrictIn):
    """`unit_price` and `description` default to the product's when a product is named."""

    product_id: RowId | None = None
    description: str | None = Field(default=None, min_length=1, max_length=200)
    quantity: int = Field(ge=1, le=1_000_000)
    unit_price: Money | None = None
    discount_percent: Decimal = Field(default=Decimal("0"), ge=0, le=100, max_digits=5,
                                      decimal_places=2)


Competitor = Annotated[str, Field(min_length=1, max_length=100)]


class DealFields(StrictIn):
    """What both create and update may set (update: every field optional)."""

    probability: Percent | None = Field(
        default=None, description="Overrides the stage's default; reset on a move")
    expected_close_date: date | None = None
    forecast_category: Forecast | None = Field(
        default=None, description="pipeline, best_case, commit or omitted while open; "
        "closed is set by the server when the deal is won or lost")
    competitors: list[Competitor] | None = Field(default=None, max_length=20)
    lost_note: str | None = Field(default=None, max_length=2000)
    customer_id: RowId | None = None
    account_id: RowId | None = None
    contact_id: RowId | None = None

    @field_validator("competitors")
    @classmethod
    def _unique(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        seen: dict[str, str] = {}
        for name in value:
            seen.setdefault(name.casefold(), name)
        return list(seen.values())


class DealCreate(DealFields):
    name: str = Field(min_length=1, max_length=200)
    pipeline_id: RowId
    stage_id: RowId | None = Field(default=None, description="Default: the first open stage")
    amount: Money | None = Field(default=None, description="The sum of the lines when given")
    currency: str
    lead_id: RowId | None = None
    source: str = Field(default="manual", min_length=1, max_length=24, pattern=SOURCE_PATTERN)
    lost_reason: LostReason | None = Field(default=None,
                                           description="Required when the stage is a lost one")
    lines: list[DealLineIn] = Field(default_factory=list, max_length=200)

    _c = field_validator("currency")(check_currency)


class DealUpdate(DealFields):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    amount: Money | None = None
    currency: str | None = None
    lost_reason: LostReason | None = Field(default=None, description="Only on a lost deal")
    lines: list[DealLineIn] | None = Field(default=None, max_length=200,
                                           description="Replaces every line; [] removes them")

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str | None) -> str | None:
        return None if value is None else check_currency(value)

    @field_validator("name", "amount", "currency", "competitors", "forecast_category",
                     mode="before")
    @classmethod
    def _nn(cls, value: object) -> object:
        return _not_null(value)


class DealMove(StrictIn):
    stage_id: RowId
    lost_reason: LostReason | None = Field(default=None,
                                           description="Required when moving to a lost stage")
    lost_note: str | None = Field(default=None, max_length=2000)


class DealLineOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    product_id: int | None
    description: str
    quantity: int
    unit_price: Decimal
    discount_percent: Decimal
    line_total: Decimal


class StageChangeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    from_stage_id: int | None
    to_stage_id: int
    amount: Decimal
    changed_at: datetime
    changed_by: int | None


class DealSummaryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    version: int
    name: str
    pipeline_id: int
    stage_id: int
    status: str
    amount: Decimal
    currency: str
    probability: int | None
    expected_close_date: date | None
    forecast_category: str
    competitors: list[str]
    lost_reason: str | None
    lost_note: str | None
    closed_at: datetime | None
    stage_entered_at: datetime
    source: str
    customer_id: int | None
    account_id: int | None
    contact_id: int | None
    lead_id: int | None
    owner_id: int | None
    team_id: int | None
    created_by: int | None
    created_at: datetime
    updated_at: datetime


class DealOut(DealSummaryOut):
    lines: list[DealLineOut]
    stage_history: list[StageChangeOut]


__all__ = [
    "CENT", "MONEY_DIGITS", "DealCreate", "DealLineIn", "DealLineOut", "DealMove", "DealOut",
    "DealSummaryOut", "DealUpdate", "PipelineCreate", "PipelineOut", "PipelineUpdate",
    "StageChangeOut", "StageCreate", "StageOrder", "StageOut", "StageUpdate",
]
