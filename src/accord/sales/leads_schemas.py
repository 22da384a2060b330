"""Lead, lead form and assignment rule payloads.

Input models forbid unknown and read-only fields (`id`, `owner_id`, `status` outside the status
endpoint, `version`, `score` ...): a body carrying one is a 422 naming it. Money (the BANT
budget) is a `Decimal` next to an ISO 4217 currency and leaves the API as a string.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from accord.commerce.schemas import Money, check_currency
from accord.core.validation import RowId, StrictIn
from accord.models.sales import (
    ASSIGNMENT_METHODS,
    AUTHORITY_LEVELS,
    DISQUALIFY_REASONS,
    LEAD_SOURCES,
    LEAD_STATUSES,
    TIMELINES,
)

Status = Literal["new", "working", "nurturing", "qualified", "disqualified", "converted"]
Reason = Literal["no_budget", "no_authority", "no_need", "bad_timing", "competitor",
                 "unreachable", "duplicate", "spam", "other"]
Authority = Literal["decision_maker", "influencer", "user", "unknown"]
Timeline = Literal["now", "quarter", "half_year", "year", "unknown"]
Method = Literal["owner", "round_robin", "least_loaded"]
Source = Literal["form", "import", "api", "event", "manual"]
assert set(Status.__args__) == set(LEAD_STATUSES)  # type: ignore[attr-defined]
assert set(Reason.__args__) == set(DISQUALIFY_REASONS)  # type: ignore[attr-defined]
assert set(Authority.__args__) == set(AUTHORITY_LEVELS)  # type: ignore[attr-defined]
assert set(Timeline.__args__) == set(TIMELINES)  # type: ignore[attr-defined]
assert set(Method.__args__) == set(ASSIGNMENT_METHODS)  # type: ignore[attr-defined]
assert set(Source.__args__) == set(LEAD_SOURCES)  # type: ignore[attr-defined]

# Every personal/company field a lead can be captured with, and its size limit (the columns').
# Public forms may accept only a subset (`LeadForm.fields`); imports and events use the same.
FIELD_LIMITS: dict[str, int] = {
    "first_name": 100, "last_name": 100, "email": 320, "phone": 40, "company": 200,
    "job_title": 200, "website": 300, "industry": 100, "employees": 12, "country": 60,
    "preferred_language": 8, "notes": 5000,
}
CAPTURE_FIELDS = tuple(FIELD_LIMITS)
MAX_EMPLOYEES = 10_000_000


class LeadFields(StrictIn):
    """The editable lead fields (contact, company, BANT)."""

    first_name: str | None = Field(default=None, max_length=100)
    last_name: str | None = Field(default=None, max_length=100)
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=40)
    company: str | None = Field(default=None, max_length=200)
    job_title: str | None = Field(default=None, max_length=200)
    website: str | None = Field(default=None, max_length=300)
    industry: str | None = Field(default=None, max_length=100)
    employees: int | None = Field(default=None, ge=0, le=MAX_EMPLOYEES)
    annual_revenue: Money | None = None
    country: str | None = Field(default=None, max_length=60)
    preferred_language: str | None = Field(default=None, max_length=8)
    notes: str | None = Field(default=None, max_length=5000)
    source_detail: str | None = Field(default=None, max_length=200)
    # BANT
    budget: Money | None = None
    budget_currency: str | None = None
    authority: Authority | None = None
    need: str | None = Field(default=None, max_length=2000)
    timeline: Timeline | None = None

    @field_validator("budget_currency")
    @classmethod
    def _currency(cls, value: str | None) -> str | None:
        return None if value is None else check_currency(value)

    @field_validator("*", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value


class LeadCreate(LeadFields):
    @model_validator(mode="after")
    def _someone(self) -> LeadCreate:
        if not (self.email or self.phone or self.last_name or self.first_name or self.company):
            raise ValueError("a lead needs a name, a company, an e-mail address or a phone")
        return self


class LeadUpdate(LeadFields):
    """PATCH: only the fields sent change; `status` moves through the status endpoint (or here,
    with the same transition rules)."""

    status: Status | None = None
    disqualify_reason: Reason | None = None
    status_note: str | None = Field(default=None, max_length=300)


class LeadStatusIn(StrictIn):
    status: Status
    disqualify_reason: Reason | None = None
    note: str = Field(default="", max_length=300)


class LeadAssignIn(StrictIn):
    owner_id: RowId | None = None
    team_id: RowId | None = None


class SlaOut(BaseModel):
    """The first-touch SLA: `state` is due (open, not late yet), met, breached, or none."""

    state: Literal["none", "due", "met", "breached"]
    due_at: datetime | None
    touched_at: datetime | None


class LeadOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    version: int
    status: str
    disqualify_reason: str | None
    first_name: str | None
    last_name: str | None
    email: str | None
    phone: str | None
    company: str | None
    job_title: str | None
    website: str | None
    industry: str | None
    employees: int | None
    annual_revenue: Decimal | None
    country: str | None
    preferred_language: str | None
    notes: str | None
    source: str
    source_detail: str | None
    budget: Decimal | None
    budget_currency: str | None
    authority: str | None
    need: str | None
    timeline: str | None
    owner_id: int | None
    team_id: int | None
    assignment_rule_id: int | None
    assigned_at: datetime | None
    first_touch_due_at: datetime | None
    first_touched_at: datetime | None
    last_engaged_at: datetime | None
    fit_score: int
    engagement_score: int
    predicted_score: int | None
    score: int
    score_factors: dict[str, Any]
    customer_id: int | None
    account_id: int | None
    contact_id: int | None
    converted_at: datetime | None
    created_at: datetime
    updated_at: datetime
    sla: SlaOut


class EngagementOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    kind: str
    occurred_at: datetime
    detail: dict[str, Any]


# --- lead forms ----------------------------------------------------------------------------------

SLUG = r"^[a-z0-9][a-z0-9-]{0,63}$"
CaptureField = Literal["first_name", "last_name", "email", "phone", "company", "job_title",
                       "website", "industry", "employees", "country", "preferred_language",
                       "notes"]
assert set(CaptureField.__args__) == set(CAPTURE_FIELDS)  # type: ignore[attr-defined]


class _FormFields(StrictIn):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    fields: list[CaptureField] | None = Field(default=None, min_length=1, max_length=20)
    required: list[CaptureField] | None = Field(default=None, max_length=20)
    consent_purpose: str | None = Field(default=None, min_length=1, max_length=64)
    consent_wording: str | None = Field(default=None, min_length=1, max_length=2000)
    consent_required: bool | None = None
    engagement_kind: str | None = Field(default=None, min_length=1, max_length=40,
                                        pattern=r"^[a-z][a-z0-9_]*$")
    team_id: RowId | None = None
    active: bool | None = None


class LeadFormCreate(_FormFields):
    slug: str = Field(pattern=SLUG)
    name: str = Field(min_length=1, max_length=200)
    fields: list[CaptureField] = Field(min_length=1, max_length=20)
    required: list[CaptureField] = Field(default_factory=list, max_length=20)
    consent_required: bool = False
    engagement_kind: str = Field(default="form_submitted", min_length=1, max_length=40,
                                 pattern=r"^[a-z][a-z0-9_]*$")
    active: bool = True


class LeadFormUpdate(_FormFields):
    pass


class LeadFormOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    version: int
    slug: str
    name: str
    fields: list[str]
    required: list[str]
    consent_purpose: str | None
    consent_wording: str | None
    consent_required: bool
    engagement_kind: str
    team_id: int | None
    active: bool
    created_at: datetime
    updated_at: datetime


# --- assignment rules ----------------------------------------------------------------------------

class RuleConditions(StrictIn):
    countries: list[str] = Field(default_factory=list, max_length=300)
    industries: list[str] = Field(default_factory=list, max_length=100)
    sources: list[Source] = Field(default_factory=list, max_length=5)
    forms: list[str] = Field(default_factory=list, max_length=100)
    min_employees: int | None = Field(default=None, ge=0, le=MAX_EMPLOYEES)
    max_employees: int | None = Field(default=None, ge=0, le=MAX_EMPLOYEES)

    @field_validator("countries")
    @classmethod
    def _countries(cls, value: list[str]) -> list[str]:
        from accord.core.contact import InvalidValue, normalize_country

        try:
            return [normalize_country(v) for v in value]
        except InvalidValue as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _range(self) -> RuleConditions:
        if (self.min_employees is not None and self.max_employees is not None
                and self.min_employees > self.max_employees):
            raise ValueError("min_employees must not exceed max_employees")
        return self


class _RuleFields(StrictIn):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    position: int | None = Field(default=None, ge=0, le=1_000_000)
    active: bool | None = None
    conditions: RuleConditions | None = None
    method: Method | None = None
    team_id: RowId | None = None
    owner_id: RowId | None = None
    first_touch_hours: int | None = Field(default=None, ge=1, le=24 * 90)


class AssignmentRuleCreate(_RuleFields):
    name: str = Field(min_length=1, max_length=200)
    position: int = Field(default=0, ge=0, le=1_000_000)
    active: bool = True
    conditions: RuleConditions = Field(default_factory=RuleConditions)
    method: Method = "round_robin"
    first_touch_hours: int = Field(default=24, ge=1, le=24 * 90)


class AssignmentRuleUpdate(_RuleFields):
    pass


class AssignmentRuleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    version: int
    name: str
    position: int
    active: bool
    conditions: dict[str, Any]
    method: str
    team_id: int | None
    owner_id: int | None
    cursor_user_id: int | None
    first_touch_hours: int
    created_at: datetime
    updated_at: datetime


class ImportReportOut(BaseModel):
    created: int
    updated: int
    unchanged: int
    errors: list[dict[str, Any]]
