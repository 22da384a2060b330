"""The omnichannel interaction timeline."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from accord.models.base import Base, BigId, IdMixin, TimestampMixin, VersionedMixin

DIRECTIONS = ("inbound", "outbound")
DEPARTMENTS = ("sales", "marketing", "support", "billing", "service", "other")


class Interaction(IdMixin, TimestampMixin, VersionedMixin, Base):
    __tablename__ = "interactions"
    __table_args__ = (
        Index("ix_interactions_customer_time", "customer_id", "occurred_at", "id"),
        Index("ix_interactions_time", "occurred_at", "id"),
    )

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(16), index=True)
    direction: Mapped[str] = mapped_column(String(16), index=True)
    department: Mapped[str] = mapped_column(String(20), index=True)
    occurred_at: Mapped[datetime] = mapped_column()
    subject: Mapped[str] = mapped_column(String(300), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    source: Mapped[str | None] = mapped_column(String(80))
    # the raw source record it was built from, so it follows the right person on unmerge
    source_record_id: Mapped[int | None] = mapped_column(BigId, index=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
