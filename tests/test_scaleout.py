"""Scale-out on PostgreSQL: several real `hearken run` processes sharing one database.

- Each source is polled by one process at a time. The Discourse stand-in (tests/test_reliability.py)
  counts the requests in flight per forum; every poll here is one request, so two at once for one
  forum means two processes polled it at once.
- A process killed with SIGKILL keeps its leases until they expire; then another process takes its
  sources over, and no post published meanwhile is lost.
- Classification is claimed row by row: each runner classifies with its own copy of the shipped
  model under a different version name, so the classifications show which process did each one.

Skipped, saying so, unless HEARKEN_TEST_PG_URL points at a PostgreSQL server.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import signal
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from collectors.base import Mention as Post, PollResult
from desk.store.db import connect
from desk.store.models import Case, Classification, Event, MentionRow, SourceState
from desk.intake.storing import store_poll
from tests.test_reliability import (COMPLAINTS, Platform, discourse_source, hearken, last_id, stop, stored_ids,
                                    unclassified, wait_for, write_config)

pytestmark = pytest.mark.postgres
UTC = dt.timezone.utc


@pytest.fixture
def platform():
    p = Platform()
    yield p
    p.close()


def owners(store) -> dict[str, tuple[int, dt.datetime]]:
    """source -> (pid of the process holding its lease, lease end)."""
    with store.session() as s:
        return {st.name: (int(st.lease_owner.split(":")[1]), st.lease_until)
                for st in s.scalars(select(SourceState)) if st.lease_owner}


def test_runners_poll_each_source_one_at_a_time_and_take_over_a_killed_runners_sources(tmp_path, pg_url, platform):
    names = [f"forum{i}" for i in range(4)]
    for n in names:
        forum = platform.add_forum(n)
        forum.delay = 0.15  # a poll takes a while, so overlapping polls would be seen
    path = write_config(tmp_path, pg_url, [discourse_source(platform, n) for n in names], lease=2.0)
    log = tmp_path / "runners.log"
    store = connect(pg_url)
    procs = [hearken("run", "--config", str(path), log=log)]
    try:
        # (started one after the other: starting them at the same instant is its own test below)
        wait_for(lambda: all(last_id(store, n) for n in names), 60, "every forum to be polled once")
        procs += [hearken("run", "--config", str(path), log=log) for _ in range(2)]
        platform.start_publishing(names, per_second=5)
        time.sleep(3)
        held = owners(store)
        by_pid: dict[int, list[str]] = {}
        for name, (pid, _) in held.items():
            by_pid.setdefault(pid, []).append(name)
        assert set(by_pid) <= {p.pid for p in procs}, f"leases held by processes we did not start: {held}"
        victim_pid = max(by_pid, key=lambda pid: len(by_pid[pid]))
        victim = next(p for p in procs if p.pid == victim_pid)
        lost = {name: held[name][1] for name in by_pid[victim_pid]}
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        killed_at = time.time()

        def taken_over() -> bool:
            now = owners(store)
            return all(name in now and now[name][0] != victim_pid
                       and any(t > killed_at for t in platform.forums[name].started) for name in lost)

        wait_for(taken_over, 30, f"the other runners to take over {sorted(lost)}")
        for name, lease_until in lost.items():
            after = [t for t in platform.forums[name].started if t > killed_at]
            assert after, f"{name} was polled again after the kill"
            assert after[0] >= lease_until.timestamp() - 0.05, \
                f"{name} was polled {lease_until.timestamp() - after[0]:.2f}s before the dead runner's lease ran out"
            # soon after the lease ran out (a runner looks every second), not a poll interval or a lease later;
            # 10 s leaves room for a machine loaded by other work (5 s failed at a load average of 10 to 15)
            assert after[0] <= lease_until.timestamp() + 10, f"{name} waited too long after its lease ran out"
        time.sleep(1.5)
        platform.stop_publishing()
        wait_for(lambda: all(last_id(store, n) == platform.newest_id(n) for n in names), 30,
                 "the survivors to catch up")
        wait_for(lambda: unclassified(store) == 0, 30, "classification")
        survivors = [p for p in procs if p is not victim]
        assert all(p.poll() is None for p in survivors), log.read_text()[-3000:]
    finally:
        platform.stop_publishing()
        codes = [stop(p) for p in procs if p.returncode is None or p.poll() is None]
    assert codes == [0, 0], log.read_text()[-3000:]
    for n in names:
        forum = platform.forums[n]
        assert forum.overlaps == [], f"{n} was polled by two processes at once {len(forum.overlaps)} time(s)"
        ids = stored_ids(store, n)
        assert len(ids) == len(set(ids)) and set(ids) == platform.published(n), f"{n}: lost or doubled posts"
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(Classification)) == \
            s.scalar(select(func.count()).select_from(MentionRow))
        assert all(st.lease_owner is None for st in s.scalars(select(SourceState))), \
            "the survivors gave their leases back when stopped"
    store.close()


def test_a_poll_that_outlasts_its_lease_is_not_run_by_a_second_runner_at_the_same_time(tmp_path, pg_url, platform):
    """A slow platform: one poll takes longer than the lease (here 3 s against 1.5 s; in production a
    forum paged 10 deep at a 20 s timeout against the 120 s default lease). The runner polling it must
    keep its lease while the poll is in flight; otherwise a second runner polls the same source at the
    same time (twice the requests, twice the X read bill) and the two commits race for the cursor."""
    forum = platform.add_forum("slow")
    forum.delay = 3.0
    path = write_config(tmp_path, pg_url, [discourse_source(platform, "slow")], lease=1.5)
    log = tmp_path / "runners.log"
    store = connect(pg_url)
    procs = [hearken("run", "--config", str(path), log=log)]
    try:
        wait_for(lambda: forum.requests >= 1, 60, "the first poll")  # (start-up races are tested below)
        procs.append(hearken("run", "--config", str(path), log=log))
        wait_for(lambda: forum.requests >= 3, 60, "three polls of the slow forum")
    finally:
        stopping = time.time()
        codes = [stop(p) for p in procs]  # one after the other: the second polls on while the first stops
        store.close()
    assert codes == [0, 0], log.read_text()[-3000:]
    when = ", ".join(f"{t - stopping:+.1f}s" for t in forum.overlaps)
    assert forum.overlaps == [], (f"two runners polled the slow forum at once {len(forum.overlaps)} time(s) "
                                  f"in {forum.requests} polls, at {when} from the first SIGTERM")


def model_copy(tmp_path: Path, version: str) -> Path:
    """The shipped model under another version name (same weights), so its classifications are recognisable."""
    import classifier

    d = tmp_path / version
    d.mkdir()
    for f in classifier.SHIPPED_DIR.iterdir():
        if f.name != "meta.json":
            (d / f.name).symlink_to(f)
    meta = json.loads((classifier.SHIPPED_DIR / "meta.json").read_text())
    meta["version"] = version
    (d / "meta.json").write_text(json.dumps(meta))
    return d


def test_runners_share_classification_and_never_classify_a_mention_twice(tmp_path, pg_url, platform):
    """600 stored, unclassified complaints from 40 customers in 20 busy threads; three runners classify
    them, one is killed mid-work. Each mention is classified once, by one of them; every runner did
    some; each customer gets one case per thread, their later complaints joining it as follow-ups,
    as with a single runner."""
    store = connect(pg_url)
    now = dt.datetime.now(UTC)
    rng = random.Random(3)
    posts = [Post(platform="discourse", source="seeded", external_id=f"seed/{i}", url=f"https://f.example/{i}",
                  author=f"customer{i % 40}", body=f"{rng.choice(COMPLAINTS)} (#{i})", title="Northwind outage",
                  posted_at=now - dt.timedelta(seconds=600 - i), thread_id=f"seed/t{i % 20}",
                  matched_terms=("Northwind",))
             for i in range(600)]
    store_poll(store, "seeded", "discourse", PollResult(mentions=posts, cursor=None))
    platform.add_forum("quiet", initial=1)
    log = tmp_path / "runners.log"
    procs = []
    for i in range(3):
        if i:  # one after the other: starting them at the same instant is its own test below
            wait_for(lambda: last_id(store, "quiet"), 60, "the first runner to start")
        path = write_config(tmp_path, pg_url, [discourse_source(platform, "quiet", interval=5)], name=f"r{i}.yaml",
                            extra=f"classifier: {{model_path: '{model_copy(tmp_path, f'runner-{i}')}', batch_size: 16}}\n")
        procs.append(hearken("run", "--config", str(path), log=log))

    def done_by(version: str) -> int:
        with store.session() as s:
            return s.scalar(select(func.count()).select_from(Classification)
                            .where(Classification.model_version == version)) or 0

    try:
        wait_for(lambda: done_by("runner-0") >= 32, 60, "runner 0 to classify a few batches")
        procs[0].send_signal(signal.SIGKILL)  # mid-work: it still had most of the backlog ahead of it
        procs[0].wait(timeout=10)
        wait_for(lambda: unclassified(store) == 0, 90, "every mention to be classified")
        assert procs[1].poll() is None and procs[2].poll() is None, log.read_text()[-3000:]
    finally:
        codes = [stop(p) for p in procs[1:]]
        if procs[0].poll() is None:
            procs[0].kill()
    assert codes == [0, 0], log.read_text()[-3000:]
    with store.session() as s:
        per_version = dict(s.execute(select(Classification.model_version, func.count())
                                     .group_by(Classification.model_version)).all())
        per_mention = s.execute(select(Classification.mention_id, func.count()).group_by(Classification.mention_id)
                                .having(func.count() > 1)).all()
        complaints = s.scalar(select(func.count()).select_from(Classification)
                              .where(Classification.is_complaint.is_(True)))
        cases = list(s.execute(select(Case.thread_id, MentionRow.author, func.count())
                               .join(MentionRow, MentionRow.id == Case.mention_id).where(Case.source == "seeded")
                               .group_by(Case.thread_id, MentionRow.author)).all())
        all_cases = s.scalar(select(func.count()).select_from(Case))
        opened = s.scalar(select(func.count()).select_from(Event).where(Event.action == "opened"))
        mentions = s.scalar(select(func.count()).select_from(MentionRow))
    assert mentions >= 600
    assert sum(per_version.values()) == mentions and per_mention == []
    assert len(per_version) == 3 and min(per_version.values()) > 0, f"every runner took a share: {per_version}"
    assert complaints > 20, "the seeded posts read as complaints"
    doubled = [row for row in cases if row[2] > 1]
    assert not doubled, (f"{len(doubled)} customer(s) got more than one case in a thread when runners classified "
                         f"their posts at the same time: {doubled[:3]}")
    assert len(cases) == 40 and opened == all_cases, f"one case per customer and thread: {len(cases)}; opened once: {opened}"
    store.close()


@pytest.mark.parametrize("schema", ["empty", "migrated"])
def test_runners_started_together_all_come_up(tmp_path, pg_url, platform, schema):
    """Deploying several runners at once (replicas of one service): each creates the schema (on an empty
    database) and the sources' state rows if they are missing. None may crash because another created
    them first."""
    if schema == "migrated":
        connect(pg_url).close()
    names = [f"forum{i}" for i in range(3)]
    for n in names:
        platform.add_forum(n)
    path = write_config(tmp_path, pg_url, [discourse_source(platform, n) for n in names])
    logs = [tmp_path / f"runner{i}.log" for i in range(4)]
    procs = [hearken("run", "--config", str(path), log=logs[i]) for i in range(4)]
    store = None
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(platform.forums[n].requests for n in names):
            time.sleep(0.1)
        time.sleep(1.5)
        crashed = {i: logs[i].read_text()[-1500:] for i, p in enumerate(procs) if p.poll() is not None}
        assert not crashed, f"{len(crashed)} of 4 runners died at start-up: {crashed}"
        store = connect(pg_url)
        assert all(last_id(store, n) for n in names)
    finally:
        for p in procs:
            stop(p)
        if store is not None:
            store.close()


def test_a_one_off_run_does_not_poll_a_source_another_runner_is_polling(tmp_path, pg_url, platform):
    """`hearken run --once` (a cron job, an operator checking a config) next to a running service: it must
    respect the leases too, not poll a source whose poll another runner has in flight."""
    forum = platform.add_forum("slow")
    forum.delay = 6.0  # each poll of the service takes 6 s; the one-off run starts right after one begins
    path = write_config(tmp_path, pg_url, [discourse_source(platform, "slow", interval=0.5)], lease=3.0)
    log = tmp_path / "runners.log"
    store = connect(pg_url)
    service = hearken("run", "--config", str(path), log=log)
    try:
        wait_for(lambda: forum.inflight == 1 and forum.started and forum.started[-1] > time.time() - 0.5, 60,
                 "a poll of the service to begin")
        once = hearken("run", "--once", "--config", str(path), log=log)
        assert once.wait(timeout=60) == 0, log.read_text()[-3000:]
    finally:
        code = stop(service)
        store.close()
    assert code == 0, log.read_text()[-3000:]
    assert forum.overlaps == [], f"the one-off run polled the source while the service was polling it ({forum.requests} polls)"
