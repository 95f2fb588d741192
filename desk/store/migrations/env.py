"""Alembic environment: runs on the connection desk.store.db.migrate() hands over, or on HEARKEN_DATABASE_URL."""

from alembic import context
from sqlalchemy import create_engine

from desk.config.environment import database_url_from_env
from desk.store.models import Base

config = context.config
target_metadata = Base.metadata


def run() -> None:
    conn = config.attributes.get("connection")
    if conn is not None:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(database_url_from_env() or "sqlite:///var/hearken.db")
    with engine.begin() as c:
        context.configure(connection=c, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


run()
