"""The runner's schedule: periodic tasks (name, interval, function), each run by one loop, and a loop's outages.

A `Periodic` says what to run and how often; the runner lists them all in one table
(desk/intake/runner.py, `Runner.table`), and each loop (a thread of its own) runs the rows named for
it. A row with `every` 0 runs on each pass of its loop; an `until_done` row returns whether work is
still waiting, and its loop then passes again at once. A task is due when the monotonic clock or the wall clock
passed its next time, so a clock stepped back delays nothing. A `guarded` row's failure is logged and
the pass goes on; any other ends the pass, and the loop backs off under its `Outage`, which logs the
trouble once when it starts and once when it ends.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError

from desk.intake.storing import db_reason
from desk.store.models import now_utc

log = logging.getLogger(__name__)

RETRY_CAP_SECONDS = 5.0  # the longest wait before a loop tries a failing database again


@dataclass(frozen=True)
class Periodic:
    name: str
    every: float  # seconds between two runs; 0: on every pass of its loop
    run: Callable[[datetime], object]  # fn(now)
    loop: str  # the loop (thread) that runs it
    until_done: bool = False  # run() tells whether work is still waiting: then its loop passes again at once
    guarded: bool = False  # a failure is logged and the loop goes on (else the loop backs off)
    first_after: bool = False  # the first run one interval after the loop starts, not at once


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


class Loop:
    """The rows of one loop, with their next times; `pass_once` runs those due, `forever` until `stop`."""

    def __init__(self, rows: Sequence[Periodic], *, clock: Callable[[], datetime], stop: threading.Event,
                 outage: Outage | None = None) -> None:
        self.rows = list(rows)
        self.clock = clock
        self.stop = stop
        self.outage = outage
        self._wall: dict[str, datetime] = {}
        self._mono: dict[str, float] = {}
        started = clock()
        for row in self.rows:
            if row.first_after:
                self._next(row, started)

    def _next(self, row: Periodic, now: datetime) -> None:
        self._wall[row.name] = now + timedelta(seconds=row.every)
        self._mono[row.name] = time.monotonic() + row.every

    def _due(self, row: Periodic, now: datetime) -> bool:
        wall = self._wall.get(row.name)
        return wall is None or now >= wall or time.monotonic() >= self._mono[row.name]

    def pass_once(self, now: datetime | None = None, *, repeat: int = 1, guard: Sequence[str] = ()) -> bool:
        """Run the rows that are due, in order (each at most `repeat` times while it has work waiting; those
        named in `guard` guarded this once); True when one left work waiting."""
        now = now or self.clock()
        busy = False
        for row in self.rows:
            for _ in range(repeat):
                if self.stop.is_set() or not self._due(row, now):
                    break
                try:
                    more = bool(row.run(now)) and row.until_done
                except Exception:
                    if not (row.guarded or row.name in guard):
                        raise
                    log.exception("periodic task %s failed", row.name)
                    more = False
                if row.every:
                    self._next(row, now)
                busy = busy or more
                if not more:
                    break
        return busy

    def forever(self, idle: float, *, wait_first: bool = False) -> None:
        """Pass until `stop`, waiting `idle` between passes (none while work is waiting); with `wait_first`,
        wait before each pass. A failure that is not guarded is retried under the loop's outage backoff."""
        outage = self.outage or Outage("a loop")
        if wait_first and self.stop.wait(idle):
            return
        while not self.stop.is_set():
            try:
                wait = 0.0 if self.pass_once() else idle
                outage.recovered()
            except Exception as exc:  # noqa: BLE001 - a locked or unreachable database, or a bug: never the end
                wait = outage.failed(exc)
            if wait_first:
                wait = max(wait, idle)
            if wait:
                self.stop.wait(wait)
