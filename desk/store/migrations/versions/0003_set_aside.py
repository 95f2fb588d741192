"""set_aside: items a platform sent that could not be read or stored; Discourse reply ids as mention ids

A hostile or malformed post is kept here with its raw payload and the reason
while the rest of its page is stored (desk/intake/pipeline.py, desk/intake/set_aside.py).
Indexes for joining an answer to its case: replies by (platform, external id),
cases by (platform, thread).

Replies posted on Discourse used to record the numeric post id; mentions carry
"<host>/t/<topic>/<post number>". Earlier replies are rewritten to the mention
form (from the link recorded with them), so an answer to one of them joins its
case like an answer to a new one.

Revision ID: 0003
Revises: 0005 (0004 and 0005 reached main first; databases already at 0005 get this one next)
"""
import re
from urllib.parse import urlsplit

from alembic import op
import sqlalchemy as sa
import desk.store.models

revision = '0003'
down_revision = '0005'
branch_labels = None
depends_on = None

_DISCOURSE_POST_PATH = re.compile(r"/t/(?:[^/]+/)?(\d+)/(\d+)/?$")


def upgrade() -> None:
    op.create_table('set_aside',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=100), nullable=False),
    sa.Column('platform', sa.String(length=20), nullable=False),
    sa.Column('item_key', sa.String(length=64), nullable=False),
    sa.Column('external_id', sa.Text(), nullable=True),
    sa.Column('url', sa.Text(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('raw', sa.Text(), nullable=False),
    sa.Column('first_seen_at', desk.store.models.UtcDateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', desk.store.models.UtcDateTime(timezone=True), nullable=False),
    sa.Column('times_seen', sa.Integer(), nullable=False),
    sa.Column('cleared_at', desk.store.models.UtcDateTime(timezone=True), nullable=True),
    sa.Column('cleared_by', sa.String(length=200), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('source', 'item_key', name='uq_set_aside_source_item')
    )
    with op.batch_alter_table('set_aside', schema=None) as batch_op:
        batch_op.create_index('ix_set_aside_source_open', ['source', 'cleared_at', 'last_seen_at'], unique=False)
    # an answer finds the case by our reply's id, or by its thread
    with op.batch_alter_table('replies', schema=None) as batch_op:
        batch_op.create_index('ix_replies_external_id', ['platform', 'external_id'], unique=False)
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.create_index('ix_cases_thread', ['platform', 'thread_id'], unique=False)
    _discourse_reply_ids_as_mention_ids()


def _discourse_reply_ids_as_mention_ids() -> None:
    conn = op.get_bind()
    replies = sa.table('replies', sa.column('id', sa.Integer), sa.column('platform', sa.String),
                       sa.column('external_id', sa.String), sa.column('url', sa.Text))
    rows = conn.execute(sa.select(replies.c.id, replies.c.external_id, replies.c.url)
                        .where(replies.c.platform == 'discourse', replies.c.external_id.is_not(None))).all()
    for rid, external_id, url in rows:
        if not str(external_id).isdigit() or not url:
            continue
        parts = urlsplit(url)
        match = _DISCOURSE_POST_PATH.search(parts.path)
        if parts.netloc and match:
            new = f"{parts.netloc}/t/{match.group(1)}/{match.group(2)}"
            conn.execute(replies.update().where(replies.c.id == rid).values(external_id=new))


def downgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index('ix_cases_thread')
    with op.batch_alter_table('replies', schema=None) as batch_op:
        batch_op.drop_index('ix_replies_external_id')
    with op.batch_alter_table('set_aside', schema=None) as batch_op:
        batch_op.drop_index('ix_set_aside_source_open')
    op.drop_table('set_aside')
