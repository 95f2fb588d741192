"""users bound to their OIDC identity (issuer, subject); dashboard_sessions kept on the server

A signed cookie alone let a copy taken before "Sign out" sign in again for 30
days. Each sign-in now has a row here, ended when its person signs out or
leaves the team.

Revision ID: 0004
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa

from desk.store.models import UtcDateTime

revision = '0004'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('oidc_issuer', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('oidc_subject', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('bound_at', UtcDateTime(timezone=True), nullable=True))
        batch_op.create_unique_constraint('uq_users_oidc_identity', ['oidc_issuer', 'oidc_subject'])
    op.create_table(
        'dashboard_sessions',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('issuer', sa.String(length=500), nullable=False),
        sa.Column('subject', sa.String(length=255), nullable=False),
        sa.Column('created_at', UtcDateTime(timezone=True), nullable=False),
        sa.Column('last_seen_at', UtcDateTime(timezone=True), nullable=False),
        sa.Column('expires_at', UtcDateTime(timezone=True), nullable=False),
        sa.Column('ended_at', UtcDateTime(timezone=True), nullable=True),
        sa.Column('end_reason', sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name='fk_dashboard_sessions_user'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_dashboard_sessions_user_id', 'dashboard_sessions', ['user_id'])


def downgrade() -> None:
    op.drop_index('ix_dashboard_sessions_user_id', table_name='dashboard_sessions')
    op.drop_table('dashboard_sessions')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_constraint('uq_users_oidc_identity', type_='unique')
        batch_op.drop_column('bound_at')
        batch_op.drop_column('oidc_subject')
        batch_op.drop_column('oidc_issuer')
