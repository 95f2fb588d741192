"""outbox.channel: alerts and case events for Slack, Teams and webhook channels share the email outbox

A row with `channel` NULL is an email, as every row before this revision; a row with a channel name is a
POST to that alerts.channels entry (desk/notify/channels.py), its JSON body in `body_text`. The mailer claims
only rows without a channel, the channel sender only rows with one.

Revision ID: 0009
Revises: 0008
"""
from alembic import op
import sqlalchemy as sa

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('channel', sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_column('channel')
