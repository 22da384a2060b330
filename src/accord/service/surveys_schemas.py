"""Survey payloads. Input models forbid unknown and read-only fields (`token_hash`, `used_at`,
`last_run_at`, `version` ...): links are minted only by the service, never chosen by a client."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from accord.core.validation import RowId, StrictIn
from accord.models.customer import LIFECYCLE_STAGES, VALUE_TIERS
from accord.models.service import SURVEY_KINDS

Kind = Literal["nps", "csat"]
assert set(Kind.__args__) == set(SURVEY_KINDS)  # type: ignore[attr-defined]

COMMENT_MAX = 2000
# What an audience may name: a customer matches when every given key matches (lists: any of).
AUDIENCE_KEYS = {"lifecycle_stage": LIFECYCLE_STAGES, "value_tier": VALUE_TIERS}


def check_audience(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """`{}` is every customer with an e-mail; otherwise only the allow-listed keys, each a
    non-empty list of known values (so a typo is a 422, not a silently empty audience)."""
    if value is None:
        return None
    out: dict[str, Any] = {}
    for key, raw in value.items():
        if key not in AUDIENCE_KEYS:
            raise ValueError(f"unknown audience key {str(key)[:40]!r} (use "
                             f"{', '.join(sorted(AUDIENCE_KEYS))})")
        if not isinstance(raw, list) or not raw or not all(isinstance(v, str) for v in raw):
            raise ValueError(f"audience.{key} must be a non-empty list of values")
        bad = [v for v in raw if v not in AUDIENCE_KEYS[key]]
        if bad:
            raise ValueError(f"audience.{key}: unknown value {bad[0][:40]!r}")
        out[key] = sorted(set(raw))
    return out


class ScheduleCreate(StrictIn):
    name: str = Field(min_length=1, max_length=120)
    kind: Kind = "nps"
    every_days: int = Field(default=90, ge=1, le=3650)
    audience: dict[str, Any] = Field(
        default_factory=dict,
        description='e.g. {"lifecycle_stage": ["purchase", "loyalty"]}; {} = every customer '
                    "with an e-mail address")
    active: bool = True
    next_run_at: AwareDatetime | None = Field(default=None, description="First run; default now")

    _a = field_validator("audience")(check_audience)


class ScheduleUpdate(StrictIn):
    name: str | None = Field(default=None, min_length=1, max_length=120)
    kind: Kind | None = None
    every_days: int | None = Field(default=None, ge=1, le=3650)
    audience: dict[str, Any] | None = None
    active: bool | None = None
    next_run_at: AwareDatetime | None = None

    _a = field_validator("audience")(check_audience)

    @field_validator("name", "kind", "every_days", "audience", "active", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may not be null")
        return value


class ScheduleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    kind: str
    every_days: int
    audience: dict[str, Any]
    active: bool
    last_run_at: datetime | None
    next_run_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime


class SendIn(StrictIn):
    """A manual send to one customer; the e-mail goes to the customer's primary address."""

    customer_id: RowId
    kind: Kind = "csat"
    ticket_id: RowId | None = None


class InvitationOut(BaseModel):
    """Never the token or its hash: the link is the customer's secret."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    trigger: str
    customer_id: int | None
    ticket_id: int | None
    schedule_id: int | None
    team_id: int | None
    agent_id: int | None
    sent_at: datetime
    expires_at: datetime
    used_at: datetime | None


class ResponseOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    invitation_id: int
    kind: str
    score: int
    comment: str | None
    customer_id: int | None
    ticket_id: int | None
    team_id: int | None
    agent_id: int | None
    follow_up_activity_id: int | None
    responded_at: datetime


class ResultRowOut(BaseModel):
    key: str
    label: str
    sent: int
    answered: int
    response_rate: float | None
    responses: int
    promoters: int
    passives: int
    detractors: int
    nps: float | None
    satisfied: int
    csat: float | None
    mean: float | None


class ResultsOut(BaseModel):
    kind: str
    group_by: str
    start: datetime
    end: datetime
    rows: list[ResultRowOut]
    total: ResultRowOut
