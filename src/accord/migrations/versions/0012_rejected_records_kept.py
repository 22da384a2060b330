"""source records: rejected records are kept raw too, with the reason

A record ingestion refused (an order with a total that is not an amount, a profile with nothing
usable) is now kept as a `source_records` row of status `rejected`, with why in the new
`reason` column: every record that arrives is kept raw, accepted or not. Its content hash is
marked (`r:`) so that a later accepted version of the same content is a row of its own.

Revision ID: 0012_rejected_records_kept
Revises: 0011_import_flags
Create Date: 2026-11-26 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0012_rejected_records_kept'
down_revision = '0011_import_flags'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('source_records') as batch:
        batch.add_column(sa.Column('reason', sa.String(length=500), nullable=True))


def downgrade() -> None:
    op.execute("DELETE FROM source_records WHERE status = 'rejected'")
    with op.batch_alter_table('source_records') as batch:
        batch.drop_column('reason')
