"""What the adversary tests (tests/test_adversary_promises*.py) share: real `hearken run` processes, a
config writer, and looks at what a user would see, through the public surface only.

The tests attack Hearken from outside: a config file, `python -m desk.cli` processes, HTTP and SMTP
stand-ins on 127.0.0.1 (tests/hostile.py, tests/hostile_publish.py) and the database the dashboard
reads. They read the database with plain SQL on its tables (source_state, mentions, cases, outbox,
replies) rather than through desk/'s modules, which are being reorganised; the few calls into desk/
that have no other door (posting a reply as a dashboard does, the outbox health the Sources page
shows) are kept in this module so that a move needs one edit here.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError, ProgrammingError

from tests.test_reliability import hearken, stop  # noqa: F401 - the same real processes, re-exported
from tests.test_reliability import write_config as reliability_config

ROOT = Path(__file__).resolve().parent.parent

def write_config(tmp_path: Path, sources: list[str], *, db_url: str | None = None, **kw: str) -> Path:
    """tests/test_reliability.py's config (one manager, leases of 1 s, backoff at most 2 s) for these source
    entries, on SQLite in tmp_path unless `db_url` is given; `runner=` and `alerts=` as there."""
    return reliability_config(tmp_path, db_url or f"sqlite:///{tmp_path / 'hearken.db'}", sources, **kw)


def discourse(name: str, base_url: str, *, interval: float = 0.5, more: str = "") -> str:
    return f"{{type: discourse, name: {name}, base_url: '{base_url}', interval_seconds: {interval}{', ' + more if more else ''}}}"


def seconds_to_exit_after_sigterm(proc: subprocess.Popen, limit: float) -> float | None:
    """SIGTERM, then how long until it exited; None if still running after `limit` seconds (then it is killed)."""
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=limit)
        return time.monotonic() - sent
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return None


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


class Db:
    """The database a config points at, read with plain SQL (what the dashboard's pages show)."""

    def __init__(self, url: str) -> None:
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
        self.url = url
        self.engine = create_engine(url)

    def rows(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        """The rows a query returns; none while the runner has not created the schema yet."""
        try:
            with self.engine.connect() as c:
                return [dict(r._mapping) for r in c.execute(text(sql), params)]
        except (OperationalError, ProgrammingError) as exc:
            if "no such table" in str(exc) or "does not exist" in str(exc):
                return []
            raise

    def source(self, name: str) -> dict[str, Any] | None:
        """The source's row; None until the runner has registered it."""
        rows = self.rows("SELECT * FROM source_state WHERE name = :n", n=name)
        return rows[0] if rows else None

    def external_ids(self, source: str) -> list[str]:
        return [r["external_id"] for r in self.rows("SELECT external_id FROM mentions WHERE source = :s", s=source)]

    @contextmanager
    def locked(self, table: str = "source_state") -> Iterator[None]:
        """Hold the table's write lock from another connection, as a backup, a shell or a stuck process would."""
        if self.engine.dialect.name == "sqlite":
            conn = sqlite3.connect(self.engine.url.database, isolation_level=None)
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute(f"UPDATE {table} SET name = name")
                yield
            finally:
                conn.close()  # rolls back
            return
        with self.engine.connect() as c:
            c.execute(text(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
            try:
                yield
            finally:
                c.rollback()

    def close(self) -> None:
        self.engine.dispose()


def proc_kib(pid: int, field: str = "VmRSS") -> int:
    """A /proc/PID/status figure in KiB: VmRSS (resident now) or VmHWM (the peak so far)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


def gzip_bomb(mib: int, layers: int = 2) -> bytes:
    """A gzip stream (gzip inside gzip for `layers` 2) that inflates to `mib` MiB of zeros: a few kB on the wire.

    Built from one full-flushed block repeated, so it takes milliseconds, not the seconds compressing
    a gigabyte would.
    """
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = b"\0" * (1 << 20)
    head = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
    block = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
    data = head + block * (mib - 1)
    for _ in range(layers - 1):
        o = zlib.compressobj(9, zlib.DEFLATED, 31)
        data = o.compress(data) + o.flush()
    return data


# --- the few calls into desk/ that have no other door ---------------------------------------------

POSTER = r"""
import json, resource, sys
from desk.config.schema import load_config
from desk.store.db import connect
from desk.cases.replies import check_reply, new_key, post_reply
from desk.team.users import actor_for_name
cfg = load_config(sys.argv[1]); store = connect(sys.argv[2])
try:
    if sys.argv[4] == "--check":
        out = check_reply(store, cfg, int(sys.argv[3]), actor_for_name(cfg, "Sam Agent"))
    else:
        out = post_reply(store, cfg, int(sys.argv[3]), actor_for_name(cfg, "Sam Agent"), sys.argv[4], key=new_key())
    result = {"status": out.status, "error": out.error, "reply_id": out.reply_id}
except Exception as exc:
    result = {"status": "raised", "error": f"{type(exc).__name__}: {exc}"}
result["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
print(json.dumps(result))
"""


def post_as_dashboard(cfg_path: Path, db_url: str, case_id: int, text_: str, env: dict[str, str],
                      timeout: float = 60) -> dict[str, Any]:
    """Post a reply from a separate process, as the dashboard's Post publicly does; its outcome and peak memory."""
    out = subprocess.run([sys.executable, "-c", POSTER, str(cfg_path), db_url, str(case_id), text_], cwd=ROOT,
                         env=dict(os.environ, **env), capture_output=True, text=True, timeout=timeout)
    lines = out.stdout.strip().splitlines()
    assert lines, out.stderr[-3000:]
    return json.loads(lines[-1])


def check_as_dashboard(cfg_path: Path, db_url: str, reply_id: int, env: dict[str, str],
                       timeout: float = 60) -> dict[str, Any]:
    """'Check the platform' for a reply, from a separate process as the case page does; its outcome."""
    return post_as_dashboard(cfg_path, db_url, reply_id, "--check", env, timeout)


def outbox_health(db_url: str) -> dict[str, Any]:
    """What the Sources page's outbox box and the email banner are drawn from."""
    from desk.store.db import connect
    from desk.notify.outbox import outbox_health as health

    store = connect(db_url)
    try:
        return health(store)
    finally:
        store.close()


def queue_alert(db_url: str, *, key: str, recipients: list[str], subject: str) -> None:
    """An alert in the outbox, as desk/notify/alerts.py writes one when its event happens."""
    from desk.notify import outbox
    from desk.store.db import connect

    store = connect(db_url)
    try:
        with store.session() as s:
            outbox.queue(s, kind="test", dedupe_key=key, recipients=recipients, subject=subject,
                         body_text=f"{subject}\n\nsee the dashboard")
    finally:
        store.close()
