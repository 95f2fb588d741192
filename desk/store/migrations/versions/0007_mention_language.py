"""mentions.language: the language each mention is written in (classifier/language.py)

The complaint model reads English only; the runner detects every mention's
language first and routes one in a language the config does not score
(`classifier.languages`) by `classifier.other_languages` instead of scoring
it. Rows from before this revision have no language (NULL): they were
classified already.

Revision ID: 0007
Revises: 0006
"""
from alembic import op
import sqlalchemy as sa

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('mentions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('language', sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('mentions', schema=None) as batch_op:
        batch_op.drop_column('language')
