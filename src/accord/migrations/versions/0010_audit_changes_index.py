"""audit trail: the index by resource and record covers changes only, not reads

Reads of personal data are most of the trail (every list page, profile and 360 view appends
one), and their record ids are random: indexing them put each read's entry at a random leaf of
a B-tree as large as the trail, a page written per entry in the batch's commit and again at the
next checkpoint, which on SQLite runs on the serving loop. The index now holds the entries that
change something (`action <> 'read'`); a record's reads are found by scanning the trail newest
first, a bounded stretch per page (`accord.access.audit.entries`).

Revision ID: 0010_audit_changes_index
Revises: 0009_audit_hash_not_indexed
Create Date: 2026-11-24 23:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010_audit_changes_index'
down_revision = '0009_audit_hash_not_indexed'
branch_labels = None
depends_on = None

CHANGES = "action <> 'read'"


def upgrade() -> None:
    op.drop_index("ix_audit_log_resource_record", table_name="audit_log")
    op.create_index("ix_audit_log_changes", "audit_log", ["resource", "record_id"], unique=False,
                    postgresql_where=sa.text(CHANGES), sqlite_where=sa.text(CHANGES))


def downgrade() -> None:
    op.drop_index("ix_audit_log_changes", table_name="audit_log")
    op.create_index("ix_audit_log_resource_record", "audit_log", ["resource", "record_id"],
                    unique=False)
