"""Polling: each source's poll in a thread of its own, under a deadline and the source's lease.

`Polls` holds one runner's polls in flight and each source's place on the monotonic schedule. It
claims a due source (desk/intake/source_state.py holds the lease), starts its poll in a daemon
thread, and stores what it found (desk/intake/storing.py) or records why it failed. A poll past its
deadline is abandoned: the source is recorded failing, its lease no longer renewed, and whatever the
poll returns late is never stored (`Poll.settle`, a gate each poll passes before it writes anything).
A source whose abandoned poll is still stuck is not polled again until that thread ends.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import collectors
from collectors.net import http
from collectors.base import AuthFailed, CollectorError, NotConfigured, TryLater
from collectors.match import TermMatcher
from desk.config.schema import HearkenConfig
from desk.failpoints import failpoint
from desk.intake import source_state
from desk.intake.source_state import LeaseLost
from desk.intake.storing import store_poll
from desk.store.db import Store

log = logging.getLogger(__name__)

CLOCK_SLACK_SECONDS = 60.0  # a stored time further ahead than the longest wait plus this was written on a fast clock


def matcher_for(cfg: HearkenConfig, src: Any) -> TermMatcher:
    """The terms a source's posts are matched against: the brand's and the source's own."""
    return TermMatcher(list(cfg.brand.terms) + list(src.terms), cfg.brand.exclusions)


def own_accounts(cfg: HearkenConfig, src: Any) -> list[str]:
    """Our accounts on the source's platform: their posts are never mentions."""
    return list(cfg.accounts.get(src.type, []))


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


class Polls:
    """One runner's polls: which source is due, the poll in flight for each, and its outcome."""

    def __init__(self, cfg: HearkenConfig, store: Store, *, owner: str, clock: Callable[[], datetime]) -> None:
        self.cfg = cfg
        self.store = store
        self.owner = owner
        self.clock = clock
        self.sources = [s for s in cfg.sources if s.enabled]
        self.lease_owner: str | None = None  # set while the runner polls under leases (run_forever, run_once)
        self.inflight: dict[str, Poll] = {}
        self._inflight_lock = threading.Lock()
        self._closing = False  # set by the shutdown: no poll starts after it
        self._collectors: dict[str, Any] = {}
        self._due: dict[str, float] = {}  # source -> time.monotonic() of its next poll (or the end of its backoff)

    def start_due(self, now: datetime, stop: threading.Event) -> None:
        """Start the poll of every source that is due and not in flight, and that this process could claim."""
        for src in self.sources:
            poll = self.inflight.get(src.name)
            if poll is not None:
                if poll.active or poll.thread.is_alive():  # an abandoned poll still stuck: not a second one
                    continue
                with self._inflight_lock:
                    self.inflight.pop(src.name, None)
            if stop.is_set():
                break
            if self.claim(src, now):
                self.start(src)

    def close(self) -> list[Poll]:
        """No poll starts after this; returns the polls in flight."""
        with self._inflight_lock:
            self._closing = True
            return list(self.inflight.values())

    def stuck(self) -> int:
        """Polls whose thread is still alive (abandoned, or still running)."""
        return sum(1 for p in self.inflight.values() if p.thread is not None and p.thread.is_alive())

    def close_collectors(self) -> None:
        """Release the collectors' connections, but those of polls still running."""
        busy = {name for name, p in self.inflight.items() if p.thread is not None and p.thread.is_alive()}
        for name, c in self._collectors.items():
            if name in busy:
                continue
            try:
                c.close()
            except Exception:
                pass

    def collector(self, src) -> Any:
        if src.name not in self._collectors:
            self._collectors[src.name] = collectors.build(
                src, matcher=matcher_for(self.cfg, src), own_accounts=own_accounts(self.cfg, src))
        return self._collectors[src.name]

    def _longest_wait(self, src) -> float:
        """The furthest ahead this runner ever schedules the source (a poll, a backoff), in seconds."""
        return max(self.cfg.runner.max_backoff_seconds, src.interval_seconds * (1 + self.cfg.runner.jitter))

    def claim(self, src, now: datetime, *, due_only: bool = True) -> bool:
        """Take (or renew) this process's lease on the source; False if another process holds it.

        With `due_only` (the service loop) the source must also be due: past its next poll and its backoff,
        by this process's monotonic schedule once it has polled the source, else by the times stored for
        it (by another runner, or before a restart), where one further ahead than any wait we set counts
        as due: it was written on a clock that ran fast and has been set back since.
        """
        stored_times = None
        if due_only:
            due = self._due.get(src.name)
            if due is not None and time.monotonic() < due:
                return False
            if due is None:
                stored_times = now + timedelta(seconds=self._longest_wait(src) + CLOCK_SLACK_SECONDS)
        return source_state.claim(self.store, src.name, self.owner, now, due_by_stored_times=stored_times,
                                  skip_disabled=due_only,
                                  lease_seconds=max(self.cfg.runner.lease_seconds, src.interval_seconds * 2))

    def renew_leases(self, now: datetime | None = None) -> None:
        """Keep the leases of sources whose poll is still in flight (a slow forum, a long backlog).

        An abandoned poll's lease is not renewed: it runs out, and another runner may take the source.
        """
        busy = [p.src.name for p in list(self.inflight.values()) if p.active]
        source_state.renew(self.store, busy, self.owner, self.clock() + timedelta(seconds=self.cfg.runner.lease_seconds))

    def abandon_overdue(self, now: datetime | None = None) -> None:
        for p in list(self.inflight.values()):
            if p.active and p.left() <= 0 and p.abandon():
                self.record_failure(p.src, TryLater(
                    f"the poll took longer than its {p.deadline:g}s deadline (poll_deadline_seconds) and was "
                    "abandoned; nothing it fetched is stored"))

    def schedule(self, src, seconds: float) -> datetime:
        """Set the source's next poll `seconds` from now on the monotonic clock; the wall time to store."""
        self._due[src.name] = time.monotonic() + seconds
        return self.clock() + timedelta(seconds=seconds)

    def _interval(self, src) -> float:
        j = self.cfg.runner.jitter
        return src.interval_seconds * (1 + random.uniform(-j, j))

    def start(self, src) -> Poll | None:
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
            self.inflight[src.name] = poll
        poll.thread.start()
        return poll

    def poll_source(self, src, poll: Poll | None = None) -> int:
        """Poll one source once and store what it found. Failures are recorded, never raised.

        With `poll` (the runner's own threads) nothing is stored or recorded once it was abandoned.
        """
        platform = src.type
        late = f"source {src.name}: the poll abandoned at its deadline has ended; what it returned is dropped"
        try:
            with http.poll_deadline(poll.left() if poll is not None else float(src.poll_deadline_seconds)):
                collector = self.collector(src)
                budget = source_state.read_budget(self.store, src, self.clock())
                result = collector.poll(source_state.cursor(self.store, src.name, platform), read_budget=budget)
            failpoint("before-commit")
            if poll is not None and not poll.settle():
                log.info(late)
                return 0
            new = store_poll(self.store, src.name, platform, result, now=self.clock(), owner=self.lease_owner)
            source_state.set_next_poll(self.store, src.name, self.schedule(src, self._interval(src)))
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
            self.record_failure(src, failure, status="disabled")
        elif isinstance(failure, AuthFailed):
            self._collectors.pop(src.name, None)
            self.record_failure(src, failure, status="auth_failed")
        elif isinstance(failure, TryLater):
            self.record_failure(src, failure, retry_after=failure.retry_after)
        else:
            if not isinstance(failure, CollectorError):  # a collector bug must not take the runner down
                log.debug("unexpected error polling %s", src.name, exc_info=failure)
            self.record_failure(src, failure)
        return 0

    def record_failure(self, src, exc: Exception, *, status: str = "failing", retry_after: float | None = None) -> None:
        source_state.record_failure(self.store, src, exc, now=self.clock(), status=status, retry_after=retry_after,
                                    max_backoff=self.cfg.runner.max_backoff_seconds, jitter=self.cfg.runner.jitter,
                                    schedule=lambda wait: self.schedule(src, wait))
