"""ticket queues: partial indexes over open tickets by team and by assignee, sorted by due

Revision ID: 0008_ticket_queue_indexes
Revises: 0007_service
Create Date: 2026-11-24 02:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008_ticket_queue_indexes'
down_revision = '0007_service'
branch_labels = None
depends_on = None

OPEN = "status IN ('new', 'open', 'pending_customer', 'on_hold')"


def upgrade() -> None:
    for name, column in (("ix_tickets_open_team_due", "team_id"),
                         ("ix_tickets_open_assignee_due", "assignee_id")):
        op.create_index(name, "tickets", [column, "due_at", "id"], unique=False,
                        postgresql_where=sa.text(OPEN), sqlite_where=sa.text(OPEN))


def downgrade() -> None:
    op.drop_index("ix_tickets_open_assignee_due", table_name="tickets")
    op.drop_index("ix_tickets_open_team_due", table_name="tickets")
