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
- the outbox is sent by a thread of its own (desk/mailer.py), each SMTP session under a deadline;
- SIGTERM and SIGINT stop the runner within `runner.shutdown_seconds` (default 10): polls in
  flight get the first half of it to finish and commit; the rest are abandoned (never stored),
  the leases are given back and the process exits.
"""

from __future__ import annotations

import logging
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

from sqlalchemy import or_, update

import collectors
from collectors import http
from collectors.base import AuthFailed, CollectorError, NotConfigured, TryLater
from collectors.match import TermMatcher
from desk import alerts, audit, mailer
from desk.config import HearkenConfig
from desk.db import Store
from desk.models import SourceState, now_utc
from desk.pipeline import LeaseLost, classify_pending, month_key, state_for, store_poll

log = logging.getLogger(__name__)

SUPERVISE_EVERY = 0.25  # seconds between two looks at the polls in flight


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

    def _claim(self, src, now: datetime, *, due_only: bool = True) -> bool:
        """Take (or renew) this process's lease on the source; False if another process holds it.

        With `due_only` (the service loop) the source must also be due: past its next poll and its backoff.
        """
        lease_until = now + timedelta(seconds=max(self.cfg.runner.lease_seconds, src.interval_seconds * 2))
        conditions = [SourceState.name == src.name,
                      or_(SourceState.lease_owner.is_(None), SourceState.lease_owner == self.owner,
                          SourceState.lease_until < now)]
        if due_only:
            conditions += [or_(SourceState.next_poll_at.is_(None), SourceState.next_poll_at <= now),
                           or_(SourceState.backoff_until.is_(None), SourceState.backoff_until <= now),
                           SourceState.status.notin_(["disabled"])]
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

    def _stop_supervisor(self) -> None:
        self._supervisor_stop.set()
        if self._supervisor is not None:
            self._supervisor.join(timeout=2)

    def _next_poll(self, src, now: datetime) -> datetime:
        j = self.cfg.runner.jitter
        return now + timedelta(seconds=src.interval_seconds * (1 + random.uniform(-j, j)))

    def _start_poll(self, src) -> Poll:
        poll = Poll(src, float(src.poll_deadline_seconds))

        def run() -> None:
            try:
                self.poll_source(src, poll)
            finally:
                poll.done.set()

        poll.thread = threading.Thread(target=run, name=f"poll-{src.name}", daemon=True)
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
                          .values(next_poll_at=self._next_poll(src, self.clock())))
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
        reason = str(exc) if isinstance(exc, CollectorError) else f"{type(exc).__name__}: {exc}"
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
                wait = retry_after
            else:
                wait = min(self.cfg.runner.max_backoff_seconds,
                           src.interval_seconds * 2 ** min(st.consecutive_failures - 1, 16))
                wait *= 1 + random.uniform(0, self.cfg.runner.jitter)
            st.backoff_until = now + timedelta(seconds=wait)
            st.next_poll_at = st.backoff_until
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
        """One pass: start due polls, classify, run periodic tasks."""
        now = self.clock()
        for src in self.sources:
            poll = self._inflight.get(src.name)
            if poll is not None:
                if poll.active or poll.thread.is_alive():  # an abandoned poll still stuck: not a second one
                    continue
                del self._inflight[src.name]
            if self._stop.is_set():
                break
            if self._claim(src, now):
                self._start_poll(src)
        batch = self.cfg.classifier.batch_size
        for _ in range(4):  # the rest next tick: polls keep their pace, and a stop is noticed between batches
            if self._stop.is_set():
                break
            try:
                if self.classify(limit=batch).classified < batch:
                    break
            except Exception:
                log.exception("classification failed; it is retried on the next pass")
                break
        for name, interval, fn in self._tasks:
            if self._stop.is_set():
                break
            if self._task_next.get(name, now) <= now:
                try:
                    fn(now)
                except Exception:
                    log.exception("periodic task %s failed", name)
                self._task_next[name] = now + timedelta(seconds=interval)

    def classify(self, limit: int | None = None):
        return classify_pending(self.store, self.cfg, self.model, limit=limit)

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
            for poll in [self._start_poll(src) for src in mine]:
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
        if install_signals and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self.stop)
            signal.signal(signal.SIGINT, self.stop)
        log.info("runner %s started with %d source(s)", self.owner, len(self.sources))
        self.model  # load before polling: loading holds the GIL, which would starve the lease heartbeat
        self._lease_owner = self.owner
        self._start_supervisor()
        self.mailer.start()
        try:
            while not self._stop.is_set():
                self.tick()
                self._stop.wait(idle_sleep)
        finally:
            self._shut_down()

    def _shut_down(self) -> None:
        """Within runner.shutdown_seconds of the stop: polls get half of it, the mailer most of the rest."""
        begun = self._stop_at if self._stop_at is not None else time.monotonic()
        bound = self.cfg.runner.shutdown_seconds
        for poll in list(self._inflight.values()):
            if poll.active:
                poll.done.wait(max(0.0, begun + bound / 2 - time.monotonic()))
        stuck = [p for p in self._inflight.values() if p.active and p.abandon()]
        if stuck:
            log.warning("stopping: abandoned %d poll(s) still running (%s); nothing they fetch is stored",
                        len(stuck), ", ".join(p.src.name for p in stuck))
        if not self.mailer.stop(begun + bound * 0.8 - time.monotonic()):
            log.warning("stopping: an SMTP session was still running; its emails are sent again after their claim runs out")
        self._stop_supervisor()
        try:
            self._release_leases()
        except Exception:
            log.warning("could not give the source leases back; they run out after runner.lease_seconds",
                        exc_info=True)
        busy = {name for name, p in self._inflight.items() if p.thread is not None and p.thread.is_alive()}
        for name, c in self._collectors.items():
            if name in busy:
                continue
            try:
                c.close()
            except Exception:
                pass
        log.info("runner stopped")

    def lingering(self) -> int:
        """How many abandoned poll threads are still alive (the process should exit without waiting for them)."""
        return sum(1 for p in self._inflight.values() if p.thread is not None and p.thread.is_alive())

    def _release_leases(self) -> None:
        with self.store.session() as s:
            s.execute(update(SourceState).where(SourceState.lease_owner == self.owner)
                      .values(lease_owner=None, lease_until=None))
