"""outbox: per-recipient delivery state; runners: each `hearken run` as it last reported itself

An alert goes to several people, and the SMTP server answers for each of them:
`delivered_to` (accepted), `refused` (address -> the server's 5xx reason) and
`unknown_to` (the line dropped after the whole message was sent, so the server
may hold it: never sent again by itself). The recipients in none of them are
still to be tried; a 4xx for one of them keeps the row pending for that one only.

`runners` holds one row per runner process: its heartbeat (`seen_at`), when it
stopped, and its last database outage, for the dashboard's banner.

Revision ID: 0006
Revises: 0003
"""
from alembic import op
import sqlalchemy as sa

import desk.store.models

revision = '0006'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('delivered_to', sa.JSON(none_as_null=True), nullable=True))
        batch_op.add_column(sa.Column('refused', sa.JSON(none_as_null=True), nullable=True))
        batch_op.add_column(sa.Column('unknown_to', sa.JSON(none_as_null=True), nullable=True))
    op.create_table('runners',
    sa.Column('owner', sa.String(length=100), nullable=False),
    sa.Column('host', sa.String(length=200), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('started_at', desk.store.models.UtcDateTime(timezone=True), nullable=False),
    sa.Column('seen_at', desk.store.models.UtcDateTime(timezone=True), nullable=False),
    sa.Column('stopped_at', desk.store.models.UtcDateTime(timezone=True), nullable=True),
    sa.Column('outage', sa.Text(), nullable=True),
    sa.Column('outage_ended_at', desk.store.models.UtcDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('owner')
    )


def downgrade() -> None:
    op.drop_table('runners')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_column('unknown_to')
        batch_op.drop_column('refused')
        batch_op.drop_column('delivered_to')
