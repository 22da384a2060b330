"""Golden customer profiles, organisations, contact points and custom fields."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Date, ForeignKey, Index, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from accord.core.clock import utcnow
from accord.models.base import Base, IdMixin, TimestampMixin, VersionedMixin

LIFECYCLE_STAGES = (
    "awareness",
    "discovery",
    "evaluation",
    "intent",
    "purchase",
    "loyalty",
    "churned",
)
VALUE_TIERS = ("bronze", "silver", "gold", "platinum")
CHANNELS = ("email", "chat", "phone", "sms", "social", "web", "app", "store")
CUSTOM_FIELD_TYPES = ("text", "number", "date", "choice")


class Account(IdMixin, TimestampMixin, VersionedMixin, Base):
    """An organisation (B2B customer)."""

    __tablename__ = "accounts"
    __table_args__ = (Index("ix_accounts_created_at_id", "created_at", "id"),)

    name: Mapped[str] = mapped_column(String(200))
    name_key: Mapped[str] = mapped_column(String(200), index=True)
    domain: Mapped[str | None] = mapped_column(String(200), index=True)
    industry: Mapped[str | None] = mapped_column(String(100), index=True)
    employees: Mapped[int | None] = mapped_column()
    annual_revenue: Mapped[Decimal | None] = mapped_column(Numeric(18, 2))
    annual_revenue_currency: Mapped[str | None] = mapped_column(String(3))
    country: Mapped[str | None] = mapped_column(String(2), index=True)
    value_tier: Mapped[str | None] = mapped_column(String(16))
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    team_id: Mapped[int | None] = mapped_column(
        ForeignKey("teams.id", ondelete="SET NULL"), index=True
    )


class Customer(IdMixin, TimestampMixin, VersionedMixin, Base):
    """A golden profile of one person."""

    __tablename__ = "customers"
    __table_args__ = (
        Index("ix_customers_stage_id", "lifecycle_stage", "id"),
        Index("ix_customers_owner_id_id", "owner_id", "id"),
        Index("ix_customers_team_id_id", "team_id", "id"),
        Index("ix_customers_created_at_id", "created_at", "id"),
    )

    title: Mapped[str | None] = mapped_column(String(40))
    first_name: Mapped[str] = mapped_column(String(100), default="")
    last_name: Mapped[str] = mapped_column(String(100), default="")
    display_name: Mapped[str] = mapped_column(String(220))
    # lower-cased, accent-free "last first" and "first last" keys for index-friendly prefix search
    name_key: Mapped[str] = mapped_column(String(220), index=True)
    name_key_alt: Mapped[str] = mapped_column(String(220), index=True)
    gender: Mapped[str | None] = mapped_column(String(20))
    date_of_birth: Mapped[date | None] = mapped_column(Date, index=True)
    national_id: Mapped[str | None] = mapped_column(String(64))
    notes: Mapped[str | None] = mapped_column(Text)
    lifecycle_stage: Mapped[str] = mapped_column(String(16), default="awareness")
    value_tier: Mapped[str | None] = mapped_column(String(16), index=True)
    lifetime_value: Mapped[Decimal | None] = mapped_column(Numeric(18, 2))
    preferred_channel: Mapped[str | None] = mapped_column(String(16))
    preferred_language: Mapped[str | None] = mapped_column(String(20))
    country: Mapped[str | None] = mapped_column(String(2), index=True)
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL"), index=True
    )
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    # set when this profile was merged into another; kept (hidden) so an unmerge can restore it
    merged_into_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="SET NULL"), index=True
    )

    emails: Mapped[list[CustomerEmail]] = relationship(
        back_populates="customer", cascade="all, delete-orphan", order_by="CustomerEmail.id"
    )
    phones: Mapped[list[CustomerPhone]] = relationship(
        back_populates="customer", cascade="all, delete-orphan", order_by="CustomerPhone.id"
    )
    addresses: Mapped[list[CustomerAddress]] = relationship(
        back_populates="customer", cascade="all, delete-orphan", order_by="CustomerAddress.id"
    )


class CustomerEmail(IdMixin, Base):
    __tablename__ = "customer_emails"

    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(String(254))
    email_normalized: Mapped[str] = mapped_column(String(254), index=True)
    kind: Mapped[str] = mapped_column(String(20), default="personal")
    is_primary: Mapped[bool] = mapped_column(default=False)
    verified: Mapped[bool] = mapped_column(default=False)
    customer: Mapped[Customer] = relationship(back_populates="emails")


class CustomerPhone(IdMixin, Base):
    __tablename__ = "customer_phones"

    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    phone: Mapped[str] = mapped_column(String(40))
    e164: Mapped[str] = mapped_column(String(20), index=True)
    kind: Mapped[str] = mapped_column(String(20), default="mobile")
    is_primary: Mapped[bool] = mapped_column(default=False)
    customer: Mapped[Customer] = relationship(back_populates="phones")


class CustomerAddress(IdMixin, Base):
    __tablename__ = "customer_addresses"

    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(20), default="home")
    line1: Mapped[str] = mapped_column(String(200))
    line2: Mapped[str | None] = mapped_column(String(200))
    city: Mapped[str] = mapped_column(String(120))
    region: Mapped[str | None] = mapped_column(String(120))
    postcode: Mapped[str | None] = mapped_column(String(20))
    country: Mapped[str] = mapped_column(String(2))
    is_primary: Mapped[bool] = mapped_column(default=False)
    customer: Mapped[Customer] = relationship(back_populates="addresses")


class LifecycleChange(IdMixin, Base):
    __tablename__ = "lifecycle_changes"

    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    from_stage: Mapped[str | None] = mapped_column(String(16))
    to_stage: Mapped[str] = mapped_column(String(16))
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    changed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reason: Mapped[str] = mapped_column(String(300), default="")


class Contact(IdMixin, TimestampMixin, VersionedMixin, Base):
    """A person at an account, optionally linked to their golden profile."""

    __tablename__ = "contacts"

    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="SET NULL"), index=True
    )
    first_name: Mapped[str] = mapped_column(String(100), default="")
    last_name: Mapped[str] = mapped_column(String(100), default="")
    job_title: Mapped[str | None] = mapped_column(String(120))
    email: Mapped[str | None] = mapped_column(String(254), index=True)
    phone: Mapped[str | None] = mapped_column(String(20))
    is_primary: Mapped[bool] = mapped_column(default=False)


class CustomFieldDefinition(IdMixin, TimestampMixin, VersionedMixin, Base):
    __tablename__ = "custom_field_definitions"
    __table_args__ = (UniqueConstraint("entity", "key"),)

    entity: Mapped[str] = mapped_column(String(40), default="customer")
    key: Mapped[str] = mapped_column(String(60))
    label: Mapped[str] = mapped_column(String(120))
    type: Mapped[str] = mapped_column(String(16))
    choices: Mapped[list[Any]] = mapped_column(default=list)
    required: Mapped[bool] = mapped_column(default=False)
    sensitive: Mapped[bool] = mapped_column(default=False)
    help_text: Mapped[str] = mapped_column(String(300), default="")


class CustomFieldValue(IdMixin, Base):
    """Typed EAV: one indexed column per type keeps custom-field filters index-backed."""

    __tablename__ = "custom_field_values"
    __table_args__ = (
        UniqueConstraint("field_id", "record_id"),
        Index("ix_cfv_text", "field_id", "value_text"),
        Index("ix_cfv_number", "field_id", "value_number"),
        Index("ix_cfv_date", "field_id", "value_date"),
        Index("ix_cfv_record", "record_id"),
    )

    field_id: Mapped[int] = mapped_column(
        ForeignKey("custom_field_definitions.id", ondelete="CASCADE")
    )
    record_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    value_text: Mapped[str | None] = mapped_column(String(500))
    value_number: Mapped[Decimal | None] = mapped_column(Numeric(24, 6))
    value_date: Mapped[date | None] = mapped_column(Date)
