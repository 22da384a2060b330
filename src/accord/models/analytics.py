"""Analytics results and inputs: KPI series per refresh run, marketing spend.

KPI values are aggregates (counts, sums, ratios over many customers): they hold no personal data,
so they need no entry in the privacy registry and survive a customer's erasure unchanged.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Date, Float, ForeignKey, Index, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from accord.core.clock import utcnow
from accord.models.base import Base, BigId, IdMixin, TimestampMixin, VersionedMixin

RUN_STATUSES = ("running", "done", "failed")


class AnalyticsRun(IdMixin, Base):
    """One refresh: snapshot → KPI queries → write-back; its figures say what it cost."""

    __tablename__ = "analytics_runs"
    __table_args__ = (Index("ix_analytics_runs_status_id", "status", "id"),)

    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()
    engine: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="running")
    snapshot: Mapped[str | None] = mapped_column(String(300))
    figures: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text)


class KpiValue(IdMixin, Base):
    """One KPI value for one period (month), optionally for one dimension value.

    `series` splits a KPI into named curves (cohort month, funnel step); `currency` is set for
    money KPIs; `dimension`/`dimension_value` (country, segment, owner, channel) are null for
    the overall value."""

    __tablename__ = "kpi_values"
    __table_args__ = (
        Index("ix_kpi_values_lookup", "run_id", "kpi", "dimension", "dimension_value",
              "period_start"),
    )

    run_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("analytics_runs.id", ondelete="CASCADE")
    )
    kpi: Mapped[str] = mapped_column(String(40))
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)  # exclusive
    series: Mapped[str | None] = mapped_column(String(60))
    currency: Mapped[str | None] = mapped_column(String(3))
    dimension: Mapped[str | None] = mapped_column(String(20))
    dimension_value: Mapped[str | None] = mapped_column(String(60))
    value: Mapped[float | None] = mapped_column(Float)
    numerator: Mapped[float | None] = mapped_column(Float)
    denominator: Mapped[float | None] = mapped_column(Float)
    ci_low: Mapped[float | None] = mapped_column(Float)
    ci_high: Mapped[float | None] = mapped_column(Float)
    computed_at: Mapped[datetime] = mapped_column(default=utcnow)


class MarketingSpend(IdMixin, TimestampMixin, VersionedMixin, Base):
    """Money spent on one acquisition channel over a period: the numerator of CAC."""

    __tablename__ = "marketing_spend"
    __table_args__ = (Index("ix_marketing_spend_period", "period_start", "id"),)

    channel: Mapped[str] = mapped_column(String(40), index=True)
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)  # inclusive last day
    amount: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    currency: Mapped[str] = mapped_column(String(3))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
