"""sales: leads, forms, engagement, consent records, assignment rules, lead score models,
pipelines and stages, deals with lines and stage history, activities, notifications

Revision ID: 0006_sales
Revises: 0005_recommendations
Create Date: 2026-11-23 22:59:24.333915
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import accord.models.base

revision = '0006_sales'
down_revision = '0005_recommendations'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC = accord.models.base.UTCDateTime(timezone=True)
JSONType = accord.models.base.JSONType


def upgrade() -> None:
    op.create_table('lead_score_models',
    sa.Column('trained_at', UTC, nullable=False),
    sa.Column('algorithm', sa.String(length=40), nullable=False),
    sa.Column('features', JSONType, nullable=False),
    sa.Column('params', JSONType, nullable=False),
    sa.Column('metrics', JSONType, nullable=False),
    sa.Column('n_samples', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lead_score_models'))
    )
    op.create_table('pipelines',
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('created_at', UTC, nullable=False),
    sa.Column('updated_at', UTC, nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pipelines')),
    sa.UniqueConstraint('name', name=op.f('uq_pipelines_name'))
    )
    op.create_table('lead_forms',
    sa.Column('slug', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('fields', JSONType, nullable=False),
    sa.Column('required', JSONType, nullable=False),
    sa.Column('consent_purpose', sa.String(length=64), nullable=True),
    sa.Column('consent_wording', sa.Text(), nullable=True),
    sa.Column('consent_required', sa.Boolean(), nullable=False),
    sa.Column('engagement_kind', sa.String(length=40), nullable=False),
    sa.Column('team_id', BigId, nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('created_at', UTC, nullable=False),
    sa.Column('updated_at', UTC, nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['team_id'], ['teams.id'], name=op.f('fk_lead_forms_team_id_teams'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lead_forms')),
    sa.UniqueConstraint('slug', name=op.f('uq_lead_forms_slug'))
    )
    op.create_table('pipeline_stages',
    sa.Column('pipeline_id', BigId, nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('probability', sa.Integer(), nullable=False),
    sa.Column('outcome', sa.String(length=8), nullable=False),
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('created_at', UTC, nullable=False),
    sa.Column('updated_at', UTC, nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['pipeline_id'], ['pipelines.id'], name=op.f('fk_pipeline_stages_pipeline_id_pipelines'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pipeline_stages')),
    sa.UniqueConstraint('pipeline_id', 'name', name=op.f('uq_pipeline_stages_pipeline_id_name'))
    )
    op.create_table('assignment_rules',
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('conditions', JSONType, nullable=False),
    sa.Column('method', sa.String(length=16), nullable=False),
    sa.Column('team_id', BigId, nullable=True),
    sa.Column('owner_id', BigId, nullable=True),
    sa.Column('cursor_user_id', BigId, nullable=True),
    sa.Column('first_touch_hours', sa.Integer(), nullable=False),
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('created_at', UTC, nullable=False),
    sa.Column('updated_at', UTC, nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['cursor_user_id'], ['users.id'], name=op.f('fk_assignment_rules_cursor_user_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_assignment_rules_owner_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['team_id'], ['teams.id'], name=op.f('fk_assignment_rules_team_id_teams'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_assignment_rules'))
    )
    op.create_table('notifications',
    sa.Column('user_id', BigId, nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('link', sa.String(length=300), nullable=True),
    sa.Column('created_at', UTC, nullable=False),
    sa.Column('read_at', UTC, nullable=True),
    sa.Column('dedupe_key', sa.String(length=128), nullable=True),
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_notifications_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notifications')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_notifications_dedupe_key'))
    )
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.create_index('ix_notifications_user_read', ['user_id', 'read_at', 'id'], unique=False)

    op.create_table('leads',
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('disqualify_reason', sa.String(length=20), nullable=True),
    sa.Column('first_name', sa.String(length=100), nullable=True),
    sa.Column('last_name', sa.String(length=100), nullable=True),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('email_normalized', sa.String(length=320), nullable=True),
    sa.Column('phone', sa.String(length=40), nullable=True),
    sa.Column('phone_e164', sa.String(length=20), nullable=True),
    sa.Column('company', sa.String(length=200), nullable=True),
    sa.Column('job_title', sa.String(length=200), nullable=True),
    sa.Column('website', sa.String(length=300), nullable=True),
    sa.Column('industry', sa.String(length=100), nullable=True),
    sa.Column('employees', sa.Integer(), nullable=True),
    sa.Column('annual_revenue', sa.Numeric(precision=18, scale=2), nullable=True),
    sa.Column('country', sa.String(length=2), nullable=True),
    sa.Column('preferred_language', sa.String(length=8), nullable=True),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('source_detail', sa.String(length=200), nullable=True),
    sa.Column('budget', sa.Numeric(precision=18, scale=2), nullable=True),
    sa.Column('budget_currency', sa.String(length=3), nullable=True),
    sa.Column('authority', sa.String(length=16), nullable=True),
    sa.Column('need', sa.Text(), nullable=True),
    sa.Column('timeline', sa.String(length=16), nullable=True),
    sa.Column('owner_id', BigId, nullable=True),
    sa.Column('team_id', BigId, nullable=True),
    sa.Column('assignment_rule_id', BigId, nullable=True),
    sa.Column('assigned_at', UTC, nullable=True),
    sa.Column('first_touch_due_at', UTC, nullable=True),
    sa.Column('first_touched_at', UTC, nullable=True),
    sa.Column('last_engaged_at', UTC, nullable=True),
    sa.Column('fit_score', sa.Integer(), nullable=False),
    sa.Column('engagement_score', sa.Integer(), nullable=False),
    sa.Column('predicted_score', sa.Integer(), nullable=True),
    sa.Column('score', sa.Integer(), nullable=False),
    sa.Column('score_factors', JSONType, nullable=False),
    sa.Column('scored_at', UTC, nullable=True),
    sa.Column('customer_id', BigId, nullable=True),
    sa.Column('account_id', BigId, nullable=True),
    sa.Column('contact_id', BigId, nullable=True),
    sa.Column('converted_at', UTC, nullable=True),
    sa.Column('converted_by', BigId, nullable=True),
    sa.Column('created_by', BigId, nullable=True),
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('created_at', UTC, nullable=False),
    sa.Column('updated_at', UTC, nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_leads_account_id_accounts'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['assignment_rule_id'], ['assignment_rules.id'], name=op.f('fk_leads_assignment_rule_id_assignment_rules'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_leads_contact_id_contacts'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['converted_by'], ['users.id'], name=op.f('fk_leads_converted_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_leads_created_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_leads_customer_id_customers'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_leads_owner_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['team_id'], ['teams.id'], name=op.f('fk_leads_team_id_teams'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_leads'))
    )
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_leads_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_leads_country'), ['country'], unique=False)
        batch_op.create_index('ix_leads_created_at_id', ['created_at', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_leads_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_leads_email_normalized'), ['email_normalized'], unique=False)
        batch_op.create_index(batch_op.f('ix_leads_first_touch_due_at'), ['first_touch_due_at'], unique=False)
        batch_op.create_index('ix_leads_owner_status_id', ['owner_id', 'status', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_leads_phone_e164'), ['phone_e164'], unique=False)
        batch_op.create_index('ix_leads_score_id', ['score', 'id'], unique=False)
        batch_op.create_index('ix_leads_status_id', ['status', 'id'], unique=False)
        batch_op.create_index('ix_leads_team_status_id', ['team_id', 'status', 'id'], unique=False)

    op.create_table('consent_records',
    sa.Column('customer_id', BigId, nullable=True),
    sa.Column('lead_id', BigId, nullable=True),
    sa.Column('purpose', sa.String(length=64), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=True),
    sa.Column('granted', sa.Boolean(), nullable=False),
    sa.Column('wording', sa.Text(), nullable=False),
    sa.Column('source', sa.String(length=120), nullable=False),
    sa.Column('actor_id', BigId, nullable=True),
    sa.Column('recorded_at', UTC, nullable=False),
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_consent_records_actor_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_consent_records_customer_id_customers'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], name=op.f('fk_consent_records_lead_id_leads'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consent_records'))
    )
    with op.batch_alter_table('consent_records', schema=None) as batch_op:
        batch_op.create_index('ix_consent_records_customer', ['customer_id', 'purpose', 'recorded_at'], unique=False)
        batch_op.create_index('ix_consent_records_lead', ['lead_id', 'purpose', 'recorded_at'], unique=False)

    op.create_table('deals',
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('pipeline_id', BigId, nullable=False),
    sa.Column('stage_id', BigId, nullable=False),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('amount', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('probability', sa.Integer(), nullable=True),
    sa.Column('expected_close_date', sa.Date(), nullable=True),
    sa.Column('forecast_category', sa.String(length=12), nullable=False),
    sa.Column('competitors', JSONType, nullable=False),
    sa.Column('lost_reason', sa.String(length=20), nullable=True),
    sa.Column('lost_note', sa.Text(), nullable=True),
    sa.Column('closed_at', UTC, nullable=True),
    sa.Column('stage_entered_at', UTC, nullable=False),
    sa.Column('source', sa.String(length=24), nullable=False),
    sa.Column('customer_id', BigId, nullable=True),
    sa.Column('account_id', BigId, nullable=True),
    sa.Column('contact_id', BigId, nullable=True),
    sa.Column('lead_id', BigId, nullable=True),
    sa.Column('owner_id', BigId, nullable=True),
    sa.Column('team_id', BigId, nullable=True),
    sa.Column('created_by', BigId, nullable=True),
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('created_at', UTC, nullable=False),
    sa.Column('updated_at', UTC, nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_deals_account_id_accounts'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_deals_contact_id_contacts'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_deals_created_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_deals_customer_id_customers'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], name=op.f('fk_deals_lead_id_leads'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_deals_owner_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['pipeline_id'], ['pipelines.id'], name=op.f('fk_deals_pipeline_id_pipelines'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['stage_id'], ['pipeline_stages.id'], name=op.f('fk_deals_stage_id_pipeline_stages'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['team_id'], ['teams.id'], name=op.f('fk_deals_team_id_teams'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deals'))
    )
    with op.batch_alter_table('deals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_deals_account_id'), ['account_id'], unique=False)
        batch_op.create_index('ix_deals_closed_at', ['closed_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_deals_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_deals_lead_id'), ['lead_id'], unique=False)
        batch_op.create_index('ix_deals_owner_status_close', ['owner_id', 'status', 'expected_close_date'], unique=False)
        batch_op.create_index('ix_deals_pipeline_status_close', ['pipeline_id', 'status', 'expected_close_date'], unique=False)
        batch_op.create_index('ix_deals_stage_status_id', ['stage_id', 'status', 'id'], unique=False)
        batch_op.create_index('ix_deals_board_totals', ['pipeline_id', 'stage_id', 'currency', 'probability', 'amount', 'owner_id', 'team_id', 'expected_close_date'], unique=False)
        batch_op.create_index('ix_deals_team_status_close', ['team_id', 'status', 'expected_close_date'], unique=False)

    op.create_table('lead_engagements',
    sa.Column('lead_id', BigId, nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('occurred_at', UTC, nullable=False),
    sa.Column('detail', JSONType, nullable=False),
    sa.Column('dedupe_key', sa.String(length=128), nullable=True),
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], name=op.f('fk_lead_engagements_lead_id_leads'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lead_engagements')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_lead_engagements_dedupe_key'))
    )
    with op.batch_alter_table('lead_engagements', schema=None) as batch_op:
        batch_op.create_index('ix_lead_engagements_lead_time', ['lead_id', 'occurred_at'], unique=False)

    op.create_table('activities',
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('subject', sa.String(length=300), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('due_at', UTC, nullable=True),
    sa.Column('remind_at', UTC, nullable=True),
    sa.Column('reminded_at', UTC, nullable=True),
    sa.Column('done_at', UTC, nullable=True),
    sa.Column('duration_minutes', sa.Integer(), nullable=True),
    sa.Column('direction', sa.String(length=16), nullable=True),
    sa.Column('outcome', sa.String(length=40), nullable=True),
    sa.Column('owner_id', BigId, nullable=True),
    sa.Column('team_id', BigId, nullable=True),
    sa.Column('lead_id', BigId, nullable=True),
    sa.Column('customer_id', BigId, nullable=True),
    sa.Column('account_id', BigId, nullable=True),
    sa.Column('deal_id', BigId, nullable=True),
    sa.Column('interaction_id', BigId, nullable=True),
    sa.Column('created_by', BigId, nullable=True),
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('created_at', UTC, nullable=False),
    sa.Column('updated_at', UTC, nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_activities_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_activities_created_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_activities_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['deal_id'], ['deals.id'], name=op.f('fk_activities_deal_id_deals'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['interaction_id'], ['interactions.id'], name=op.f('fk_activities_interaction_id_interactions'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], name=op.f('fk_activities_lead_id_leads'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_activities_owner_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['team_id'], ['teams.id'], name=op.f('fk_activities_team_id_teams'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_activities'))
    )
    with op.batch_alter_table('activities', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_activities_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_activities_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_activities_deal_id'), ['deal_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_activities_lead_id'), ['lead_id'], unique=False)
        batch_op.create_index('ix_activities_owner_status_due', ['owner_id', 'status', 'due_at'], unique=False)
        batch_op.create_index('ix_activities_reminders', ['status', 'remind_at'], unique=False)
        batch_op.create_index('ix_activities_team_status_due', ['team_id', 'status', 'due_at'], unique=False)

    op.create_table('deal_lines',
    sa.Column('deal_id', BigId, nullable=False),
    sa.Column('product_id', BigId, nullable=True),
    sa.Column('description', sa.String(length=200), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('unit_price', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('discount_percent', sa.Numeric(precision=5, scale=2), nullable=False),
    sa.Column('line_total', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.ForeignKeyConstraint(['deal_id'], ['deals.id'], name=op.f('fk_deal_lines_deal_id_deals'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_deal_lines_product_id_products'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deal_lines'))
    )
    with op.batch_alter_table('deal_lines', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_deal_lines_deal_id'), ['deal_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_deal_lines_product_id'), ['product_id'], unique=False)

    op.create_table('deal_stage_changes',
    sa.Column('deal_id', BigId, nullable=False),
    sa.Column('from_stage_id', BigId, nullable=True),
    sa.Column('to_stage_id', BigId, nullable=False),
    sa.Column('amount', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('changed_at', UTC, nullable=False),
    sa.Column('changed_by', BigId, nullable=True),
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.ForeignKeyConstraint(['changed_by'], ['users.id'], name=op.f('fk_deal_stage_changes_changed_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['deal_id'], ['deals.id'], name=op.f('fk_deal_stage_changes_deal_id_deals'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['from_stage_id'], ['pipeline_stages.id'], name=op.f('fk_deal_stage_changes_from_stage_id_pipeline_stages'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['to_stage_id'], ['pipeline_stages.id'], name=op.f('fk_deal_stage_changes_to_stage_id_pipeline_stages'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deal_stage_changes'))
    )
    with op.batch_alter_table('deal_stage_changes', schema=None) as batch_op:
        batch_op.create_index('ix_deal_stage_changes_deal_time', ['deal_id', 'changed_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('deal_stage_changes', schema=None) as batch_op:
        batch_op.drop_index('ix_deal_stage_changes_deal_time')

    op.drop_table('deal_stage_changes')
    with op.batch_alter_table('deal_lines', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_deal_lines_product_id'))
        batch_op.drop_index(batch_op.f('ix_deal_lines_deal_id'))

    op.drop_table('deal_lines')
    with op.batch_alter_table('activities', schema=None) as batch_op:
        batch_op.drop_index('ix_activities_team_status_due')
        batch_op.drop_index('ix_activities_reminders')
        batch_op.drop_index('ix_activities_owner_status_due')
        batch_op.drop_index(batch_op.f('ix_activities_lead_id'))
        batch_op.drop_index(batch_op.f('ix_activities_deal_id'))
        batch_op.drop_index(batch_op.f('ix_activities_customer_id'))
        batch_op.drop_index(batch_op.f('ix_activities_account_id'))

    op.drop_table('activities')
    with op.batch_alter_table('lead_engagements', schema=None) as batch_op:
        batch_op.drop_index('ix_lead_engagements_lead_time')

    op.drop_table('lead_engagements')
    with op.batch_alter_table('deals', schema=None) as batch_op:
        batch_op.drop_index('ix_deals_team_status_close')
        batch_op.drop_index('ix_deals_stage_status_id')
        batch_op.drop_index('ix_deals_pipeline_status_close')
        batch_op.drop_index('ix_deals_owner_status_close')
        batch_op.drop_index(batch_op.f('ix_deals_lead_id'))
        batch_op.drop_index(batch_op.f('ix_deals_customer_id'))
        batch_op.drop_index('ix_deals_closed_at')
        batch_op.drop_index(batch_op.f('ix_deals_account_id'))

    op.drop_table('deals')
    with op.batch_alter_table('consent_records', schema=None) as batch_op:
        batch_op.drop_index('ix_consent_records_lead')
        batch_op.drop_index('ix_consent_records_customer')

    op.drop_table('consent_records')
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.drop_index('ix_leads_team_status_id')
        batch_op.drop_index('ix_leads_status_id')
        batch_op.drop_index('ix_leads_score_id')
        batch_op.drop_index(batch_op.f('ix_leads_phone_e164'))
        batch_op.drop_index('ix_leads_owner_status_id')
        batch_op.drop_index(batch_op.f('ix_leads_first_touch_due_at'))
        batch_op.drop_index(batch_op.f('ix_leads_email_normalized'))
        batch_op.drop_index(batch_op.f('ix_leads_customer_id'))
        batch_op.drop_index('ix_leads_created_at_id')
        batch_op.drop_index(batch_op.f('ix_leads_country'))
        batch_op.drop_index(batch_op.f('ix_leads_account_id'))

    op.drop_table('leads')
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_index('ix_notifications_user_read')

    op.drop_table('notifications')
    op.drop_table('assignment_rules')
    op.drop_table('pipeline_stages')
    op.drop_table('lead_forms')
    op.drop_table('pipelines')
    op.drop_table('lead_score_models')
