"""Reliability proofs: nothing is lost or stored twice when the runner is killed, a platform misbehaves,
or the SMTP server is down for a while.

Everything here is real: `hearken run` subprocesses killed with SIGKILL, a Discourse stand-in on
127.0.0.1 whose post list keeps growing while the runner polls it, SQLite files and PostgreSQL
(when HEARKEN_TEST_PG_URL is set), the shipped classifier, and an aiosmtpd server.

Nobody recorded a Discourse error page, so the stand-in builds the broken answers itself from what
a web server in trouble sends: bytes that are not JSON, JSON cut off mid-object, an HTML error page
served with 200, a 500, and a 429 with Retry-After.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select

from desk.notify import alerts
from desk.notify import mailer, outbox
from desk.config.schema import load_config
from desk.store.db import connect
from desk.store.models import Case, Classification, MentionRow, Outbox, SourceState
from desk.intake.runner import Runner
from tests.hostile import Drip, Flood, HostileServer, Redirect, SmtpTarpit, Stall
from tests.test_alerts_support import SmtpServer, free_port, make_cfg

ROOT = Path(__file__).resolve().parent.parent
UTC = dt.timezone.utc

COMPLAINTS = [
    "Northwind broadband has been down since this morning and support hangs up on me.",
    "Third bill from Northwind this month with a charge I never agreed to. Refund it.",
    "Northwind engineer never turned up, I took a day off work for nothing.",
    "Is anyone else on Northwind getting 2 Mbps in the evenings? Unusable.",
]
NEUTRAL = [
    "Does Northwind offer a static IP on the home plan?",
    "Thanks Northwind, the new router is great.",
    "Moving house next month, how do I take my Northwind line with me?",
]


# --- a Discourse stand-in whose forums keep publishing -------------------------------------------


@dataclass
class Forum:
    name: str
    topic_base: int
    posts: list[dict] = field(default_factory=list)
    mode: str = "ok"  # ok, garbage, truncated, html, wrong_shape, 500, 429
    delay: float = 0.0  # seconds each answer takes
    inflight: int = 0
    requests: int = 0
    started: list[float] = field(default_factory=list)  # time.time() of each request's arrival
    overlaps: list[float] = field(default_factory=list)  # when a request arrived while another was in flight


class Platform:
    """A real HTTP server on 127.0.0.1 serving Discourse's /posts.json for several forums, /f/<name>/...

    Post ids grow across all forums; each forum uses its own topic ids, so external ids never clash.
    `published(name)` is the ground truth a test compares the database with.
    """

    PAGE = 20

    def __init__(self) -> None:
        self.forums: dict[str, Forum] = {}
        self.lock = threading.Lock()
        self.next_id = 1000
        self.rng = random.Random(7)
        self._stop_publishing = threading.Event()
        self._publisher: threading.Thread | None = None
        platform = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                parts = urlsplit(self.path)
                bits = parts.path.strip("/").split("/")
                forum = platform.forums.get(bits[1]) if len(bits) == 3 and bits[0] == "f" else None
                if forum is None or bits[2] != "posts.json":
                    return self._send(404, b'{"errors": ["not found"]}')
                with platform.lock:
                    forum.requests += 1
                    forum.started.append(time.time())
                    forum.inflight += 1
                    if forum.inflight > 1:
                        forum.overlaps.append(time.time())
                try:
                    if forum.delay:
                        time.sleep(forum.delay)
                    before = parse_qs(parts.query).get("before")
                    self._answer(forum, int(before[0]) if before else None)
                finally:
                    with platform.lock:
                        forum.inflight -= 1

            def _answer(self, forum: Forum, before: int | None) -> None:
                mode = forum.mode
                if mode == "500":
                    return self._send(500, b"Internal Server Error", "text/plain")
                if mode == "429":
                    return self._send(429, b'{"errors": ["slow down"], "error_type": "rate_limit"}',
                                      headers={"Retry-After": "1"})
                if mode == "html":
                    return self._send(200, b"<!DOCTYPE html><html><body><h1>Forum under maintenance</h1></body></html>",
                                      "text/html; charset=utf-8")
                if mode == "garbage":
                    return self._send(200, bytes(range(256)) * 4)
                with platform.lock:
                    page = sorted((p for p in forum.posts if before is None or p["id"] < before),
                                  key=lambda p: p["id"], reverse=True)[: platform.PAGE]
                body = json.dumps({"latest_posts": page}).encode()
                if mode == "truncated":
                    body = body[: len(body) // 2]
                if mode == "wrong_shape":
                    body = json.dumps({"latest_posts": "maintenance"}).encode()
                self._send(200, body)

            def _send(self, status: int, body: bytes, ctype: str = "application/json",
                      headers: dict[str, str] | None = None) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(body)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the runner was killed mid-request

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def url(self, name: str) -> str:
        return f"http://{self.host}/f/{name}"

    def add_forum(self, name: str, initial: int = 5) -> Forum:
        forum = self.forums[name] = Forum(name, topic_base=(len(self.forums) + 1) * 100_000)
        self.publish(name, initial)
        return forum

    def publish(self, name: str, n: int = 1) -> None:
        forum = self.forums[name]
        with self.lock:
            for _ in range(n):
                self.next_id += 1
                topics = {p["topic_id"] for p in forum.posts}
                if not topics or self.rng.random() < 0.3:
                    topic, number = forum.topic_base + len(topics) + 1, 1
                else:
                    topic = self.rng.choice(sorted(topics))
                    number = 1 + max(p["post_number"] for p in forum.posts if p["topic_id"] == topic)
                text = self.rng.choice(COMPLAINTS if self.rng.random() < 0.6 else NEUTRAL)
                forum.posts.append({
                    "id": self.next_id, "username": f"user{self.rng.randrange(500)}",
                    "created_at": dt.datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                    "post_number": number, "reply_to_post_number": None if number == 1 else 1,
                    "topic_id": topic, "topic_slug": f"topic-{topic}", "topic_title": f"Northwind topic {topic}",
                    "post_type": 1, "raw": f"{text} (post {self.next_id})", "cooked": f"<p>{text}</p>",
                })

    def published(self, name: str) -> set[str]:
        """External ids of every post the forum has published, as Hearken names them."""
        with self.lock:
            return {f"{self.host}/t/{p['topic_id']}/{p['post_number']}" for p in self.forums[name].posts}

    def newest_id(self, name: str) -> int:
        with self.lock:
            return max(p["id"] for p in self.forums[name].posts)

    def start_publishing(self, names: list[str], per_second: float) -> None:
        def loop() -> None:
            while not self._stop_publishing.wait(1 / per_second):
                for n in names:
                    self.publish(n)

        self._stop_publishing.clear()
        self._publisher = threading.Thread(target=loop, daemon=True)
        self._publisher.start()

    def stop_publishing(self) -> None:
        self._stop_publishing.set()
        if self._publisher is not None:
            self._publisher.join(timeout=5)

    def close(self) -> None:
        self.stop_publishing()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def platform():
    p = Platform()
    yield p
    p.close()


# --- helpers ------------------------------------------------------------------------------


def write_config(tmp_path: Path, db_url: str, sources: list[str], *, lease: float = 1.0, extra: str = "",
                 name: str = "hearken.yaml", runner: str = "", alerts: str = "{enabled: false}",
                 backoff: float = 2) -> Path:
    """A config for these tests; `runner` adds keys to runner: ("shutdown_seconds: 3"), `alerts` replaces alerts:,
    `backoff` is runner.max_backoff_seconds (the longest a failing source waits)."""
    path = tmp_path / name
    src = "\n".join(f"  - {s}" for s in sources)
    path.write_text(f"""\
brand: {{terms: ["Northwind"]}}
accounts: {{discourse: [northwind_team]}}
sources:
{src}
team:
  - {{name: Morgan Manager, email: morgan@example.com, role: manager}}
database: {{url: "{db_url}"}}
alerts: {alerts}
runner: {{lease_seconds: {lease}, max_backoff_seconds: {backoff:g}, jitter: 0.1{", " + runner if runner else ""}}}
{extra}""")
    return path


def discourse_source(platform: Platform, name: str, interval: float = 0.3) -> str:
    return f"{{type: discourse, name: {name}, base_url: '{platform.url(name)}', interval_seconds: {interval}}}"


def hearken(*args: str, env: dict | None = None, log: Path | None = None) -> subprocess.Popen:
    e = dict(os.environ)
    e.update(env or {})
    out = open(log, "ab") if log else subprocess.DEVNULL
    return subprocess.Popen([sys.executable, "-m", "desk.cli", *args], cwd=ROOT, env=e,
                            stdout=out, stderr=subprocess.STDOUT)


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def state(store, name: str) -> SourceState | None:
    with store.session() as s:
        return s.get(SourceState, name)


def last_id(store, name: str) -> int | None:
    st = state(store, name)
    return (((st.cursor or {}).get("latest") or {}).get("last_id")) if st else None


def stored_ids(store, source: str) -> list[str]:
    with store.session() as s:
        return list(s.scalars(select(MentionRow.external_id).where(MentionRow.source == source)))


def unclassified(store) -> int:
    with store.session() as s:
        return s.scalar(select(func.count()).select_from(MentionRow).where(MentionRow.classified.is_(False)))


def sigterm(proc: subprocess.Popen) -> tuple[int, float]:
    """Send SIGTERM; (exit code, seconds until the process exited)."""
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=30)
    return code, time.monotonic() - sent


def stop(proc: subprocess.Popen) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


# --- kill -9 in a loop of polls ---------------------------------------------------------------


def test_kill_9_at_random_points_loses_no_post_and_stores_none_twice(tmp_path, db_url, platform):
    """A runner killed again and again (mid-fetch, between fetch and commit, mid-classification, at start-up)
    while two forums keep publishing: afterwards every published post is stored exactly once, every
    cursor has reached the newest post, and every stored post was classified once."""
    seed = int(os.environ.get("HEARKEN_KILL_SEED", random.randrange(1_000_000)))
    rng = random.Random(seed)
    why = f"(kill seed {seed}; rerun with HEARKEN_KILL_SEED={seed})"
    names = ["alpha", "beta"]
    for n in names:
        platform.add_forum(n)
    path = write_config(tmp_path, db_url, [discourse_source(platform, n) for n in names])
    log = tmp_path / "runner.log"
    store = connect(db_url)
    try:
        # The first poll of a forum reads one page and no further back (Hearken does not backfill), so the
        # forums start publishing once each has a cursor; from then on nothing may be missed.
        first = hearken("run", "--config", str(path), log=log)
        wait_for(lambda: all(last_id(store, n) for n in names), 60, "the first polls to commit")
        platform.start_publishing(names, per_second=6)
        kills = between_fetch_and_commit = 0
        proc = first
        for i in range(7):
            marker = tmp_path / f"fetched-{i}"
            if i % 3 == 2:  # the one spot a random kill rarely hits: fetched, not yet committed
                proc = hearken("run", "--config", str(path), log=log,
                               env={"HEARKEN_FAILPOINT": f"before-commit:{marker}"})
                wait_for(marker.exists, 30, f"run {i} to fetch a poll {why}")
                between_fetch_and_commit += 1
            elif i > 0:
                proc = hearken("run", "--config", str(path), log=log)
                time.sleep(rng.uniform(0.2, 2.5))
            else:
                time.sleep(rng.uniform(0.2, 1.5))
            assert proc.poll() is None, f"run {i} died on its own {why}: {log.read_text()[-2000:]}"
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            kills += 1
        platform.stop_publishing()

        final = hearken("run", "--config", str(path), log=log)
        try:
            wait_for(lambda: all(last_id(store, n) == platform.newest_id(n) for n in names), 60,
                     f"the last runner to catch up {why}")
            wait_for(lambda: unclassified(store) == 0, 30, "classification")
        finally:
            assert stop(final) == 0, log.read_text()[-2000:]

        assert kills == 7 and between_fetch_and_commit == 2
        for n in names:
            ids = stored_ids(store, n)
            published = platform.published(n)
            assert len(ids) == len(set(ids)), f"{n}: a post stored twice {why}"
            missing = published - set(ids)
            assert not missing, f"{n}: {len(missing)} published post(s) never stored {why}: {sorted(missing)[:5]}"
            assert set(ids) == published, f"{n}: stored posts the forum never published {why}"
            assert len(published) > 30, "the forums published throughout the kills"
        with store.session() as s:
            mentions = s.scalar(select(func.count()).select_from(MentionRow))
            assert s.scalar(select(func.count()).select_from(Classification)) == mentions, why
            # one customer's complaints in one thread make one case, whichever run classified them
            doubled = s.execute(select(Case.thread_id, MentionRow.author, func.count())
                                .join(MentionRow, MentionRow.id == Case.mention_id)
                                .group_by(Case.thread_id, MentionRow.author).having(func.count() > 1)).all()
            assert doubled == [], f"a customer got two cases in one thread {why}: {doubled[:3]}"
    finally:
        platform.stop_publishing()
        store.close()


# --- a platform that misbehaves --------------------------------------------------------------


BROKEN = {
    # mode: what the Sources page must say about it
    "garbage": ["not JSON", "application/json"],
    "truncated": ["not JSON"],
    "html": ["not JSON", "text/html"],
    "wrong_shape": ["no latest_posts list"],
    "500": ["HTTP 500"],
    "429": ["rate-limited", "429", "wait 1s"],
}


def test_a_misbehaving_platform_marks_its_source_failing_with_the_reason_and_it_recovers(tmp_path, db_url, platform,
                                                                                        model):
    """Each kind of broken answer: the source is failing with a reason naming what was wrong and where,
    nothing is stored from it, the healthy forum's posts keep arriving, and the source recovers and
    catches up (nothing published meanwhile is lost) once the platform answers properly again."""
    platform.add_forum("good")
    bad = platform.add_forum("bad")
    cfg = load_config(write_config(tmp_path, db_url, [discourse_source(platform, "good"),
                                                      discourse_source(platform, "bad")]))
    store = connect(db_url)
    runner = Runner(cfg, store, model_loader=lambda: model)
    runner.run_once()
    assert state(store, "bad").status == "ok"
    for mode, words in BROKEN.items():
        bad.mode = mode
        platform.publish("good", 2)
        platform.publish("bad", 2)  # published while the forum answers badly: must arrive later
        before = len(stored_ids(store, "bad"))
        runner.run_once()
        st = state(store, "bad")
        assert st.status == "failing", (mode, st.status, st.status_reason)
        for w in words:
            assert w in st.status_reason, f"{mode}: {w!r} not in {st.status_reason!r}"
        assert platform.url("bad") in st.status_reason, f"{mode}: the reason names the address: {st.status_reason!r}"
        assert st.backoff_until is not None and st.backoff_until > st.last_error_at
        if mode == "429":
            waited = (st.backoff_until - st.last_error_at).total_seconds()
            assert 0.9 <= waited <= 1.5, f"Retry-After: 1 is honoured, not {waited}s"
        assert len(stored_ids(store, "bad")) == before, f"{mode}: nothing stored from a broken answer"
        good = state(store, "good")
        assert good.status == "ok" and set(stored_ids(store, "good")) == platform.published("good"), mode
        bad.mode = "ok"
        runner.run_once()
        st = state(store, "bad")
        assert st.status == "ok" and st.consecutive_failures == 0 and st.status_reason is None, mode
        assert set(stored_ids(store, "bad")) == platform.published("bad"), f"{mode}: the backlog arrived on recovery"
    store.close()


def test_a_failing_platform_never_stops_the_other_sources_of_a_running_runner(tmp_path, platform):
    """A real `hearken run` process: while one forum cycles through every kind of broken answer (and is
    slow besides), the other two keep being polled on their interval; the broken one recovers after.
    (The sources' threads do not depend on the database, so this one runs on SQLite only.)"""
    db_url = f"sqlite:///{tmp_path / 'hearken.db'}"
    names = ["good1", "good2", "bad"]
    for n in names:
        platform.add_forum(n)
    path = write_config(tmp_path, db_url, [discourse_source(platform, n) for n in names])
    log = tmp_path / "runner.log"
    store = connect(db_url)
    proc = hearken("run", "--config", str(path), log=log)
    try:
        wait_for(lambda: all(last_id(store, n) for n in names), 60, "the first polls")
        platform.start_publishing(names, per_second=4)
        bad = platform.forums["bad"]
        bad.delay = 0.5
        seen_failing = set()
        for mode in BROKEN:
            bad.mode = mode
            target = platform.newest_id("good1"), platform.newest_id("good2")
            deadline = time.monotonic() + 1.6
            while time.monotonic() < deadline:
                st = state(store, "bad")
                if st.status == "failing":
                    seen_failing.add(mode)
                time.sleep(0.1)
            # the healthy forums caught up with what was published while this mode was on
            assert (last_id(store, "good1") or 0) >= target[0] and (last_id(store, "good2") or 0) >= target[1], \
                f"the healthy sources stalled while the other answered {mode!r}"
        assert len(seen_failing) >= len(BROKEN) - 1, f"the failing status showed for {sorted(seen_failing)}"
        bad.mode, bad.delay = "ok", 0.0
        platform.stop_publishing()
        wait_for(lambda: state(store, "bad").status == "ok" and all(
            last_id(store, n) == platform.newest_id(n) for n in names), 30, "the broken forum to recover")
        assert proc.poll() is None, "the runner is still running"
    finally:
        platform.stop_publishing()
        code = stop(proc)
    assert code == 0, log.read_text()[-2000:]
    for n in names:
        ids = stored_ids(store, n)
        assert len(ids) == len(set(ids)) and set(ids) == platform.published(n), n
    store.close()


# --- SMTP down for a while ---------------------------------------------------------------


def test_smtp_down_for_a_while_then_up_delivers_every_alert_exactly_once(store):
    """Alerts keep being written while the SMTP server is down for 40 minutes, up, down again, then up;
    two outbox workers send concurrently the whole time. Every alert arrives exactly once."""
    port = free_port()
    cfg = make_cfg(port)
    server = SmtpServer(port=port)
    t0 = dt.datetime.now(UTC).replace(microsecond=0)
    queued: list[str] = []

    def write_alerts(minute: int, n: int) -> None:
        with store.session() as s:
            for i in range(n):
                key = f"reliability:{minute}:{i}"
                outbox.queue(s, kind="test", dedupe_key=key, recipients=["morgan@example.com"],
                             subject=f"Alert {key}", body_text=f"alert {key}", now=t0 + dt.timedelta(minutes=minute))
                queued.append(f"Alert {key}")

    def work(now: dt.datetime) -> None:
        errors: list[BaseException] = []

        def one(worker: str) -> None:
            try:
                mailer.send_pending(store, cfg, now=now, worker=worker, limit=7)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=one, args=(w,)) for w in ("worker-a", "worker-b")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not errors, errors

    up_windows = [(40, 43), (50, 10_000)]  # minutes when the server answers: a short blip, then for good
    try:
        for minute in range(0, 240):
            running = server.controller is not None
            should = any(a <= minute < b for a, b in up_windows)
            if should and not running:
                server.start()
            elif running and not should:
                server.stop()
            if minute < 30 and minute % 5 == 0:
                write_alerts(minute, 4)
            if minute == 41:
                write_alerts(minute, 3)  # during the blip
            work(t0 + dt.timedelta(minutes=minute, seconds=1))
    finally:
        server.stop()

    subjects = [m.message["Subject"] for m in server.messages]
    assert sorted(subjects) == sorted(queued), "every alert arrived, none twice"
    assert len(set(subjects)) == len(subjects) == len(queued) == 27
    with store.session() as s:
        statuses = s.execute(select(Outbox.status, func.count()).group_by(Outbox.status)).all()
    assert dict(statuses) == {"sent": 27}


# --- a hostile internet: no source stops the rest ------------------------------------------------

# source name -> (behaviour on tests/hostile.py, words its failure reason must hold)
HOSTILE = {
    "drip1": (lambda other: Drip(every=1.0), "took longer than 2s for one request"),
    "drip2": (lambda other: Drip(every=1.0), "took longer than 2s for one request"),
    "drip_headers": (lambda other: Drip(every=1.0, in_headers=True), "took longer than 2s for one request"),
    "stall1": (lambda other: Stall(), "took longer than 2s for one request"),
    "stall2": (lambda other: Stall(after_headers=True), "took longer than 2s for one request"),
    "flood1": (lambda other: Flood(), "more than 4,000,000 bytes in one answer"),
    "flood2": (lambda other: Flood(chunk=1024 * 1024), "more than 4,000,000 bytes in one answer"),
    "elsewhere": (lambda other: Redirect(f"{other}/posts.json"), "which was not followed: it is another site"),
    "private": (lambda other: Redirect("http://10.255.255.1/posts.json"), "which was not followed"),
    "file": (lambda other: Redirect("file:///etc/passwd"), "a file: address is never followed"),
}
LIMITS = "request_deadline_seconds: 2, poll_deadline_seconds: 4, max_response_bytes: 4000000"


def rss_kib(pid: int) -> int:
    """The process's resident memory now (VmRSS), KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def hostile_sources(srv: HostileServer, other: HostileServer) -> list[str]:
    out = []
    for name, (make, _) in HOSTILE.items():
        srv.serve(f"/{name}/posts.json", make(other.url))
        out.append(f"{{type: discourse, name: {name}, base_url: '{srv.url}/{name}', interval_seconds: 0.5, {LIMITS}}}")
    return out


def test_ten_hostile_platforms_never_stop_the_healthy_ones_nor_grow_the_runner(tmp_path, platform):
    """A real `hearken run` polls two healthy forums that keep publishing and ten hostile ones (dripping,
    stalling, flooding, redirecting away). The healthy forums' posts are all stored as they come; each
    hostile source shows as failing with a reason naming what its platform did; the runner's memory stays
    flat however often the floods are read (before the caps it grew to 1.5 GB in 5 s); SIGTERM stops it
    within runner.shutdown_seconds."""
    db_url = f"sqlite:///{tmp_path / 'hearken.db'}"
    good = ["good1", "good2"]
    for n in good:
        platform.add_forum(n)
    with HostileServer() as srv, HostileServer() as other:
        path = write_config(tmp_path, db_url, [discourse_source(platform, n) for n in good]
                            + hostile_sources(srv, other), runner="shutdown_seconds: 5")
        log = tmp_path / "runner.log"
        store = connect(db_url)
        proc = hearken("run", "--config", str(path), log=log)
        try:
            wait_for(lambda: all(last_id(store, n) for n in good), 60, "the healthy forums' first polls")
            platform.start_publishing(good, per_second=4)
            wait_for(lambda: all("bytes" in (state(store, f).status_reason or "") for f in ("flood1", "flood2")), 30,
                     "the floods to be read once")
            baseline = rss_kib(proc.pid)
            samples, end = [], time.monotonic() + 12
            while time.monotonic() < end:  # the floods are read again every couple of seconds meanwhile
                samples.append(rss_kib(proc.pid))
                time.sleep(0.25)
            floods = len(srv.seen("/flood1/posts.json")) + len(srv.seen("/flood2/posts.json"))
            platform.stop_publishing()
            wait_for(lambda: all(last_id(store, n) == platform.newest_id(n) for n in good), 30,
                     "the healthy forums to have every post stored")
            for name, (_, words) in HOSTILE.items():
                st = state(store, name)
                assert st.status == "failing" and words in (st.status_reason or ""), (name, st.status, st.status_reason)
                assert f"{srv.url}/{name}/posts.json" in st.status_reason, "the reason names the address"
                assert stored_ids(store, name) == []
            assert other.requests == [], "no redirect was followed to another origin"
            assert proc.poll() is None, "the runner is still running"
            code, took = sigterm(proc)
        finally:
            platform.stop_publishing()
            if proc.poll() is None:
                proc.kill()
        assert code == 0, log.read_text()[-3000:]
        grew = (max(samples) - baseline) / 1024
        assert floods >= 6, f"the floods were read {floods} times"
        assert grew < 100, f"the runner grew by {grew:.0f} MiB over {floods} floods (from {baseline / 1024:.0f} MiB)"
        assert took < 5 + 1.0, f"SIGTERM took {took:.1f}s with runner.shutdown_seconds: 5"
        for n in good:
            ids = stored_ids(store, n)
            assert len(ids) == len(set(ids)) and set(ids) == platform.published(n), n
            assert len(ids) > 30
        with store.session() as s:
            assert all(st.lease_owner is None for st in s.scalars(select(SourceState)))
        store.close()


def test_a_stalled_smtp_server_holds_up_no_poll_and_a_bad_alert_row_holds_up_no_other(tmp_path, platform):
    """An SMTP server that sends `220-` every half second and never finishes its greeting: a real
    `hearken run` keeps polling and storing, each SMTP session is cut at its deadline and the Sources
    page's outbox health says so, and SIGTERM stops it in time. With a working server afterwards, every
    alert arrives exactly once while the row whose subject would inject a header is failed with the
    reason instead of blocking the queue (0 of 6 delivered in 20 minutes before)."""
    db_url = f"sqlite:///{tmp_path / 'hearken.db'}"
    platform.add_forum("good")
    store = connect(db_url)
    with store.session() as s:
        s.add(Outbox(kind="severe_complaint", dedupe_key="raw:evil", recipients=["morgan@example.com"],
                     subject="Complaint from evil\r\nBcc: x@y.example", body_text="quoted post", status="pending",
                     attempts=0, created_at=dt.datetime.now(UTC), next_attempt_at=dt.datetime.now(UTC)))
        for i in range(6):
            outbox.queue(s, kind="test", dedupe_key=f"good:{i}", recipients=["morgan@example.com"],
                         subject=f"Alert {i}", body_text=f"alert {i}")
    log = tmp_path / "runner.log"
    with SmtpTarpit(every=0.5) as tarpit:
        smtp = (f"{{enabled: true, smtp: {{host: 127.0.0.1, port: {tarpit.port}, timeout_seconds: 5, "
                "session_deadline_seconds: 2}}")
        path = write_config(tmp_path, db_url, [discourse_source(platform, "good")], alerts=smtp,
                            runner="shutdown_seconds: 4")
        proc = hearken("run", "--config", str(path), log=log)
        try:
            wait_for(lambda: last_id(store, "good"), 60, "the first poll")
            platform.start_publishing(["good"], per_second=4)
            wait_for(lambda: "deadline" in str((outbox.outbox_health(store)["last_error"] or {}).get("error")), 30,
                     "an SMTP session to be cut at its deadline")
            time.sleep(3)
            platform.stop_publishing()
            wait_for(lambda: last_id(store, "good") == platform.newest_id("good"), 20,
                     "every post to be stored while the SMTP server stalls")
            assert tarpit.connections >= 1
            code, took = sigterm(proc)
        finally:
            platform.stop_publishing()
            if proc.poll() is None:
                proc.kill()
    assert code == 0 and took < 4 + 1.0, (took, log.read_text()[-3000:])
    assert set(stored_ids(store, "good")) == platform.published("good")
    health = outbox.outbox_health(store)
    assert health["sent"] == 0 and health["failed"] == 1 and health["pending"] == 6, health
    assert "passed its 2s deadline" in health["last_error"]["error"] or \
        "could not be built" in health["last_error"]["error"], health["last_error"]

    with store.session() as s:  # five minutes later: backoffs and any claim cut short by the stop have run out
        later = dt.datetime.now(UTC) - dt.timedelta(seconds=1)
        s.execute(Outbox.__table__.update().where(Outbox.status.in_(["pending", "sending"]))
                  .values(next_attempt_at=later, claimed_until=later))
    server = SmtpServer().start()
    try:
        path = write_config(tmp_path, db_url, [discourse_source(platform, "good")],
                            alerts=f"{{enabled: true, smtp: {{host: 127.0.0.1, port: {server.port}}}}}")
        proc = hearken("run", "--config", str(path), log=log)
        try:
            wait_for(lambda: len(server.messages) >= 6, 60, "the six alerts to arrive")
            time.sleep(1)
        finally:
            assert stop(proc) == 0, log.read_text()[-3000:]
    finally:
        server.stop()
    subjects = sorted(m.message["Subject"] for m in server.messages)
    assert subjects == [f"Alert {i}" for i in range(6)], "each good alert once, the bad one never"
    assert all("x@y.example" not in m.rcpt_tos for m in server.messages)
    with store.session() as s:
        bad = s.scalar(select(Outbox).where(Outbox.dedupe_key == "raw:evil"))
    assert bad.status == "failed" and "could not be built" in bad.last_error, bad.last_error
    health = outbox.outbox_health(store)
    assert health["sent"] == 6 and health["failed"] == 1 and health["last_error"]["id"] == bad.id
    store.close()


def test_a_runner_stuck_in_an_abandoned_poll_lets_another_runner_take_the_source(tmp_path, db_url, platform):
    """Runner A fetches a forum and then hangs (the failpoint holds it 40 s) past the poll's 2 s deadline.
    The poll is abandoned and its lease no longer renewed, so runner B takes the source over once the lease
    runs out and stores every post; A's late result is dropped, so nothing is stored twice."""
    platform.add_forum("stuck", initial=5)
    source = f"{{type: discourse, name: stuck, base_url: '{platform.url('stuck')}', interval_seconds: 0.5, " \
             "poll_deadline_seconds: 2}"
    path = write_config(tmp_path, db_url, [source], lease=1.0)
    log = tmp_path / "runners.log"
    store = connect(db_url)
    marker = tmp_path / "a-fetched"
    a = hearken("run", "--config", str(path), log=log, env={"HEARKEN_FAILPOINT": f"before-commit:{marker}:40"})
    b = None
    try:
        wait_for(marker.exists, 60, "runner A to fetch")
        wait_for(lambda: "abandoned" in (state(store, "stuck").status_reason or ""), 10, "A's poll to be abandoned")
        b = hearken("run", "--config", str(path), log=log)
        wait_for(lambda: (state(store, "stuck").lease_owner or "").split(":")[1:2] == [str(b.pid)], 60,
                 "runner B to take the source over")
        wait_for(lambda: set(stored_ids(store, "stuck")) == platform.published("stuck"), 30, "B to store every post")
        assert state(store, "stuck").status == "ok"
    finally:
        for p in (a, b):
            if p is not None:
                assert stop(p) == 0, log.read_text()[-3000:]
    ids = stored_ids(store, "stuck")
    assert len(ids) == len(set(ids)) == 5
    store.close()
