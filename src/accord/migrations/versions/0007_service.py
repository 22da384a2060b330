"""service: tickets, messages, SLAs, routing, knowledge base, assistant, surveys

Revision ID: 0007_service
Revises: 0006_sales
Create Date: 2026-11-24 01:33:04.057875
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import accord.models.base

revision = '0007_service'
down_revision = '0006_sales'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC = accord.models.base.UTCDateTime(timezone=True)
JSONType = accord.models.base.JSONType


# Full-text search over knowledge-base articles. SQLite: an external-content FTS5 table kept in
# step by triggers (bm25 ranks, unicode61 folds case and diacritics). PostgreSQL: a stored
# generated tsvector (title weighted above body) in the article's language, with a GIN index.
_PG_CONFIG = (
    "CASE split_part(locale, '-', 1) "
    + " ".join(
        f"WHEN '{code}' THEN '{name}'::regconfig"
        for code, name in (
            ("en", "english"), ("de", "german"), ("fr", "french"), ("es", "spanish"),
            ("it", "italian"), ("nl", "dutch"), ("pt", "portuguese"), ("sv", "swedish"),
            ("da", "danish"), ("fi", "finnish"), ("no", "norwegian"), ("ru", "russian"),
        )
    )
    + " ELSE 'simple'::regconfig END"
)
SQLITE_FTS = (
    "CREATE VIRTUAL TABLE kb_articles_fts USING fts5(title, body, content='kb_articles', "
    "content_rowid='id', tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER kb_articles_fts_ai AFTER INSERT ON kb_articles BEGIN "
    "INSERT INTO kb_articles_fts(rowid, title, body) VALUES (new.id, new.title, new.body); END",
    "CREATE TRIGGER kb_articles_fts_ad AFTER DELETE ON kb_articles BEGIN "
    "INSERT INTO kb_articles_fts(kb_articles_fts, rowid, title, body) "
    "VALUES ('delete', old.id, old.title, old.body); END",
    "CREATE TRIGGER kb_articles_fts_au AFTER UPDATE OF title, body ON kb_articles BEGIN "
    "INSERT INTO kb_articles_fts(kb_articles_fts, rowid, title, body) "
    "VALUES ('delete', old.id, old.title, old.body); "
    "INSERT INTO kb_articles_fts(rowid, title, body) VALUES (new.id, new.title, new.body); END",
)
POSTGRES_FTS = (
    "ALTER TABLE kb_articles ADD COLUMN search_vector tsvector GENERATED ALWAYS AS ("
    f"setweight(to_tsvector({_PG_CONFIG}, coalesce(title, '')), 'A') || "
    f"setweight(to_tsvector({_PG_CONFIG}, coalesce(body, '')), 'B')) STORED",
    "CREATE INDEX ix_kb_articles_search_vector ON kb_articles USING gin (search_vector)",
)


def _create_search() -> None:
    dialect = op.get_bind().dialect.name
    for statement in SQLITE_FTS if dialect == "sqlite" else POSTGRES_FTS:
        op.execute(statement)


def _drop_search() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("ai", "ad", "au"):
            op.execute(f"DROP TRIGGER IF EXISTS kb_articles_fts_{trigger}")
        op.execute("DROP TABLE IF EXISTS kb_articles_fts")
    else:
        op.execute("DROP INDEX IF EXISTS ix_kb_articles_search_vector")
        op.execute("ALTER TABLE kb_articles DROP COLUMN IF EXISTS search_vector")


def upgrade() -> None:
    op.create_table('kb_categories',
    sa.Column('slug', sa.String(length=120), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('parent_id', BigId, nullable=True),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('created_at', UTC, nullable=False),
    sa.Column('updated_at', UTC, nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['parent_id'], ['kb_categories.id'], name=op.f('fk_kb_categories_parent_id_kb_categories'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_kb_categories')),
    sa.UniqueConstraint('slug', name=op.f('uq_kb_categories_slug'))
    )
    op.create_table('survey_schedules',
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('every_days', sa.Integer(), nullable=False),
    sa.Column('audience', JSONType, nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('last_run_at', UTC, nullable=True),
    sa.Column('next_run_at', UTC, nullable=True),
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('created_at', UTC, nullable=False),
    sa.Column('updated_at', UTC, nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_survey_schedules')),
    sa.UniqueConstraint('name', name=op.f('uq_survey_schedules_name'))
    )
    op.create_table('business_calendars',
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('team_id', BigId, nullable=True),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('hours', JSONType, nullable=False),
    sa.Column('holidays', JSONType, nullable=False),
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('created_at', UTC, nullable=False),
    sa.Column('updated_at', UTC, nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['team_id'], ['teams.id'], name=op.f('fk_business_calendars_team_id_teams'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_business_calendars')),
    sa.UniqueConstraint('name', name=op.f('uq_business_calendars_name')),
    sa.UniqueConstraint('team_id', name=op.f('uq_business_calendars_team_id'))
    )
    op.create_table('routing_rules',
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('category', sa.String(length=60), nullable=True),
    sa.Column('channel', sa.String(length=16), nullable=True),
    sa.Column('priority', sa.String(length=16), nullable=True),
    sa.Column('language', sa.String(length=8), nullable=True),
    sa.Column('team_id', BigId, nullable=True),
    sa.Column('required_skill', sa.String(length=60), nullable=True),
    sa.Column('method', sa.String(length=16), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('created_at', UTC, nullable=False),
    sa.Column('updated_at', UTC, nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['team_id'], ['teams.id'], name=op.f('fk_routing_rules_team_id_teams'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_routing_rules'))
    )
    op.create_table('sla_policies',
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('team_id', BigId, nullable=True),
    sa.Column('warning_ratio', sa.Float(), nullable=False),
    sa.Column('pause_on_hold', sa.Boolean(), nullable=False),
    sa.Column('is_default', sa.Boolean(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('created_at', UTC, nullable=False),
    sa.Column('updated_at', UTC, nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['team_id'], ['teams.id'], name=op.f('fk_sla_policies_team_id_teams'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sla_policies')),
    sa.UniqueConstraint('name', name=op.f('uq_sla_policies_name'))
    )
    op.create_table('canned_replies',
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('category', sa.String(length=60), nullable=True),
    sa.Column('team_id', BigId, nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_by', BigId, nullable=True),
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('created_at', UTC, nullable=False),
    sa.Column('updated_at', UTC, nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_canned_replies_created_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['team_id'], ['teams.id'], name=op.f('fk_canned_replies_team_id_teams'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_canned_replies'))
    )
    op.create_table('kb_articles',
    sa.Column('slug', sa.String(length=160), nullable=False),
    sa.Column('locale', sa.String(length=16), nullable=False),
    sa.Column('category_id', BigId, nullable=True),
    sa.Column('visibility', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('current_version', sa.Integer(), nullable=False),
    sa.Column('published_at', UTC, nullable=True),
    sa.Column('author_id', BigId, nullable=True),
    sa.Column('views', sa.Integer(), nullable=False),
    sa.Column('helpful_yes', sa.Integer(), nullable=False),
    sa.Column('helpful_no', sa.Integer(), nullable=False),
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('created_at', UTC, nullable=False),
    sa.Column('updated_at', UTC, nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], name=op.f('fk_kb_articles_author_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['category_id'], ['kb_categories.id'], name=op.f('fk_kb_articles_category_id_kb_categories'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_kb_articles')),
    sa.UniqueConstraint('slug', 'locale', name=op.f('uq_kb_articles_slug_locale'))
    )
    with op.batch_alter_table('kb_articles', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_kb_articles_category_id'), ['category_id'], unique=False)
        batch_op.create_index('ix_kb_articles_visible', ['status', 'visibility', 'locale'], unique=False)

    op.create_table('service_agents',
    sa.Column('user_id', BigId, nullable=False),
    sa.Column('skills', JSONType, nullable=False),
    sa.Column('languages', JSONType, nullable=False),
    sa.Column('available', sa.Boolean(), nullable=False),
    sa.Column('max_open_tickets', sa.Integer(), nullable=False),
    sa.Column('last_assigned_at', UTC, nullable=True),
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('created_at', UTC, nullable=False),
    sa.Column('updated_at', UTC, nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_service_agents_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_service_agents')),
    sa.UniqueConstraint('user_id', name=op.f('uq_service_agents_user_id'))
    )
    op.create_table('sla_targets',
    sa.Column('policy_id', BigId, nullable=False),
    sa.Column('priority', sa.String(length=16), nullable=False),
    sa.Column('tier', sa.String(length=20), nullable=True),
    sa.Column('first_response_minutes', sa.Integer(), nullable=True),
    sa.Column('next_response_minutes', sa.Integer(), nullable=True),
    sa.Column('resolution_minutes', sa.Integer(), nullable=True),
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.ForeignKeyConstraint(['policy_id'], ['sla_policies.id'], name=op.f('fk_sla_targets_policy_id_sla_policies'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sla_targets')),
    sa.UniqueConstraint('policy_id', 'priority', 'tier', name=op.f('uq_sla_targets_policy_id_priority_tier'))
    )
    op.create_table('kb_article_versions',
    sa.Column('article_id', BigId, nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('note', sa.String(length=300), nullable=True),
    sa.Column('author_id', BigId, nullable=True),
    sa.Column('created_at', UTC, nullable=False),
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.ForeignKeyConstraint(['article_id'], ['kb_articles.id'], name=op.f('fk_kb_article_versions_article_id_kb_articles'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], name=op.f('fk_kb_article_versions_author_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_kb_article_versions')),
    sa.UniqueConstraint('article_id', 'number', name=op.f('uq_kb_article_versions_article_id_number'))
    )
    op.create_table('tickets',
    sa.Column('subject', sa.String(length=300), nullable=False),
    sa.Column('customer_id', BigId, nullable=True),
    sa.Column('requester_email', sa.String(length=320), nullable=True),
    sa.Column('requester_name', sa.String(length=200), nullable=True),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('priority', sa.String(length=16), nullable=False),
    sa.Column('category', sa.String(length=60), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=True),
    sa.Column('tags', JSONType, nullable=False),
    sa.Column('assignee_id', BigId, nullable=True),
    sa.Column('team_id', BigId, nullable=True),
    sa.Column('routing_rule_id', BigId, nullable=True),
    sa.Column('sla_policy_id', BigId, nullable=True),
    sa.Column('sla_state', sa.String(length=16), nullable=False),
    sa.Column('first_response_due_at', UTC, nullable=True),
    sa.Column('next_response_due_at', UTC, nullable=True),
    sa.Column('resolution_due_at', UTC, nullable=True),
    sa.Column('due_at', UTC, nullable=True),
    sa.Column('warn_at', UTC, nullable=True),
    sa.Column('sla_checked_at', UTC, nullable=True),
    sa.Column('first_response_seconds', sa.Float(), nullable=True),
    sa.Column('resolution_seconds', sa.Float(), nullable=True),
    sa.Column('first_responded_at', UTC, nullable=True),
    sa.Column('last_customer_message_at', UTC, nullable=True),
    sa.Column('last_agent_reply_at', UTC, nullable=True),
    sa.Column('solved_at', UTC, nullable=True),
    sa.Column('closed_at', UTC, nullable=True),
    sa.Column('sentiment', sa.Float(), nullable=True),
    sa.Column('escalation_level', sa.Integer(), nullable=False),
    sa.Column('escalated_at', UTC, nullable=True),
    sa.Column('escalation_reason', sa.String(length=200), nullable=True),
    sa.Column('created_by', BigId, nullable=True),
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('created_at', UTC, nullable=False),
    sa.Column('updated_at', UTC, nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['assignee_id'], ['users.id'], name=op.f('fk_tickets_assignee_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_tickets_created_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_tickets_customer_id_customers'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['routing_rule_id'], ['routing_rules.id'], name=op.f('fk_tickets_routing_rule_id_routing_rules'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['sla_policy_id'], ['sla_policies.id'], name=op.f('fk_tickets_sla_policy_id_sla_policies'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['team_id'], ['teams.id'], name=op.f('fk_tickets_team_id_teams'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tickets'))
    )
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.create_index('ix_tickets_assignee_queue', ['assignee_id', 'status', 'due_at', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_tickets_category'), ['category'], unique=False)
        batch_op.create_index('ix_tickets_customer_created', ['customer_id', 'created_at', 'id'], unique=False)
        batch_op.create_index('ix_tickets_sla_state', ['sla_state', 'due_at'], unique=False)
        batch_op.create_index('ix_tickets_status_due', ['status', 'due_at', 'id'], unique=False)
        batch_op.create_index('ix_tickets_team_queue', ['team_id', 'status', 'due_at', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_tickets_warn_at'), ['warn_at'], unique=False)

    op.create_table('assistant_conversations',
    sa.Column('public_id', sa.String(length=64), nullable=False),
    sa.Column('customer_id', BigId, nullable=True),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('name', sa.String(length=200), nullable=True),
    sa.Column('locale', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('ticket_id', BigId, nullable=True),
    sa.Column('handed_off_at', UTC, nullable=True),
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('created_at', UTC, nullable=False),
    sa.Column('updated_at', UTC, nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_assistant_conversations_customer_id_customers'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_assistant_conversations_ticket_id_tickets'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_assistant_conversations')),
    sa.UniqueConstraint('public_id', name=op.f('uq_assistant_conversations_public_id'))
    )
    with op.batch_alter_table('assistant_conversations', schema=None) as batch_op:
        batch_op.create_index('ix_assistant_conversations_created', ['created_at', 'status'], unique=False)
        batch_op.create_index(batch_op.f('ix_assistant_conversations_customer_id'), ['customer_id'], unique=False)

    op.create_table('survey_invitations',
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('trigger', sa.String(length=16), nullable=False),
    sa.Column('customer_id', BigId, nullable=True),
    sa.Column('ticket_id', BigId, nullable=True),
    sa.Column('schedule_id', BigId, nullable=True),
    sa.Column('team_id', BigId, nullable=True),
    sa.Column('agent_id', BigId, nullable=True),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('sent_at', UTC, nullable=False),
    sa.Column('expires_at', UTC, nullable=False),
    sa.Column('used_at', UTC, nullable=True),
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['users.id'], name=op.f('fk_survey_invitations_agent_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_survey_invitations_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['schedule_id'], ['survey_schedules.id'], name=op.f('fk_survey_invitations_schedule_id_survey_schedules'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['team_id'], ['teams.id'], name=op.f('fk_survey_invitations_team_id_teams'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_survey_invitations_ticket_id_tickets'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_survey_invitations')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_survey_invitations_token_hash'))
    )
    with op.batch_alter_table('survey_invitations', schema=None) as batch_op:
        batch_op.create_index('ix_survey_invitations_customer', ['customer_id', 'sent_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_survey_invitations_ticket_id'), ['ticket_id'], unique=False)

    op.create_table('ticket_events',
    sa.Column('ticket_id', BigId, nullable=False),
    sa.Column('at', UTC, nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=True),
    sa.Column('priority', sa.String(length=16), nullable=True),
    sa.Column('actor_id', BigId, nullable=True),
    sa.Column('data', JSONType, nullable=False),
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_ticket_events_actor_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_ticket_events_ticket_id_tickets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ticket_events'))
    )
    with op.batch_alter_table('ticket_events', schema=None) as batch_op:
        batch_op.create_index('ix_ticket_events_ticket_time', ['ticket_id', 'at', 'id'], unique=False)

    op.create_table('ticket_messages',
    sa.Column('ticket_id', BigId, nullable=False),
    sa.Column('customer_id', BigId, nullable=True),
    sa.Column('visibility', sa.String(length=16), nullable=False),
    sa.Column('direction', sa.String(length=16), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('author_id', BigId, nullable=True),
    sa.Column('from_address', sa.String(length=320), nullable=True),
    sa.Column('subject', sa.String(length=300), nullable=True),
    sa.Column('body_text', sa.Text(), nullable=False),
    sa.Column('body_html', sa.Text(), nullable=True),
    sa.Column('language', sa.String(length=8), nullable=True),
    sa.Column('sentiment', sa.Float(), nullable=True),
    sa.Column('sentiment_label', sa.String(length=16), nullable=True),
    sa.Column('sentiment_model', sa.String(length=40), nullable=True),
    sa.Column('mail_message_id', sa.String(length=998), nullable=True),
    sa.Column('in_reply_to', sa.String(length=998), nullable=True),
    sa.Column('is_auto_reply', sa.Boolean(), nullable=False),
    sa.Column('interaction_id', BigId, nullable=True),
    sa.Column('created_at', UTC, nullable=False),
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], name=op.f('fk_ticket_messages_author_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_ticket_messages_customer_id_customers'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['interaction_id'], ['interactions.id'], name=op.f('fk_ticket_messages_interaction_id_interactions'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_ticket_messages_ticket_id_tickets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ticket_messages'))
    )
    with op.batch_alter_table('ticket_messages', schema=None) as batch_op:
        batch_op.create_index('ix_ticket_messages_customer_time', ['customer_id', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_ticket_messages_mail_message_id'), ['mail_message_id'], unique=False)
        batch_op.create_index('ix_ticket_messages_ticket_time', ['ticket_id', 'created_at', 'id'], unique=False)

    op.create_table('ticket_orders',
    sa.Column('ticket_id', BigId, nullable=False),
    sa.Column('order_id', BigId, nullable=False),
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_ticket_orders_order_id_orders'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_ticket_orders_ticket_id_tickets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ticket_orders')),
    sa.UniqueConstraint('ticket_id', 'order_id', name=op.f('uq_ticket_orders_ticket_id_order_id'))
    )
    with op.batch_alter_table('ticket_orders', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ticket_orders_order_id'), ['order_id'], unique=False)

    op.create_table('ticket_presence',
    sa.Column('ticket_id', BigId, nullable=False),
    sa.Column('user_id', BigId, nullable=False),
    sa.Column('seen_at', UTC, nullable=False),
    sa.Column('composing', sa.Boolean(), nullable=False),
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_ticket_presence_ticket_id_tickets'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_ticket_presence_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ticket_presence')),
    sa.UniqueConstraint('ticket_id', 'user_id', name=op.f('uq_ticket_presence_ticket_id_user_id'))
    )
    op.create_table('assistant_turns',
    sa.Column('conversation_id', BigId, nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('article_ids', JSONType, nullable=False),
    sa.Column('answered', sa.Boolean(), nullable=True),
    sa.Column('created_at', UTC, nullable=False),
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.ForeignKeyConstraint(['conversation_id'], ['assistant_conversations.id'], name=op.f('fk_assistant_turns_conversation_id_assistant_conversations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_assistant_turns'))
    )
    with op.batch_alter_table('assistant_turns', schema=None) as batch_op:
        batch_op.create_index('ix_assistant_turns_conversation', ['conversation_id', 'id'], unique=False)

    op.create_table('ticket_attachments',
    sa.Column('ticket_id', BigId, nullable=False),
    sa.Column('message_id', BigId, nullable=True),
    sa.Column('customer_id', BigId, nullable=True),
    sa.Column('storage_key', sa.String(length=80), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('content_type', sa.String(length=120), nullable=False),
    sa.Column('size_bytes', sa.BigInteger(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('created_at', UTC, nullable=False),
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.ForeignKeyConstraint(['message_id'], ['ticket_messages.id'], name=op.f('fk_ticket_attachments_message_id_ticket_messages'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_ticket_attachments_ticket_id_tickets'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_ticket_attachments_customer_id_customers'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ticket_attachments')),
    sa.UniqueConstraint('storage_key', name=op.f('uq_ticket_attachments_storage_key'))
    )
    with op.batch_alter_table('ticket_attachments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ticket_attachments_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ticket_attachments_message_id'), ['message_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ticket_attachments_ticket_id'), ['ticket_id'], unique=False)

    op.create_table('survey_responses',
    sa.Column('invitation_id', BigId, nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('score', sa.Integer(), nullable=False),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('customer_id', BigId, nullable=True),
    sa.Column('ticket_id', BigId, nullable=True),
    sa.Column('team_id', BigId, nullable=True),
    sa.Column('agent_id', BigId, nullable=True),
    sa.Column('follow_up_activity_id', BigId, nullable=True),
    sa.Column('responded_at', UTC, nullable=False),
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['users.id'], name=op.f('fk_survey_responses_agent_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_survey_responses_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['follow_up_activity_id'], ['activities.id'], name=op.f('fk_survey_responses_follow_up_activity_id_activities'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['invitation_id'], ['survey_invitations.id'], name=op.f('fk_survey_responses_invitation_id_survey_invitations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['team_id'], ['teams.id'], name=op.f('fk_survey_responses_team_id_teams'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_survey_responses_ticket_id_tickets'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_survey_responses')),
    sa.UniqueConstraint('invitation_id', name=op.f('uq_survey_responses_invitation_id'))
    )
    with op.batch_alter_table('survey_responses', schema=None) as batch_op:
        batch_op.create_index('ix_survey_responses_customer', ['customer_id', 'responded_at'], unique=False)
        batch_op.create_index('ix_survey_responses_kind_time', ['kind', 'responded_at'], unique=False)
    _create_search()


def downgrade() -> None:
    _drop_search()
    with op.batch_alter_table('survey_responses', schema=None) as batch_op:
        batch_op.drop_index('ix_survey_responses_kind_time')
        batch_op.drop_index('ix_survey_responses_customer')

    op.drop_table('survey_responses')
    with op.batch_alter_table('ticket_attachments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ticket_attachments_ticket_id'))
        batch_op.drop_index(batch_op.f('ix_ticket_attachments_message_id'))
        batch_op.drop_index(batch_op.f('ix_ticket_attachments_customer_id'))

    op.drop_table('ticket_attachments')
    with op.batch_alter_table('assistant_turns', schema=None) as batch_op:
        batch_op.drop_index('ix_assistant_turns_conversation')

    op.drop_table('assistant_turns')
    op.drop_table('ticket_presence')
    with op.batch_alter_table('ticket_orders', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ticket_orders_order_id'))

    op.drop_table('ticket_orders')
    with op.batch_alter_table('ticket_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_ticket_messages_ticket_time')
        batch_op.drop_index(batch_op.f('ix_ticket_messages_mail_message_id'))
        batch_op.drop_index('ix_ticket_messages_customer_time')

    op.drop_table('ticket_messages')
    with op.batch_alter_table('ticket_events', schema=None) as batch_op:
        batch_op.drop_index('ix_ticket_events_ticket_time')

    op.drop_table('ticket_events')
    with op.batch_alter_table('survey_invitations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_survey_invitations_ticket_id'))
        batch_op.drop_index('ix_survey_invitations_customer')

    op.drop_table('survey_invitations')
    with op.batch_alter_table('assistant_conversations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_assistant_conversations_customer_id'))
        batch_op.drop_index('ix_assistant_conversations_created')

    op.drop_table('assistant_conversations')
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tickets_warn_at'))
        batch_op.drop_index('ix_tickets_team_queue')
        batch_op.drop_index('ix_tickets_status_due')
        batch_op.drop_index('ix_tickets_sla_state')
        batch_op.drop_index('ix_tickets_customer_created')
        batch_op.drop_index(batch_op.f('ix_tickets_category'))
        batch_op.drop_index('ix_tickets_assignee_queue')

    op.drop_table('tickets')
    op.drop_table('kb_article_versions')
    op.drop_table('sla_targets')
    op.drop_table('service_agents')
    with op.batch_alter_table('kb_articles', schema=None) as batch_op:
        batch_op.drop_index('ix_kb_articles_visible')
        batch_op.drop_index(batch_op.f('ix_kb_articles_category_id'))

    op.drop_table('kb_articles')
    op.drop_table('canned_replies')
    op.drop_table('sla_policies')
    op.drop_table('routing_rules')
    op.drop_table('business_calendars')
    op.drop_table('survey_schedules')
    op.drop_table('kb_categories')
