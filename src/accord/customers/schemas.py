"""Customer, account and contact payloads. Input models forbid unknown and read-only fields."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_serializer,
    model_validator,
)

from accord.core.contact import InvalidValue, normalize_country, normalize_email
from accord.core.validation import RowId, StrictIn
from accord.models.customer import CHANNELS, CUSTOM_FIELD_TYPES, LIFECYCLE_STAGES, VALUE_TIERS

Stage = Literal["awareness", "discovery", "evaluation", "intent", "purchase", "loyalty", "churned"]
Tier = Literal["bronze", "silver", "gold", "platinum"]
Channel = Literal["email", "chat", "phone", "sms", "social", "web", "app", "store"]
assert set(Stage.__args__) == set(LIFECYCLE_STAGES)  # type: ignore[attr-defined]
assert set(Tier.__args__) == set(VALUE_TIERS)  # type: ignore[attr-defined]
assert set(Channel.__args__) == set(CHANNELS)  # type: ignore[attr-defined]


def _country(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return normalize_country(value)
    except InvalidValue as exc:
        raise ValueError(str(exc)) from None


class EmailIn(StrictIn):
    email: str = Field(max_length=254)
    kind: Literal["personal", "work", "other"] = "personal"
    is_primary: bool = False
    verified: bool = False

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        try:
            normalize_email(value)
        except InvalidValue as exc:
            raise ValueError(f"invalid e-mail address: {exc}") from None
        return value


class PhoneIn(StrictIn):
    phone: str = Field(min_length=3, max_length=40)
    kind: Literal["mobile", "home", "work", "other"] = "mobile"
    is_primary: bool = False


class AddressIn(StrictIn):
    kind: Literal["home", "billing", "shipping", "work", "other"] = "home"
    line1: str = Field(min_length=1, max_length=200)
    line2: str | None = Field(default=None, max_length=200)
    city: str = Field(min_length=1, max_length=120)
    region: str | None = Field(default=None, max_length=120)
    postcode: str | None = Field(default=None, max_length=20)
    country: str
    is_primary: bool = False

    _c = field_validator("country")(_country)


def _one_primary(items: list[Any] | None, name: str) -> None:
    if items and sum(1 for i in items if i.is_primary) > 1:
        raise ValueError(f"only one of {name} may be primary")


class CustomerFields(StrictIn):
    title: str | None = Field(default=None, max_length=40)
    first_name: str = Field(default="", max_length=100)
    last_name: str = Field(default="", max_length=100)
    gender: str | None = Field(default=None, max_length=20)
    date_of_birth: date | None = None
    national_id: str | None = Field(default=None, max_length=64)
    notes: str | None = Field(default=None, max_length=20000)
    lifecycle_stage: Stage = "awareness"
    value_tier: Tier | None = None
    preferred_channel: Channel | None = None
    preferred_language: str | None = Field(
        default=None, max_length=20, pattern=r"^[a-zA-Z]{2,3}([-_][a-zA-Z0-9]{2,8})*$"
    )
    country: str | None = None
    account_id: RowId | None = None
    emails: list[EmailIn] = Field(default_factory=list, max_length=20)
    phones: list[PhoneIn] = Field(default_factory=list, max_length=20)
    addresses: list[AddressIn] = Field(default_factory=list, max_length=20)
    custom: dict[str, Any] = Field(default_factory=dict)

    _c = field_validator("country")(_country)

    @field_validator("date_of_birth")
    @classmethod
    def _dob(cls, value: date | None) -> date | None:
        if value is not None and not date(1900, 1, 1) <= value <= date.today():
            raise ValueError("date of birth must be between 1900-01-01 and today")
        return value

    @model_validator(mode="after")
    def _primaries(self) -> CustomerFields:
        _one_primary(self.emails, "emails")
        _one_primary(self.phones, "phones")
        _one_primary(self.addresses, "addresses")
        return self


class CustomerCreate(CustomerFields):
    @model_validator(mode="after")
    def _named(self) -> CustomerCreate:
        if not (self.first_name or self.last_name):
            raise ValueError("a customer needs a first or last name")
        return self


class CustomerUpdate(CustomerFields):
    """Every field optional; lists, when sent, replace the existing contact points."""

    first_name: str | None = Field(default=None, max_length=100)  # type: ignore[assignment]
    last_name: str | None = Field(default=None, max_length=100)  # type: ignore[assignment]
    lifecycle_stage: Stage | None = None  # type: ignore[assignment]
    emails: list[EmailIn] | None = Field(default=None, max_length=20)  # type: ignore[assignment]
    phones: list[PhoneIn] | None = Field(default=None, max_length=20)  # type: ignore[assignment]
    addresses: list[AddressIn] | None = Field(default=None, max_length=20)  # type: ignore[assignment]
    custom: dict[str, Any] | None = None  # type: ignore[assignment]
    stage_reason: str = Field(default="", max_length=300)


class AssignIn(StrictIn):
    owner_id: RowId | None = None
    team_id: RowId | None = None


class EmailOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    email: str
    kind: str
    is_primary: bool
    verified: bool


class PhoneOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    phone: str
    e164: str
    kind: str
    is_primary: bool


class AddressOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    kind: str
    line1: str
    line2: str | None
    city: str
    region: str | None
    postcode: str | None
    country: str
    is_primary: bool


class CustomerOut(BaseModel):
    """Sensitive fields the caller may not see are absent and named in `masked_fields`."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    version: int
    title: str | None = None
    first_name: str
    last_name: str
    display_name: str
    gender: str | None = None
    date_of_birth: date | None = None
    national_id: str | None = None
    notes: str | None = None
    lifecycle_stage: str
    value_tier: str | None
    lifetime_value: Decimal | None = None
    preferred_channel: str | None
    preferred_language: str | None
    country: str | None
    account_id: int | None
    owner_id: int | None
    team_id: int | None
    created_at: datetime
    updated_at: datetime
    emails: list[EmailOut] = []
    phones: list[PhoneOut] = []
    addresses: list[AddressOut] = []
    custom: dict[str, Any] = {}
    masked_fields: list[str] = []

    @model_serializer(mode="wrap")
    def _drop_masked(self, handler):  # no return annotation: keeps the documented schema
        """Masked fields are absent from every serialisation, not present as null."""
        data = handler(self)
        for name in self.masked_fields:
            data.pop(name, None)
        return data


class Page(BaseModel):
    items: list[Any]
    next_cursor: str | None


class CustomFieldIn(StrictIn):
    key: str = Field(min_length=1, max_length=60, pattern=r"^[a-z][a-z0-9_]*$")
    label: str = Field(min_length=1, max_length=120)
    type: Literal["text", "number", "date", "choice"]
    choices: list[str] = Field(default_factory=list, max_length=200)
    required: bool = False
    sensitive: bool = False
    help_text: str = Field(default="", max_length=300)

    @model_validator(mode="after")
    def _choices(self) -> CustomFieldIn:
        if self.type == "choice" and not self.choices:
            raise ValueError("a choice field needs choices")
        if self.type != "choice" and self.choices:
            raise ValueError("only choice fields take choices")
        return self


class CustomFieldUpdate(StrictIn):
    label: str | None = Field(default=None, min_length=1, max_length=120)
    choices: list[str] | None = Field(default=None, max_length=200)
    required: bool | None = None
    sensitive: bool | None = None
    help_text: str | None = Field(default=None, max_length=300)


class CustomFieldOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    entity: str
    key: str
    label: str
    type: str
    choices: list[str]
    required: bool
    sensitive: bool
    help_text: str
    version: int


assert set(CUSTOM_FIELD_TYPES) == {"text", "number", "date", "choice"}
