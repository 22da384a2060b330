"""Ticket payloads. Input models forbid unknown and read-only fields (`id`, `version`, `status`
on create, `customer_id` on update, `created_by`, SLA timers ...): timers and the workflow's
bookkeeping are the server's."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

from accord.core.validation import RowId, StrictIn
from accord.models.service import (
    MESSAGE_VISIBILITIES,
    SLA_STATES,
    TICKET_CHANNELS,
    TICKET_PRIORITIES,
    TICKET_STATUSES,
)

Status = Literal["new", "open", "pending_customer", "on_hold", "solved", "closed"]
Priority = Literal["low", "normal", "high", "urgent"]
Channel = Literal["email", "chat", "web", "api", "phone", "agent", "assistant"]
# What an authenticated API caller may open a ticket as; mail, chat and the assistant arrive
# through their own endpoints.
ApiChannel = Literal["api", "agent", "phone"]
Visibility = Literal["public", "internal"]
SlaState = Literal["none", "running", "warning", "breached", "paused", "met"]
assert set(Status.__args__) == set(TICKET_STATUSES)  # type: ignore[attr-defined]
assert set(Priority.__args__) == set(TICKET_PRIORITIES)  # type: ignore[attr-defined]
assert set(Channel.__args__) == set(TICKET_CHANNELS)  # type: ignore[attr-defined]
assert set(Visibility.__args__) == set(MESSAGE_VISIBILITIES)  # type: ignore[attr-defined]
assert set(SlaState.__args__) == set(SLA_STATES)  # type: ignore[attr-defined]

SUBJECT_MAX = 300
BODY_MAX = 100_000
MAX_TAGS = 20
TAG_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.:-]{0,39}$")
CATEGORY_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,59}$"
Category = Annotated[str, Field(pattern=CATEGORY_PATTERN, description="e.g. `billing`")]
Language = Annotated[str, Field(max_length=8, pattern=r"^[a-zA-Z]{2,3}([-_][a-zA-Z0-9]{2,4})?$")]


def clean_tags(value: list[str] | None) -> list[str] | None:
    """Lower-cased, de-duplicated (first occurrence kept), each a short token: tags are filtered
    on, so they stay plain."""
    if value is None:
        return None
    out: list[str] = []
    for i, raw in enumerate(value):
        tag = str(raw).strip().lower()
        if not TAG_PATTERN.match(tag):
            raise ValueError(f"tag {i} ({str(raw)[:40]!r}) must be 1-40 characters of a-z, 0-9, "
                             "_ . : - (starting with a letter or digit)")
        if tag not in out:
            out.append(tag)
    if len(out) > MAX_TAGS:
        raise ValueError(f"at most {MAX_TAGS} tags")
    return out


class CallDetails(StrictIn):
    """A logged phone call: kept on the first message's timeline entry."""

    direction: Literal["inbound", "outbound"] = "inbound"
    duration_seconds: int | None = Field(default=None, ge=0, le=86_400)
    outcome: str | None = Field(default=None, max_length=60)


class TicketCreate(StrictIn):
    subject: str = Field(min_length=1, max_length=SUBJECT_MAX)
    channel: ApiChannel = "agent"
    body_text: str = Field(default="", max_length=BODY_MAX)
    body_html: str | None = Field(default=None, max_length=BODY_MAX,
                                  description="Sanitised with an allow-list on the way in")
    customer_id: RowId | None = Field(default=None, description="Or give `requester_email` "
                                      "(or, for a caller not on file, `requester_name`)")
    requester_email: str | None = Field(default=None, max_length=254)
    requester_name: str | None = Field(default=None, max_length=200)
    priority: Priority = "normal"
    category: Category | None = None
    tags: list[str] = Field(default_factory=list)
    language: Language | None = None
    order_ids: list[RowId] = Field(default_factory=list, max_length=20)
    team_id: RowId | None = None
    assignee_id: RowId | None = None
    author: Literal["agent", "customer"] = Field(
        default="agent", description="Who wrote the first message: `agent` (a call logged or a "
        "ticket opened on the customer's behalf; not sentiment-scored) or `customer` (their own "
        "words, e.g. relayed by an integration)")
    call: CallDetails | None = Field(default=None, description="Only with channel `phone`")

    _t = field_validator("tags")(clean_tags)

    @field_validator("call")
    @classmethod
    def _phone_only(cls, value: CallDetails | None, info: ValidationInfo) -> CallDetails | None:
        if value is not None and info.data.get("channel") != "phone":
            raise ValueError("call details go with channel phone")
        return value


class TicketUpdate(StrictIn):
    """Every field optional; `status` follows the workflow (an illegal move is a 409)."""

    subject: str | None = Field(default=None, min_length=1, max_length=SUBJECT_MAX)
    status: Status | None = None
    priority: Priority | None = None
    category: Category | None = None
    tags: list[str] | None = None
    language: Language | None = None
    team_id: RowId | None = Field(default=None, description="A reassignment: see /assign")

    _t = field_validator("tags")(clean_tags)

    @field_validator("subject", "status", "priority", "tags", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may not be null")
        return value


class TicketAssignIn(StrictIn):
    assignee_id: RowId | None = None
    team_id: RowId | None = None


class ReplyIn(StrictIn):
    body_text: str = Field(default="", max_length=BODY_MAX)
    body_html: str | None = Field(default=None, max_length=BODY_MAX)
    internal: bool = Field(default=False, description="An internal note: never sent, not on the "
                           "customer's timeline, no SLA effect")
    status: Status | None = Field(default=None, description="Move the ticket with the reply")


class OrderLinkIn(StrictIn):
    order_id: RowId


class WidgetMessageIn(StrictIn):
    """The public chat/web widget: only these fields; `website_url` is the honeypot."""

    name: str = Field(default="", max_length=200)
    email: str = Field(min_length=3, max_length=254)
    message: str = Field(min_length=1, max_length=10_000)
    subject: str | None = Field(default=None, max_length=SUBJECT_MAX)
    conversation: str | None = Field(default=None, max_length=200,
                                     description="The token of an earlier answer: continues "
                                     "that ticket")
    website_url: str = Field(default="", max_length=500)


# --- output --------------------------------------------------------------------------------------

class AttachmentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    ticket_id: int
    message_id: int | None
    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    created_at: datetime
    download_url: str = ""


class MessageOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    ticket_id: int
    visibility: Visibility
    internal: bool
    direction: Literal["inbound", "outbound"]
    channel: str
    author_id: int | None
    from_address: str | None
    subject: str | None
    body_text: str
    body_html: str | None
    language: str | None
    sentiment: float | None
    sentiment_label: str | None
    sentiment_model: str | None
    is_auto_reply: bool
    interaction_id: int | None
    created_at: datetime
    attachments: list[AttachmentOut] = Field(default_factory=list)


class TicketOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    version: int
    reference: str
    subject: str
    customer_id: int | None
    requester_email: str | None
    requester_name: str | None
    channel: str
    priority: str
    category: str | None
    status: str
    language: str | None
    tags: list[str]
    assignee_id: int | None
    team_id: int | None
    routing_rule_id: int | None
    sla_policy_id: int | None
    sla_state: str
    first_response_due_at: datetime | None
    next_response_due_at: datetime | None
    resolution_due_at: datetime | None
    due_at: datetime | None
    warn_at: datetime | None
    first_responded_at: datetime | None
    first_response_seconds: float | None
    resolution_seconds: float | None
    last_customer_message_at: datetime | None
    last_agent_reply_at: datetime | None
    solved_at: datetime | None
    closed_at: datetime | None
    sentiment: float | None
    escalation_level: int
    escalated_at: datetime | None
    escalation_reason: str | None
    order_ids: list[int] = Field(default_factory=list)
    created_by: int | None
    created_at: datetime
    updated_at: datetime


class WidgetAnswer(BaseModel):
    status: Literal["received"] = "received"
    reference: str | None = None
    conversation: str | None = Field(default=None, description="Send it back to continue")
