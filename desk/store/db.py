"""Connecting to the database and keeping its schema current.

`connect(url)` returns a `Store`: the engine plus a session factory. SQLite
runs in WAL mode with a busy timeout so the runner and the dashboard can
share one file. No wait for the database is endless: a lock is waited for at
most `LOCK_WAIT_SECONDS` (SQLite's busy timeout, PostgreSQL's `lock_timeout`),
a PostgreSQL statement runs at most `STATEMENT_SECONDS` and a connection is
given `CONNECT_SECONDS` to open; past them the caller gets an error to record
and retry (desk/intake/runner.py does), not a hang. Pooled PostgreSQL connections are
pinged before use, so one a server restart cut is replaced, not handed out.
`migrate()` applies the Alembic migrations in desk/migrations, and runs on
every start.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator
from urllib.parse import urlencode

from sqlalchemy import create_engine, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from collectors.redact import HIDDEN, hide_passwords, is_secret_parameter

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
MIGRATION_LOCK = 0x4845_4152_4B45_4E  # "HEARKEN": the advisory lock held while migrating
LOCK_WAIT_SECONDS = 30  # the longest wait for another connection's lock (a backup, a shell, a stuck transaction)
STATEMENT_SECONDS = 300  # PostgreSQL: the longest one statement may run (the weekly report's are the longest)
CONNECT_SECONDS = 10


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={LOCK_WAIT_SECONDS * 1000}")
    cur.close()


def _parsed(url: str) -> URL | None:
    try:
        return make_url(url)
    except Exception:  # noqa: BLE001 - SQLAlchemy raises ArgumentError, ValueError, ...: not a database URL
        return None


def shown_url(url: str) -> str:
    """A database URL as Hearken shows it: read as SQLAlchemy reads it to connect, with the password (a
    / # ? or space in it included) and every query parameter whose decoded name carries a secret
    (``?password=``, ``?pass%77ord=``) written ***. One that does not parse is shown through
    `hide_passwords`."""
    parsed = _parsed(url)
    if parsed is None:
        return hide_passwords(url)
    shown = parsed.set(query={}).render_as_string(hide_password=True)
    if not parsed.query:
        return shown
    pairs = [(k, v) for k, vs in parsed.query.items() for v in (vs if isinstance(vs, tuple) else (vs,))]
    return shown + "?" + urlencode([(k, HIDDEN if is_secret_parameter(k) else v) for k, v in pairs], safe="*")


def url_secrets(url: str) -> list[str]:
    """The secrets a database URL holds (its password, the values of secret query parameters), to be
    kept out of messages and logs that might repeat them."""
    parsed = _parsed(url)
    if parsed is None:
        return []
    found = [parsed.password or ""]
    for k, vs in parsed.query.items():
        if is_secret_parameter(k):
            found.extend(vs if isinstance(vs, tuple) else (vs,))
    return [str(v) for v in found if v]


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": LOCK_WAIT_SECONDS, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() in ("", "psycopg2"):
        try:
            import psycopg  # noqa: F401
            parsed = parsed.set(drivername="postgresql+psycopg")
        except ImportError:
            pass
    if parsed.get_backend_name() == "postgresql":
        # ours first: the URL's own `options` (a search_path, a longer lock_timeout) come after and win
        given = parsed.query.get("options") or ()
        given = [given] if isinstance(given, str) else list(given)
        options = " ".join([f"-c lock_timeout={LOCK_WAIT_SECONDS * 1000}",
                            f"-c statement_timeout={STATEMENT_SECONDS * 1000}", *given])
        query = {"options": options}
        if "connect_timeout" not in parsed.query:
            query["connect_timeout"] = str(CONNECT_SECONDS)
        parsed = parsed.update_query_dict(query)
    return create_engine(parsed, pool_pre_ping=True)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (no-op when current)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # several runners starting at once on a fresh database: one migrates, the others wait for as
            # long as that takes (a migration may rewrite a big table: no lock or statement limit here)
            conn.execute(text("SET LOCAL lock_timeout = 0"))
            conn.execute(text("SET LOCAL statement_timeout = 0"))
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


@dataclass
class Store:
    engine: Engine
    sessions: sessionmaker[Session]

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on any error."""
        with self.sessions.begin() as s:
            yield s

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()


def insert_for(session: Session):
    """The `insert` of the session's dialect, which has `on_conflict_do_nothing`/`_do_update` (SQLite, PostgreSQL)."""
    return (postgresql if session.get_bind().dialect.name == "postgresql" else sqlite).insert


def connect(url: str, *, upgrade: bool = True) -> Store:
    engine = make_engine(url)
    if upgrade:
        migrate(engine)
    return Store(engine, sessionmaker(engine, expire_on_commit=False))
