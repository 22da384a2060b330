"""Input and output models for users, teams and API tokens."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator

from accord.access.policy import RESOURCES, ROLES, SCOPE_ACTIONS
from accord.core.validation import RowId, StrictIn


def _check_role(value: str | None) -> str | None:
    if value is not None and value not in ROLES:
        raise ValueError(f"must be one of {', '.join(ROLES)}")
    return value


class UserCreate(StrictIn):
    email: EmailStr
    full_name: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=10, max_length=200)
    role: str
    team_id: RowId | None = None
    locale: str = Field(default="en_GB", max_length=20)

    _role = field_validator("role")(_check_role)


class UserUpdate(StrictIn):
    full_name: str | None = Field(default=None, min_length=1, max_length=200)
    role: str | None = None
    team_id: RowId | None = None
    is_active: bool | None = None
    locale: str | None = Field(default=None, max_length=20)
    password: str | None = Field(default=None, min_length=10, max_length=200)

    _role = field_validator("role")(_check_role)


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    full_name: str
    role: str
    team_id: int | None
    is_active: bool
    locale: str
    version: int
    created_at: datetime
    last_login_at: datetime | None


class TeamIn(StrictIn):
    name: str = Field(min_length=1, max_length=120)
    description: str = Field(default="", max_length=500)


class TeamUpdate(StrictIn):
    name: str | None = Field(default=None, min_length=1, max_length=120)
    description: str | None = Field(default=None, max_length=500)


class TeamOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    description: str
    version: int


class TokenCreate(StrictIn):
    name: str = Field(min_length=1, max_length=120)
    scopes: list[str] = Field(default_factory=lambda: ["*"], max_length=50)
    expires_in_days: int | None = Field(default=90, ge=1, le=3650)

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, value: list[str]) -> list[str]:
        for scope in value:
            if scope == "*":
                continue
            resource, _, kind = scope.partition(":")
            if resource not in (*RESOURCES, "*") or kind not in SCOPE_ACTIONS:
                raise ValueError(f"unknown scope {scope!r} (use resource:read|write|export or *)")
        return value


class TokenOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class TokenCreated(TokenOut):
    token: str


class LoginIn(StrictIn):
    email: str = Field(max_length=254)
    password: str = Field(max_length=200)
