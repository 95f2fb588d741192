"""The outbox worker: sends the alert emails that desk/notify/alerts.py wrote, each exactly once.

It takes the email rows only (`channel` NULL); the Slack, Teams and webhook rows share the claim below
but are posted by desk/notify/channels.py.

A row goes pending -> sending (claimed by one worker, for a lease) -> sent,
or cancelled when it is a case alert whose case was resolved (or answered) meanwhile,
or back to pending with `next_attempt_at` pushed out by an exponential
backoff while the SMTP server is down or refuses us for now, or to failed
once the server rejects the message for good (a 5xx reply) or after
`MAX_ATTEMPTS` tries. Claims are a single conditional UPDATE (SQLite) or
`SELECT ... FOR UPDATE SKIP LOCKED` (PostgreSQL), so two workers never send
the same row; a claim whose worker died runs out after its lease and the
row is tried again. Marking a row sent is conditional on still holding the
claim, so it is marked sent once.

Each recipient has a state of its own, because the server answers for each: `delivered_to` (it
accepted the message for them), `refused` (address -> its 5xx reason: never tried again, shown on
the banner and the case's history) and `unknown_to` (see below). A recipient refused for now (a 4xx:
greylisting, a full mailbox) keeps the row pending for that recipient only, and the next try goes
to them alone. The row is `sent` once nobody is left to try and somebody got it (the banner names
whoever was refused), `failed` when nobody did.

A message the server may hold: once the whole message, final dot included, has been written to the
server, the server may have queued it even if its `250` never reaches us (the line drops, the read
times out, the session's deadline cuts it: RFC 1047's duplicate-message window). Sending it again
could deliver it twice; not sending it could lose it. Hearken does neither silently: those
recipients become `unknown_to`, the row `unknown`, never sent again by itself, and the banner says
which alert may not have arrived to whom, with a one-click "Retry" on the Sources page for a person
who has checked. The Message-ID is stable (derived from the row), so a resend that does go out can
be dropped by mail systems that deduplicate. A drop before the final dot was written is a plain
failure: the server cannot hold a message it did not receive whole, and the row is tried again.

The queue is fair: a pass takes the due rows round-robin by the source of their case (by kind for
alerts about no case), oldest first within each, so a wave of alerts from one source never holds up
another source's; a full pass is followed by the next at once rather than after the interval.

The worker runs in a thread of its own (`MailerThread`, started by the runner), so an SMTP server
that stalls never holds up polling or classification, and every SMTP session has a wall-clock
deadline (`alerts.smtp.session_deadline_seconds`): a server that drips its greeting forever is cut
off when it passes, and the batch is retried with backoff like a server that is down. A row whose
email cannot be built or sent (a header that would inject lines, an encoding error) is failed with
the reason at once and never holds up the rows behind it.

The one gap no outbox closes: a worker that dies after the server accepted
a message but before it marked the row sent will send it again after the
lease, with the same Message-ID.

Here: claiming rows, one pass over them (`send_pending`) and the thread that runs passes. The SMTP
session is desk/notify/smtp.py, each recipient's fate after a try desk/notify/delivery.py, and writing
rows, `outbox_health` and `retry_failed` desk/notify/outbox.py.
"""

from __future__ import annotations

import logging
import os
import smtplib
import socket
import ssl
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, Mapping

from sqlalchemy import and_, func, literal, or_, select, update

from desk.config.schema import HearkenConfig
from desk.notify.delivery import BACKOFF_CAP_SECONDS, Try, failure, outcome, to_try
from desk.notify.smtp import (SessionDeadline, SessionWatch, SmtpSetupError, address, build_message, close, connect,
                              describe, past_deadline)
from desk.store.db import Store
from desk.store.models import Case, Outbox, now_utc

log = logging.getLogger(__name__)

LEASE_SECONDS = 300.0
SEND_INTERVAL_SECONDS = 15.0
BATCH = 50  # rows per pass (one SMTP session); a full pass is followed by the next at once
CLOCK_SLACK = timedelta(minutes=5)  # a stored time further ahead than any we set, plus this: written on a fast clock


@dataclass
class SendResult:
    sent: list[int] = field(default_factory=list)
    retrying: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    unknown: list[int] = field(default_factory=list)  # the server may hold them: not sent again by itself
    claimed: int = 0



def _due(now: datetime, channels: bool = False, skip: tuple[str, ...] = ()):
    """Rows to send now: emails, or with `channels` the rows for Slack, Teams and webhooks
    (desk/notify/channels.py). A time further ahead than any the mailer sets was written on a clock that
    ran fast and has been set back since: due, rather than held for as long as the clock was wrong."""
    skewed = now + timedelta(seconds=max(BACKOFF_CAP_SECONDS, LEASE_SECONDS)) + CLOCK_SLACK
    which = Outbox.channel.is_not(None) if channels else Outbox.channel.is_(None)
    if skip:  # channels with as many rows at their receiver as they may have: their rows wait their turn
        which = and_(which, Outbox.channel.not_in(skip))
    return and_(which,
                or_(Outbox.next_attempt_at <= now, Outbox.next_attempt_at > skewed),
                or_(Outbox.status == "pending",
                    and_(Outbox.status == "sending", or_(Outbox.claimed_until < now, Outbox.claimed_until > skewed))))


def _group(source: str | None, kind: str) -> str:
    """What the queue is fair between: the source of the alert's case, else the alert's kind."""
    return source if source is not None else "~" + kind


def _fair_pick(now: datetime, limit: int, channels: bool = False, skip: tuple[str, ...] = ()):
    """The ids of up to `limit` due rows, round-robin between groups (`_group`; for channel rows, between
    channels first), oldest first in each."""
    group = func.coalesce(Case.source, literal("~") + Outbox.kind)
    if channels:
        group = Outbox.channel + literal(":") + group
    ranked = (select(Outbox.id.label("id"), Outbox.next_attempt_at.label("at"),
                     func.row_number().over(partition_by=group, order_by=(Outbox.next_attempt_at, Outbox.id))
                     .label("turn"))
              .select_from(Outbox).outerjoin(Case, Case.id == Outbox.case_id).where(_due(now, channels, skip))
              .subquery())
    return select(ranked.c.id).order_by(ranked.c.turn, ranked.c.at, ranked.c.id).limit(limit)


def claim(store: Store, worker: str, now: datetime, *, limit: int = 20, lease_seconds: float = LEASE_SECONDS,
          channels: bool = False, skip_channels: tuple[str, ...] = ()) -> tuple[str, list[int]]:
    """Claim up to `limit` due rows for this worker, fairly (`_fair_pick`): emails, or with `channels` the
    channel rows, but none of `skip_channels`. Returns (claim token, row ids)."""
    skip = tuple(skip_channels)
    token = f"{worker}:{uuid.uuid4().hex[:8]}"
    values = {"status": "sending", "claimed_by": token, "claimed_until": now + timedelta(seconds=lease_seconds)}
    with store.session() as s:
        if store.dialect == "postgresql":
            picked = list(s.scalars(_fair_pick(now, limit, channels, skip)))
            ids = list(s.scalars(select(Outbox.id).where(Outbox.id.in_(picked), _due(now, channels, skip)).order_by(Outbox.id)
                                 .with_for_update(skip_locked=True))) if picked else []
            if ids:
                s.execute(update(Outbox).where(Outbox.id.in_(ids)).values(**values)
                          .execution_options(synchronize_session=False))
            return token, ids
        # SQLite: one conditional UPDATE; the database's write lock makes it atomic
        s.execute(update(Outbox).where(Outbox.id.in_(_fair_pick(now, limit, channels, skip).scalar_subquery()),
                                       _due(now, channels, skip))
                  .values(**values).execution_options(synchronize_session=False))
        ids = list(s.scalars(select(Outbox.id).where(Outbox.claimed_by == token, Outbox.status == "sending")
                             .order_by(Outbox.id)))
        return token, ids


def finish(store: Store, token: str, row_id: int, values: dict[str, Any]) -> bool:
    """Write a row's outcome if this worker still holds its claim; False when it lost it."""
    with store.session() as s:
        res = s.execute(update(Outbox).where(Outbox.id == row_id, Outbox.claimed_by == token,
                                             Outbox.status == "sending")
                        .values(claimed_by=None, claimed_until=None, **values)
                        .execution_options(synchronize_session=False))
        return bool(res.rowcount)



def send_pending(store: Store, cfg: HearkenConfig, *, now: datetime | None = None, worker: str | None = None,
                 limit: int = BATCH, env: Mapping[str, str] | None = None,
                 tls_context: ssl.SSLContext | None = None) -> SendResult:
    """Send every due outbox row once. `now` decides what is due and when to retry (tests pass it)."""
    now = now or now_utc()
    worker = worker or f"{socket.gethostname()}:{os.getpid()}"
    result = SendResult()
    token, ids = claim(store, worker, now, limit=limit)
    result.claimed = len(ids)
    if not ids:
        return result
    with store.session() as s:
        rows = list(s.scalars(select(Outbox).where(Outbox.id.in_(ids)).order_by(Outbox.next_attempt_at, Outbox.id)))
        stale = {r.id: why for r in rows if (why := no_longer_needed(s, r))}
        sources = dict(s.execute(select(Case.id, Case.source).where(
            Case.id.in_({r.case_id for r in rows if r.case_id is not None}))).all())
    for row_id, why in stale.items():
        finish(store, token, row_id, {"status": "cancelled", "last_error": why})
    rows = _round_robin([r for r in rows if r.id not in stale], lambda r: _group(sources.get(r.case_id), r.kind))
    smtp = cfg.alerts.smtp
    conn: smtplib.SMTP | None = None
    down: Exception | None = None  # the server could not be reached or used: the rest of the batch waits too

    def record(row: Outbox, values: dict[str, Any]) -> None:
        if finish(store, token, row.id, values):
            bucket = {"sent": result.sent, "pending": result.retrying, "failed": result.failed,
                      "unknown": result.unknown}[values["status"]]
            bucket.append(row.id)

    with SessionWatch(smtp.session_deadline_seconds) as watch:
        try:
            for row in rows:
                recipients = to_try(row)
                try:
                    message = build_message(row, smtp)
                except Exception as exc:  # noqa: BLE001 - a row that cannot become an email fails alone
                    record(row, {"status": "failed", "attempts": row.attempts + 1,
                                 "last_error": f"the email could not be built: {describe(exc)}"})
                    continue
                if down is None and conn is None:
                    try:
                        conn = connect(smtp, env=env, tls_context=tls_context, watch=watch)
                    except (smtplib.SMTPException, OSError, SmtpSetupError) as exc:
                        down = past_deadline(exc, watch, smtp)
                        log.warning("cannot send alert emails via %s:%s: %s (%d waiting; retrying with backoff)",
                                    smtp.host, smtp.port, describe(down), len(rows))
                if down is not None or conn is None:
                    record(row, failure(row, down or SessionDeadline("no SMTP connection"), now))
                    continue
                conn.forget()  # type: ignore[attr-defined]
                try:
                    conn.send_message(message, from_addr=address(smtp.sender), to_addrs=recipients)
                except smtplib.SMTPRecipientsRefused:  # every recipient refused at RCPT TO: their answers say how
                    record(row, outcome(row, Try.of(conn, recipients, None), now))
                except (smtplib.SMTPException, OSError, SmtpSetupError) as exc:
                    exc = past_deadline(exc, watch, smtp)
                    if watch.fired:
                        down = exc
                    record(row, outcome(row, Try.of(conn, recipients, exc), now))
                    if watch.fired or not isinstance(exc, (smtplib.SMTPDataError, smtplib.SMTPSenderRefused)):
                        close(conn)
                        conn = None
                except Exception as exc:  # noqa: BLE001 - e.g. an address the server cannot take; this row only
                    record(row, {"status": "failed", "attempts": row.attempts + 1,
                                 "last_error": f"the email could not be sent: {describe(exc)}"})
                    close(conn)
                    conn = None
                else:
                    record(row, outcome(row, Try.of(conn, recipients, None), now))
        finally:
            close(conn)
    return result


def _round_robin(rows: list[Outbox], group: Callable[[Outbox], str]) -> list[Outbox]:
    """`rows` (oldest first) reordered to take one of each group in turn."""
    queues: dict[str, list[Outbox]] = {}
    for r in rows:
        queues.setdefault(group(r), []).append(r)
    out: list[Outbox] = []
    while queues:
        for key in list(queues):
            out.append(queues[key].pop(0))
            if not queues[key]:
                del queues[key]
    return out


CASE_ALERTS = ("severe_complaint", "sla_warning", "sla_breach")


def no_longer_needed(session, row: Outbox) -> str | None:
    """Why a case alert waiting in the queue should not go out any more (the case moved on), or None."""
    if row.case_id is None or row.kind not in CASE_ALERTS:
        return None
    case = session.get(Case, row.case_id)
    if case is None:
        return None
    if case.status in ("resolved", "dismissed"):
        return f"not sent: case #{case.id} was {case.status} before the alert could go out"
    if row.kind == "sla_warning" and row.dedupe_key.startswith("sla_warning:first_response:") \
            and case.first_response_at is not None:
        return f"not sent: case #{case.id} was answered before the warning could go out"
    return None


class MailerThread:
    """Sends the outbox every `interval` seconds in a daemon thread of its own (see the module docstring)."""

    name = "mailer"

    def __init__(self, store: Store, cfg: HearkenConfig, *, interval: float = SEND_INTERVAL_SECONDS,
                 clock=now_utc, worker: str | None = None) -> None:
        self.store = store
        self.cfg = cfg
        self.interval = interval
        self.clock = clock
        self.worker = worker
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False

    def send_now(self) -> SendResult:
        """One pass over the due rows, in the caller's thread."""
        return send_pending(self.store, self.cfg, now=self.clock(), worker=self.worker)

    def _loop(self) -> None:
        while not self._stop.is_set():
            full = False
            try:
                full = self.send_now().claimed >= BATCH  # more are waiting: the next pass at once
                if self._failing:
                    log.info("the outbox worker works again")
                self._failing = False
            except Exception:
                if not self._failing:
                    log.exception("the outbox worker failed; it tries again every %gs", self.interval)
                self._failing = True
            if not full:
                self._stop.wait(self.interval)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float) -> bool:
        """Ask the thread to stop and wait up to `timeout` seconds; False if an SMTP session still holds it."""
        self._stop.set()
        if self._thread is None:
            return True
        self._thread.join(max(0.0, timeout))
        return not self._thread.is_alive()
