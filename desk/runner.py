"""The runner: polls every enabled source on its interval, stores, classifies, opens cases.

Each source is polled in its own worker thread, so a slow or rate-limited
platform never holds up the others. A failure is recorded on the source's
state (reason, when, how many in a row, when to try again) and logged once
when the source goes down and once when it recovers, never once per poll.
A source is polled by one process at a time: the runner holds a lease on it
in the database (several runners can share one PostgreSQL).

SIGTERM and SIGINT stop the loop between polls; polls in flight finish and
commit (or not) as a whole.
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
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import or_, update

import collectors
from collectors.base import AuthFailed, CollectorError, NotConfigured, TryLater
from collectors.match import TermMatcher
from desk import alerts, audit
from desk.config import HearkenConfig
from desk.db import Store
from desk.models import SourceState, now_utc
from desk.pipeline import LeaseLost, classify_pending, month_key, state_for, store_poll

log = logging.getLogger(__name__)


def _failpoint(name: str) -> None:
    """Test hook: with HEARKEN_FAILPOINT=name:FILE, touch FILE and hang here (so a test can kill -9 us)."""
    spec = os.environ.get("HEARKEN_FAILPOINT", "")
    if spec.startswith(name + ":"):
        Path(spec.split(":", 1)[1]).touch()
        time.sleep(3600)


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
        self._inflight: dict[str, Future] = {}
        self._stop = threading.Event()
        self.sources = [s for s in cfg.sources if s.enabled]
        self._pool = ThreadPoolExecutor(max_workers=max(1, min(8, len(self.sources))), thread_name_prefix="poll")
        self._tasks = alerts.periodic_tasks(cfg, store)
        self._task_next: dict[str, datetime] = {}
        self._lease_owner: str | None = None  # set while run_forever() polls under leases
        self._heartbeat: threading.Thread | None = None
        self._polls_done = threading.Event()
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
        """Keep the leases of sources whose poll is still in flight (a slow forum, a long backlog)."""
        busy = [name for name, fut in list(self._inflight.items()) if not fut.done()]
        if not busy:
            return
        until = self.clock() + timedelta(seconds=self.cfg.runner.lease_seconds)
        with self.store.session() as s:
            s.execute(update(SourceState)
                      .where(SourceState.name.in_(busy), SourceState.lease_owner == self.owner,
                             SourceState.lease_until < until)
                      .values(lease_until=until).execution_options(synchronize_session=False))

    def _heartbeat_loop(self) -> None:
        every = max(0.2, self.cfg.runner.lease_seconds / 3)
        while not self._polls_done.wait(every):  # runs on after stop() while polls in flight finish
            try:
                self._renew_leases()
            except Exception:
                log.warning("could not renew source leases", exc_info=True)

    def _next_poll(self, src, now: datetime) -> datetime:
        j = self.cfg.runner.jitter
        return now + timedelta(seconds=src.interval_seconds * (1 + random.uniform(-j, j)))

    def poll_source(self, src) -> int:
        """Poll one source once and store what it found. Failures are recorded, never raised."""
        platform = collectors.PLATFORM_OF_TYPE[src.type]
        now = self.clock()
        try:
            collector = self._collector(src)
            budget = None
            if src.type == "x":
                with self.store.session() as s:
                    st = state_for(s, src.name, platform)
                    used = st.reads_count if st.reads_month == month_key(now) else 0
                budget = max(0, src.monthly_read_cap - used)
            result = collector.poll(self._cursor(src.name, platform), read_budget=budget)
            _failpoint("before-commit")
            new = store_poll(self.store, src.name, platform, result, now=self.clock(), owner=self._lease_owner)
            with self.store.session() as s:
                s.execute(update(SourceState).where(SourceState.name == src.name)
                          .values(next_poll_at=self._next_poll(src, self.clock())))
            return new
        except LeaseLost as exc:
            log.warning("%s; this poll's result was dropped", exc)
        except NotConfigured as exc:
            self._collectors.pop(src.name, None)
            self._record_failure(src, platform, exc, status="disabled")
        except AuthFailed as exc:
            self._collectors.pop(src.name, None)
            self._record_failure(src, platform, exc, status="auth_failed")
        except TryLater as exc:
            self._record_failure(src, platform, exc, retry_after=exc.retry_after)
        except CollectorError as exc:
            self._record_failure(src, platform, exc)
        except Exception as exc:  # a collector bug must not take the runner down
            log.debug("unexpected error polling %s", src.name, exc_info=True)
            self._record_failure(src, platform, exc)
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
        """One pass: start due polls, collect finished ones, classify, run periodic tasks."""
        now = self.clock()
        for src in self.sources:
            fut = self._inflight.get(src.name)
            if fut is not None and not fut.done():
                continue
            self._inflight.pop(src.name, None)
            if self._stop.is_set():
                break
            if self._claim(src, now):
                self._inflight[src.name] = self._pool.submit(self.poll_source, src)
        try:
            self.classify(limit=4 * self.cfg.classifier.batch_size)  # the rest next tick: polls keep their pace
        except Exception:
            log.exception("classification failed; it is retried on the next pass")
        for name, interval, fn in self._tasks:
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
        leases: a source another runner holds is skipped, not polled a second time.
        """
        now = self.clock()
        mine = [src for src in self.sources if self._claim(src, now, due_only=False)]
        for src in self.sources:
            if src not in mine:
                log.info("source %s is being polled by another runner; skipped", src.name)
        self._lease_owner = self.owner
        try:
            futures = {src.name: self._pool.submit(self.poll_source, src) for src in mine}
            self._inflight.update(futures)
            for f in futures.values():
                f.result()
            self.classify()
        finally:
            self._inflight.clear()
            self._release_leases()

    def stop(self, *_: Any) -> None:
        if not self._stop.is_set():
            log.info("stopping: finishing polls in flight")
        self._stop.set()

    def run_forever(self, *, install_signals: bool = True, idle_sleep: float = 1.0) -> None:
        if install_signals and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self.stop)
            signal.signal(signal.SIGINT, self.stop)
        log.info("runner %s started with %d source(s)", self.owner, len(self.sources))
        self.model  # load before polling: loading holds the GIL, which would starve the lease heartbeat
        self._lease_owner = self.owner
        self._heartbeat = threading.Thread(target=self._heartbeat_loop, name="lease-heartbeat", daemon=True)
        self._heartbeat.start()
        try:
            while not self._stop.is_set():
                self.tick()
                self._stop.wait(idle_sleep)
        finally:
            self._pool.shutdown(wait=True)
            self._polls_done.set()
            self._heartbeat.join(timeout=5)
            self._release_leases()
            for c in self._collectors.values():
                try:
                    c.close()
                except Exception:
                    pass
            log.info("runner stopped")

    def _release_leases(self) -> None:
        with self.store.session() as s:
            s.execute(update(SourceState).where(SourceState.lease_owner == self.owner)
                      .values(lease_owner=None, lease_until=None))
