"""Recommendations written back by the analytics domain: per-customer suggestions and the
"bought together" product associations.

`customer_recommendations` is profiling (GDPR art. 4(4)): derived from one person's purchases,
it is declared in the personal data registry (exported with the person, deleted on erasure).
The reason text is not stored: it is built when shown from the `because_product_id_*` columns and
the current product names (cheaper at a million customers, and a renamed product reads right).

`product_associations` is an aggregate over all orders (support, confidence, lift between two
products): it holds no personal data, so it needs no registry entry and survives an erasure.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, Integer, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from accord.core.clock import utcnow
from accord.models.base import Base, BigId, IdMixin


class CustomerRecommendation(IdMixin, Base):
    """One suggestion (rank 1..k) for one customer, with the bought products behind it."""

    __tablename__ = "customer_recommendations"
    __table_args__ = (
        Index("ix_customer_recommendations_customer_rank", "customer_id", "rank"),
    )

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    rank: Mapped[int] = mapped_column(SmallInteger)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"))
    score: Mapped[float] = mapped_column(Float)
    # the bought products contributing most (None: a popularity fill-in); no FK, so a bulk
    # refresh does not pay for three constraint checks per row and a deleted product only drops
    # out of the reason text
    because_product_id_1: Mapped[int | None] = mapped_column(BigId)
    because_product_id_2: Mapped[int | None] = mapped_column(BigId)
    model: Mapped[str] = mapped_column(String(32))
    generated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ProductAssociation(IdMixin, Base):
    """"Bought together": the top products in the same orders as `product_id` (rank 1..N)."""

    __tablename__ = "product_associations"
    __table_args__ = (Index("ix_product_associations_product_rank", "product_id", "rank"),)

    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"))
    other_product_id: Mapped[int] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), index=True
    )
    rank: Mapped[int] = mapped_column(SmallInteger)
    orders_together: Mapped[int] = mapped_column(Integer)
    support: Mapped[float] = mapped_column(Float)
    confidence: Mapped[float] = mapped_column(Float)
    lift: Mapped[float] = mapped_column(Float)
    generated_at: Mapped[datetime] = mapped_column(default=utcnow)
