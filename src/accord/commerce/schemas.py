"""Product and order payloads. Money is `Decimal` with two places and an ISO 4217 currency, and
leaves the API as a string so no client ever parses it into a float. Input models forbid unknown
and read-only fields (`total`, `line_total`, `version`, ...): totals are computed server-side."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from accord.core.contact import InvalidValue, normalize_currency
from accord.core.validation import StrictIn
from accord.models.commerce import ORDER_STATUSES
from accord.models.customer import CHANNELS

Status = Literal["pending", "paid", "shipped", "delivered", "cancelled", "refunded"]
Channel = Literal["email", "chat", "phone", "sms", "social", "web", "app", "store"]
assert set(Status.__args__) == set(ORDER_STATUSES)  # type: ignore[attr-defined]
assert set(Channel.__args__) == set(CHANNELS)  # type: ignore[attr-defined]

CENT = Decimal("0.01")
# At most 15 significant digits: what both engines keep exactly (SQLite stores NUMERIC as a
# double, which holds 15 decimal digits without loss), i.e. amounts below 10^13.
MONEY_DIGITS = 15
MONEY_LIMIT = Decimal(10) ** (MONEY_DIGITS - 2)
CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._/-]*$"


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT)


Money = Annotated[Decimal, Field(ge=0, max_digits=MONEY_DIGITS, decimal_places=2),
                  AfterValidator(_cents)]


def check_currency(value: str) -> str:
    try:
        return normalize_currency(value)
    except InvalidValue as exc:
        raise ValueError(str(exc)) from None


# --- products ----------------------------------------------------------------------------------

class ProductCreate(StrictIn):
    sku: str = Field(min_length=1, max_length=64, pattern=CODE_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    category: str | None = Field(default=None, max_length=100)
    price: Money
    currency: str
    active: bool = True

    _c = field_validator("currency")(check_currency)


class ProductUpdate(StrictIn):
    sku: str | None = Field(default=None, min_length=1, max_length=64, pattern=CODE_PATTERN)
    name: str | None = Field(default=None, min_length=1, max_length=200)
    category: str | None = Field(default=None, max_length=100)
    price: Money | None = None
    currency: str | None = None
    active: bool | None = None

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str | None) -> str | None:
        return None if value is None else check_currency(value)

    @field_validator("sku", "name", "price", "currency", "active", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("may not be null")
        return value


class ProductOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    version: int
    sku: str
    name: str
    category: str | None
    price: Decimal
    currency: str
    active: bool
    created_at: datetime
    updated_at: datetime


# --- orders ------------------------------------------------------------------------------------

class OrderLineIn(StrictIn):
    """`unit_price` and `description` default to the product's when a product is named."""

    product_id: int | None = None
    description: str | None = Field(default=None, min_length=1, max_length=200)
    quantity: int = Field(ge=1, le=1_000_000)
    unit_price: Money | None = None


class OrderFields(StrictIn):
    number: str | None = Field(default=None, min_length=1, max_length=40, pattern=CODE_PATTERN,
                               description="Generated when not given")
    currency: str
    status: Status = "pending"
    ordered_at: AwareDatetime | None = Field(default=None, description="Defaults to now")
    channel: Channel | None = None
    lines: list[OrderLineIn] = Field(min_length=1, max_length=500)

    _c = field_validator("currency")(check_currency)


class OrderCreate(OrderFields):
    """For `POST /orders`; the nested route takes the customer from its path."""

    customer_id: int


class OrderStatusUpdate(StrictIn):
    status: Status
    reason: str = Field(default="", max_length=300)


class OrderLineOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    product_id: int | None
    description: str
    quantity: int
    unit_price: Decimal
    line_total: Decimal


class OrderSummaryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    version: int
    customer_id: int
    number: str
    status: str
    currency: str
    total: Decimal
    ordered_at: datetime
    channel: str | None
    created_at: datetime
    updated_at: datetime


class OrderOut(OrderSummaryOut):
    lines: list[OrderLineOut]
