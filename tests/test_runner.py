"""The runner end to end: real database, real classifier, real processes and a real HTTP server for a forum."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import func, select

from desk.config import load_config
from desk.db import connect
from desk.models import Case, Event, Mention, SourceState
from desk.runner import Runner

ROOT = Path(__file__).resolve().parent.parent
# the demo posts already in the past when a replay starts, less the excluded one and our own account's
DEMO_PAST = {f"d{i:03d}" for i in range(1, 26)} - {"d009", "d010"}


class Forum(BaseHTTPRequestHandler):
    """A Discourse stand-in on 127.0.0.1: answers 500 until `healthy` is set, then one latest post."""

    healthy = threading.Event()
    POST = {"id": 501, "username": "pat_w", "created_at": "2026-11-20T10:00:00.000Z", "post_number": 1,
            "reply_to_post_number": None, "topic_id": 77, "topic_slug": "debit", "topic_title": "Direct debit after cancelling",
            "post_type": 1, "cooked": "<p>Northwind took a payment after I cancelled. Refund please.</p>",
            "raw": "Northwind took a payment after I cancelled. Refund please."}

    def do_GET(self):  # noqa: N802
        if not self.healthy.is_set():
            self.send_response(500)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"internal error")
            return
        body = json.dumps({"latest_posts": [self.POST]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def forum():
    Forum.healthy.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Forum)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def write_config(tmp_path: Path, extra_sources: str = "", db: str | None = None) -> Path:
    path = tmp_path / "hearken.yaml"
    path.write_text(f"""\
brand: {{terms: ["Northwind", "@NorthwindHelp"], exclusions: ["Northwind Traders"]}}
accounts: {{demo: [NorthwindHelp]}}
sources:
  - {{type: demo, name: demo, interval_seconds: 1}}
{extra_sources}
team:
  - {{name: Morgan Manager, email: morgan@example.com, role: manager}}
database: {{url: "{db or 'sqlite:///' + str(tmp_path / 'hearken.db')}"}}
runner: {{lease_seconds: 2}}  # a killed runner's lease on a source expires this fast
""")
    return path


def count(store, model) -> int:
    with store.session() as s:
        return s.scalar(select(func.count()).select_from(model))


def test_a_demo_run_fills_the_queue_and_a_second_run_adds_nothing(tmp_path, db_url, model):
    cfg = load_config(write_config(tmp_path, db=db_url))
    store = connect(cfg.database_url())
    runner = Runner(cfg, store, model_loader=lambda: model)
    runner.run_once()
    with store.session() as s:
        ids = set(s.scalars(select(Mention.external_id)))
        assert DEMO_PAST <= ids, "every past demo post is stored"
        assert "d009" not in ids and "d010" not in ids, "excluded and own-account posts are not"
        cases = count(store, Case)
        assert cases >= 8, "the demo's complaints open cases"
        assert s.get(SourceState, "demo").status == "ok"
    before = count(store, Mention)
    runner.run_once()
    assert count(store, Mention) >= before and count(store, Case) >= cases
    with store.session() as s:
        dupes = s.execute(select(Mention.external_id, func.count()).group_by(Mention.external_id)
                          .having(func.count() > 1)).all()
    assert dupes == []
    store.close()


def test_one_failing_source_never_stops_the_others_and_is_reported_once(tmp_path, forum, model, caplog):
    extra = f"  - {{type: discourse, name: community, base_url: '{forum}', interval_seconds: 1}}"
    cfg = load_config(write_config(tmp_path, extra))
    store = connect(cfg.database_url())
    runner = Runner(cfg, store, model_loader=lambda: model)
    caplog.set_level(logging.INFO, logger="desk")
    for _ in range(3):
        runner.run_once()
    with store.session() as s:
        st = s.get(SourceState, "community")
        assert st.status == "failing" and st.consecutive_failures == 3
        assert "500" in st.last_error and forum in st.last_error, st.last_error
        assert st.backoff_until is not None and st.backoff_until > st.last_error_at
        assert s.get(SourceState, "demo").status == "ok"
        assert DEMO_PAST <= set(s.scalars(select(Mention.external_id).where(Mention.source == "demo")))
        downs = s.scalars(select(Event).where(Event.action == "source_failing")).all()
        assert len(downs) == 1 and downs[0].detail["source"] == "community"
    warnings = [r for r in caplog.records if "community" in r.getMessage() and r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]

    Forum.healthy.set()
    runner.run_once()
    runner.run_once()
    with store.session() as s:
        st = s.get(SourceState, "community")
        assert st.status == "ok" and st.consecutive_failures == 0 and st.backoff_until is None
        assert s.scalar(select(func.count()).select_from(Event).where(Event.action == "source_recovered")) == 1
        post = s.scalars(select(Mention).where(Mention.source == "community")).one()
        assert post.author == "pat_w" and "payment after I cancelled" in post.body
    recovered = [r for r in caplog.records if "recovered" in r.getMessage()]
    assert len(recovered) == 1
    store.close()


def _hearken(*args: str, env: dict | None = None, **kw) -> subprocess.Popen:
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.Popen([sys.executable, "-m", "desk.cli", *args], cwd=ROOT, env=e,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def _wait_for(predicate, timeout: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_sigterm_stops_the_runner_between_polls(tmp_path):
    path = write_config(tmp_path)
    cfg = load_config(path)
    proc = _hearken("run", "--config", str(path))
    try:
        store = connect(cfg.database_url())
        _wait_for(lambda: count(store, Case) > 0, what="the runner to open demo cases")
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert "runner stopped" in out
    with store.session() as s:
        st = s.get(SourceState, "demo")
        assert st.lease_owner is None, "the lease is given back on a clean stop"
    store.close()


def kill_between_fetch_and_commit(path: Path, marker: Path) -> None:
    """Start `hearken run`, wait until it has fetched a poll but not stored it, and kill -9 it there."""
    marker.unlink(missing_ok=True)
    proc = _hearken("run", "--config", str(path), env={"HEARKEN_FAILPOINT": f"before-commit:{marker}"})
    try:
        _wait_for(marker.exists, what="the runner to fetch a poll")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_runner_killed_between_fetch_and_commit_loses_nothing_and_duplicates_nothing(tmp_path):
    path = write_config(tmp_path)
    cfg = load_config(path)
    marker = tmp_path / "fetched"
    kill_between_fetch_and_commit(path, marker)
    store = connect(cfg.database_url())
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(Mention)) == 0, "nothing was committed before the kill"
        state = s.get(SourceState, "demo")
        assert state.cursor is None, "and the cursor did not move"
        lease_until = state.lease_until
    # the dead runner's lease on the source runs out (2 s here); until then nobody else polls it
    time.sleep(max(0.0, (lease_until - datetime.now(timezone.utc)).total_seconds()) + 0.2)
    # restart: the same posts are fetched again and stored exactly once
    again = _hearken("run", "--once", "--config", str(path))
    out, _ = again.communicate(timeout=120)
    assert again.returncode == 0, out
    with store.session() as s:
        ids = list(s.scalars(select(Mention.external_id)))
        assert DEMO_PAST <= set(ids)
        assert len(ids) == len(set(ids))
        assert s.get(SourceState, "demo").cursor["next"] >= len(DEMO_PAST)
    # killed again after the first commit, mid-way through the next poll: still nothing lost or doubled
    kill_between_fetch_and_commit(path, marker)
    with store.session() as s:
        ids2 = list(s.scalars(select(Mention.external_id)))
        assert set(ids) <= set(ids2) and len(ids2) == len(set(ids2))
    store.close()
