"""Activity and notification payloads. Input models forbid unknown and read-only fields
(`owner_id`, `team_id`, `version`, `interaction_id`, `reminded_at`, `created_by` ...): the
creator owns what it creates, and the reminder bookkeeping is the service's."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from accord.core.validation import RowId, StrictIn
from accord.models.sales import ACTIVITY_KINDS, ACTIVITY_STATUSES

Kind = Literal["task", "call", "meeting", "note"]
Status = Literal["open", "done", "cancelled"]
CallDirection = Literal["inbound", "outbound"]
assert set(Kind.__args__) == set(ACTIVITY_KINDS)  # type: ignore[attr-defined]
assert set(Status.__args__) == set(ACTIVITY_STATUSES)  # type: ignore[attr-defined]

SUBJECT_MAX = 300
BODY_MAX = 50_000
LINKS = ("lead_id", "customer_id", "account_id", "deal_id")
Minutes = Field(default=None, ge=0, le=10_080)  # a week at most


class ActivityCreate(StrictIn):
    kind: Kind
    subject: str = Field(min_length=1, max_length=SUBJECT_MAX)
    body: str = Field(default="", max_length=BODY_MAX)
    status: Literal["open", "done"] = Field(
        default="open", description="`done` logs something that already happened (a call)")
    due_at: AwareDatetime | None = None
    remind_at: AwareDatetime | None = Field(
        default=None, description="When to remind the owner (a notification and an e-mail)")
    done_at: AwareDatetime | None = Field(default=None, description="With status done; "
                                          "defaults to now")
    duration_minutes: int | None = Minutes
    direction: CallDirection | None = Field(default=None, description="Calls only")
    outcome: str | None = Field(default=None, max_length=40)
    lead_id: RowId | None = None
    customer_id: RowId | None = None
    account_id: RowId | None = None
    deal_id: RowId | None = None


class ActivityUpdate(StrictIn):
    """Every field optional; links may be set to null (one must remain); the kind is fixed."""

    subject: str | None = Field(default=None, min_length=1, max_length=SUBJECT_MAX)
    body: str | None = Field(default=None, max_length=BODY_MAX)
    status: Status | None = None
    due_at: AwareDatetime | None = None
    remind_at: AwareDatetime | None = None
    done_at: AwareDatetime | None = None
    duration_minutes: int | None = Minutes
    direction: CallDirection | None = None
    outcome: str | None = Field(default=None, max_length=40)
    lead_id: RowId | None = None
    customer_id: RowId | None = None
    account_id: RowId | None = None
    deal_id: RowId | None = None

    @field_validator("subject", "body", "status", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may not be null")
        return value


class ActivityComplete(StrictIn):
    done_at: AwareDatetime | None = Field(default=None, description="Defaults to now")
    outcome: str | None = Field(default=None, max_length=40)
    duration_minutes: int | None = Minutes


class ActivityOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    version: int
    kind: str
    subject: str
    body: str
    status: str
    due_at: datetime | None
    remind_at: datetime | None
    reminded_at: datetime | None
    done_at: datetime | None
    duration_minutes: int | None
    direction: str | None
    outcome: str | None
    owner_id: int | None
    team_id: int | None
    lead_id: int | None
    customer_id: int | None
    account_id: int | None
    deal_id: int | None
    interaction_id: int | None
    created_by: int | None
    created_at: datetime
    updated_at: datetime


class NotificationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    title: str
    body: str
    link: str | None
    created_at: datetime
    read_at: datetime | None
