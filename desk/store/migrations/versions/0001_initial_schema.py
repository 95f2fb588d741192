"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-23 09:06:08.977778
"""
from alembic import op
import sqlalchemy as sa
import desk.store.models


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('mentions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('platform', sa.String(length=20), nullable=False),
    sa.Column('source', sa.String(length=100), nullable=False),
    sa.Column('external_id', sa.String(length=200), nullable=False),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('author', sa.String(length=200), nullable=False),
    sa.Column('author_id', sa.String(length=200), nullable=True),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('posted_at', desk.store.models.UtcDateTime(timezone=True), nullable=False),
    sa.Column('detected_at', desk.store.models.UtcDateTime(timezone=True), nullable=False),
    sa.Column('thread_id', sa.String(length=200), nullable=True),
    sa.Column('parent_id', sa.String(length=200), nullable=True),
    sa.Column('matched_terms', sa.JSON(), nullable=False),
    sa.Column('extra', sa.JSON(), nullable=False),
    sa.Column('classified', sa.Boolean(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('platform', 'external_id', name='uq_mentions_platform_external_id')
    )
    with op.batch_alter_table('mentions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mentions_case_id'), ['case_id'], unique=False)
        batch_op.create_index('ix_mentions_posted_at', ['posted_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_mentions_source'), ['source'], unique=False)
        batch_op.create_index('ix_mentions_thread', ['platform', 'thread_id'], unique=False)
        batch_op.create_index('ix_mentions_unclassified', ['classified', 'id'], unique=False)

    op.create_table('source_state',
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('platform', sa.String(length=20), nullable=False),
    sa.Column('cursor', sa.JSON(), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('status_reason', sa.Text(), nullable=True),
    sa.Column('last_poll_at', desk.store.models.UtcDateTime(timezone=True), nullable=True),
    sa.Column('last_success_at', desk.store.models.UtcDateTime(timezone=True), nullable=True),
    sa.Column('last_mention_at', desk.store.models.UtcDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('last_error_at', desk.store.models.UtcDateTime(timezone=True), nullable=True),
    sa.Column('consecutive_failures', sa.Integer(), nullable=False),
    sa.Column('failing_since', desk.store.models.UtcDateTime(timezone=True), nullable=True),
    sa.Column('backoff_until', desk.store.models.UtcDateTime(timezone=True), nullable=True),
    sa.Column('next_poll_at', desk.store.models.UtcDateTime(timezone=True), nullable=True),
    sa.Column('mentions_total', sa.Integer(), nullable=False),
    sa.Column('reads_month', sa.String(length=7), nullable=True),
    sa.Column('reads_count', sa.Integer(), nullable=False),
    sa.Column('lease_owner', sa.String(length=100), nullable=True),
    sa.Column('lease_until', desk.store.models.UtcDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=200), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', desk.store.models.UtcDateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', desk.store.models.UtcDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('email')
    )
    op.create_table('cases',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('mention_id', sa.Integer(), nullable=False),
    sa.Column('platform', sa.String(length=20), nullable=False),
    sa.Column('source', sa.String(length=100), nullable=False),
    sa.Column('thread_id', sa.String(length=200), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('severity', sa.Integer(), nullable=True),
    sa.Column('score', sa.Float(), nullable=True),
    sa.Column('topic', sa.String(length=50), nullable=True),
    sa.Column('assignee', sa.String(length=200), nullable=True),
    sa.Column('customer_posted_at', desk.store.models.UtcDateTime(timezone=True), nullable=False),
    sa.Column('opened_at', desk.store.models.UtcDateTime(timezone=True), nullable=False),
    sa.Column('first_response_due', desk.store.models.UtcDateTime(timezone=True), nullable=True),
    sa.Column('resolution_due', desk.store.models.UtcDateTime(timezone=True), nullable=True),
    sa.Column('first_response_at', desk.store.models.UtcDateTime(timezone=True), nullable=True),
    sa.Column('resolved_at', desk.store.models.UtcDateTime(timezone=True), nullable=True),
    sa.Column('resolution_note', sa.Text(), nullable=True),
    sa.Column('root_cause', sa.String(length=100), nullable=True),
    sa.Column('escalated_to', sa.String(length=200), nullable=True),
    sa.Column('escalated_at', desk.store.models.UtcDateTime(timezone=True), nullable=True),
    sa.Column('escalation_reason', sa.Text(), nullable=True),
    sa.Column('updated_at', desk.store.models.UtcDateTime(timezone=True), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['mention_id'], ['mentions.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('mention_id')
    )
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cases_assignee'), ['assignee'], unique=False)
        batch_op.create_index('ix_cases_opened', ['opened_at'], unique=False)
        batch_op.create_index('ix_cases_queue', ['status', 'first_response_due'], unique=False)

    op.create_table('classifications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('mention_id', sa.Integer(), nullable=False),
    sa.Column('model_version', sa.String(length=100), nullable=False),
    sa.Column('score', sa.Float(), nullable=False),
    sa.Column('is_complaint', sa.Boolean(), nullable=False),
    sa.Column('severity', sa.Integer(), nullable=True),
    sa.Column('topic', sa.String(length=50), nullable=True),
    sa.Column('created_at', desk.store.models.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['mention_id'], ['mentions.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('mention_id')
    )
    op.create_table('labels',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('mention_id', sa.Integer(), nullable=False),
    sa.Column('is_complaint', sa.Boolean(), nullable=False),
    sa.Column('severity', sa.Integer(), nullable=True),
    sa.Column('author', sa.String(length=200), nullable=False),
    sa.Column('created_at', desk.store.models.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['mention_id'], ['mentions.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('labels', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_labels_mention_id'), ['mention_id'], unique=False)

    op.create_table('events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=True),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('action', sa.String(length=50), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.Column('at', desk.store.models.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index('ix_events_case', ['case_id', 'at'], unique=False)

    op.create_table('outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=50), nullable=False),
    sa.Column('dedupe_key', sa.String(length=200), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=True),
    sa.Column('recipients', sa.JSON(), nullable=False),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('body_text', sa.Text(), nullable=False),
    sa.Column('body_html', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', desk.store.models.UtcDateTime(timezone=True), nullable=False),
    sa.Column('next_attempt_at', desk.store.models.UtcDateTime(timezone=True), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('sent_at', desk.store.models.UtcDateTime(timezone=True), nullable=True),
    sa.Column('claimed_by', sa.String(length=100), nullable=True),
    sa.Column('claimed_until', desk.store.models.UtcDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('dedupe_key')
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_pending', ['status', 'next_attempt_at'], unique=False)

    op.create_table('replies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('idempotency_key', sa.String(length=100), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('platform', sa.String(length=20), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('author', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('external_id', sa.String(length=200), nullable=True),
    sa.Column('url', sa.Text(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', desk.store.models.UtcDateTime(timezone=True), nullable=False),
    sa.Column('attempted_at', desk.store.models.UtcDateTime(timezone=True), nullable=True),
    sa.Column('posted_at', desk.store.models.UtcDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('idempotency_key')
    )
    with op.batch_alter_table('replies', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_replies_case_id'), ['case_id'], unique=False)
    # mentions.case_id -> cases.id: added last, since cases is created after mentions
    with op.batch_alter_table('mentions', schema=None) as batch_op:
        batch_op.create_foreign_key('fk_mentions_case', 'cases', ['case_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('mentions', schema=None) as batch_op:
        batch_op.drop_constraint('fk_mentions_case', type_='foreignkey')
    with op.batch_alter_table('replies', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_replies_case_id'))

    op.drop_table('replies')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_pending')

    op.drop_table('outbox')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index('ix_events_case')

    op.drop_table('events')
    with op.batch_alter_table('labels', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_labels_mention_id'))

    op.drop_table('labels')
    op.drop_table('classifications')
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index('ix_cases_queue')
        batch_op.drop_index('ix_cases_opened')
        batch_op.drop_index(batch_op.f('ix_cases_assignee'))

    op.drop_table('cases')
    op.drop_table('users')
    op.drop_table('source_state')
    with op.batch_alter_table('mentions', schema=None) as batch_op:
        batch_op.drop_index('ix_mentions_unclassified')
        batch_op.drop_index('ix_mentions_thread')
        batch_op.drop_index(batch_op.f('ix_mentions_source'))
        batch_op.drop_index('ix_mentions_posted_at')
        batch_op.drop_index(batch_op.f('ix_mentions_case_id'))

    op.drop_table('mentions')
