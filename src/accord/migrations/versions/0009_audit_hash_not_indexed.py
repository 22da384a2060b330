"""audit trail: no unique index on each entry's hash

An entry's hash is a SHA-256, so its unique index put every audit entry (every write, every read
of personal data) at a random place of a B-tree as large as the trail: one more page written per
entry, in the commit and again in the checkpoint. Nothing looks entries up by hash, and the chain
itself is what detects an edited, removed or duplicated row (`accord audit verify`). On SQLite
the table is rebuilt (copied) once.

Revision ID: 0009_audit_hash_not_indexed
Revises: 0008_ticket_queue_indexes
Create Date: 2026-11-24 21:40:00
"""

from __future__ import annotations

from alembic import op

revision = '0009_audit_hash_not_indexed'
down_revision = '0008_ticket_queue_indexes'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_constraint('uq_audit_log_hash', type_='unique')


def downgrade() -> None:
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_unique_constraint('uq_audit_log_hash', ['hash'])
