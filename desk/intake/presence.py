"""A runner's row in `runners`: signing in, the heartbeat, signing off (read by desk/notify/health.py).

The dashboard tells a runner that stopped (or is stuck) from one that works by `seen_at`, written
every HEARTBEAT_SECONDS; a database outage the runner's schedule lived through is written there once
it is over, for the dashboard to show.
"""

from __future__ import annotations

import os
import socket
import time
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, update

from desk.notify.health import RUNNER_QUIET
from desk.store.db import Store
from desk.store.models import RunnerState

HEARTBEAT_SECONDS = 5.0  # how often a running runner writes `runners.seen_at`


class Presence:
    def __init__(self, store: Store, owner: str) -> None:
        self.store = store
        self.owner = owner
        self.outage: str | None = None  # the schedule's last database outage, to record once it is over
        self._at = 0.0

    def sign_in(self, now: datetime) -> None:
        """Record this runner in `runners`, and forget runners long gone (and this host's that died)."""
        host = socket.gethostname()
        with self.store.session() as s:
            here = RunnerState.host == host
            s.execute(delete(RunnerState).where(or_(
                RunnerState.seen_at < now - timedelta(days=1),
                here & (RunnerState.stopped_at.is_not(None) | (RunnerState.seen_at < now - RUNNER_QUIET)
                        | (RunnerState.pid == os.getpid())))))
            s.add(RunnerState(owner=self.owner, host=host, pid=os.getpid(), started_at=now, seen_at=now))
        self._at = time.monotonic()

    def heartbeat(self, now: datetime) -> None:
        """Every HEARTBEAT_SECONDS: `runners.seen_at`, and the last database outage once it is over."""
        if self.outage is None and time.monotonic() - self._at < HEARTBEAT_SECONDS:
            return
        with self.store.session() as s:
            row = s.get(RunnerState, self.owner)
            if row is None:
                row = RunnerState(owner=self.owner, host=socket.gethostname(), pid=os.getpid(), started_at=now)
                s.add(row)
            row.seen_at = now
            if self.outage is not None:
                row.outage, row.outage_ended_at = self.outage, now
        self.outage = None
        self._at = time.monotonic()

    def sign_off(self, now: datetime) -> None:
        with self.store.session() as s:
            s.execute(update(RunnerState).where(RunnerState.owner == self.owner)
                      .values(stopped_at=now).execution_options(synchronize_session=False))
