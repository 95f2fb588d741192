"""The runner: polls every enabled source on its interval, stores, classifies, opens cases.

Each poll runs in a daemon thread of its own, so a slow or rate-limited platform never holds up
the others and no number of slow platforms can use up a pool. A failure is recorded on the
source's state (reason, when, how many in a row, when to try again) and logged once when the
source goes down and once when it recovers, never once per poll. A source is polled by one
process at a time: the runner holds a lease on it in the database (several runners can share
one PostgreSQL).

Nothing a platform does can hold the runner:

- every request has a wall-clock deadline and a byte cap (collectors/net/http.py, collectors/net/sessions.py);
- every poll has a deadline of its own (`poll_deadline_seconds` per source). A supervisor thread
  abandons a poll past it: the source is recorded failing with the reason, the poll's lease is no
  longer renewed, and whatever the poll returns late is never stored (a gate each poll passes
  before it writes anything). A source whose abandoned poll is still stuck is not polled again
  until that thread ends;
- the outbox is sent by a thread of its own (desk/notify/mailer.py), each SMTP session under a deadline,
  and its Slack, Teams and webhook rows by another (desk/notify/channels.py), each post under a deadline;
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

Everything the runner does on a schedule is one row of one table (`Runner.table`: name, interval,
function, the loop that runs it; desk/intake/schedule.py): starting due polls, classifying, the alert
scans, the heartbeat, abandoning overdue polls and renewing leases. The outbox is sent by the mailer's
own thread (desk/notify/mailer.py). Polling a source is desk/intake/polling.py's, its state
desk/intake/source_state.py's, storing a poll desk/intake/storing.py's, classifying desk/intake/pipeline.py's.

Sources and the periodic scans are scheduled on `time.monotonic()`, not on the wall clock: when the
clock steps back (NTP correcting a clock that ran fast) polling goes on at its pace. The times
written to `source_state` (next poll, backoff, lease) are wall-clock times for the dashboard and
for other runners; one further ahead than any wait Hearken sets is taken as a clock that ran fast.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from desk.config.schema import HearkenConfig
from desk.intake import source_state
from desk.intake.pipeline import classify_pending
from desk.intake.polling import Poll, Polls
from desk.intake.presence import Presence
from desk.intake.schedule import Loop, Outage, Periodic
from desk.intake.storing import db_reason
from desk.notify import alerts, channels, mailer
from desk.store.db import Store
from desk.store.models import now_utc

log = logging.getLogger(__name__)

SUPERVISE_EVERY = 0.25  # seconds between two looks at the polls in flight
SLICE_CHARS_PER_POST = 500  # a classification slice holds batch_size posts of this length, or fewer longer ones
TICK_SLICES = 4  # classification slices in one tick(): the rest next tick, so polls keep their pace


class Runner:
    def __init__(self, cfg: HearkenConfig, store: Store, *, model_loader: Callable[[], Any] | None = None,
                 owner: str | None = None, clock: Callable[[], datetime] = now_utc) -> None:
        self.cfg = cfg
        self.store = store
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.clock = clock
        self._model_loader = model_loader
        self._model = None
        self.polls = Polls(cfg, store, owner=self.owner, clock=clock)
        self.sources = self.polls.sources
        self.presence = Presence(store, self.owner)
        self._threads: list[threading.Thread] = []  # the loops run_forever started (schedule, classifier)
        self._stop = threading.Event()
        self._stop_at: float | None = None
        self._supervisor: threading.Thread | None = None
        self._supervisor_stop = threading.Event()  # the supervisor runs on after stop() while polls finish
        self._schedule_outage = Outage("the runner's schedule")
        self._tasks = alerts.periodic_tasks(cfg, store, mailer=False)
        self.table = self._table()
        self.mailer = mailer.MailerThread(store, cfg, clock=clock, worker=self.owner)
        self.channels = channels.ChannelThread(store, cfg, clock=clock, worker=self.owner)
        self._tick = self._loop("schedule", "classifier", skip={"runner.heartbeat"})
        source_state.register(store, cfg.sources)

    def _table(self) -> list[Periodic]:
        """Every periodic task, in the order a pass runs them; the outbox has a thread of its own (the mailer)."""
        slice_ = self.cfg.classifier.batch_size
        return [
            Periodic("sources.poll", 0, lambda now: self.polls.start_due(now, self._stop), "schedule"),
            Periodic("classify", 0, lambda now: self.classify(limit=slice_, should_stop=self._stop.is_set).classified,
                     "classifier", until_done=True),
            *[Periodic(name, every, fn, "schedule", guarded=True) for name, every, fn in self._tasks],
            Periodic("runner.heartbeat", 0, self._heartbeat, "schedule"),
            Periodic("polls.deadlines", 0, self.polls.abandon_overdue, "supervisor", guarded=True),
            Periodic("leases.renew", max(0.2, self.cfg.runner.lease_seconds / 3), self.polls.renew_leases,
                     "supervisor", guarded=True, first_after=True),
        ]

    def _loop(self, *names: str, skip: set[str] = frozenset(), stop: threading.Event | None = None,
              outage: Outage | None = None) -> Loop:
        rows = [row for row in self.table if row.loop in names and row.name not in skip]
        return Loop(rows, clock=self.clock, stop=stop or self._stop, outage=outage)

    def _heartbeat(self, now: datetime) -> None:
        # the pass got this far: the polls and scans worked, so an outage of the schedule is over
        self.presence.outage = self._schedule_outage.recovered() or self.presence.outage
        self.presence.heartbeat(now)

    def poll_source(self, src, poll: Poll | None = None) -> int:
        """Poll one source once and store what it found. Failures are recorded, never raised."""
        return self.polls.poll_source(src, poll)

    @property
    def model(self):
        if self._model is None:
            if self._model_loader is None:
                import classifier

                self._model = classifier.load(self.cfg.classifier.model_path, threads=self.cfg.classifier.threads)
            else:
                self._model = self._model_loader()
        return self._model

    def tick(self) -> None:
        """One pass in the caller's thread: start due polls, classify a few slices, run due periodic tasks."""
        self._tick.pass_once(self.clock(), repeat=TICK_SLICES, guard=("classify",))

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
        mine = [src for src in self.sources if self.polls.claim(src, now, due_only=False)]
        for src in self.sources:
            if src not in mine:
                log.info("source %s is being polled by another runner; skipped", src.name)
        self.polls.lease_owner = self.owner
        self._start_supervisor()
        try:
            for poll in [p for p in (self.polls.start(src) for src in mine) if p is not None]:
                while not poll.done.wait(SUPERVISE_EVERY) and not poll.abandoned:
                    pass
            self.classify()
        finally:
            self._stop_supervisor()
            self.polls.inflight.clear()
            source_state.release(self.store, self.owner)

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
        self.polls.lease_owner = self.owner
        try:
            self.presence.sign_in(self.clock())
        except SQLAlchemyError as exc:
            log.warning("could not record this runner in the database (%s); it tries again", db_reason(exc))
        self._start_supervisor()
        self.mailer.start()
        self.channels.start()
        loops = (("runner-schedule", self._loop("schedule", outage=self._schedule_outage)),
                 ("classifier", self._loop("classifier", outage=Outage("classification"))))
        for name, loop in loops:
            t = threading.Thread(target=loop.forever, args=(idle_sleep,), name=name, daemon=True)
            self._threads.append(t)
            t.start()
        try:
            while not self._stop.wait(0.5):
                pass
        finally:
            self._stop.set()
            self._shut_down()

    def _start_supervisor(self) -> None:
        """Abandon polls past their deadline; renew the leases of the others every third of a lease."""
        self._supervisor_stop = threading.Event()
        loop = self._loop("supervisor", stop=self._supervisor_stop)
        self._supervisor = threading.Thread(target=loop.forever, args=(SUPERVISE_EVERY,), kwargs={"wait_first": True},
                                            name="poll-supervisor", daemon=True)
        self._supervisor.start()

    def _stop_supervisor(self, timeout: float = 2.0) -> None:
        self._supervisor_stop.set()
        if self._supervisor is not None:
            self._supervisor.join(timeout=timeout)

    def _shut_down(self) -> None:
        """Within runner.shutdown_seconds of the stop: polls get half of it, the mailer most of the rest, and
        giving the leases back what is left; whatever still waits (for a platform, for a locked database)
        then is abandoned, and the process exits without it (desk/cli.py)."""
        begun = self._stop_at if self._stop_at is not None else time.monotonic()
        bound = self.cfg.runner.shutdown_seconds

        def left(share: float) -> float:
            return max(0.0, begun + bound * share - time.monotonic())

        polls = self.polls.close()
        for poll in polls:
            if poll.active:
                poll.done.wait(left(0.5))
        for t in self._threads:
            t.join(left(0.5))
        stuck = [p for p in polls if p.active and p.abandon()]
        if stuck:
            log.warning("stopping: abandoned %d poll(s) still running (%s); nothing they fetch is stored",
                        len(stuck), ", ".join(p.src.name for p in stuck))
        if not self.channels.stop(left(0.6)):
            log.warning("stopping: a channel delivery was still running; it is sent again after its claim runs out")
        if not self.mailer.stop(left(0.8)):
            log.warning("stopping: an SMTP session was still running; its emails are sent again after their claim runs out")
        self._stop_supervisor(left(0.85))
        if not self._within(left(0.95), self._sign_off):
            log.warning("stopping: the database did not let the source leases be given back in time; they run out "
                        "after runner.lease_seconds")
        self.polls.close_collectors()
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
        source_state.release(self.store, self.owner)
        if self.polls.lease_owner is not None:
            self.presence.sign_off(self.clock())

    def lingering(self) -> int:
        """How many threads are still alive that the process should exit without waiting for: abandoned polls,
        and the runner's own loops when something (a platform, a locked database) still holds them."""
        return self.polls.stuck() + sum(1 for t in self._threads if t.is_alive())
