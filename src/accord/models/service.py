"""Customer service: tickets and their messages, SLAs, routing, knowledge base, assistant, surveys.

A ticket belongs to one golden customer and carries every message on every channel; each
message is also an interaction on the customer's timeline. `ticket_events` is the ticket's
timeline of facts (created, replies, status and priority changes, assignments, SLA warnings and
breaches): the SLA rules in `accord.service.sla` are evaluated over it, and the due instants they
give are stored on the ticket so that queues sort and filter on indexed columns.

The knowledge base keeps every version of an article; full-text search runs on SQLite FTS5
(`kb_articles_fts`, kept by triggers) or PostgreSQL tsvector (`kb_articles.search_vector`, a
generated column), both created by the migration rather than mapped here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Float,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from accord.core.clock import utcnow
from accord.models.base import Base, IdMixin, TimestampMixin, VersionedMixin

TICKET_STATUSES = ("new", "open", "pending_customer", "on_hold", "solved", "closed")
OPEN_STATUSES = ("new", "open", "pending_customer", "on_hold")
_OPEN_SQL = "status IN ('new', 'open', 'pending_customer', 'on_hold')"
TICKET_PRIORITIES = ("low", "normal", "high", "urgent")
TICKET_CHANNELS = ("email", "chat", "web", "api", "phone", "agent", "assistant")
MESSAGE_VISIBILITIES = ("public", "internal")
ROUTING_METHODS = ("round_robin", "least_loaded", "team_queue")
SLA_STATES = ("none", "running", "warning", "breached", "paused", "met")
KB_VISIBILITIES = ("internal", "public")
KB_STATUSES = ("draft", "published", "archived")
CONVERSATION_STATUSES = ("open", "answered", "handed_off", "closed")
SURVEY_KINDS = ("nps", "csat")
SURVEY_TRIGGERS = ("ticket_solved", "schedule", "manual")


# Full-text search objects the migration creates outside the ORM (see the module docstring).
SEARCH_TABLE_PREFIX = "kb_articles_fts"
SEARCH_COLUMNS = frozenset({("kb_articles", "search_vector")})


class BusinessCalendar(IdMixin, TimestampMixin, VersionedMixin, Base):
    """A team's service hours: `accord.service.calendar.BusinessCalendar.from_spec` reads them.

    `team_id` NULL is the default calendar for teams without their own.
    """

    __tablename__ = "business_calendars"

    name: Mapped[str] = mapped_column(String(120), unique=True)
    team_id: Mapped[int | None] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), unique=True)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    hours: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {"mon": [["09:00","17:00"]]}
    holidays: Mapped[list[Any]] = mapped_column(default=list)  # ["2026-12-25", ...]


class SlaPolicy(IdMixin, TimestampMixin, VersionedMixin, Base):
    """Targets by priority and tier (`sla_targets`), measured on the ticket team's calendar."""

    __tablename__ = "sla_policies"

    name: Mapped[str] = mapped_column(String(120), unique=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    warning_ratio: Mapped[float] = mapped_column(Float, default=0.8)
    pause_on_hold: Mapped[bool] = mapped_column(default=False)
    is_default: Mapped[bool] = mapped_column(default=False)
    active: Mapped[bool] = mapped_column(default=True)


class SlaTarget(IdMixin, Base):
    """Business minutes for one (priority, tier); tier NULL matches any tier, a NULL target none."""

    __tablename__ = "sla_targets"
    __table_args__ = (UniqueConstraint("policy_id", "priority", "tier"),)

    policy_id: Mapped[int] = mapped_column(ForeignKey("sla_policies.id", ondelete="CASCADE"))
    priority: Mapped[str] = mapped_column(String(16))
    tier: Mapped[str | None] = mapped_column(String(20))
    first_response_minutes: Mapped[int | None] = mapped_column()
    next_response_minutes: Mapped[int | None] = mapped_column()
    resolution_minutes: Mapped[int | None] = mapped_column()


class ServiceAgent(IdMixin, TimestampMixin, VersionedMixin, Base):
    """An agent's routing profile: skills, languages, availability and capacity."""

    __tablename__ = "service_agents"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    skills: Mapped[list[Any]] = mapped_column(default=list)
    languages: Mapped[list[Any]] = mapped_column(default=list)
    available: Mapped[bool] = mapped_column(default=True)
    max_open_tickets: Mapped[int] = mapped_column(default=25)
    last_assigned_at: Mapped[datetime | None] = mapped_column()


class RoutingRule(IdMixin, TimestampMixin, VersionedMixin, Base):
    """First matching rule (by position) picks the team and how an agent is chosen."""

    __tablename__ = "routing_rules"

    name: Mapped[str] = mapped_column(String(120))
    position: Mapped[int] = mapped_column(default=0)
    category: Mapped[str | None] = mapped_column(String(60))
    channel: Mapped[str | None] = mapped_column(String(16))
    priority: Mapped[str | None] = mapped_column(String(16))
    language: Mapped[str | None] = mapped_column(String(8))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    required_skill: Mapped[str | None] = mapped_column(String(60))
    method: Mapped[str] = mapped_column(String(16), default="round_robin")
    active: Mapped[bool] = mapped_column(default=True)


class Ticket(IdMixin, TimestampMixin, VersionedMixin, Base):
    __tablename__ = "tickets"
    __table_args__ = (
        Index("ix_tickets_assignee_queue", "assignee_id", "status", "due_at", "id"),
        Index("ix_tickets_team_queue", "team_id", "status", "due_at", "id"),
        Index("ix_tickets_status_due", "status", "due_at", "id"),
        Index("ix_tickets_customer_created", "customer_id", "created_at", "id"),
        Index("ix_tickets_sla_state", "sla_state", "due_at"),
        # the queues ask for several open statuses at once, sorted by due: an IN list cannot
        # walk the (…, status, due_at) indexes in order, these partial ones can
        Index("ix_tickets_open_team_due", "team_id", "due_at", "id",
              postgresql_where=text(_OPEN_SQL), sqlite_where=text(_OPEN_SQL)),
        Index("ix_tickets_open_assignee_due", "assignee_id", "due_at", "id",
              postgresql_where=text(_OPEN_SQL), sqlite_where=text(_OPEN_SQL)),
    )

    subject: Mapped[str] = mapped_column(String(300))
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="SET NULL"))
    requester_email: Mapped[str | None] = mapped_column(String(320))
    requester_name: Mapped[str | None] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(16))
    priority: Mapped[str] = mapped_column(String(16), default="normal")
    category: Mapped[str | None] = mapped_column(String(60), index=True)
    status: Mapped[str] = mapped_column(String(20), default="new")
    language: Mapped[str | None] = mapped_column(String(8))
    tags: Mapped[list[Any]] = mapped_column(default=list)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    routing_rule_id: Mapped[int | None] = mapped_column(
        ForeignKey("routing_rules.id", ondelete="SET NULL"))
    # SLA: the policy in force and the timers' due instants as last evaluated; `due_at` is the
    # earliest running one, which the queues sort by
    sla_policy_id: Mapped[int | None] = mapped_column(
        ForeignKey("sla_policies.id", ondelete="SET NULL"))
    sla_state: Mapped[str] = mapped_column(String(16), default="none")
    first_response_due_at: Mapped[datetime | None] = mapped_column()
    next_response_due_at: Mapped[datetime | None] = mapped_column()
    resolution_due_at: Mapped[datetime | None] = mapped_column()
    due_at: Mapped[datetime | None] = mapped_column()
    warn_at: Mapped[datetime | None] = mapped_column(index=True)
    sla_checked_at: Mapped[datetime | None] = mapped_column()
    first_response_seconds: Mapped[float | None] = mapped_column(Float)  # business seconds
    resolution_seconds: Mapped[float | None] = mapped_column(Float)
    first_responded_at: Mapped[datetime | None] = mapped_column()
    last_customer_message_at: Mapped[datetime | None] = mapped_column()
    last_agent_reply_at: Mapped[datetime | None] = mapped_column()
    solved_at: Mapped[datetime | None] = mapped_column()
    closed_at: Mapped[datetime | None] = mapped_column()
    # sentiment and escalation
    sentiment: Mapped[float | None] = mapped_column(Float)  # latest inbound compound score
    escalation_level: Mapped[int] = mapped_column(default=0)
    escalated_at: Mapped[datetime | None] = mapped_column()
    escalation_reason: Mapped[str | None] = mapped_column(String(200))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    @property
    def reference(self) -> str:
        """The customer-facing reference ("T-123"), put in mail subjects so replies thread."""
        return f"T-{self.id}"


class TicketMessage(IdMixin, Base):
    """One message: public (the customer sees it) or an internal note; inbound or outbound."""

    __tablename__ = "ticket_messages"
    __table_args__ = (
        Index("ix_ticket_messages_ticket_time", "ticket_id", "created_at", "id"),
        Index("ix_ticket_messages_customer_time", "customer_id", "created_at"),
    )

    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="SET NULL"))
    visibility: Mapped[str] = mapped_column(String(16), default="public")
    direction: Mapped[str] = mapped_column(String(16))  # inbound (customer) / outbound (agent)
    channel: Mapped[str] = mapped_column(String(16))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    from_address: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str | None] = mapped_column(String(300))
    body_text: Mapped[str] = mapped_column(Text, default="")
    body_html: Mapped[str | None] = mapped_column(Text)  # sanitised (allow-list) on the way in
    language: Mapped[str | None] = mapped_column(String(8))
    sentiment: Mapped[float | None] = mapped_column(Float)  # compound, -1..1
    sentiment_label: Mapped[str | None] = mapped_column(String(16))
    sentiment_model: Mapped[str | None] = mapped_column(String(40))
    # e-mail threading (RFC 5322): our Message-ID for outbound, the sender's for inbound
    mail_message_id: Mapped[str | None] = mapped_column(String(998), index=True)
    in_reply_to: Mapped[str | None] = mapped_column(String(998))
    is_auto_reply: Mapped[bool] = mapped_column(default=False)
    interaction_id: Mapped[int | None] = mapped_column(
        ForeignKey("interactions.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TicketAttachment(IdMixin, Base):
    """A file kept under a server-generated `storage_key`; `filename` is for display only."""

    __tablename__ = "ticket_attachments"

    ticket_id: Mapped[int] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    message_id: Mapped[int | None] = mapped_column(
        ForeignKey("ticket_messages.id", ondelete="CASCADE"), index=True)
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="SET NULL"), index=True)  # for export and erasure
    storage_key: Mapped[str] = mapped_column(String(80), unique=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(120), default="application/octet-stream")
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TicketEvent(IdMixin, Base):
    """The ticket's timeline of facts; SLA-relevant kinds feed `accord.service.sla.evaluate`."""

    __tablename__ = "ticket_events"
    __table_args__ = (Index("ix_ticket_events_ticket_time", "ticket_id", "at", "id"),)

    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str | None] = mapped_column(String(20))
    priority: Mapped[str | None] = mapped_column(String(16))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


class TicketOrder(IdMixin, Base):
    __tablename__ = "ticket_orders"
    __table_args__ = (UniqueConstraint("ticket_id", "order_id"),)

    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)


class TicketPresence(IdMixin, Base):
    """Who has a ticket open now: the collision warning when two agents work the same ticket."""

    __tablename__ = "ticket_presence"
    __table_args__ = (UniqueConstraint("ticket_id", "user_id"),)

    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    composing: Mapped[bool] = mapped_column(default=False)


class CannedReply(IdMixin, TimestampMixin, VersionedMixin, Base):
    """A reusable reply; placeholders such as ``{{ customer.first_name }}`` are personalised."""

    __tablename__ = "canned_replies"

    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    category: Mapped[str | None] = mapped_column(String(60))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    active: Mapped[bool] = mapped_column(default=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class KbCategory(IdMixin, TimestampMixin, VersionedMixin, Base):
    __tablename__ = "kb_categories"

    slug: Mapped[str] = mapped_column(String(120), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("kb_categories.id", ondelete="SET NULL"))
    position: Mapped[int] = mapped_column(default=0)


class KbArticle(IdMixin, TimestampMixin, VersionedMixin, Base):
    """The current version of an article in one locale; history in `kb_article_versions`."""

    __tablename__ = "kb_articles"
    __table_args__ = (
        UniqueConstraint("slug", "locale"),
        Index("ix_kb_articles_visible", "status", "visibility", "locale"),
    )

    slug: Mapped[str] = mapped_column(String(160))
    locale: Mapped[str] = mapped_column(String(16), default="en")
    category_id: Mapped[int | None] = mapped_column(
        ForeignKey("kb_categories.id", ondelete="SET NULL"), index=True)
    visibility: Mapped[str] = mapped_column(String(16), default="internal")
    status: Mapped[str] = mapped_column(String(16), default="draft")
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text, default="")
    current_version: Mapped[int] = mapped_column(default=1)
    published_at: Mapped[datetime | None] = mapped_column()
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    views: Mapped[int] = mapped_column(default=0)
    helpful_yes: Mapped[int] = mapped_column(default=0)
    helpful_no: Mapped[int] = mapped_column(default=0)


class KbArticleVersion(IdMixin, Base):
    __tablename__ = "kb_article_versions"
    __table_args__ = (UniqueConstraint("article_id", "number"),)

    article_id: Mapped[int] = mapped_column(ForeignKey("kb_articles.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column()
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text, default="")
    note: Mapped[str | None] = mapped_column(String(300))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AssistantConversation(IdMixin, TimestampMixin, Base):
    """A self-service conversation; `public_id` is the unguessable handle the widget holds."""

    __tablename__ = "assistant_conversations"
    __table_args__ = (Index("ix_assistant_conversations_created", "created_at", "status"),)

    public_id: Mapped[str] = mapped_column(String(64), unique=True)
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="SET NULL"), index=True)
    email: Mapped[str | None] = mapped_column(String(320))
    name: Mapped[str | None] = mapped_column(String(200))
    locale: Mapped[str] = mapped_column(String(16), default="en")
    status: Mapped[str] = mapped_column(String(16), default="open")
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"))
    handed_off_at: Mapped[datetime | None] = mapped_column()


class AssistantTurn(IdMixin, Base):
    __tablename__ = "assistant_turns"
    __table_args__ = (Index("ix_assistant_turns_conversation", "conversation_id", "id"),)

    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("assistant_conversations.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))  # customer / assistant
    text: Mapped[str] = mapped_column(Text)
    article_ids: Mapped[list[Any]] = mapped_column(default=list)
    answered: Mapped[bool | None] = mapped_column()  # assistant turns: found an answer or not
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SurveySchedule(IdMixin, TimestampMixin, VersionedMixin, Base):
    """A recurring relationship survey (e.g. NPS every 90 days to active customers)."""

    __tablename__ = "survey_schedules"

    name: Mapped[str] = mapped_column(String(120), unique=True)
    kind: Mapped[str] = mapped_column(String(8))
    every_days: Mapped[int] = mapped_column(default=90)
    audience: Mapped[dict[str, Any]] = mapped_column(default=dict)
    active: Mapped[bool] = mapped_column(default=True)
    last_run_at: Mapped[datetime | None] = mapped_column()
    next_run_at: Mapped[datetime | None] = mapped_column()


class SurveyInvitation(IdMixin, Base):
    """One signed, single-use survey link; only the token's hash is stored."""

    __tablename__ = "survey_invitations"
    __table_args__ = (Index("ix_survey_invitations_customer", "customer_id", "sent_at"),)

    kind: Mapped[str] = mapped_column(String(8))
    trigger: Mapped[str] = mapped_column(String(16))
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"))
    ticket_id: Mapped[int | None] = mapped_column(
        ForeignKey("tickets.id", ondelete="SET NULL"), index=True)
    schedule_id: Mapped[int | None] = mapped_column(
        ForeignKey("survey_schedules.id", ondelete="SET NULL"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    email: Mapped[str | None] = mapped_column(String(320))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    sent_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column()


class SurveyResponse(IdMixin, Base):
    __tablename__ = "survey_responses"
    __table_args__ = (
        Index("ix_survey_responses_kind_time", "kind", "responded_at"),
        Index("ix_survey_responses_customer", "customer_id", "responded_at"),
    )

    invitation_id: Mapped[int] = mapped_column(
        ForeignKey("survey_invitations.id", ondelete="CASCADE"), unique=True)
    kind: Mapped[str] = mapped_column(String(8))
    score: Mapped[int] = mapped_column()  # NPS 0..10, CSAT 1..5
    comment: Mapped[str | None] = mapped_column(Text)
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    follow_up_activity_id: Mapped[int | None] = mapped_column(
        ForeignKey("activities.id", ondelete="SET NULL"))
    responded_at: Mapped[datetime] = mapped_column(default=utcnow)
