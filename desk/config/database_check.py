"""The database check of `hearken check-config` and the one line that says why a database cannot be opened:
which URL (its password hidden), where the URL came from, and the driver's reason."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from collectors.redact import HIDDEN, hide_passwords
from desk.config.environment import DATABASE_URL_ENV, database_url_from_env
from desk.config.schema import HearkenConfig, Problem, problem_at
from desk.errors import UserError


def database_origin(cfg: HearkenConfig, env: Mapping[str, str] | None = None) -> tuple[str, tuple[str, ...]]:
    """Where the database URL comes from, as a person would look for it, and the config key to point at."""
    env = os.environ if env is None else env
    if database_url_from_env(env):
        return f"the environment variable {DATABASE_URL_ENV}", ("database",)
    if cfg.database.url_env and env.get(cfg.database.url_env):
        return f"the environment variable {cfg.database.url_env} (database.url_env)", ("database", "url_env")
    return "database.url", ("database", "url")


def database_problem(cfg: HearkenConfig, exc: BaseException, env: Mapping[str, str] | None = None) -> str:
    """One line saying which database could not be opened, where its URL came from and why."""
    from desk.store.db import shown_url, url_secrets

    origin, _ = database_origin(cfg, env)
    url = cfg.database_url(dict(os.environ if env is None else env))
    reason = getattr(exc, "orig", None) or exc
    text = " ".join(str(reason).split()) or type(reason).__name__
    if isinstance(exc, ImportError):
        text = f"its driver is not installed ({text})"
        if url.startswith("postgresql"):
            text += "; install it with .venv/bin/pip install -c constraints.txt -e '.[postgres]'"
    elif isinstance(exc, ValueError) and text.startswith("invalid literal for int()"):  # SQLAlchemy on host:port
        text = f"its port is not a number ({text.rsplit(':', 1)[-1].strip()})"
    for secret in sorted(url_secrets(url), key=len, reverse=True):  # a driver may quote the connection string
        text = text.replace(secret, HIDDEN)
    return f"cannot open the database {shown_url(url)} (from {origin}): {hide_passwords(text)}"


CONNECT_SECONDS = 5  # a server's connect_timeout when the URL gives none (or 0, libpq's "for ever")
QUERY_SECONDS = 1  # then the server has this long to answer SELECT 1 (statement_timeout, and a wall clock)


class DatabaseTimeout(UserError, OSError):
    """The database check ran past its deadline."""


def _connect_seconds(query: Mapping[str, object]) -> int | None:
    """libpq's connect_timeout as it applies it: 0, negative or absent waits for ever (we take our 5 s),
    and 1 is taken as 2 (its minimum); None where it is not a number (the driver refuses it, and says so)."""
    value = query.get("connect_timeout")
    if value is None:
        return CONNECT_SECONDS
    try:
        seconds = int(float(str(value[0] if isinstance(value, tuple) else value).strip()))
    except ValueError:
        return None
    return CONNECT_SECONDS if seconds <= 0 else max(seconds, 2)


def database_problems(cfg: HearkenConfig, env: Mapping[str, str] | None = None) -> list[Problem]:
    """The database URL parses and, for a server, answers within a few seconds. A SQLite file that is not
    there yet is fine (Hearken creates it) as long as its folder can be made.

    The whole check of a server has a deadline: connect_timeout (ours, 5 s, where the URL gives none or 0)
    for connecting, then `QUERY_SECONDS` for SELECT 1, asked of the server as its statement_timeout too
    (libpq drivers) and held by a wall clock, so a server that accepts the connection and then never
    answers (a stuck pooler, a locked catalog) is named as a problem instead of holding check-config.
    The clock starts with the check (loading the driver counts)."""
    import time

    started = time.monotonic()
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    env = dict(os.environ if env is None else env)
    _, key = database_origin(cfg, env)
    url = cfg.database_url(env)
    try:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            folder = Path(parsed.database or ".").resolve().parent
            while not folder.exists():
                folder = folder.parent
            if parsed.database not in (None, "", ":memory:") and not os.access(folder, os.W_OK):
                raise OSError(f"{folder} cannot be written to")
            return []
        deadline = QUERY_SECONDS
        if parsed.get_backend_name() == "postgresql":
            connect = _connect_seconds(parsed.query)
            deadline += connect or CONNECT_SECONDS
            asked = {"connect_timeout": str(connect)} if connect else {}
            if parsed.get_driver_name() in ("", "psycopg", "psycopg2"):  # libpq's options, as desk.store.db picks them
                options = parsed.query.get("options", "")
                options = " ".join(options) if isinstance(options, tuple) else options
                asked["options"] = f"{options} -c statement_timeout={QUERY_SECONDS * 1000}".strip()
            parsed = parsed.update_query_dict(asked)
        else:
            deadline += CONNECT_SECONDS
        _answers_within(parsed.render_as_string(hide_password=False), started, deadline)
    except (ValueError, SQLAlchemyError, ImportError, OSError) as exc:
        return [problem_at(cfg, key, database_problem(cfg, exc, env))]
    return []


def _answers_within(url: str, started: float, seconds: float) -> None:
    """Connect to `url` and run SELECT 1 in a thread, ending `seconds` after `started` (time.monotonic) at
    the latest: a driver's wait that no timeout of its own covers is left behind (the thread is a daemon)
    and the check fails."""
    import threading
    import time

    from sqlalchemy import text

    from desk.store.db import make_engine

    failed: list[BaseException] = []

    def check() -> None:
        try:
            engine = make_engine(url)
            try:
                with engine.connect() as conn:
                    conn.execute(text("SELECT 1"))
            finally:
                engine.dispose()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            failed.append(exc)

    worker = threading.Thread(target=check, name="database-check", daemon=True)
    worker.start()
    worker.join(max(0.0, started + seconds - time.monotonic()))
    if worker.is_alive():
        raise DatabaseTimeout(f"it accepted no connection or answered no query within {seconds:g} s")
    if failed:
        raise failed[0]
