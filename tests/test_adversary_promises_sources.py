"""Adversary: ways a hostile or broken platform still breaks "nothing lost", "no source stops or slows the
others" and "every failure is loud", found against real `hearken run` processes.

Each test is one finding, marked xfail(strict) with the reason until it is fixed: it fails today for that
reason, and turns red (XPASS) once the fix lands, so the marker comes off. Every platform here is a real
HTTP server on 127.0.0.1 (tests/hostile.py); what is asserted is what a person would see: the source's
state on the Sources page, the mentions in the queue, the runner's memory, the requests the platform got.
"""

from __future__ import annotations

import importlib.util
import platform
import sys
import time
from pathlib import Path
from datetime import datetime, timedelta, timezone

import pytest

from tests.adversary import (Db, discourse, gzip_bomb, hearken, proc_kib, seconds_to_exit_after_sigterm, stop, wait_for,
                              write_config)
from tests.hostile import Body, HostileServer, Json, discourse_post

UTC = timezone.utc


@pytest.fixture
def srv():
    with HostileServer() as s:
        yield s


def _latest(posts):
    """/posts.json of these posts, newest first, as Discourse pages it (`before` a post id)."""
    def page(ex):
        before = int(ex.request.arg("before") or 0) or None
        shown = [p for p in sorted(posts, key=lambda p: -p["id"]) if before is None or p["id"] < before]
        return {"latest_posts": shown[:20]}
    return Json(page)


def _after_a_refusal(tmp_path, srv, path, db_url, route, source, env=None):
    """Run `hearken run` on `path` until its first request to `route`, then 5 s more: (the source's row, requests)."""
    proc = hearken("run", "--config", str(path), env=env, log=tmp_path / "runner.log")
    db = Db(db_url)
    try:
        wait_for(lambda: len(srv.seen(route)) >= 1, 60, "the first poll")
        time.sleep(5)
        return db.source(source), len(srv.seen(route))
    finally:
        stop(proc)
        db.close()


def test_a_retry_after_beyond_the_calendar_is_recorded_and_honoured(tmp_path, srv):
    """A platform (or a proxy in front of it) answers 429 with `Retry-After: 1e12`. The runner's
    `now + timedelta(seconds=1e12)` used to overflow inside the poll thread: nothing was recorded (the
    Sources page showed the source as new, no error, no banner) and, with no backoff written, the runner
    asked again on every tick, hammering a platform that asked it to stop. The wait is honoured up to
    runner.max_backoff_seconds, 30 s here, so that "asked again at most once in 5 s" measures the wait
    (with the other tests' 2 s the runner is configured to ask again every 2 s)."""
    srv.serve("/posts.json", Json({"errors": ["slow down"], "error_type": "rate_limit"}, status=429,
                                  headers={"Retry-After": "1e12"}))
    path = write_config(tmp_path, [discourse("limited", srv.url)], backoff=30)
    st, asked = _after_a_refusal(tmp_path, srv, path, f"sqlite:///{tmp_path / 'hearken.db'}", "/posts.json", "limited")
    assert st["status"] == "failing" and "rate-limited" in (st["status_reason"] or ""), \
        f"the Sources page shows {st['status']!r} / {st['status_reason']!r} for a platform answering 429"
    assert asked <= 2, f"the platform asked us to wait and was asked again {asked} times in 5 s"


def test_a_retry_after_of_a_year_holds_the_source_no_longer_than_the_longest_backoff(tmp_path, srv):
    """`Retry-After: 31536000` (a broken CDN, a misread header): the source is put on hold for a year and
    everything posted meanwhile is lost past max_pages when it resumes. A cap (runner.max_backoff_seconds,
    with a note that the platform asked for longer) keeps a person in charge of how long a source sleeps."""
    srv.serve("/posts.json", Json({"errors": ["slow down"]}, status=429, headers={"Retry-After": "31536000"}))
    db_url = f"sqlite:///{tmp_path / 'hearken.db'}"
    path = write_config(tmp_path, [discourse("limited", srv.url)])  # runner.max_backoff_seconds: 2
    proc = hearken("run", "--config", str(path), log=tmp_path / "runner.log")
    db = Db(db_url)
    try:
        st = wait_for(lambda: (s := db.source("limited")) and s["status"] == "failing" and s, 60, "the 429 recorded")
    finally:
        stop(proc)
        db.close()
    until = datetime.fromisoformat(str(st["backoff_until"])).replace(tzinfo=UTC)
    held = until - datetime.now(UTC)
    assert held <= timedelta(seconds=60), f"the source is on hold for {held} (runner.max_backoff_seconds: 2)"
    assert "31,536,000s" in st["status_reason"] and "waiting 2s instead" in st["status_reason"], \
        f"the Sources page does not say what the platform asked and what the runner did: {st['status_reason']!r}"


def test_a_gzip_bomb_costs_the_runner_no_more_than_its_byte_cap(tmp_path, srv):
    """A Discourse answer of a few kB, `Content-Encoding: gzip, gzip`, that inflates to 512 MiB. httpx inflates
    each network read in one call per layer, so a 64 kB read of the outer layer becomes the whole bomb in
    memory before collectors/net/http.py's byte cap is looked at: the runner's peak memory jumps by about twice
    the bomb (the bytearray copy). A 4 GiB bomb is under 10 kB and kills the runner (every source with it).
    The poll did fail with "sent more than 4,000,000 bytes", so the cap looked as if it held. The answer is
    now inflated a piece at a time and counted as it comes (collectors/net/inflate.py)."""
    srv.serve("/posts.json", _latest([discourse_post(1, "Northwind is fine")]))
    db_url = f"sqlite:///{tmp_path / 'hearken.db'}"
    sources = [discourse("good", srv.url), discourse("bomb", srv.url + "/bomb", more="max_response_bytes: 4000000")]
    proc = hearken("run", "--config", str(write_config(tmp_path, sources)), log=tmp_path / "runner.log")
    db = Db(db_url)
    try:
        wait_for(lambda: (db.source("good") or {}).get("status") == "ok", 60, "the healthy source's first poll")
        before = proc_kib(proc.pid, "VmHWM")
        srv.serve("/bomb/posts.json", Body(gzip_bomb(512), content_type="application/json",
                                           headers={"Content-Encoding": "gzip, gzip"}))
        wait_for(lambda: "bytes" in ((db.source("bomb") or {}).get("status_reason") or ""), 60, "the bomb to be read")
        peak = proc_kib(proc.pid, "VmHWM")
    finally:
        stop(proc)
        db.close()
    grew = (peak - before) / 1024
    assert grew < 100, f"the runner's peak memory grew by {grew:.0f} MiB reading one 4 MB-capped answer"


def test_a_forum_whose_post_ids_go_backwards_still_has_its_new_posts_stored(tmp_path, srv):
    """A forum restored from a backup or moved to a new server numbers its posts again from lower ids. The
    collector keeps only posts with an id above the highest it ever saw (`latest.last_id`), so every post
    written after the move is skipped, poll after poll, while the source shows OK and finds "nothing new".
    The same happens after one post with an absurd id (a bug, a hostile entry): everything after it is lost."""
    posts = [discourse_post(5000 + i, f"Northwind outage report {i}", topic=40 + i) for i in range(3)]
    srv.serve("/posts.json", _latest(posts))
    db_url = f"sqlite:///{tmp_path / 'hearken.db'}"
    proc = hearken("run", "--config", str(write_config(tmp_path, [discourse("community", srv.url)])),
                   log=tmp_path / "runner.log")
    db = Db(db_url)
    try:
        wait_for(lambda: len(db.external_ids("community")) == 3, 60, "the first posts to be stored")
        now = datetime.now(UTC)
        moved = [discourse_post(300 + i, f"Northwind still down after the move {i}", topic=70 + i, created_at=now)
                 for i in range(3)]
        srv.serve("/posts.json", _latest(moved))
        polls = len(srv.seen("/posts.json"))
        wait_for(lambda: len(srv.seen("/posts.json")) >= polls + 4, 30, "four more polls")
        stored = db.external_ids("community")
        st = db.source("community")
    finally:
        stop(proc)
        db.close()
    host = srv.url.removeprefix("http://")
    lost = {f"{host}/t/{70 + i}/1" for i in range(3)} - set(stored)
    assert not lost, (f"{len(lost)} complaints posted after the forum's ids went backwards were never stored; "
                      f"the source shows {st['status']!r} ({st['status_reason']!r})")


# --- a database that is locked --------------------------------------------------------------------


def _carries_on(proc, srv, route: str = "/posts.json") -> tuple[bool, int]:
    """After an interruption: is the runner still running, and how many polls did it make in the next 20 s (up to 3)."""
    polls = len(srv.seen(route))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and proc.poll() is None and len(srv.seen(route)) < polls + 3:
        time.sleep(0.2)
    return proc.poll() is None, len(srv.seen(route)) - polls


def test_sigterm_stops_the_runner_in_time_while_the_database_is_locked(tmp_path, srv, db_url):
    """A backup, an `sqlite3` shell, a migration or a stuck dashboard transaction holds the write lock on
    source_state. SIGTERM (a deploy, systemd stopping the service) must still stop the runner within
    runner.shutdown_seconds (3 here), as the README promises "whatever the platforms do". Today it sits in
    the lock: on SQLite it gives up only after the 30 s busy timeout, twice (the claim, then giving the
    leases back); on PostgreSQL it waits for as long as the lock is held."""
    srv.serve("/posts.json", _latest([discourse_post(1, "Northwind is fine")]))
    path = write_config(tmp_path, [discourse("good", srv.url)], db_url=db_url, runner="shutdown_seconds: 3")
    proc = hearken("run", "--config", str(path), log=tmp_path / "runner.log")
    db = Db(db_url)
    try:
        wait_for(lambda: (db.source("good") or {}).get("status") == "ok", 60, "the first poll")
        with db.locked("source_state"):
            time.sleep(1.5)  # the runner's next claim is now waiting on the lock
            took = seconds_to_exit_after_sigterm(proc, 3 + 5)
    finally:
        stop(proc)
        db.close()
    assert took is not None and took < 3 + 1.5, \
        f"the runner was still running {3 + 5}s after SIGTERM (runner.shutdown_seconds: 3) with the database locked"


@pytest.mark.slow
def test_a_database_locked_for_a_while_does_not_kill_the_runner(tmp_path, srv):
    """`sqlite3 var/hearken.db` left open in a transaction, a backup tool, or a dashboard stuck mid-write for
    35 s: `database is locked` escapes the runner's loop and the process exits. Every source stops being
    polled and nothing says why but a traceback in the runner's log; the source rows still read OK. Once
    the lock is gone the runner should carry on (a database error is a failure to record and retry, like a
    platform's)."""
    srv.serve("/posts.json", _latest([discourse_post(1, "Northwind is fine")]))
    db_url = f"sqlite:///{tmp_path / 'hearken.db'}"
    proc = hearken("run", "--config", str(write_config(tmp_path, [discourse("good", srv.url)])),
                   log=tmp_path / "runner.log")
    db = Db(db_url)
    try:
        wait_for(lambda: (db.source("good") or {}).get("status") == "ok", 60, "the first poll")
        with db.locked("source_state"):
            time.sleep(35)
        alive, after = _carries_on(proc, srv)
        runners = db.rows("SELECT outage FROM runners")
    finally:
        stop(proc)
        db.close()
    assert alive, "the runner exited after the database was locked for 35 s: " + \
        (tmp_path / "runner.log").read_text()[-400:]
    assert after >= 3, f"the runner polled {after} times in the 20 s after the lock was released"
    # and it says so where the dashboard's banner reads it, once it can write again
    assert [r["outage"] for r in runners if r["outage"] and "database is locked" in r["outage"]], runners


# --- a thread whose every post is as long as a post may be -----------------------------------------


LONG = " ".join(["Northwind broke the router again and billing will not refund the engineer visit"] * 1200)


def _long_posts(n: int, first_id: int = 100) -> list[dict]:
    """Posts of ~100,000 characters each (the longest a mention keeps): the classifier reads 12 windows of each."""
    now = datetime.now(UTC)
    posts = []
    for i in range(n):
        p = discourse_post(first_id + i, LONG, topic=500 + i, created_at=now)
        p["cooked"] = "<p>long</p>"
        posts.append(p)
    return posts


def _start_with_long_posts(tmp_path, srv, extra_sources=(), runner=""):
    """A runner whose 'long' source, after its first poll, finds 64 posts of 100,000 characters."""
    posts = [discourse_post(1, "Northwind hello")]
    srv.serve("/long/posts.json", _latest(posts))
    db_url = f"sqlite:///{tmp_path / 'hearken.db'}"
    sources = [discourse("long", srv.url + "/long", more="max_response_bytes: 30000000"), *extra_sources]
    proc = hearken("run", "--config", str(write_config(tmp_path, sources, runner=runner)), log=tmp_path / "runner.log")
    db = Db(db_url)
    try:
        wait_for(lambda: (db.source("long") or {}).get("status") == "ok", 60, "the long source's first poll")
        posts.extend(_long_posts(64))
        wait_for(lambda: len(db.external_ids("long")) == 65, 120, "the long posts to be stored")
    except BaseException:
        stop(proc)
        db.close()
        raise
    return proc, db


@pytest.mark.slow
def test_sigterm_stops_the_runner_in_time_while_it_classifies_long_posts(tmp_path, srv):
    """A forum serves 64 posts of 100,000 characters (a spam wave, a pasted log file, a thread whose every post
    is hostile). Each is read in 12 windows, so one batch (classifier.batch_size 64) takes tens of seconds on
    a small machine, and up to four batches run per pass. SIGTERM sets the stop flag, but nothing looks at it
    until the batch is done: the runner exits long after runner.shutdown_seconds (3 here)."""
    proc, db = _start_with_long_posts(tmp_path, srv, runner="shutdown_seconds: 3")
    try:
        time.sleep(1)  # the batch is being scored
        took = seconds_to_exit_after_sigterm(proc, 3 + 7)
    finally:
        stop(proc)
        db.close()
    assert took is not None and took < 3 + 1.5, f"the runner was still running {3 + 7}s after SIGTERM " \
                                                "(runner.shutdown_seconds: 3) while scoring long posts"


@pytest.mark.slow
def test_one_sources_long_posts_do_not_hold_up_the_other_sources_polls(tmp_path, srv):
    """The same 64 long posts on one source; a healthy forum beside it, polled every second. Polls are started
    only from the main loop's tick, between classification batches, so for as long as a batch takes the
    healthy forum is not asked at all, and a complaint posted there waits with it."""
    # topic 2: both forums are on one host, and the long source's first post is topic 1's first, by the same
    # author: one external id, stored once, for whichever source is polled first (the long one then has 64)
    srv.serve("/good/posts.json", _latest([discourse_post(9000, "Northwind is fine", topic=2)]))
    proc, db = _start_with_long_posts(tmp_path, srv, extra_sources=[discourse("good", srv.url + "/good", interval=1)])
    try:
        time.sleep(1)  # the batch is being scored
        before = len(srv.seen("/good/posts.json"))
        time.sleep(10)
        polled = len(srv.seen("/good/posts.json")) - before
    finally:
        stop(proc)
        db.close()
    assert polled >= 5, f"a source polled every second was polled {polled} times in 10 s while another " \
                        "source's posts were scored"


# --- the runner's clock steps back ----------------------------------------------------------------

def _faketime_library() -> Path | None:
    """libfaketime.so.1 as the test extra's `libfaketime` package bundles it (found without importing it)."""
    spec = importlib.util.find_spec("libfaketime")
    if spec is None or not spec.origin:
        return None
    so = Path(spec.origin).parent / "vendor" / "libfaketime" / "src" / "libfaketime.so.1"
    return so if so.is_file() else None


FAKETIME = _faketime_library()


@pytest.mark.slow
@pytest.mark.skipif(FAKETIME is None or not sys.platform.startswith("linux") or platform.machine() != "x86_64",
                    reason="needs the test extra's libfaketime package (pip install -c constraints.txt '.[test]'), "
                           "whose library is built for Linux x86_64, to step the runner's wall clock")
def test_a_runner_whose_clock_steps_back_keeps_polling(tmp_path, srv):
    """A machine that booted with its clock a day fast (no RTC, a VM restored from a snapshot) runs the
    runner; then NTP steps the clock back to the right time. next_poll_at (and the backoff and lease times)
    were written on the fast clock, so every source waits until the wrong time comes round again: a day
    without a single poll. The dashboard sees last_poll_at in the future and raises no "not polled" banner.
    libfaketime plays the machine's clock (monotonic time left alone, as NTP leaves it)."""
    clock = tmp_path / "clock"
    clock.write_text("+1d\n")
    env = {"LD_PRELOAD": str(FAKETIME), "FAKETIME_TIMESTAMP_FILE": str(clock), "FAKETIME_NO_CACHE": "1",
           "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
    srv.serve("/posts.json", _latest([discourse_post(1, "Northwind is fine")]))
    db_url = f"sqlite:///{tmp_path / 'hearken.db'}"
    proc = hearken("run", "--config", str(write_config(tmp_path, [discourse("good", srv.url, interval=1)])),
                   env=env, log=tmp_path / "runner.log")
    db = Db(db_url)
    try:
        wait_for(lambda: (db.source("good") or {}).get("status") == "ok", 60, "the first poll")
        clock.write_text("+0\n")  # NTP steps the clock back a day
        time.sleep(1.5)
        before = len(srv.seen("/posts.json"))
        time.sleep(10)
        polled = len(srv.seen("/posts.json")) - before
        st = db.source("good")
    finally:
        stop(proc)
        db.close()
    assert polled >= 5, f"a source polled every second was polled {polled} times in the 10 s after the clock " \
                        f"stepped back; its next poll is due {st['next_poll_at']}, status {st['status']!r}"


# --- a platform whose clock runs fast --------------------------------------------------------------


def test_a_platform_clock_running_fast_does_not_push_the_sla_deadline_out(tmp_path, srv):
    """Times more than a day ahead are refused, but anything up to that is stored as the customer's posting
    time, and the SLA clocks count from it. A forum whose clock is 12 h fast (a wrong time zone setting on
    the server is enough) makes an hour's first-response target due 13 h from now: the queue orders the
    case last among the urgent ones and the warning and breach emails come 12 h late. A post cannot have
    been written after Hearken read it: the customer's time should be no later than when it was detected."""
    fast = datetime.now(UTC) + timedelta(hours=12)
    srv.serve("/posts.json", _latest([discourse_post(
        1, "Northwind cut off my broadband for a week, charged me twice and hung up on me. Disgraceful, I want "
           "my money back today or I am going to the regulator.", created_at=fast)]))
    db_url = f"sqlite:///{tmp_path / 'hearken.db'}"
    proc = hearken("run", "--config", str(write_config(tmp_path, [discourse("community", srv.url)])),
                   log=tmp_path / "runner.log")
    db = Db(db_url)
    try:
        [case] = wait_for(lambda: db.rows("SELECT * FROM cases"), 120, "the complaint's case")
    finally:
        stop(proc)
        db.close()
    opened = datetime.fromisoformat(str(case["opened_at"])).replace(tzinfo=UTC)
    due = datetime.fromisoformat(str(case["first_response_due"])).replace(tzinfo=UTC)
    assert due - opened <= timedelta(minutes=480), \
        f"a complaint seen at {opened:%H:%M} UTC is due a first reply at {due:%Y-%m-%d %H:%M} UTC " \
        f"(severity {case['severity']}; the longest first-response target is 8 h)"


# --- an error message the database refuses ------------------------------------------------------------


def test_an_error_message_with_a_nul_byte_is_still_recorded_on_postgresql(tmp_path, srv, pg_url):
    """X answers the search with 400 and an error message holding NUL bytes (X's `errors[].message`, which the
    collector quotes in its reason). Mentions were cleaned at the collector boundary, reasons were not:
    `_record_failure` wrote the text as it came, PostgreSQL refuses NUL in a text column, and the
    exception ended the poll's thread with nothing recorded. The Sources page showed the source as new, with
    no error and no banner, and the 3600 s wait X's 400 earns was never written, so it was asked again at once."""
    srv.serve("/2/tweets/search/recent", Json({"errors": [{"message": "Invalid\u0000 query"}],
                                               "title": "Invalid Request", "detail": "bad request"}, status=400))
    path = write_config(tmp_path, [f"{{type: x, name: x, base_url: '{srv.url}', interval_seconds: 0.5}}"],
                        db_url=pg_url, backoff=3600)  # the wait X's 400 earns, not the other tests' 2 s
    st, asked = _after_a_refusal(tmp_path, srv, path, pg_url, "/2/tweets/search/recent", "x",
                                 env={"X_BEARER_TOKEN": "test-bearer"})
    assert st["status"] == "failing" and "rejected the search" in (st["status_reason"] or ""), \
        f"the Sources page shows {st['status']!r} / {st['status_reason']!r} for a source whose searches X refuses"
    assert asked <= 2, f"X was asked {asked} times in 5 s after refusing the search"


# --- a forum page of tens of thousands of posts ------------------------------------------------------


def _phpbb_page(n: int) -> str:
    posts = "".join(
        f'<div class="post" id="p{i}"><p class="author"><strong>user{i}</strong> '
        f'<time datetime="2026-01-05T10:00:00+00:00">5 Jan</time></p><div class="content">router {i}</div></div>'
        for i in range(n))
    return f"<html><head><title>t</title></head><body><h2 class='topic-title'><a>Routers</a></h2>{posts}</body></html>"


@pytest.mark.slow
def test_a_forum_page_of_thirty_thousand_posts_costs_the_runner_no_more_than_its_byte_cap(tmp_path, srv):
    """The byte cap (README: "an endless answer costs at most that much memory") is on the bytes read. A phpBB
    page of 30,000 tiny posts is 5 MB, inside the 10 MB default, and html.parser turns it into a tree of
    Python objects about forty times that; every forum source polls in a thread of its own, so a handful of
    hostile ones at once multiply it. Posts that name no term here: this is the parse alone. Posts are now
    read as each one closes and dropped from the tree (collectors/forum/stream.py)."""
    srv.serve("/t/1", Body(_phpbb_page(30_000)))
    srv.serve("/posts.json", _latest([discourse_post(1, "Northwind is fine")]))
    db_url = f"sqlite:///{tmp_path / 'hearken.db'}"
    sources = [discourse("good", srv.url),
               f"{{type: forum, name: big, pages: ['{srv.url}/t/1'], preset: phpbb, respect_robots: false, "
               "interval_seconds: 3600, poll_deadline_seconds: 300}"]
    proc = hearken("run", "--config", str(write_config(tmp_path, sources)), log=tmp_path / "runner.log")
    db = Db(db_url)
    try:
        wait_for(lambda: (db.source("good") or {}).get("status") == "ok", 60, "the healthy source's first poll")
        before = proc_kib(proc.pid, "VmHWM")
        wait_for(lambda: (db.source("big") or {}).get("status") in ("ok", "failing"), 180, "the big page to be read")
        peak = proc_kib(proc.pid, "VmHWM")
        st = db.source("big")
    finally:
        stop(proc)
        db.close()
    grew = (peak - before) / 1024
    assert grew < 100, f"reading one 5 MB forum page grew the runner's peak memory by {grew:.0f} MiB " \
                       f"(source {st['status']}: {st['status_reason']})"


@pytest.fixture
def own_pg_database():
    """A PostgreSQL database of this test's own (so it can be made to refuse connections); skips without a server."""
    import os
    import uuid

    from sqlalchemy import create_engine, text

    base = os.environ.get("HEARKEN_TEST_PG_URL", "")
    if not base:
        pytest.skip("PostgreSQL not configured: set HEARKEN_TEST_PG_URL")
    name = f"hk_adv_{uuid.uuid4().hex[:10]}"
    admin = create_engine(Db(base).url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f"CREATE DATABASE {name}"))

    def outage(down: bool) -> None:
        with admin.connect() as c:
            c.execute(text(f"ALTER DATABASE {name} ALLOW_CONNECTIONS {'false' if down else 'true'}"))
            if down:
                c.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name})

    yield base.rsplit("/", 1)[0] + "/" + name, outage
    with admin.connect() as c:
        c.execute(text(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
        c.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name})
        c.execute(text(f"DROP DATABASE {name}"))
    admin.dispose()


def test_a_postgresql_restart_does_not_kill_the_runner(tmp_path, srv, own_pg_database):
    """The team's PostgreSQL restarts (maintenance, a failover, a crash): for ten seconds it refuses connections
    and the runners' open ones are cut. `tick()` has no guard around its claims, so OperationalError ends
    run_forever and the process exits: with several runners on one database, all of them at once. The
    sources stay OK on the Sources page until the "not polled" banner notices, long after."""
    pg_url, outage = own_pg_database
    srv.serve("/posts.json", _latest([discourse_post(1, "Northwind is fine")]))
    path = write_config(tmp_path, [discourse("good", srv.url)], db_url=pg_url)
    proc = hearken("run", "--config", str(path), log=tmp_path / "runner.log")
    db = Db(pg_url)
    try:
        wait_for(lambda: (db.source("good") or {}).get("status") == "ok", 60, "the first poll")
        db.close()
        outage(True)
        time.sleep(10)
        outage(False)
        alive, after = _carries_on(proc, srv)
    finally:
        stop(proc)
        db.close()
    assert alive, "the runner exited during a 10 s PostgreSQL outage: " + (tmp_path / "runner.log").read_text()[-300:]
    assert after >= 3, f"the runner polled {after} times in the 20 s after PostgreSQL came back"


def _phpbb_thread(posts: list[tuple[int, str, str, str]]) -> str:
    """A phpBB thread page of (post id, author, ISO time, text)."""
    body = "".join(f'<div class="post" id="p{pid}"><p class="author"><strong>{who}</strong> <time datetime="{at}">'
                   f'{at}</time></p><div class="content">{text}</div></div>' for pid, who, at, text in posts)
    return f"<html><head><title>t</title></head><body><h2 class='topic-title'><a>Outage</a></h2>{body}</body></html>"


def test_new_posts_that_reuse_the_ids_of_lost_ones_are_still_stored(tmp_path, srv):
    """A phpBB board loses a day and is restored from last night's backup: the posts written since are gone,
    and the next posts written get the same ids again (p102, p103). To Hearken the ids are the posts: the
    page's `seen` list and the (platform, external id) key both say "already stored", so two new complaints
    by other people, with other text and a later time, never reach the queue, and nothing says so."""
    earlier = (datetime.now(UTC) - timedelta(hours=2)).isoformat(timespec="seconds")
    later = datetime.now(UTC).isoformat(timespec="seconds")
    page = {"html": _phpbb_thread([(101, "alice", earlier, "Northwind is down in Leeds"),
                                   (102, "bob", earlier, "Northwind down here too"),
                                   (103, "carol", earlier, "Northwind still down")])}
    srv.serve("/t/1", Body(lambda ex: page["html"]))
    db_url = f"sqlite:///{tmp_path / 'hearken.db'}"
    source = (f"{{type: forum, name: board, pages: ['{srv.url}/t/1'], preset: phpbb, respect_robots: false, "
              "interval_seconds: 0.5}")
    proc = hearken("run", "--config", str(write_config(tmp_path, [source])), log=tmp_path / "runner.log")
    db = Db(db_url)
    try:
        wait_for(lambda: len(db.external_ids("board")) == 3, 60, "the thread's posts to be stored")
        page["html"] = _phpbb_thread([(101, "alice", earlier, "Northwind is down in Leeds"),
                                      (102, "dave", later, "Northwind billed me twice after the outage"),
                                      (103, "erin", later, "Northwind support hung up on me")])
        polls = len(srv.seen("/t/1"))
        wait_for(lambda: len(srv.seen("/t/1")) >= polls + 4, 30, "four more polls")
        authors = sorted(r["author"] for r in db.rows("SELECT author FROM mentions WHERE source = 'board'"))
        st = db.source("board")
    finally:
        stop(proc)
        db.close()
    assert {"dave", "erin"} <= set(authors), f"the queue holds posts by {authors}; the source shows " \
                                             f"{st['status']!r} ({st['status_reason']!r})"
