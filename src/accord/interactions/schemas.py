"""Interaction payloads. Input models forbid unknown and read-only fields (`customer_id` on
update, `created_by`, `version`, ...)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, Field, field_validator

from accord.core.validation import StrictIn
from accord.models.customer import CHANNELS
from accord.models.interaction import DEPARTMENTS, DIRECTIONS

Channel = Literal["email", "chat", "phone", "sms", "social", "web", "app", "store"]
Direction = Literal["inbound", "outbound"]
Department = Literal["sales", "marketing", "support", "billing", "service", "other"]
assert set(Channel.__args__) == set(CHANNELS)  # type: ignore[attr-defined]
assert set(Direction.__args__) == set(DIRECTIONS)  # type: ignore[attr-defined]
assert set(Department.__args__) == set(DEPARTMENTS)  # type: ignore[attr-defined]

SUBJECT_MAX = 300
BODY_MAX = 50_000
METADATA_MAX_BYTES = 16_384
METADATA_MAX_DEPTH = 5


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def check_metadata(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """A small JSON object: bounded so one chatty connector cannot bloat the timeline."""
    if value is None:
        return None
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    if size > METADATA_MAX_BYTES:
        raise ValueError(f"metadata is {size} bytes as JSON; at most {METADATA_MAX_BYTES} "
                         "are allowed")
    if _depth(value) > METADATA_MAX_DEPTH:
        raise ValueError(f"metadata may nest at most {METADATA_MAX_DEPTH} levels deep")
    return value


class InteractionFields(StrictIn):
    channel: Channel
    direction: Direction
    department: Department = "other"
    occurred_at: AwareDatetime | None = Field(default=None, description="Defaults to now")
    subject: str = Field(default="", max_length=SUBJECT_MAX)
    body: str = Field(default="", max_length=BODY_MAX)
    metadata: dict[str, Any] = Field(default_factory=dict)
    source: str | None = Field(default=None, max_length=80)

    _m = field_validator("metadata")(check_metadata)


class InteractionCreate(InteractionFields):
    """For `POST /interactions`; the nested route takes the customer from its path."""

    customer_id: int


class InteractionUpdate(StrictIn):
    """Every field optional; an explicit null for a required field is refused."""

    channel: Channel | None = None
    direction: Direction | None = None
    department: Department | None = None
    occurred_at: AwareDatetime | None = None
    subject: str | None = Field(default=None, max_length=SUBJECT_MAX)
    body: str | None = Field(default=None, max_length=BODY_MAX)
    metadata: dict[str, Any] | None = None
    source: str | None = Field(default=None, max_length=80)

    _m = field_validator("metadata")(check_metadata)

    @field_validator("channel", "direction", "department", "occurred_at", "subject", "body",
                     "metadata", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may not be null")
        return value


class InteractionOut(BaseModel):
    id: int
    version: int
    customer_id: int
    channel: str
    direction: str
    department: str
    occurred_at: datetime
    subject: str
    body: str
    metadata: dict[str, Any]
    source: str | None
    created_by: int | None
    created_at: datetime
    updated_at: datetime
