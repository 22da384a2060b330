"""Account (organisation) and contact payloads. Input models forbid unknown and read-only fields
(`owner_id`, `team_id`, `name_key`, `version`, `account_id` on a contact, ...)."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from accord.core.contact import InvalidValue, normalize_country, normalize_currency, normalize_email
from accord.core.validation import StrictIn

Tier = Literal["bronze", "silver", "gold", "platinum"]
CENT = Decimal("0.01")
# 15 significant digits: what SQLite's NUMERIC (a double) and PostgreSQL both keep exactly.
Money = Annotated[Decimal, Field(ge=0, max_digits=15, decimal_places=2),
                  AfterValidator(lambda v: v.quantize(CENT))]
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def _country(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return normalize_country(value)
    except InvalidValue as exc:
        raise ValueError(str(exc)) from None


def _domain(value: str | None) -> str | None:
    """A bare host name, lower-case and IDNA-encoded (`Example.COM.` → `example.com`)."""
    if value is None:
        return None
    host = value.strip().lower().rstrip(".")
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError("not a valid domain name") from None
    labels = host.split(".")
    if len(host) > 253 or len(labels) < 2 or not all(_LABEL.match(label) for label in labels) \
            or labels[-1].isdigit():
        raise ValueError("not a valid domain name (give the bare host, e.g. example.com)")
    return host


def _email(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return normalize_email(value)
    except InvalidValue as exc:
        raise ValueError(f"invalid e-mail address: {exc}") from None


class AccountFields(StrictIn):
    name: str = Field(min_length=1, max_length=200)
    domain: str | None = Field(default=None, max_length=253)
    industry: str | None = Field(default=None, max_length=100)
    employees: int | None = Field(default=None, ge=0, le=100_000_000)
    annual_revenue: Money | None = None
    annual_revenue_currency: str | None = None
    country: str | None = None
    value_tier: Tier | None = None

    _c = field_validator("country")(_country)
    _d = field_validator("domain")(_domain)

    @field_validator("annual_revenue_currency")
    @classmethod
    def _currency(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return normalize_currency(value)
        except InvalidValue as exc:
            raise ValueError(str(exc)) from None


class AccountCreate(AccountFields):
    pass


class AccountUpdate(AccountFields):
    """Every field optional; `name` may not be null."""

    name: str | None = Field(default=None, min_length=1, max_length=200)  # type: ignore[assignment]

    @field_validator("name", mode="before")
    @classmethod
    def _name(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may not be null")
        return value


class AccountOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    version: int
    name: str
    domain: str | None
    industry: str | None
    employees: int | None
    annual_revenue: Decimal | None
    annual_revenue_currency: str | None
    country: str | None
    value_tier: str | None
    owner_id: int | None
    team_id: int | None
    created_at: datetime
    updated_at: datetime


class ContactFields(StrictIn):
    first_name: str = Field(default="", max_length=100)
    last_name: str = Field(default="", max_length=100)
    job_title: str | None = Field(default=None, max_length=120)
    email: str | None = Field(default=None, max_length=254, description="Stored normalised")
    phone: str | None = Field(default=None, min_length=3, max_length=40,
                              description="Stored as E.164; national numbers are read in the "
                                          "account's country")
    is_primary: bool = False
    customer_id: int | None = Field(default=None, description="Link to the person's golden profile")

    _e = field_validator("email")(_email)


class ContactCreate(ContactFields):
    @model_validator(mode="after")
    def _named(self) -> ContactCreate:
        if not (self.first_name or self.last_name):
            raise ValueError("a contact needs a first or last name")
        return self


class ContactUpdate(ContactFields):
    """Every field optional; send null to clear `email`, `phone`, `job_title` or `customer_id`."""

    first_name: str | None = Field(default=None, max_length=100)  # type: ignore[assignment]
    last_name: str | None = Field(default=None, max_length=100)  # type: ignore[assignment]
    is_primary: bool | None = None  # type: ignore[assignment]

    @field_validator("first_name", "last_name", "is_primary", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may not be null")
        return value


class ContactOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    version: int
    account_id: int
    customer_id: int | None
    first_name: str
    last_name: str
    job_title: str | None
    email: str | None
    phone: str | None
    is_primary: bool
    created_at: datetime
    updated_at: datetime
