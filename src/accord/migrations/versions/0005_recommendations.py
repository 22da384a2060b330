"""recommendations: customer_recommendations (personal suggestions) and product_associations
(bought together)

Revision ID: 0005_recommendations
Revises: 0004_analytics_scores
Create Date: 2026-11-23 21:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import accord.models.base

revision = "0005_recommendations"
down_revision = "0004_analytics_scores"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC = accord.models.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "customer_recommendations",
        sa.Column("customer_id", BigId, nullable=False),
        sa.Column("rank", sa.SmallInteger(), nullable=False),
        sa.Column("product_id", BigId, nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("because_product_id_1", BigId, nullable=True),
        sa.Column("because_product_id_2", BigId, nullable=True),
        sa.Column("model", sa.String(length=32), nullable=False),
        sa.Column("generated_at", UTC, nullable=False),
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"],
            name=op.f("fk_customer_recommendations_customer_id_customers"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"],
            name=op.f("fk_customer_recommendations_product_id_products"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_recommendations")),
    )
    with op.batch_alter_table("customer_recommendations", schema=None) as batch_op:
        batch_op.create_index("ix_customer_recommendations_customer_rank",
                              ["customer_id", "rank"], unique=False)
    op.create_table(
        "product_associations",
        sa.Column("product_id", BigId, nullable=False),
        sa.Column("other_product_id", BigId, nullable=False),
        sa.Column("rank", sa.SmallInteger(), nullable=False),
        sa.Column("orders_together", sa.Integer(), nullable=False),
        sa.Column("support", sa.Float(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("lift", sa.Float(), nullable=False),
        sa.Column("generated_at", UTC, nullable=False),
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"],
            name=op.f("fk_product_associations_product_id_products"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["other_product_id"], ["products.id"],
            name=op.f("fk_product_associations_other_product_id_products"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_product_associations")),
    )
    with op.batch_alter_table("product_associations", schema=None) as batch_op:
        batch_op.create_index("ix_product_associations_product_rank",
                              ["product_id", "rank"], unique=False)
        batch_op.create_index(batch_op.f("ix_product_associations_other_product_id"),
                              ["other_product_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("product_associations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_product_associations_other_product_id"))
        batch_op.drop_index("ix_product_associations_product_rank")
    op.drop_table("product_associations")
    with op.batch_alter_table("customer_recommendations", schema=None) as batch_op:
        batch_op.drop_index("ix_customer_recommendations_customer_rank")
    op.drop_table("customer_recommendations")
