"""replies.sent_at and replies.checked_at: when the platform call began, and when we last looked for the reply

A reply whose answer was lost is looked for on the platform among our posts
made since it was sent; `attempted_at` is the row's lease (it moves while a
check holds the row), so the send time needs a column of its own. Rows from
before this revision take their send time from `attempted_at`.

Revision ID: 0005
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa

import desk.store.models

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('replies', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sent_at', desk.store.models.UtcDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('checked_at', desk.store.models.UtcDateTime(timezone=True), nullable=True))
    op.execute("UPDATE replies SET sent_at = attempted_at WHERE kind = 'public'")


def downgrade() -> None:
    with op.batch_alter_table('replies', schema=None) as batch_op:
        batch_op.drop_column('checked_at')
        batch_op.drop_column('sent_at')
