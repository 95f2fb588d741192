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

from desk.config.schema import load_config
from desk.store.db import connect
from desk.store.models import Case, Event, MentionRow, SourceState
from desk.intake.runner import Runner
from tests.hostile import Drip, HostileServer, Json, Stall, discourse_post
from tests.test_reliability import write_config as write_reliability_config

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
        ids = set(s.scalars(select(MentionRow.external_id)))
        assert DEMO_PAST <= ids, "every past demo post is stored"
        assert "d009" not in ids and "d010" not in ids, "excluded and own-account posts are not"
        cases = count(store, Case)
        assert cases >= 8, "the demo's complaints open cases"
        assert s.get(SourceState, "demo").status == "ok"
    before = count(store, MentionRow)
    runner.run_once()
    assert count(store, MentionRow) >= before and count(store, Case) >= cases
    with store.session() as s:
        dupes = s.execute(select(MentionRow.external_id, func.count()).group_by(MentionRow.external_id)
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
        assert DEMO_PAST <= set(s.scalars(select(MentionRow.external_id).where(MentionRow.source == "demo")))
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
        post = s.scalars(select(MentionRow).where(MentionRow.source == "community")).one()
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
        assert s.scalar(select(func.count()).select_from(MentionRow)) == 0, "nothing was committed before the kill"
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
        ids = list(s.scalars(select(MentionRow.external_id)))
        assert DEMO_PAST <= set(ids)
        assert len(ids) == len(set(ids))
        assert s.get(SourceState, "demo").cursor["next"] >= len(DEMO_PAST)
    # killed again after the first commit, mid-way through the next poll: still nothing lost or doubled
    kill_between_fetch_and_commit(path, marker)
    with store.session() as s:
        ids2 = list(s.scalars(select(MentionRow.external_id)))
        assert set(ids) <= set(ids2) and len(ids2) == len(set(ids2))
    store.close()


# --- deadlines: no platform holds the runner ------------------------------------------------------


def write_hostile_config(tmp_path: Path, sources: list[str], *, runner: str = "") -> Path:
    return write_reliability_config(tmp_path, f"sqlite:///{tmp_path / 'hearken.db'}", sources, lease=2.0,
                                    runner=runner, name="hostile.yaml")


def test_a_poll_past_its_deadline_is_abandoned_and_what_it_returns_late_is_never_stored(tmp_path, model, monkeypatch,
                                                                                      caplog):
    """The poll fetches in time but then hangs (the failpoint holds it 2.5 s) past its 1 s deadline: the
    source is failing with the reason at once, and when the poll goes on it stores nothing."""
    with HostileServer() as srv:
        srv.serve("/posts.json", Json({"latest_posts": [discourse_post(7, "Northwind cut my line")]}))
        path = write_hostile_config(tmp_path, [f"{{type: discourse, name: community, base_url: '{srv.url}', "
                                               "poll_deadline_seconds: 1}"])
        cfg = load_config(path)
        store = connect(cfg.database_url())
        marker = tmp_path / "fetched"
        monkeypatch.setenv("HEARKEN_FAILPOINT", f"before-commit:{marker}:2.5")
        caplog.set_level(logging.INFO, logger="desk")
        runner = Runner(cfg, store, model_loader=lambda: model)
        started = time.monotonic()
        runner.run_once()
        assert time.monotonic() - started < 2.4, "run_once gave the poll up at its deadline, not when it ended"
        assert marker.exists(), "the poll had fetched the page"
        with store.session() as s:
            st = s.get(SourceState, "community")
            assert st.status == "failing" and st.consecutive_failures == 1
            assert "longer than its 1s deadline (poll_deadline_seconds) and was abandoned" in st.status_reason
        [late] = [t for t in threading.enumerate() if t.name == "poll-community"]
        late.join(timeout=10)
        assert not late.is_alive()
        with store.session() as s:
            assert s.scalar(select(func.count()).select_from(MentionRow)) == 0, "the late result was not stored"
            st = s.get(SourceState, "community")
            assert st.cursor is None and st.status == "failing" and st.consecutive_failures == 1
        assert any("what it returned is dropped" in r.getMessage() for r in caplog.records)
        store.close()


def test_eight_hanging_platforms_stop_neither_the_other_sources_nor_sigterm(tmp_path):
    """Eight sources whose platform accepts the request and never answers (deadlines far away), beside
    the demo source: the demo keeps polling while all eight hang, and SIGTERM stops the runner within
    runner.shutdown_seconds, abandoning the eight and giving every lease back."""
    with HostileServer() as srv:
        sources = ["{type: demo, name: demo, interval_seconds: 0.5}"]
        for i in range(8):
            srv.serve(f"/f{i}/posts.json", Stall() if i % 2 else Drip(every=1))
            sources.append(f"{{type: discourse, name: slow{i}, base_url: '{srv.url}/f{i}', interval_seconds: 1, "
                           "poll_deadline_seconds: 600, request_deadline_seconds: 600}")
        path = write_hostile_config(tmp_path, sources, runner="shutdown_seconds: 3")
        store = connect(load_config(path).database_url())
        proc = _hearken("run", "--config", str(path))
        try:
            _wait_for(lambda: len({r.path for r in srv.requests}) == 8, what="all eight slow platforms to be asked")
            with store.session() as s:
                before = s.get(SourceState, "demo").last_success_at
            _wait_for(lambda: state_of(store, "demo").last_success_at > before, timeout=15,
                      what="the demo source to poll again while eight polls hang")
            sent = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=30)  # (its output is read, so not sigterm() of test_reliability)
            took = time.monotonic() - sent
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 0, out
        assert took < 3 + 1.0, f"SIGTERM took {took:.1f}s with runner.shutdown_seconds: 3\n{out}"
        assert "abandoned 8 poll(s) still running" in out, out
        with store.session() as s:
            assert all(st.lease_owner is None for st in s.scalars(select(SourceState))), "every lease given back"
            assert s.get(SourceState, "demo").status == "ok"
        store.close()


def state_of(store, name: str) -> SourceState:
    with store.session() as s:
        return s.get(SourceState, name)


def test_the_banner_names_a_runner_gone_quiet_and_a_database_outage_just_over(tmp_path):
    """What the dashboard's banner draws from `runners`: a runner that stopped writing its heartbeat without
    having stopped (it cannot write to the database, or died), and for a while a runner whose outage ended;
    never a runner that stopped properly."""
    from datetime import timedelta

    from desk.notify.health import runner_trouble
    from desk.store.models import RunnerState

    cfg = load_config(write_config(tmp_path))
    store = connect(cfg.database_url())
    now = datetime.now(timezone.utc)
    outage = ("the runner's schedule could not use the database for 35s, from 2026-12-01 10:00:00 UTC (2 failed "
              "tries): OperationalError: database is locked")
    with store.session() as s:
        s.add(RunnerState(owner="a:1:quiet", host="a", pid=1, started_at=now - timedelta(hours=1),
                          seen_at=now - timedelta(minutes=3)))
        s.add(RunnerState(owner="b:2:back", host="b", pid=2, started_at=now - timedelta(hours=1), seen_at=now,
                          outage=outage, outage_ended_at=now - timedelta(minutes=2)))
        s.add(RunnerState(owner="c:3:gone", host="c", pid=3, started_at=now - timedelta(hours=2),
                          seen_at=now - timedelta(hours=1), stopped_at=now - timedelta(hours=1)))
    quiet, back = runner_trouble(store, cfg, now=now)
    assert quiet.name == "a:1:quiet" and "has not checked in for 3m" in quiet.headline
    assert "'hearken run' is running on a" in quiet.fix
    assert back.name == "b:2:back" and "could not use the database" in back.headline and back.detail == outage
    later = now + timedelta(minutes=20)
    with store.session() as s:
        s.get(RunnerState, "b:2:back").seen_at = later  # it went on checking in
    assert [t.name for t in runner_trouble(store, cfg, now=later)] == ["a:1:quiet"], "the outage is old news"
    store.close()
