"""Shared parts of the benchmarks: throwaway databases, bulk data generators, timing and printing.

Not a test and not part of the package: each benchmark script imports it from its own folder.

- `database(kind, pg_url)` gives a fresh, migrated `Store`: a SQLite file in a temporary folder, or a
  schema of its own on PostgreSQL (dropped afterwards), the same way the tests isolate themselves.
- `generate(store, ...)` fills it with a realistic history in bulk (executemany on SQLite, COPY on
  PostgreSQL): mentions in threads across five platforms, a share of them complaints with cases
  whose status, due times, first replies and resolution follow their age, one public reply per
  answered case and one audit event per case.
- `timed(fn, repeat)` runs `fn` and returns the durations; `fmt_ms`, `pct` print them.

The Discourse stand-in that benchmarks of a live runner poll is _replay.py's.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from desk.store.db import Store, connect, make_engine  # noqa: E402

UTC = timezone.utc
PLATFORMS = [("reddit", 0.35), ("x", 0.35), ("discourse", 0.15), ("forum", 0.1), ("demo", 0.05)]
TEXTS = [
    "Northwind broadband has been down since this morning and support hangs up on me.",
    "Third bill from Northwind this month with a charge I never agreed to.",
    "Northwind engineer never turned up, I took a day off work for nothing.",
    "Anyone else on Northwind getting 2 Mbps in the evenings? Unusable for work calls.",
    "Does Northwind offer a static IP on the home plan?",
    "Thanks Northwind, the new router is great and setup took five minutes.",
    "Moving house next month, how do I take my Northwind line with me?",
    "Northwind cancelled my contract but keeps taking direct debits. Refund please.",
]
TOPICS = ["outage", "billing", "engineer", "speed", "account", "quality"]


# --- machine and printing ---------------------------------------------------------------------


def machine(pg_url: str | None = None) -> str:
    """One line naming the machine, Python, SQLite and (when used) PostgreSQL versions."""
    import sqlite3

    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor()
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    out = (f"{cpu or platform.machine()}, {os.cpu_count()} CPUs{mem}; {platform.system()} {platform.release()}; "
           f"Python {platform.python_version()}; SQLite {sqlite3.sqlite_version}")
    if pg_url:
        engine = make_engine(pg_url)
        with engine.connect() as c:
            from sqlalchemy import text

            out += "; " + c.execute(text("select version()")).scalar().split(" on ")[0]
        engine.dispose()
    return out


def pct(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0..100), nearest rank."""
    s = sorted(values)
    if not s:
        return float("nan")
    k = max(0, min(len(s) - 1, round(p / 100 * (len(s) - 1))))
    return s[k]


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms" if seconds < 10 else f"{seconds:,.1f} s"


def timed(fn: Callable[[], object], repeat: int = 5, warmup: int = 1) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


# --- throwaway databases ----------------------------------------------------------------------


def _schema_url(base: str, schema: str) -> str:
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}"


@contextlib.contextmanager
def database(kind: str, pg_url: str | None = None, *, keep: bool = False) -> Iterator[Store]:
    """A fresh migrated store: kind 'sqlite' (a temporary file) or 'postgresql' (a schema of its own)."""
    if kind == "sqlite":
        folder = Path(tempfile.mkdtemp(prefix="hearken-bench-"))
        store = connect(f"sqlite:///{folder / 'bench.db'}")
        try:
            yield store
        finally:
            store.close()
            if not keep:
                shutil.rmtree(folder, ignore_errors=True)
        return
    if not pg_url:
        raise SystemExit("PostgreSQL needs --pg URL (e.g. postgresql://postgres@127.0.0.1:5432/test)")
    from sqlalchemy import text

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = make_engine(pg_url)
    with admin.begin() as c:
        c.execute(text(f"CREATE SCHEMA {schema}"))
    store = connect(_schema_url(pg_url, schema))
    try:
        yield store
    finally:
        store.close()
        if not keep:
            with admin.begin() as c:
                c.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def kinds(pg_url: str | None, only: str | None = None) -> list[str]:
    out = ["sqlite"] + (["postgresql"] if pg_url else [])
    return [k for k in out if only in (None, k)]


# --- bulk loading -----------------------------------------------------------------------------


def _sqlite_value(v):
    if isinstance(v, datetime):
        return v.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(v, (dict, list)):
        return json.dumps(v)
    if isinstance(v, bool):
        return int(v)
    return v


def _pg_value(v):
    if isinstance(v, (dict, list)):
        return json.dumps(v)
    return v


def bulk_insert(store: Store, table: str, columns: Sequence[str], rows: Iterable[Sequence], chunk: int = 50_000) -> int:
    """Insert rows as fast as each database allows: COPY on PostgreSQL, executemany in big transactions on SQLite."""
    n = 0
    raw = store.engine.raw_connection()
    try:
        dbapi = raw.driver_connection
        if store.dialect == "postgresql":
            with dbapi.cursor() as cur:
                with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as cp:
                    for row in rows:
                        cp.write_row([_pg_value(v) for v in row])
                        n += 1
            dbapi.commit()
        else:
            sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
            cur = dbapi.cursor()
            batch = []
            for row in rows:
                batch.append([_sqlite_value(v) for v in row])
                if len(batch) >= chunk:
                    cur.executemany(sql, batch)
                    n += len(batch)
                    batch = []
            if batch:
                cur.executemany(sql, batch)
                n += len(batch)
            dbapi.commit()
    finally:
        raw.close()
    return n


def _fix_sequences(store: Store, tables: Sequence[str]) -> None:
    if store.dialect != "postgresql":
        return
    from sqlalchemy import text

    with store.engine.begin() as c:
        for t in tables:
            c.execute(text(f"SELECT setval(pg_get_serial_sequence('{t}', 'id'), coalesce((SELECT max(id) FROM {t}), 1))"))


def analyze(store: Store) -> None:
    """PostgreSQL: refresh planner statistics, as autovacuum would after a load this size. SQLite: nothing
    (Hearken never runs ANALYZE there, so neither does the benchmark)."""
    if store.dialect == "postgresql":
        from sqlalchemy import text

        with store.engine.connect() as c:
            c.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))


@dataclass
class Generated:
    mentions: int
    cases: int
    active: int
    start: datetime
    end: datetime
    seconds: float


def generate(store: Store, *, mentions: int, cases: int, span: timedelta, now: datetime | None = None,
             active_cases: int | None = None, seed: int = 1, thread_size: int = 4) -> Generated:
    """Fill `store` with `mentions` posts spread evenly over `span` ending at `now`, `cases` of them complaints.

    Posts come in threads of `thread_size` (the case page reads a case's thread). Every
    mentions/cases-th post is a complaint with a case. The newest `active_cases` cases (default 2 %)
    are active (half open, half replied, some overdue); older ones are resolved (95 %) or dismissed,
    with a first public reply 10 minutes to 10 hours after the post and a resolution a day or two later.
    """
    t0 = time.perf_counter()
    rng = random.Random(seed)
    now = now or datetime.now(UTC)
    start = now - span
    step = span / mentions
    every = max(1, mentions // max(1, cases))
    active_cases = max(1, cases // 50) if active_cases is None else active_cases
    names = [p for p, _ in PLATFORMS]
    weights = [w for _, w in PLATFORMS]
    plat = rng.choices(names, weights, k=mentions // thread_size + 1)  # one platform per thread
    posted = [start + step * i + timedelta(seconds=rng.uniform(0, 1)) for i in range(mentions)]

    def mention_rows():
        for i in range(mentions):
            p = plat[i // thread_size]
            yield (i + 1, p, p, f"{p}/{i + 1}", f"https://{p}.example.com/p/{i + 1}", f"user{rng.randrange(50_000)}",
                   None, "", TEXTS[i % len(TEXTS)] + f" #{i + 1}", posted[i], posted[i] + timedelta(seconds=40),
                   f"{p}/t{i // thread_size}", None, ["Northwind"], {}, True, None)

    bulk_insert(store, "mentions", ["id", "platform", "source", "external_id", "url", "author", "author_id", "title",
                                    "body", "posted_at", "detected_at", "thread_id", "parent_id", "matched_terms",
                                    "extra", "classified", "case_id"], mention_rows())

    complaint_ids = [i for i in range(0, mentions, every)][:cases]
    n = len(complaint_ids)
    case_rows, reply_rows, event_rows = [], [], []
    first_active = n - active_cases
    for cid, i in enumerate(complaint_ids, start=1):
        p = plat[i // thread_size]
        sev = rng.choice((1, 2, 2, 3, 3, 4))
        at = posted[i]
        fr_due = at + timedelta(minutes=(480, 240, 120, 60)[sev - 1])
        res_due = at + timedelta(minutes=(4320, 2880, 1440, 480)[sev - 1])
        if cid > first_active:
            status = "open" if cid % 2 else "replied"
        else:
            status = "dismissed" if rng.random() < 0.05 else "resolved"
        fr_at = None if status in ("open", "dismissed") else at + timedelta(minutes=rng.uniform(10, 600))
        resolved_at = fr_at + timedelta(hours=rng.uniform(4, 48)) if status == "resolved" else None
        assignee = f"agent{rng.randrange(12)}" if status != "dismissed" else None
        case_rows.append((cid, i + 1, p, p, f"{p}/t{i // thread_size}", status, sev, rng.uniform(0.5, 1.0),
                          rng.choice(TOPICS), assignee, at, at + timedelta(seconds=60), fr_due, res_due, fr_at,
                          resolved_at, "fixed" if resolved_at else None, None, at + timedelta(seconds=60), 1))
        if fr_at is not None:
            reply_rows.append((len(reply_rows) + 1, cid, f"bench-{cid}", "public", p,
                               "Sorry about this, we are on it and will update you by 5pm.", assignee or "agent0",
                               "posted", f"{p}/r{cid}", f"https://{p}.example.com/r/{cid}", None, fr_at, fr_at, fr_at))
        event_rows.append((cid, cid, "system", "opened", {"severity": sev}, at + timedelta(seconds=60)))
    bulk_insert(store, "cases", ["id", "mention_id", "platform", "source", "thread_id", "status", "severity", "score",
                                 "topic", "assignee", "customer_posted_at", "opened_at", "first_response_due",
                                 "resolution_due", "first_response_at", "resolved_at", "root_cause", "escalated_to",
                                 "updated_at", "version"], case_rows)
    bulk_insert(store, "replies", ["id", "case_id", "idempotency_key", "kind", "platform", "body", "author", "status",
                                   "external_id", "url", "error", "created_at", "attempted_at", "posted_at"], reply_rows)
    bulk_insert(store, "events", ["id", "case_id", "actor", "action", "detail", "at"], event_rows)
    # each complaint's classification with its stored embedding, as the runner writes them: vectors near
    # one centre per demo text, so the report's themes find groups as they would in real data
    import numpy as np

    import classifier

    version = classifier.load().version
    vec_rng = np.random.default_rng(seed)
    centres = vec_rng.normal(size=(len(TEXTS), 384))
    classification_rows = []
    for cid, i in enumerate(complaint_ids, start=1):
        v = centres[i % len(TEXTS)] + vec_rng.normal(scale=0.6, size=384)
        v = (v / np.linalg.norm(v)).astype(np.float16).tobytes()
        sev = case_rows[cid - 1][6]
        classification_rows.append((cid, i + 1, version, case_rows[cid - 1][7], True, sev, case_rows[cid - 1][8], v,
                                    posted[i] + timedelta(seconds=50)))
    bulk_insert(store, "classifications", ["id", "mention_id", "model_version", "score", "is_complaint", "severity",
                                           "topic", "embedding", "created_at"], classification_rows)
    _fix_sequences(store, ["mentions", "cases", "replies", "events", "classifications"])
    analyze(store)
    return Generated(mentions, n, active_cases, start, now, time.perf_counter() - t0)


def header(title: str, pg_url: str | None, argv: Sequence[str] | None = None) -> None:
    print(f"# {title}")
    print(f"machine: {machine(pg_url)}")
    print(f"command: {' '.join(argv or sys.argv)}")
    print(f"started: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")


def git_rev() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"
