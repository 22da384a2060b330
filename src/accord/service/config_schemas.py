"""Service configuration payloads: SLA policies with their targets, business calendars, routing
rules and agents' routing profiles, plus the SLA timers and escalation of one ticket.

Input models forbid unknown and read-only fields (a body naming `id`, `version` or
`last_assigned_at` is a 422 naming it). A calendar's hours and holidays are checked by
`accord.service.calendar.BusinessCalendar.from_spec` in the service, whose message names the
key at fault (``hours.wed[1]``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from accord.core.validation import RowId, StrictIn
from accord.models.customer import VALUE_TIERS
from accord.models.service import ROUTING_METHODS, TICKET_CHANNELS, TICKET_PRIORITIES

Priority = Literal["low", "normal", "high", "urgent"]
Tier = Literal["bronze", "silver", "gold", "platinum"]
Channel = Literal["email", "chat", "web", "api", "phone", "agent", "assistant"]
Method = Literal["round_robin", "least_loaded", "team_queue"]
assert set(Priority.__args__) == set(TICKET_PRIORITIES)  # type: ignore[attr-defined]
assert set(Tier.__args__) == set(VALUE_TIERS)  # type: ignore[attr-defined]
assert set(Channel.__args__) == set(TICKET_CHANNELS)  # type: ignore[attr-defined]
assert set(Method.__args__) == set(ROUTING_METHODS)  # type: ignore[attr-defined]

MAX_MINUTES = 366 * 24 * 60  # a year of business minutes at most
Minutes = Annotated[int, Field(ge=1, le=MAX_MINUTES)]
Name = Annotated[str, Field(min_length=1, max_length=120)]
Category = Annotated[str, Field(min_length=1, max_length=60)]
Language = Annotated[str, Field(max_length=8, pattern=r"^[a-zA-Z]{2,3}([-_][a-zA-Z0-9]{2,4})?$")]
Skill = Annotated[str, Field(min_length=1, max_length=60)]


# --- SLA policies --------------------------------------------------------------------------------


class SlaTargetIn(StrictIn):
    """Business minutes for one priority and tier (no tier: any tier); omitted: no target."""

    priority: Priority
    tier: Tier | None = None
    first_response_minutes: Minutes | None = None
    next_response_minutes: Minutes | None = None
    resolution_minutes: Minutes | None = None


def _unique_targets(targets: list[SlaTargetIn] | None) -> list[SlaTargetIn] | None:
    seen: set[tuple[str, str | None]] = set()
    for i, t in enumerate(targets or []):
        key = (t.priority, t.tier)
        if key in seen:
            raise ValueError(f"targets[{i}]: a second target for priority {t.priority} and "
                             f"tier {t.tier or 'any'}")
        seen.add(key)
    return targets


class SlaPolicyCreate(StrictIn):
    name: Name
    team_id: RowId | None = None
    warning_ratio: float = Field(default=0.8, gt=0, le=1)
    pause_on_hold: bool = False
    is_default: bool = False
    active: bool = True
    targets: list[SlaTargetIn] = Field(default_factory=list, max_length=64)

    @field_validator("targets")
    @classmethod
    def _targets(cls, value: list[SlaTargetIn]) -> list[SlaTargetIn]:
        return _unique_targets(value) or []


class SlaPolicyUpdate(StrictIn):
    """Only what is given changes; `targets` replaces the whole set."""

    name: Name | None = None
    team_id: RowId | None = None
    warning_ratio: float | None = Field(default=None, gt=0, le=1)
    pause_on_hold: bool | None = None
    is_default: bool | None = None
    active: bool | None = None
    targets: list[SlaTargetIn] | None = Field(default=None, max_length=64)

    @field_validator("targets")
    @classmethod
    def _targets(cls, value: list[SlaTargetIn] | None) -> list[SlaTargetIn] | None:
        return _unique_targets(value)


class SlaTargetOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    priority: str
    tier: str | None
    first_response_minutes: int | None
    next_response_minutes: int | None
    resolution_minutes: int | None


class SlaPolicyOut(BaseModel):
    id: int
    version: int
    name: str
    team_id: int | None
    warning_ratio: float
    pause_on_hold: bool
    is_default: bool
    active: bool
    targets: list[SlaTargetOut]
    created_at: datetime
    updated_at: datetime


# --- business calendars --------------------------------------------------------------------------


class CalendarCreate(StrictIn):
    """`team_id` null: the default calendar of teams without their own."""

    name: Name
    team_id: RowId | None = None
    timezone: str = Field(min_length=1, max_length=64, examples=["Europe/Berlin"])
    hours: dict[str, Any] = Field(default_factory=dict,
                                  examples=[{"mon": [["09:00", "17:00"]]}])
    holidays: list[Any] = Field(default_factory=list, max_length=1000,
                                examples=[["2026-12-25"]])


class CalendarUpdate(StrictIn):
    name: Name | None = None
    team_id: RowId | None = None
    timezone: str | None = Field(default=None, min_length=1, max_length=64)
    hours: dict[str, Any] | None = None
    holidays: list[Any] | None = Field(default=None, max_length=1000)


class CalendarOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    version: int
    name: str
    team_id: int | None
    timezone: str
    hours: dict[str, Any]
    holidays: list[Any]
    created_at: datetime
    updated_at: datetime


# --- routing rules -------------------------------------------------------------------------------


class _RuleFields(StrictIn):
    name: Name | None = None
    position: int | None = Field(default=None, ge=0, le=1_000_000)
    category: Category | None = None
    channel: Channel | None = None
    priority: Priority | None = None
    language: Language | None = None
    team_id: RowId | None = None
    required_skill: Skill | None = None
    method: Method | None = None
    active: bool | None = None


class RoutingRuleCreate(_RuleFields):
    """Criteria left out match any ticket; the team is required (it is where tickets go)."""

    name: Name
    position: int = Field(default=0, ge=0, le=1_000_000)
    team_id: RowId
    method: Method = "round_robin"
    active: bool = True


class RoutingRuleUpdate(_RuleFields):
    pass


class RoutingRuleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    version: int
    name: str
    position: int
    category: str | None
    channel: str | None
    priority: str | None
    language: str | None
    team_id: int | None
    required_skill: str | None
    method: str
    active: bool
    created_at: datetime
    updated_at: datetime


# --- agents --------------------------------------------------------------------------------------


def _clean_list(values: list[str] | None, lower: bool) -> list[str] | None:
    if values is None:
        return None
    out: list[str] = []
    for v in values:
        item = v.strip().lower() if lower else v.strip()
        if item and item.casefold() not in {o.casefold() for o in out}:
            out.append(item)
    return out


class _AgentFields(StrictIn):
    skills: list[Skill] | None = Field(default=None, max_length=50)
    languages: list[Language] | None = Field(default=None, max_length=20)
    available: bool | None = None
    max_open_tickets: int | None = Field(default=None, ge=0, le=10_000)

    @field_validator("skills")
    @classmethod
    def _skills(cls, value: list[str] | None) -> list[str] | None:
        return _clean_list(value, lower=False)

    @field_validator("languages")
    @classmethod
    def _languages(cls, value: list[str] | None) -> list[str] | None:
        return _clean_list(value, lower=True)


class AgentCreate(_AgentFields):
    """A routing profile for a support agent or manager (one per user)."""

    user_id: RowId
    skills: list[Skill] = Field(default_factory=list, max_length=50)
    languages: list[Language] = Field(default_factory=list, max_length=20)
    available: bool = True
    max_open_tickets: int = Field(default=25, ge=0, le=10_000)


class AgentUpdate(_AgentFields):
    pass


class AvailabilityIn(StrictIn):
    available: bool


class AgentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    version: int
    user_id: int
    skills: list[Any]
    languages: list[Any]
    available: bool
    max_open_tickets: int
    last_assigned_at: datetime | None
    created_at: datetime
    updated_at: datetime


# --- one ticket's timers and escalation ----------------------------------------------------------


class TimerOut(BaseModel):
    metric: str
    status: str
    target_seconds: float | None
    elapsed_seconds: float
    remaining_seconds: float | None = Field(
        description="business seconds left (negative once overdue)")
    started_at: datetime
    stopped_at: datetime | None
    due: datetime | None
    warn_at: datetime | None


class TicketSlaOut(BaseModel):
    ticket_id: int
    policy: str | None
    priority: str
    tier: str | None
    sla_state: str
    due_at: datetime | None
    first_response_seconds: float | None
    resolution_seconds: float | None
    timers: list[TimerOut]


class EscalateIn(StrictIn):
    reason: str = Field(min_length=1, max_length=200)

    @model_validator(mode="after")
    def _not_blank(self) -> EscalateIn:
        if not self.reason.strip():
            raise ValueError("reason may not be blank")
        return self


class EscalationOut(BaseModel):
    ticket_id: int
    escalation_level: int
    escalated_at: datetime | None
    escalation_reason: str | None
    priority: str
