"""Products, orders and their lines: the purchase history."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from accord.models.base import Base, BigId, IdMixin, TimestampMixin, VersionedMixin

ORDER_STATUSES = ("pending", "paid", "shipped", "delivered", "cancelled", "refunded")


class Product(IdMixin, TimestampMixin, VersionedMixin, Base):
    __tablename__ = "products"

    sku: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str | None] = mapped_column(String(100), index=True)
    price: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    currency: Mapped[str] = mapped_column(String(3))
    active: Mapped[bool] = mapped_column(default=True)


class Order(IdMixin, TimestampMixin, VersionedMixin, Base):
    __tablename__ = "orders"
    __table_args__ = (
        Index("ix_orders_customer_time", "customer_id", "ordered_at", "id"),
        Index("ix_orders_time", "ordered_at", "id"),
    )

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    number: Mapped[str] = mapped_column(String(40), unique=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    currency: Mapped[str] = mapped_column(String(3), index=True)
    total: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    ordered_at: Mapped[datetime] = mapped_column()
    channel: Mapped[str | None] = mapped_column(String(16))
    # the raw source record it was built from, so it follows the right person on unmerge
    source_record_id: Mapped[int | None] = mapped_column(BigId, index=True)
    lines: Mapped[list[OrderLine]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="OrderLine.id"
    )


class OrderLine(IdMixin, Base):
    __tablename__ = "order_lines"

    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[int | None] = mapped_column(
        ForeignKey("products.id", ondelete="SET NULL"), index=True
    )
    description: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[int] = mapped_column()
    unit_price: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    line_total: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    order: Mapped[Order] = relationship(back_populates="lines")
