"""Per-customer scores written back by the analytics domain, and the model versions behind them.

`customer_scores` is profiling (GDPR art. 4(4)): it is declared in the personal data registry
(exported with the person, deleted on erasure) and its sensitive columns follow the field rules
of `accord.access.policy.SENSITIVE_FIELDS["customer_scores"]`.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Numeric, SmallInteger, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from accord.core.clock import utcnow
from accord.models.base import Base, IdMixin


class CustomerScore(IdMixin, Base):
    """One row per customer: the latest RFM, CLV, churn risk and value tier (None = not computed,
    the reason in `missing`)."""

    __tablename__ = "customer_scores"
    __table_args__ = (
        Index("ix_customer_scores_segment_customer", "rfm_segment", "customer_id"),
        Index("ix_customer_scores_tier_customer", "value_tier", "customer_id"),
        Index("ix_customer_scores_churn_customer", "churn_risk", "customer_id"),
        Index("ix_customer_scores_clv_customer", "clv_12m", "customer_id"),
        Index("ix_customer_scores_at_risk_customer", "at_risk_valuable", "customer_id"),
    )

    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), unique=True
    )
    recency_days: Mapped[float | None] = mapped_column(Float)
    frequency: Mapped[int | None] = mapped_column()
    monetary: Mapped[Decimal | None] = mapped_column(Numeric(18, 2))
    currency: Mapped[str | None] = mapped_column(String(3))
    rfm_r: Mapped[int | None] = mapped_column(SmallInteger)
    rfm_f: Mapped[int | None] = mapped_column(SmallInteger)
    rfm_m: Mapped[int | None] = mapped_column(SmallInteger)
    rfm_segment: Mapped[str | None] = mapped_column(String(32))
    clv_12m: Mapped[Decimal | None] = mapped_column(Numeric(18, 2))
    expected_purchases_12m: Mapped[float | None] = mapped_column(Float)
    p_alive: Mapped[float | None] = mapped_column(Float)
    churn_risk: Mapped[float | None] = mapped_column(Float)
    churn_reasons: Mapped[list[Any]] = mapped_column(default=list)
    value_tier: Mapped[str | None] = mapped_column(String(16))
    at_risk_valuable: Mapped[bool] = mapped_column(default=False)
    # why a score is None, e.g. {"churn_risk": "no purchase yet"}
    missing: Mapped[dict[str, Any]] = mapped_column(default=dict)
    run_id: Mapped[str] = mapped_column(String(32), index=True)
    computed_at: Mapped[datetime] = mapped_column(default=utcnow)


class ScoreModel(IdMixin, Base):
    """A versioned model card (churn, CLV) of one scoring run; `status` skipped keeps the reason."""

    __tablename__ = "score_models"
    __table_args__ = (UniqueConstraint("kind", "version"),)

    kind: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column()
    run_id: Mapped[str] = mapped_column(String(32), index=True)
    status: Mapped[str] = mapped_column(String(16), default="trained")
    reason: Mapped[str | None] = mapped_column(String(500))
    card: Mapped[dict[str, Any]] = mapped_column(default=dict)
    data_rows: Mapped[int] = mapped_column(default=0)
    trained_at: Mapped[datetime] = mapped_column(default=utcnow)
