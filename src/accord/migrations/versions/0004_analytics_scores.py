"""analytics scores: customer_scores (RFM, CLV, churn risk, value tier) and score_models

Revision ID: 0004_analytics_scores
Revises: 0003_analytics
Create Date: 2026-11-23 20:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql, sqlite

import accord.models.base

revision = "0004_analytics_scores"
down_revision = "0003_analytics"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSONType = (
    sa.JSON()
    .with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
    .with_variant(sqlite.JSON(), "sqlite")
)
UTC = accord.models.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "customer_scores",
        sa.Column("customer_id", BigId, nullable=False),
        sa.Column("recency_days", sa.Float(), nullable=True),
        sa.Column("frequency", sa.Integer(), nullable=True),
        sa.Column("monetary", sa.Numeric(precision=18, scale=2), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("rfm_r", sa.SmallInteger(), nullable=True),
        sa.Column("rfm_f", sa.SmallInteger(), nullable=True),
        sa.Column("rfm_m", sa.SmallInteger(), nullable=True),
        sa.Column("rfm_segment", sa.String(length=32), nullable=True),
        sa.Column("clv_12m", sa.Numeric(precision=18, scale=2), nullable=True),
        sa.Column("expected_purchases_12m", sa.Float(), nullable=True),
        sa.Column("p_alive", sa.Float(), nullable=True),
        sa.Column("churn_risk", sa.Float(), nullable=True),
        sa.Column("churn_reasons", JSONType, nullable=False),
        sa.Column("value_tier", sa.String(length=16), nullable=True),
        sa.Column("at_risk_valuable", sa.Boolean(), nullable=False),
        sa.Column("missing", JSONType, nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("computed_at", UTC, nullable=False),
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"],
            name=op.f("fk_customer_scores_customer_id_customers"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_scores")),
        sa.UniqueConstraint("customer_id", name=op.f("uq_customer_scores_customer_id")),
    )
    with op.batch_alter_table("customer_scores", schema=None) as batch_op:
        batch_op.create_index("ix_customer_scores_segment_customer",
                              ["rfm_segment", "customer_id"], unique=False)
        batch_op.create_index("ix_customer_scores_tier_customer",
                              ["value_tier", "customer_id"], unique=False)
        batch_op.create_index("ix_customer_scores_churn_customer",
                              ["churn_risk", "customer_id"], unique=False)
        batch_op.create_index("ix_customer_scores_clv_customer",
                              ["clv_12m", "customer_id"], unique=False)
        batch_op.create_index("ix_customer_scores_at_risk_customer",
                              ["at_risk_valuable", "customer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_customer_scores_run_id"), ["run_id"], unique=False)
    op.create_table(
        "score_models",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("card", JSONType, nullable=False),
        sa.Column("data_rows", sa.Integer(), nullable=False),
        sa.Column("trained_at", UTC, nullable=False),
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_score_models")),
        sa.UniqueConstraint("kind", "version", name=op.f("uq_score_models_kind_version")),
    )
    with op.batch_alter_table("score_models", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_score_models_run_id"), ["run_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("score_models", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_score_models_run_id"))
    op.drop_table("score_models")
    with op.batch_alter_table("customer_scores", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_scores_run_id"))
        batch_op.drop_index("ix_customer_scores_at_risk_customer")
        batch_op.drop_index("ix_customer_scores_clv_customer")
        batch_op.drop_index("ix_customer_scores_churn_customer")
        batch_op.drop_index("ix_customer_scores_tier_customer")
        batch_op.drop_index("ix_customer_scores_segment_customer")
    op.drop_table("customer_scores")
