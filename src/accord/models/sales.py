"""Sales: leads (with their forms, engagement and assignment rules), pipelines, deals, activities.

Leads are prospects not yet known as customers; a qualified lead converts into a golden customer
(or is linked to the existing one), an account and contact where B2B, and a deal. Deals move
through the ordered stages of a pipeline; every move is kept in `deal_stage_changes`, which the
historical forecast reads. Activities (tasks, calls, meetings, notes) hang off leads, customers,
accounts and deals, and those about a customer are mirrored onto the interaction timeline.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Date, ForeignKey, Index, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from accord.core.clock import utcnow
from accord.models.base import Base, IdMixin, TimestampMixin, VersionedMixin

LEAD_STATUSES = ("new", "working", "nurturing", "qualified", "disqualified", "converted")
DISQUALIFY_REASONS = (
    "no_budget", "no_authority", "no_need", "bad_timing", "competitor", "unreachable",
    "duplicate", "spam", "other",
)
LEAD_SOURCES = ("form", "import", "api", "event", "manual")
AUTHORITY_LEVELS = ("decision_maker", "influencer", "user", "unknown")
TIMELINES = ("now", "quarter", "half_year", "year", "unknown")
ASSIGNMENT_METHODS = ("owner", "round_robin", "least_loaded")
PIPELINE_KINDS = ("new_business", "upsell", "renewal")
STAGE_OUTCOMES = ("open", "won", "lost")
DEAL_STATUSES = ("open", "won", "lost")
FORECAST_CATEGORIES = ("pipeline", "best_case", "commit", "closed", "omitted")
LOST_REASONS = ("price", "competitor", "no_decision", "timing", "product_fit", "other")
ACTIVITY_KINDS = ("task", "call", "meeting", "note")
ACTIVITY_STATUSES = ("open", "done", "cancelled")


class LeadForm(IdMixin, TimestampMixin, VersionedMixin, Base):
    """A public web form: which fields it accepts, which it needs, and the consent it asks."""

    __tablename__ = "lead_forms"

    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    fields: Mapped[list[Any]] = mapped_column(default=list)  # allow-listed lead fields
    required: Mapped[list[Any]] = mapped_column(default=list)
    consent_purpose: Mapped[str | None] = mapped_column(String(64))
    consent_wording: Mapped[str | None] = mapped_column(Text)
    consent_required: Mapped[bool] = mapped_column(default=False)
    engagement_kind: Mapped[str] = mapped_column(String(40), default="form_submitted")
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    active: Mapped[bool] = mapped_column(default=True)


class Lead(IdMixin, TimestampMixin, VersionedMixin, Base):
    __tablename__ = "leads"
    __table_args__ = (
        Index("ix_leads_owner_status_id", "owner_id", "status", "id"),
        Index("ix_leads_team_status_id", "team_id", "status", "id"),
        Index("ix_leads_status_id", "status", "id"),
        Index("ix_leads_created_at_id", "created_at", "id"),
        Index("ix_leads_score_id", "score", "id"),
    )

    status: Mapped[str] = mapped_column(String(16), default="new")
    disqualify_reason: Mapped[str | None] = mapped_column(String(20))
    first_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str | None] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(320))
    email_normalized: Mapped[str | None] = mapped_column(String(320), index=True)
    phone: Mapped[str | None] = mapped_column(String(40))
    phone_e164: Mapped[str | None] = mapped_column(String(20), index=True)
    company: Mapped[str | None] = mapped_column(String(200))
    job_title: Mapped[str | None] = mapped_column(String(200))
    website: Mapped[str | None] = mapped_column(String(300))
    industry: Mapped[str | None] = mapped_column(String(100))
    employees: Mapped[int | None] = mapped_column()
    annual_revenue: Mapped[Decimal | None] = mapped_column(Numeric(18, 2))
    country: Mapped[str | None] = mapped_column(String(2), index=True)
    preferred_language: Mapped[str | None] = mapped_column(String(8))
    notes: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16), default="manual")
    source_detail: Mapped[str | None] = mapped_column(String(200))
    # BANT qualification
    budget: Mapped[Decimal | None] = mapped_column(Numeric(18, 2))
    budget_currency: Mapped[str | None] = mapped_column(String(3))
    authority: Mapped[str | None] = mapped_column(String(16))
    need: Mapped[str | None] = mapped_column(Text)
    timeline: Mapped[str | None] = mapped_column(String(16))
    # assignment and the first-touch SLA
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    assignment_rule_id: Mapped[int | None] = mapped_column(
        ForeignKey("assignment_rules.id", ondelete="SET NULL"))
    assigned_at: Mapped[datetime | None] = mapped_column()
    first_touch_due_at: Mapped[datetime | None] = mapped_column(index=True)
    first_touched_at: Mapped[datetime | None] = mapped_column()
    last_engaged_at: Mapped[datetime | None] = mapped_column()
    # scoring: 0..100 each; `score_factors` lists each factor's contribution for display
    fit_score: Mapped[int] = mapped_column(default=0)
    engagement_score: Mapped[int] = mapped_column(default=0)
    predicted_score: Mapped[int | None] = mapped_column()
    score: Mapped[int] = mapped_column(default=0)
    score_factors: Mapped[dict[str, Any]] = mapped_column(default=dict)
    scored_at: Mapped[datetime | None] = mapped_column()
    # the known customer it matched on arrival or became on conversion
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="SET NULL"), index=True)
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL"), index=True)
    contact_id: Mapped[int | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL"))
    converted_at: Mapped[datetime | None] = mapped_column()
    converted_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class LeadEngagement(IdMixin, Base):
    """One engagement signal (form submitted, newsletter sign-up, whitepaper download ...).

    `dedupe_key` makes replays idempotent: a form's duplicate submission or a collection event
    delivered twice adds nothing."""

    __tablename__ = "lead_engagements"
    __table_args__ = (Index("ix_lead_engagements_lead_time", "lead_id", "occurred_at"),)

    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(40))
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    dedupe_key: Mapped[str | None] = mapped_column(String(128), unique=True)


class ConsentRecord(IdMixin, Base):
    """Proof of a consent given or withdrawn: purpose, channel, the exact wording shown, where,
    when and by whom. Append-only: the newest record per purpose and channel is the state."""

    __tablename__ = "consent_records"
    __table_args__ = (
        Index("ix_consent_records_customer", "customer_id", "purpose", "recorded_at"),
        Index("ix_consent_records_lead", "lead_id", "purpose", "recorded_at"),
    )

    # SET NULL: the proof outlives the record it was given for (deleted or erased person)
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="SET NULL"))
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("leads.id", ondelete="SET NULL"))
    purpose: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str | None] = mapped_column(String(16))
    granted: Mapped[bool] = mapped_column()
    wording: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(120))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class AssignmentRule(IdMixin, TimestampMixin, VersionedMixin, Base):
    """First matching rule (by position) decides a new lead's owner.

    `conditions`: {"countries": [...], "industries": [...], "sources": [...], "forms": [...],
    "min_employees": n, "max_employees": n}; empty matches every lead. `method` picks among the
    team's sales users (round robin from `cursor_user_id`, or the least open leads) or names
    `owner_id`."""

    __tablename__ = "assignment_rules"

    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(default=True)
    conditions: Mapped[dict[str, Any]] = mapped_column(default=dict)
    method: Mapped[str] = mapped_column(String(16), default="round_robin")
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    cursor_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"))
    first_touch_hours: Mapped[int] = mapped_column(default=24)


class LeadScoreModel(IdMixin, Base):
    """A predictive lead-scoring model trained on past conversions (the newest active one is
    used). Coefficients over named features, so each factor's contribution can be shown."""

    __tablename__ = "lead_score_models"

    trained_at: Mapped[datetime] = mapped_column(default=utcnow)
    algorithm: Mapped[str] = mapped_column(String(40))
    features: Mapped[list[Any]] = mapped_column(default=list)
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    n_samples: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(default=True)


class Pipeline(IdMixin, TimestampMixin, VersionedMixin, Base):
    __tablename__ = "pipelines"

    name: Mapped[str] = mapped_column(String(120), unique=True)
    kind: Mapped[str] = mapped_column(String(16), default="new_business")
    position: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(default=True)
    stages: Mapped[list[PipelineStage]] = relationship(
        back_populates="pipeline", cascade="all, delete-orphan", order_by="PipelineStage.position")


class PipelineStage(IdMixin, TimestampMixin, VersionedMixin, Base):
    __tablename__ = "pipeline_stages"
    __table_args__ = (UniqueConstraint("pipeline_id", "name"),)

    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(120))
    position: Mapped[int] = mapped_column(default=0)
    probability: Mapped[int] = mapped_column(default=0)  # default win probability, percent
    outcome: Mapped[str] = mapped_column(String(8), default="open")
    pipeline: Mapped[Pipeline] = relationship(back_populates="stages")


class Deal(IdMixin, TimestampMixin, VersionedMixin, Base):
    __tablename__ = "deals"
    __table_args__ = (
        # kanban: the open deals of one stage, newest first, keyset by id
        Index("ix_deals_stage_status_id", "stage_id", "status", "id"),
        # kanban totals: one grouped read of a pipeline that never touches the table (covering)
        Index("ix_deals_board_totals", "pipeline_id", "stage_id", "currency", "probability",
              "amount", "owner_id", "team_id", "expected_close_date"),
        Index("ix_deals_owner_status_close", "owner_id", "status", "expected_close_date"),
        Index("ix_deals_team_status_close", "team_id", "status", "expected_close_date"),
        Index("ix_deals_pipeline_status_close", "pipeline_id", "status", "expected_close_date"),
        Index("ix_deals_closed_at", "closed_at"),
    )

    name: Mapped[str] = mapped_column(String(200))
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id", ondelete="RESTRICT"))
    stage_id: Mapped[int] = mapped_column(ForeignKey("pipeline_stages.id", ondelete="RESTRICT"))
    status: Mapped[str] = mapped_column(String(8), default="open")
    amount: Mapped[Decimal] = mapped_column(Numeric(18, 2), default=Decimal("0"))
    currency: Mapped[str] = mapped_column(String(3))
    probability: Mapped[int | None] = mapped_column()  # overrides the stage's default
    expected_close_date: Mapped[date | None] = mapped_column(Date)
    forecast_category: Mapped[str] = mapped_column(String(12), default="pipeline")
    competitors: Mapped[list[Any]] = mapped_column(default=list)
    lost_reason: Mapped[str | None] = mapped_column(String(20))
    lost_note: Mapped[str | None] = mapped_column(Text)
    closed_at: Mapped[datetime | None] = mapped_column()
    stage_entered_at: Mapped[datetime] = mapped_column(default=utcnow)
    source: Mapped[str] = mapped_column(String(24), default="manual")
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="SET NULL"), index=True)
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    lead_id: Mapped[int | None] = mapped_column(
        ForeignKey("leads.id", ondelete="SET NULL"), index=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    lines: Mapped[list[DealLine]] = relationship(
        back_populates="deal", cascade="all, delete-orphan", order_by="DealLine.id")


class DealLine(IdMixin, Base):
    __tablename__ = "deal_lines"

    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[int | None] = mapped_column(
        ForeignKey("products.id", ondelete="SET NULL"), index=True)
    description: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[int] = mapped_column()
    unit_price: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    discount_percent: Mapped[Decimal] = mapped_column(Numeric(5, 2), default=Decimal("0"))
    line_total: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    deal: Mapped[Deal] = relationship(back_populates="lines")


class DealStageChange(IdMixin, Base):
    """Stage history: one row per move (creation included, `from_stage_id` empty)."""

    __tablename__ = "deal_stage_changes"
    __table_args__ = (Index("ix_deal_stage_changes_deal_time", "deal_id", "changed_at"),)

    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"))
    from_stage_id: Mapped[int | None] = mapped_column(
        ForeignKey("pipeline_stages.id", ondelete="SET NULL"))
    to_stage_id: Mapped[int] = mapped_column(ForeignKey("pipeline_stages.id", ondelete="CASCADE"))
    amount: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    changed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class Activity(IdMixin, TimestampMixin, VersionedMixin, Base):
    __tablename__ = "activities"
    __table_args__ = (
        Index("ix_activities_owner_status_due", "owner_id", "status", "due_at"),
        Index("ix_activities_team_status_due", "team_id", "status", "due_at"),
        Index("ix_activities_reminders", "status", "remind_at"),
    )

    kind: Mapped[str] = mapped_column(String(8))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(10), default="open")
    due_at: Mapped[datetime | None] = mapped_column()
    remind_at: Mapped[datetime | None] = mapped_column()
    reminded_at: Mapped[datetime | None] = mapped_column()
    done_at: Mapped[datetime | None] = mapped_column()
    duration_minutes: Mapped[int | None] = mapped_column()
    direction: Mapped[str | None] = mapped_column(String(16))  # calls: inbound / outbound
    outcome: Mapped[str | None] = mapped_column(String(40))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    lead_id: Mapped[int | None] = mapped_column(
        ForeignKey("leads.id", ondelete="CASCADE"), index=True)
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    deal_id: Mapped[int | None] = mapped_column(
        ForeignKey("deals.id", ondelete="CASCADE"), index=True)
    # the timeline entry mirroring this activity (activities about a customer)
    interaction_id: Mapped[int | None] = mapped_column(
        ForeignKey("interactions.id", ondelete="SET NULL"))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class Notification(IdMixin, Base):
    """An in-app notification for one user (reminders, assignments, alerts)."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_user_read", "user_id", "read_at", "id"),)

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(40))
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text, default="")
    link: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column()
    dedupe_key: Mapped[str | None] = mapped_column(String(128), unique=True)


__all__ = [
    "Activity", "AssignmentRule", "ConsentRecord", "Deal", "DealLine", "DealStageChange", "Lead",
    "LeadEngagement", "LeadForm", "LeadScoreModel", "Notification", "Pipeline", "PipelineStage",
]
