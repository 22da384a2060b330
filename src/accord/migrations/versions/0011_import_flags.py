"""imports: flagged values in the report, and profiles remember the settings they came from

`import_flags` keeps, per import, every value that was left out of a profile (line, field,
reason, the value as written) and `import_runs.flagged` counts the rows that had any: the
report lists them as it lists rejected rows. `source_profiles.standardised_with` is the
fingerprint of the mapping and settings (country, date order) a profile's values were
standardised with, so a file re-imported with a corrected mapping standardises the raw records
already kept again instead of reporting them unchanged.

Revision ID: 0011_import_flags
Revises: 0010_audit_changes_index
Create Date: 2026-11-26 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0011_import_flags'
down_revision = '0010_audit_changes_index'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'import_flags',
        sa.Column('import_id', _ID, nullable=False),
        sa.Column('line_no', sa.Integer(), nullable=False),
        sa.Column('field', sa.String(length=120), nullable=False),
        sa.Column('reason', sa.String(length=500), nullable=False),
        sa.Column('value', sa.Text(), nullable=False),
        sa.Column('id', _ID, autoincrement=True, nullable=False),
        sa.ForeignKeyConstraint(['import_id'], ['import_runs.id'],
                                name=op.f('fk_import_flags_import_id_import_runs'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_import_flags')),
        sa.UniqueConstraint('import_id', 'line_no', 'field',
                            name=op.f('uq_import_flags_import_id_line_no_field')),
    )
    with op.batch_alter_table('import_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('flagged', sa.Integer(), nullable=False,
                                      server_default='0'))
    with op.batch_alter_table('source_profiles', schema=None) as batch_op:
        batch_op.add_column(sa.Column('standardised_with', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('source_profiles', schema=None) as batch_op:
        batch_op.drop_column('standardised_with')
    with op.batch_alter_table('import_runs', schema=None) as batch_op:
        batch_op.drop_column('flagged')
    op.drop_table('import_flags')
