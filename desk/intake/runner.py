"""The runner: polls every enabled source on its interval, stores, classifies, opens cases.

Each poll runs in a daemon thread of its own, so a slow or rate-limited platform never holds up
the others and no number of slow platforms can use up a pool. A failure is recorded on the
source's state (reason, when, how many in a row, when to try again) and logged once when the
source goes down and once when it recovers, never once per poll. A source is polled by one
process at a time: the runner holds a lease on it in the database (several runners can share
one PostgreSQL).

Nothing a platform does can hold the runner:

- every request has a wall-clock deadline and a byte cap (collectors/http.py, collectors/sessions.py);
- every poll has a deadline of its own (`poll_deadline_seconds` per source). A supervisor thread
  abandons a poll past it: the source is recorded failing with the reason, the poll's lease is no
  longer renewed, and whatever the poll returns late is never stored (a gate each poll passes
  before it writes anything). A source whose abandoned poll is still stuck is not polled again
  until that thread ends;
- the outbox is sent by a thread of its own (desk/notify/mailer.py), each SMTP session under a deadline;
- classification runs in a thread of its own, in slices of bounded length with a look at the stop
  flag between them, so a flood of long posts holds up neither the other sources' polls nor a stop;
- the schedule (claims, starting polls, the periodic scans) runs in a thread of its own too, and
  the main thread only waits for a signal, so SIGTERM is honoured even while the database makes
  the schedule wait (a lock held by a backup or a shell, a PostgreSQL restart);
- a database that is locked or unreachable is a failure like a platform's: logged once when it
  starts and once when it ends, retried with backoff, shown on the dashboard (the runner's
  heartbeat in `runners` goes stale, then its outage is recorded there), never the end of the runner;
- SIGTERM and SIGINT stop the runner within `runner.shutdown_seconds` (default 10): polls in
  flight get the first half of it to finish and commit; the rest are abandoned (never stored),
  the leases are given back (while the database allows, within the bound) and the process exits.

Sources and the periodic scans are scheduled on `time.monotonic()`, not on the wall clock: when the
clock steps back (NTP correcting a clock that ran fast) polling goes on at its pace. The times
written to `source_state` (next poll, backoff, lease) are wall-clock times for the dashboard and
for other runners; one further ahead than any wait Hearken sets is taken as a clock that ran fast.
"""

from __future__ import annotations

import logging
import math
import os
import random
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, or_, update
from sqlalchemy.exc import SQLAlchemyError

import collectors
from collectors import http
from collectors.base import AuthFailed, CollectorError, NotConfigured, TryLater
from collectors.match import TermMatcher
from collectors.plain import reason_line
from desk.notify import alerts
from desk.cases import audit
from desk.notify import mailer
from desk.config.schema import HearkenConfig
from desk.store.db import Store
from desk.notify.health import RUNNER_QUIET
from desk.store.models import RunnerState, SourceState, now_utc
from desk.intake.pipeline import LeaseLost, classify_pending, db_reason, month_key, state_for, store_poll

log = logging.getLogger(__name__)

SUPERVISE_EVERY = 0.25  # seconds between two looks at the polls in flight
HEARTBEAT_SECONDS = 5.0  # how often a running runner writes `runners.seen_at`
RETRY_CAP_SECONDS = 5.0  # the longest wait before the schedule tries a failing database again
CLOCK_SLACK_SECONDS = 60.0  # a stored time further ahead than the longest wait plus this was written on a fast clock
SLICE_CHARS_PER_POST = 500  # a classification slice holds batch_size posts of this length, or fewer longer ones


def _failpoint(name: str) -> None:
    """Test hook: with HEARKEN_FAILPOINT=name:FILE[:SECONDS], touch FILE and hang here for SECONDS (default
    an hour), so a test can kill -9 us there, or see what happens when we go on too late."""
    spec = os.environ.get("HEARKEN_FAILPOINT", "")
    if spec.startswith(name + ":"):
        path, _, seconds = spec.split(":", 1)[1].rpartition(":")
        try:
            wait = float(seconds)
        except ValueError:
            path, wait = spec.split(":", 1)[1], 3600.0
        Path(path).touch()
        time.sleep(wait)


class Outage:
    """One loop's trouble with the database (or any error it cannot get past): logged once when it starts
    and once when it ends, never once per try, with a backoff for the next try."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.since: datetime | None = None
        self.reason = ""
        self.failures = 0

    def failed(self, exc: BaseException) -> float:
        """Note a failed try; returns how long to wait before the next."""
        self.failures += 1
        self.reason = db_reason(exc)
        if self.since is None:
            self.since = now_utc()
            if isinstance(exc, SQLAlchemyError):
                log.warning("%s cannot use the database: %s; trying again until it can", self.what, self.reason)
            else:
                log.error("%s failed: %s; trying again until it works", self.what, self.reason, exc_info=exc)
        return min(RETRY_CAP_SECONDS, 0.5 * 2 ** min(self.failures - 1, 8)) * (1 + random.uniform(0, 0.2))

    def recovered(self) -> str | None:
        """After a try that worked: what the outage was (one line), or None when there was none."""
        if self.since is None:
            return None
        took = (now_utc() - self.since).total_seconds()
        text = (f"{self.what} could not use the database for {took:.0f}s, from {self.since:%Y-%m-%d %H:%M:%S} UTC "
                f"({self.failures} failed tries): {self.reason}")
        log.info("%s works again after %.0fs", self.what, took)
        self.since, self.reason, self.failures = None, "", 0
        return text


@dataclass(eq=False)
class Poll:
    """One poll of one source, in flight in its own thread, until it is done or abandoned."""

    src: Any
    deadline: float  # seconds
    started: float = field(default_factory=time.monotonic)
    thread: threading.Thread | None = None
    done: threading.Event = field(default_factory=threading.Event)
    abandoned: bool = False
    _settled: bool = False  # its thread has begun writing its outcome: too late to abandon it
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def active(self) -> bool:
        return not self.done.is_set() and not self.abandoned

    def left(self) -> float:
        return self.started + self.deadline - time.monotonic()

    def abandon(self) -> bool:
        """Give the poll up; False when it already finished (or began storing, which is let finish)."""
        with self._lock:
            if self._settled or self.abandoned or self.done.is_set():
                return False
            self.abandoned = True
            return True

    def settle(self) -> bool:
        """Called by the poll's thread before it stores or records anything; False once abandoned."""
        with self._lock:
            if self.abandoned:
                return False
            self._settled = True
            return True


class Runner:
    def __init__(self, cfg: HearkenConfig, store: Store, *, model_loader: Callable[[], Any] | None = None,
                 owner: str | None = None, clock: Callable[[], datetime] = now_utc) -> None:
        self.cfg = cfg
        self.store = store
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.clock = clock
        self._model_loader = model_loader
        self._model = None
        self._collectors: dict[str, Any] = {}
        self._inflight: dict[str, Poll] = {}
        self._inflight_lock = threading.Lock()
        self._closing = False  # set by the shutdown: no poll starts after it
        self._due: dict[str, float] = {}  # source -> time.monotonic() of its next poll (or the end of its backoff)
        self._task_due: dict[str, float] = {}  # periodic task -> time.monotonic() of its next run
        self._threads: list[threading.Thread] = []  # the loops run_forever started (schedule, classifier)
        self._outage: str | None = None  # the schedule's last database outage, to record in `runners`
        self._heartbeat_at = 0.0
        self._stop = threading.Event()
        self._stop_at: float | None = None
        self.sources = [s for s in cfg.sources if s.enabled]
        self._tasks = alerts.periodic_tasks(cfg, store, mailer=False)
        self._task_next: dict[str, datetime] = {}
        self._lease_owner: str | None = None  # set while run_forever() polls under leases
        self._supervisor: threading.Thread | None = None
        self._supervisor_stop = threading.Event()
        self.mailer = mailer.MailerThread(store, cfg, clock=clock, worker=self.owner)
        self._register_sources()

    # --- sources ------------------------------------------------------------

    def _register_sources(self) -> None:
        with self.store.session() as s:
            for src in self.cfg.sources:
                state = state_for(s, src.name, collectors.PLATFORM_OF_TYPE[src.type])
                if not src.enabled:
                    state.status, state.status_reason = "disabled", "enabled: false in the config"
                elif state.status == "disabled":
                    state.status, state.status_reason = "new", None

    def _collector(self, src) -> Any:
        if src.name not in self._collectors:
            platform = collectors.PLATFORM_OF_TYPE[src.type]
            matcher = TermMatcher(list(self.cfg.brand.terms) + list(src.terms), self.cfg.brand.exclusions)
            self._collectors[src.name] = collectors.build(
                src, matcher=matcher, own_accounts=self.cfg.accounts.get(platform, []))
        return self._collectors[src.name]

    def _longest_wait(self, src) -> float:
        """The furthest ahead this runner ever schedules the source (a poll, a backoff), in seconds."""
        return max(self.cfg.runner.max_backoff_seconds, src.interval_seconds * (1 + self.cfg.runner.jitter))

    def _claim(self, src, now: datetime, *, due_only: bool = True) -> bool:
        """Take (or renew) this process's lease on the source; False if another process holds it.

        With `due_only` (the service loop) the source must also be due: past its next poll and its backoff,
        by this process's monotonic schedule once it has polled the source, else by the times stored for
        it (by another runner, or before a restart), where one further ahead than any wait we set counts
        as due: it was written on a clock that ran fast and has been set back since.
        """
        lease_until = now + timedelta(seconds=max(self.cfg.runner.lease_seconds, src.interval_seconds * 2))
        conditions = [SourceState.name == src.name,
                      or_(SourceState.lease_owner.is_(None), SourceState.lease_owner == self.owner,
                          SourceState.lease_until < now)]
        if due_only:
            due = self._due.get(src.name)
            if due is not None and time.monotonic() < due:
                return False
            if due is None:
                skewed = now + timedelta(seconds=self._longest_wait(src) + CLOCK_SLACK_SECONDS)
                conditions += [or_(SourceState.next_poll_at.is_(None), SourceState.next_poll_at <= now,
                                   SourceState.next_poll_at > skewed),
                               or_(SourceState.backoff_until.is_(None), SourceState.backoff_until <= now,
                                   SourceState.backoff_until > skewed)]
            conditions.append(SourceState.status.notin_(["disabled"]))
        with self.store.session() as s:
            res = s.execute(update(SourceState).where(*conditions)
                            .values(lease_owner=self.owner, lease_until=lease_until)
                            .execution_options(synchronize_session=False))
            return bool(res.rowcount)

    def _renew_leases(self) -> None:
        """Keep the leases of sources whose poll is still in flight (a slow forum, a long backlog).

        An abandoned poll's lease is not renewed: it runs out, and another runner may take the source.
        """
        busy = [p.src.name for p in list(self._inflight.values()) if p.active]
        if not busy:
            return
        until = self.clock() + timedelta(seconds=self.cfg.runner.lease_seconds)
        with self.store.session() as s:
            s.execute(update(SourceState)
                      .where(SourceState.name.in_(busy), SourceState.lease_owner == self.owner,
                             SourceState.lease_until < until)
                      .values(lease_until=until).execution_options(synchronize_session=False))

    def _abandon_overdue(self) -> None:
        for p in list(self._inflight.values()):
            if p.active and p.left() <= 0 and p.abandon():
                platform = collectors.PLATFORM_OF_TYPE[p.src.type]
                self._record_failure(p.src, platform, TryLater(
                    f"the poll took longer than its {p.deadline:g}s deadline (poll_deadline_seconds) and was "
                    "abandoned; nothing it fetched is stored"))

    def _supervise(self, stop: threading.Event) -> None:
        """Abandon polls past their deadline; renew the leases of the others every third of a lease."""
        renew_every = max(0.2, self.cfg.runner.lease_seconds / 3)
        next_renewal = time.monotonic() + renew_every
        while not stop.wait(SUPERVISE_EVERY):  # runs on after stop() while polls in flight finish
            try:
                self._abandon_overdue()
            except Exception:
                log.warning("could not record an abandoned poll", exc_info=True)
            if time.monotonic() >= next_renewal:
                next_renewal = time.monotonic() + renew_every
                try:
                    self._renew_leases()
                except Exception:
                    log.warning("could not renew source leases", exc_info=True)

    def _start_supervisor(self) -> None:
        self._supervisor_stop = threading.Event()
        self._supervisor = threading.Thread(target=self._supervise, args=(self._supervisor_stop,),
                                            name="poll-supervisor", daemon=True)
        self._supervisor.start()

    def _stop_supervisor(self, timeout: float = 2.0) -> None:
        self._supervisor_stop.set()
        if self._supervisor is not None:
            self._supervisor.join(timeout=timeout)

    def _schedule(self, src, seconds: float) -> datetime:
        """Set the source's next poll `seconds` from now on the monotonic clock; the wall time to store."""
        self._due[src.name] = time.monotonic() + seconds
        return self.clock() + timedelta(seconds=seconds)

    def _interval(self, src) -> float:
        j = self.cfg.runner.jitter
        return src.interval_seconds * (1 + random.uniform(-j, j))

    def _start_poll(self, src) -> Poll | None:
        """Start polling the source in a thread of its own; None once the runner is shutting down."""
        poll = Poll(src, float(src.poll_deadline_seconds))

        def run() -> None:
            try:
                self.poll_source(src, poll)
            except Exception:  # noqa: BLE001 - even recording the failure failed (the database is down)
                log.warning("source %s: the poll's outcome could not be recorded", src.name, exc_info=True)
            finally:
                poll.done.set()

        poll.thread = threading.Thread(target=run, name=f"poll-{src.name}", daemon=True)
        with self._inflight_lock:
            if self._closing:
                return None
            self._inflight[src.name] = poll
        poll.thread.start()
        return poll

    def poll_source(self, src, poll: Poll | None = None) -> int:
        """Poll one source once and store what it found. Failures are recorded, never raised.

        With `poll` (the runner's own threads) nothing is stored or recorded once it was abandoned.
        """
        platform = collectors.PLATFORM_OF_TYPE[src.type]
        late = f"source {src.name}: the poll abandoned at its deadline has ended; what it returned is dropped"
        try:
            with http.poll_deadline(poll.left() if poll is not None else float(src.poll_deadline_seconds)):
                collector = self._collector(src)
                budget = None
                if src.type == "x":
                    with self.store.session() as s:
                        st = state_for(s, src.name, platform)
                        used = st.reads_count if st.reads_month == month_key(self.clock()) else 0
                    budget = max(0, src.monthly_read_cap - used)
                result = collector.poll(self._cursor(src.name, platform), read_budget=budget)
            _failpoint("before-commit")
            if poll is not None and not poll.settle():
                log.info(late)
                return 0
            new = store_poll(self.store, src.name, platform, result, now=self.clock(), owner=self._lease_owner)
            with self.store.session() as s:
                s.execute(update(SourceState).where(SourceState.name == src.name)
                          .values(next_poll_at=self._schedule(src, self._interval(src))))
            return new
        except LeaseLost as exc:
            log.warning("%s; this poll's result was dropped", exc)
            return 0
        except Exception as exc:  # noqa: BLE001 - recorded below, whatever it is
            failure = exc
        if poll is not None and not poll.settle():
            log.info(late)
            return 0
        if isinstance(failure, NotConfigured):
            self._collectors.pop(src.name, None)
            self._record_failure(src, platform, failure, status="disabled")
        elif isinstance(failure, AuthFailed):
            self._collectors.pop(src.name, None)
            self._record_failure(src, platform, failure, status="auth_failed")
        elif isinstance(failure, TryLater):
            self._record_failure(src, platform, failure, retry_after=failure.retry_after)
        else:
            if not isinstance(failure, CollectorError):  # a collector bug must not take the runner down
                log.debug("unexpected error polling %s", src.name, exc_info=failure)
            self._record_failure(src, platform, failure)
        return 0

    def _cursor(self, name: str, platform: str) -> dict | None:
        with self.store.session() as s:
            return state_for(s, name, platform).cursor

    def _record_failure(self, src, platform: str, exc: Exception, *, status: str = "failing",
                        retry_after: float | None = None) -> None:
        now = self.clock()
        # a platform's words (an error message, an exception quoting a body) as one clean line a database takes
        reason = reason_line(str(exc) if isinstance(exc, CollectorError) else f"{type(exc).__name__}: {exc}")
        longest = self.cfg.runner.max_backoff_seconds
        if retry_after is not None and not (math.isfinite(retry_after) and retry_after >= 0):
            retry_after = None  # "Retry-After: inf" says nothing we can wait for
        if status not in ("disabled", "auth_failed") and retry_after is not None and retry_after > longest:
            # a broken CDN or a misread header must not silence a source for a year: a person chose the longest wait
            reason += f"; waiting {longest:g}s instead, the longest the runner waits (runner.max_backoff_seconds)"
        with self.store.session() as s:
            st = state_for(s, src.name, platform)
            first = st.status != status
            st.consecutive_failures += 1
            st.last_poll_at = now
            st.last_error, st.last_error_at = reason, now
            st.status, st.status_reason = status, reason
            st.failing_since = st.failing_since or now
            if status in ("disabled", "auth_failed"):  # waiting for a person, not for the platform
                wait = self.cfg.runner.max_backoff_seconds
            elif retry_after is not None:
                wait = min(retry_after, longest)
            else:
                wait = min(self.cfg.runner.max_backoff_seconds,
                           src.interval_seconds * 2 ** min(st.consecutive_failures - 1, 16))
                wait *= 1 + random.uniform(0, self.cfg.runner.jitter)
            st.backoff_until = now + timedelta(seconds=wait)
            st.next_poll_at = st.backoff_until
            self._schedule(src, wait)
            if first:
                log.warning("source %s is %s: %s", src.name, status.replace("_", " "), reason)
                audit.record(s, None, "system", f"source_{status}", source=src.name, reason=reason)

    # --- the loop -----------------------------------------------------------

    @property
    def model(self):
        if self._model is None:
            if self._model_loader is None:
                import classifier

                path = self.cfg.classifier.model_path
                self._model = classifier.load(path) if path else classifier.load()
            else:
                self._model = self._model_loader()
        return self._model

    def tick(self) -> None:
        """One pass in the caller's thread: start due polls, classify a few slices, run due periodic tasks."""
        now = self.clock()
        self._start_due_polls(now)
        batch = self.cfg.classifier.batch_size
        for _ in range(4):  # the rest next tick: polls keep their pace, and a stop is noticed between slices
            if self._stop.is_set():
                break
            try:
                if not self.classify(limit=batch, should_stop=self._stop.is_set).classified:
                    break
            except Exception:
                log.exception("classification failed; it is retried on the next pass")
                break
        self._run_tasks(now)

    def _start_due_polls(self, now: datetime) -> None:
        for src in self.sources:
            poll = self._inflight.get(src.name)
            if poll is not None:
                if poll.active or poll.thread.is_alive():  # an abandoned poll still stuck: not a second one
                    continue
                with self._inflight_lock:
                    self._inflight.pop(src.name, None)
            if self._stop.is_set():
                break
            if self._claim(src, now):
                self._start_poll(src)

    def _run_tasks(self, now: datetime) -> None:
        """The periodic scans that are due: by the monotonic clock, or when the wall clock passed their time."""
        for name, interval, fn in self._tasks:
            if self._stop.is_set():
                break
            wall, mono = self._task_next.get(name), self._task_due.get(name)
            if wall is not None and now < wall and time.monotonic() < mono:
                continue
            try:
                fn(now)
            except Exception:
                log.exception("periodic task %s failed", name)
            self._task_next[name] = now + timedelta(seconds=interval)
            self._task_due[name] = time.monotonic() + interval

    def classify(self, limit: int | None = None, should_stop: Callable[[], bool] | None = None):
        """Classify what is waiting, in slices of at most batch_size posts and of bounded total length."""
        chars = self.cfg.classifier.batch_size * SLICE_CHARS_PER_POST
        return classify_pending(self.store, self.cfg, self.model, limit=limit, max_chars=chars,
                                should_stop=should_stop)

    def run_once(self) -> None:
        """Poll every enabled source once now (schedules and backoff aside), then classify everything.

        For `hearken run --once` (a cron job, an operator trying a config) and tests. It still respects
        leases: a source another runner holds is skipped, not polled a second time. A poll past its
        deadline is abandoned as in the service loop.
        """
        now = self.clock()
        mine = [src for src in self.sources if self._claim(src, now, due_only=False)]
        for src in self.sources:
            if src not in mine:
                log.info("source %s is being polled by another runner; skipped", src.name)
        self._lease_owner = self.owner
        self._start_supervisor()
        try:
            for poll in [p for p in (self._start_poll(src) for src in mine) if p is not None]:
                while not poll.done.wait(SUPERVISE_EVERY) and not poll.abandoned:
                    pass
            self.classify()
        finally:
            self._stop_supervisor()
            self._inflight.clear()
            self._release_leases()

    def stop(self, *_: Any) -> None:
        if not self._stop.is_set():
            self._stop_at = time.monotonic()
            log.info("stopping (within %gs): finishing polls in flight", self.cfg.runner.shutdown_seconds)
        self._stop.set()

    def run_forever(self, *, install_signals: bool = True, idle_sleep: float = 1.0) -> None:
        """Poll, classify and send until stop() (SIGTERM, SIGINT): the loops run in threads of their own and
        this thread only waits for the stop, then shuts them down within runner.shutdown_seconds."""
        if install_signals and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self.stop)
            signal.signal(signal.SIGINT, self.stop)
        log.info("runner %s started with %d source(s)", self.owner, len(self.sources))
        self.model  # load before polling: loading holds the GIL, which would starve the lease heartbeat
        from classifier import language

        language.load()  # the same for the language detector (desk/intake/languages.py)
        self._lease_owner = self.owner
        try:
            self._sign_in()
        except SQLAlchemyError as exc:
            log.warning("could not record this runner in the database (%s); it tries again", db_reason(exc))
        self._start_supervisor()
        self.mailer.start()
        for name, loop in (("runner-schedule", self._schedule_loop), ("classifier", self._classify_loop)):
            t = threading.Thread(target=loop, args=(idle_sleep,), name=name, daemon=True)
            self._threads.append(t)
            t.start()
        try:
            while not self._stop.wait(0.5):
                pass
        finally:
            self._stop.set()
            self._shut_down()

    def _schedule_loop(self, idle_sleep: float) -> None:
        """Start due polls and run the periodic scans, every `idle_sleep`; a database error is retried."""
        outage = Outage("the runner's schedule")
        while not self._stop.is_set():
            try:
                now = self.clock()
                self._start_due_polls(now)
                self._run_tasks(now)
                self._outage = outage.recovered() or self._outage
                self._heartbeat(now)
                wait = idle_sleep
            except Exception as exc:  # noqa: BLE001 - a locked or unreachable database, or a bug: never the end
                wait = outage.failed(exc)
            self._stop.wait(wait)

    def _classify_loop(self, idle_sleep: float) -> None:
        """Classify what the polls stored, a slice at a time, until stopped; waits `idle_sleep` when idle."""
        outage = Outage("classification")
        while not self._stop.is_set():
            try:
                done = self.classify(limit=self.cfg.classifier.batch_size, should_stop=self._stop.is_set).classified
                outage.recovered()
                wait = 0.0 if done else idle_sleep
            except Exception as exc:  # noqa: BLE001
                wait = outage.failed(exc)
            if wait:
                self._stop.wait(wait)

    def _sign_in(self) -> None:
        """Record this runner in `runners`, and forget runners long gone (and this host's that died)."""
        now = self.clock()
        host = socket.gethostname()
        with self.store.session() as s:
            here = RunnerState.host == host
            s.execute(delete(RunnerState).where(or_(
                RunnerState.seen_at < now - timedelta(days=1),
                here & (RunnerState.stopped_at.is_not(None) | (RunnerState.seen_at < now - RUNNER_QUIET)
                        | (RunnerState.pid == os.getpid())))))
            s.add(RunnerState(owner=self.owner, host=host, pid=os.getpid(), started_at=now, seen_at=now))
        self._heartbeat_at = time.monotonic()

    def _heartbeat(self, now: datetime) -> None:
        """Every HEARTBEAT_SECONDS: `runners.seen_at`, and the last database outage once it is over."""
        if self._outage is None and time.monotonic() - self._heartbeat_at < HEARTBEAT_SECONDS:
            return
        with self.store.session() as s:
            row = s.get(RunnerState, self.owner)
            if row is None:
                row = RunnerState(owner=self.owner, host=socket.gethostname(), pid=os.getpid(), started_at=now)
                s.add(row)
            row.seen_at = now
            if self._outage is not None:
                row.outage, row.outage_ended_at = self._outage, now
        self._outage = None
        self._heartbeat_at = time.monotonic()

    def _shut_down(self) -> None:
        """Within runner.shutdown_seconds of the stop: polls get half of it, the mailer most of the rest, and
        giving the leases back what is left; whatever still waits (for a platform, for a locked database)
        then is abandoned, and the process exits without it (desk/cli.py)."""
        begun = self._stop_at if self._stop_at is not None else time.monotonic()
        bound = self.cfg.runner.shutdown_seconds

        def left(share: float) -> float:
            return max(0.0, begun + bound * share - time.monotonic())

        with self._inflight_lock:
            self._closing = True
            polls = list(self._inflight.values())
        for poll in polls:
            if poll.active:
                poll.done.wait(left(0.5))
        for t in self._threads:
            t.join(left(0.5))
        stuck = [p for p in polls if p.active and p.abandon()]
        if stuck:
            log.warning("stopping: abandoned %d poll(s) still running (%s); nothing they fetch is stored",
                        len(stuck), ", ".join(p.src.name for p in stuck))
        if not self.mailer.stop(left(0.8)):
            log.warning("stopping: an SMTP session was still running; its emails are sent again after their claim runs out")
        self._stop_supervisor(left(0.85))
        if not self._within(left(0.95), self._sign_off):
            log.warning("stopping: the database did not let the source leases be given back in time; they run out "
                        "after runner.lease_seconds")
        busy = {name for name, p in self._inflight.items() if p.thread is not None and p.thread.is_alive()}
        for name, c in self._collectors.items():
            if name in busy:
                continue
            try:
                c.close()
            except Exception:
                pass
        log.info("runner stopped")

    def _within(self, seconds: float, fn: Callable[[], None]) -> bool:
        """Run `fn` in a thread of its own for at most `seconds`; True when it finished without an error."""
        ok: list[bool] = []

        def run() -> None:
            try:
                fn()
                ok.append(True)
            except Exception:
                log.warning("stopping: %s failed", getattr(fn, "__name__", fn), exc_info=True)

        t = threading.Thread(target=run, name="runner-stop", daemon=True)
        self._threads.append(t)
        t.start()
        t.join(seconds)
        return bool(ok)

    def _sign_off(self) -> None:
        self._release_leases()
        if self._lease_owner is not None:
            with self.store.session() as s:
                s.execute(update(RunnerState).where(RunnerState.owner == self.owner)
                          .values(stopped_at=self.clock()).execution_options(synchronize_session=False))

    def lingering(self) -> int:
        """How many threads are still alive that the process should exit without waiting for: abandoned polls,
        and the runner's own loops when something (a platform, a locked database) still holds them."""
        polls = sum(1 for p in self._inflight.values() if p.thread is not None and p.thread.is_alive())
        return polls + sum(1 for t in self._threads if t.is_alive())

    def _release_leases(self) -> None:
        with self.store.session() as s:
            s.execute(update(SourceState).where(SourceState.lease_owner == self.owner)
                      .values(lease_owner=None, lease_until=None))
