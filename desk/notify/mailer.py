"""The outbox worker: sends the alert emails that desk/notify/alerts.py wrote, each exactly once.

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

`outbox_health(store)` summarises the queue for the dashboard's Sources page.
"""

from __future__ import annotations

import email.policy
import logging
import os
import re
import smtplib
import socket
import ssl
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any, Callable, Mapping

from sqlalchemy import and_, func, literal, or_, select, update

from desk.config.schema import HearkenConfig, Smtp
from desk.store.db import Store
from desk.errors import UserError
from desk.store.models import Case, Outbox, now_utc

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 20
BACKOFF_BASE_SECONDS = 60.0
BACKOFF_CAP_SECONDS = 3600.0
LEASE_SECONDS = 300.0
SEND_INTERVAL_SECONDS = 15.0
BATCH = 50  # rows per pass (one SMTP session); a full pass is followed by the next at once
CLOCK_SLACK = timedelta(minutes=5)  # a stored time further ahead than any we set, plus this: written on a fast clock


class SmtpSetupError(UserError):
    """The SMTP settings cannot work as they are (e.g. a login variable that is not set)."""


class SessionDeadline(OSError):
    """The SMTP session ran past `alerts.smtp.session_deadline_seconds`; the server is treated as unusable for now."""


class _SessionWatch:
    """Shuts an SMTP connection's socket once the session's deadline passes, whatever smtplib is waiting for."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.conn: smtplib.SMTP | None = None
        self.fired = False
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def _fire(self) -> None:
        self.fired = True
        sock = getattr(self.conn, "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self) -> _SessionWatch:
        self._timer.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._timer.cancel()


@dataclass
class SendResult:
    sent: list[int] = field(default_factory=list)
    retrying: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    unknown: list[int] = field(default_factory=list)  # the server may hold them: not sent again by itself
    claimed: int = 0


def backoff_seconds(attempts: int) -> float:
    """Wait before the next try after `attempts` failed tries: 1, 2, 4 ... minutes, at most an hour."""
    return min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(0, attempts - 1))


def _due(now: datetime):
    """Rows to send now. A time further ahead than any the mailer sets was written on a clock that ran fast
    and has been set back since: due, rather than held for as long as the clock was wrong."""
    skewed = now + timedelta(seconds=max(BACKOFF_CAP_SECONDS, LEASE_SECONDS)) + CLOCK_SLACK
    return and_(or_(Outbox.next_attempt_at <= now, Outbox.next_attempt_at > skewed),
                or_(Outbox.status == "pending",
                    and_(Outbox.status == "sending", or_(Outbox.claimed_until < now, Outbox.claimed_until > skewed))))


def _group(source: str | None, kind: str) -> str:
    """What the queue is fair between: the source of the alert's case, else the alert's kind."""
    return source if source is not None else "~" + kind


def _fair_pick(now: datetime, limit: int):
    """The ids of up to `limit` due rows, round-robin between groups (`_group`), oldest first in each."""
    group = func.coalesce(Case.source, literal("~") + Outbox.kind)
    ranked = (select(Outbox.id.label("id"), Outbox.next_attempt_at.label("at"),
                     func.row_number().over(partition_by=group, order_by=(Outbox.next_attempt_at, Outbox.id))
                     .label("turn"))
              .select_from(Outbox).outerjoin(Case, Case.id == Outbox.case_id).where(_due(now)).subquery())
    return select(ranked.c.id).order_by(ranked.c.turn, ranked.c.at, ranked.c.id).limit(limit)


def claim(store: Store, worker: str, now: datetime, *, limit: int = 20,
          lease_seconds: float = LEASE_SECONDS) -> tuple[str, list[int]]:
    """Claim up to `limit` due rows for this worker, fairly (`_fair_pick`). Returns (claim token, row ids)."""
    token = f"{worker}:{uuid.uuid4().hex[:8]}"
    values = {"status": "sending", "claimed_by": token, "claimed_until": now + timedelta(seconds=lease_seconds)}
    with store.session() as s:
        if store.dialect == "postgresql":
            picked = list(s.scalars(_fair_pick(now, limit)))
            ids = list(s.scalars(select(Outbox.id).where(Outbox.id.in_(picked), _due(now)).order_by(Outbox.id)
                                 .with_for_update(skip_locked=True))) if picked else []
            if ids:
                s.execute(update(Outbox).where(Outbox.id.in_(ids)).values(**values)
                          .execution_options(synchronize_session=False))
            return token, ids
        # SQLite: one conditional UPDATE; the database's write lock makes it atomic
        s.execute(update(Outbox).where(Outbox.id.in_(_fair_pick(now, limit).scalar_subquery()), _due(now))
                  .values(**values).execution_options(synchronize_session=False))
        ids = list(s.scalars(select(Outbox.id).where(Outbox.claimed_by == token, Outbox.status == "sending")
                             .order_by(Outbox.id)))
        return token, ids


# headers unfolded up to the SMTP line limit: folding a long subject can leave it starting with a space
_POLICY = email.policy.default.clone(max_line_length=998)


def build_message(row: Outbox, smtp: Smtp) -> EmailMessage:
    """The email for an outbox row: plain text, with an HTML alternative when the row has one."""
    msg = EmailMessage(policy=_POLICY)
    msg["From"] = smtp.sender
    msg["To"] = ", ".join(row.recipients)
    msg["Subject"] = row.subject
    msg["Date"] = format_datetime(row.created_at)
    msg["Message-ID"] = f"<hearken.{row.id}.{re.sub(r'[^A-Za-z0-9.-]', '-', row.dedupe_key)}@hearken.invalid>"
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Hearken-Alert"] = row.kind
    msg.set_content(row.body_text)
    if row.body_html:
        msg.add_alternative(row.body_html, subtype="html")
    return msg


class _Tracked:
    """What an SMTP connection learnt during one message: the server's answer to each RCPT TO, and whether
    the whole message, final dot included, was written to the server (after which it may hold it)."""

    rcpt_replies: dict[str, tuple[int, bytes]]
    dot_sent: bool

    def forget(self) -> None:
        self.rcpt_replies, self.dot_sent = {}, False

    def rcpt(self, recip: str, options: Any = ()) -> tuple[int, bytes]:
        code, resp = super().rcpt(recip, options)  # type: ignore[misc]
        self.rcpt_replies[recip] = (code, resp)
        return code, resp

    def send(self, s: Any) -> None:
        super().send(s)  # type: ignore[misc]
        if isinstance(s, bytes) and s.endswith(b"\r\n.\r\n"):  # smtplib.SMTP.data writes the message in one go
            self.dot_sent = True


class _WatchedSMTP(_Tracked, smtplib.SMTP):
    """smtplib.SMTP that its watch can cut from the start, while the server's greeting is still awaited."""

    def __init__(self, watch: _SessionWatch, *args: Any, **kwargs: Any) -> None:
        watch.conn = self
        self.forget()
        super().__init__(*args, **kwargs)


class _WatchedSMTPSSL(_Tracked, smtplib.SMTP_SSL):
    def __init__(self, watch: _SessionWatch, *args: Any, **kwargs: Any) -> None:
        watch.conn = self
        self.forget()
        super().__init__(*args, **kwargs)


def connect(smtp: Smtp, *, env: Mapping[str, str] | None = None, tls_context: ssl.SSLContext | None = None,
            watch: _SessionWatch | None = None) -> smtplib.SMTP:
    """Open, secure and log in to the SMTP server as configured (under `watch`'s deadline when given)."""
    env = os.environ if env is None else env
    login = None
    if smtp.username_env:
        user, password = env.get(smtp.username_env), env.get(smtp.password_env or "", "")
        if not user:
            raise SmtpSetupError(f"alerts.smtp.username_env names ${smtp.username_env}, which is not set")
        if smtp.password_env and not password:
            raise SmtpSetupError(f"alerts.smtp.password_env names ${smtp.password_env}, which is not set")
        login = (user, password)
    context = tls_context or ssl.create_default_context()
    watch = watch or _SessionWatch(smtp.session_deadline_seconds)
    if smtp.security == "ssl":
        conn: smtplib.SMTP = _WatchedSMTPSSL(watch, smtp.host, smtp.port, timeout=smtp.timeout_seconds, context=context)
    else:
        conn = _WatchedSMTP(watch, smtp.host, smtp.port, timeout=smtp.timeout_seconds)
    try:
        conn.ehlo()
        if smtp.security == "starttls":
            conn.starttls(context=context)
            conn.ehlo()
        if login:
            conn.login(*login)
    except BaseException:
        conn.close()
        raise
    return conn


def _permanent(exc: Exception) -> bool:
    """True when the server rejected the message for good (5xx) rather than for now."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in exc.recipients.values())
    if isinstance(exc, (smtplib.SMTPAuthenticationError, smtplib.SMTPConnectError, smtplib.SMTPHeloError,
                        smtplib.SMTPNotSupportedError)):
        return False  # the server or our settings, not this message: keep the alert until they are fixed
    code = getattr(exc, "smtp_code", None)
    return isinstance(code, int) and code >= 500


def _describe(exc: Exception) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        return f"{type(exc).__name__}: {exc.smtp_code} {text}"
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "every recipient refused: " + "; ".join(
            f"{r} ({c} {m.decode(errors='replace') if isinstance(m, bytes) else m})" for r, (c, m) in exc.recipients.items())
    return f"{type(exc).__name__}: {exc}"


def _finish(store: Store, token: str, row_id: int, values: dict[str, Any]) -> bool:
    """Write a row's outcome if this worker still holds its claim; False when it lost it."""
    with store.session() as s:
        res = s.execute(update(Outbox).where(Outbox.id == row_id, Outbox.claimed_by == token,
                                             Outbox.status == "sending")
                        .values(claimed_by=None, claimed_until=None, **values)
                        .execution_options(synchronize_session=False))
        return bool(res.rowcount)


def _reply_text(code: int, resp: bytes | str) -> str:
    text = resp.decode(errors="replace") if isinstance(resp, bytes) else str(resp)
    return clean_line(f"{code} {text}")


def clean_line(text: str) -> str:
    return header_text(text)[:500]


def to_try(row: Outbox) -> list[str]:
    """The row's recipients still to be tried: neither delivered, refused for good, nor possibly delivered."""
    done = set(row.delivered_to or []) | set(row.refused or {}) | set(row.unknown_to or [])
    return [r for r in row.recipients if r not in done]


@dataclass
class _Try:
    """One try of one row, recipient by recipient."""

    delivered: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)  # for good (5xx)
    deferred: dict[str, str] = field(default_factory=dict)  # for now: tried again after the backoff
    unknown: list[str] = field(default_factory=list)  # the server may hold it: never sent again by itself

    @classmethod
    def of(cls, conn: smtplib.SMTP | None, recipients: list[str], exc: Exception | None) -> _Try:
        """What happened to each recipient, from the server's answers to RCPT TO and how the try ended."""
        t = cls()
        replies: dict[str, tuple[int, bytes]] = getattr(conn, "rcpt_replies", {}) if conn is not None else {}
        dot_sent = bool(getattr(conn, "dot_sent", False)) if conn is not None else False
        whole = _describe(exc) if exc is not None else ""
        for r in recipients:
            code, resp = replies.get(r, (0, b""))
            if code and code not in (250, 251):  # refused at RCPT TO, whatever came after
                (t.refused if code >= 500 else t.deferred)[r] = _reply_text(code, resp)
            elif exc is None:
                t.delivered.append(r)
            elif isinstance(exc, smtplib.SMTPResponseException):  # the server answered MAIL FROM or the message
                (t.refused if _permanent(exc) else t.deferred)[r] = whole
            elif code and dot_sent:
                t.unknown.append(r)
            else:  # the session broke before the server could hold the message for this recipient
                t.deferred[r] = whole
        return t


def _outcome(row: Outbox, t: _Try, now: datetime) -> dict[str, Any]:
    """The row's new state after a try: per recipient, and as a whole."""
    delivered = list(dict.fromkeys([*(row.delivered_to or []), *t.delivered]))
    refused = {**(row.refused or {}), **t.refused}
    unknown = list(dict.fromkeys([*(row.unknown_to or []), *t.unknown]))
    attempts = row.attempts + 1
    left = [r for r in row.recipients if r not in delivered and r not in refused and r not in unknown]
    if left and attempts >= MAX_ATTEMPTS:
        refused.update({r: f"gave up after {attempts} tries: {t.deferred.get(r, 'not delivered')}" for r in left})
        left = []
    notes = [f"refused for {r}: {why}" for r, why in t.refused.items()]
    notes += [f"{r}: {why} (tried again later)" for r, why in t.deferred.items() if r in left]
    if t.unknown:
        notes.append("the server took the whole message and hung up before confirming it: it may have reached "
                     + ", ".join(t.unknown) + "; not sent again by itself (Retry on the Sources page sends it again)")
    values: dict[str, Any] = {"attempts": attempts, "delivered_to": delivered or None, "refused": refused or None,
                              "unknown_to": unknown or None}
    if notes:
        values["last_error"] = "; ".join(notes)[:4000]
    if left:
        values.update(status="pending", next_attempt_at=now + timedelta(seconds=backoff_seconds(attempts)))
    elif unknown:
        values.update(status="unknown", sent_at=now if delivered else None)
    elif delivered:
        values.update(status="sent", sent_at=now)
        if not refused:
            values["last_error"] = None
    else:
        values["status"] = "failed"
    return values


def _failure(row: Outbox, exc: Exception, now: datetime) -> dict[str, Any]:
    """The row's new state when the whole try failed before any recipient was asked (the server is down...)."""
    return _outcome(row, _Try.of(None, to_try(row), exc), now) | {"last_error": _describe(exc)}


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
        stale = {r.id: why for r in rows if (why := _no_longer_needed(s, r))}
        sources = dict(s.execute(select(Case.id, Case.source).where(
            Case.id.in_({r.case_id for r in rows if r.case_id is not None}))).all())
    for row_id, why in stale.items():
        _finish(store, token, row_id, {"status": "cancelled", "last_error": why})
    rows = _round_robin([r for r in rows if r.id not in stale], lambda r: _group(sources.get(r.case_id), r.kind))
    smtp = cfg.alerts.smtp
    conn: smtplib.SMTP | None = None
    down: Exception | None = None  # the server could not be reached or used: the rest of the batch waits too

    def record(row: Outbox, values: dict[str, Any]) -> None:
        if _finish(store, token, row.id, values):
            bucket = {"sent": result.sent, "pending": result.retrying, "failed": result.failed,
                      "unknown": result.unknown}[values["status"]]
            bucket.append(row.id)

    with _SessionWatch(smtp.session_deadline_seconds) as watch:
        try:
            for row in rows:
                recipients = to_try(row)
                try:
                    message = build_message(row, smtp)
                except Exception as exc:  # noqa: BLE001 - a row that cannot become an email fails alone
                    record(row, {"status": "failed", "attempts": row.attempts + 1,
                                 "last_error": f"the email could not be built: {_describe(exc)}"})
                    continue
                if down is None and conn is None:
                    try:
                        conn = connect(smtp, env=env, tls_context=tls_context, watch=watch)
                    except (smtplib.SMTPException, OSError, SmtpSetupError) as exc:
                        down = _past_deadline(exc, watch, smtp)
                        log.warning("cannot send alert emails via %s:%s: %s (%d waiting; retrying with backoff)",
                                    smtp.host, smtp.port, _describe(down), len(rows))
                if down is not None or conn is None:
                    record(row, _failure(row, down or SessionDeadline("no SMTP connection"), now))
                    continue
                conn.forget()  # type: ignore[attr-defined]
                try:
                    conn.send_message(message, from_addr=_address(smtp.sender), to_addrs=recipients)
                except smtplib.SMTPRecipientsRefused:  # every recipient refused at RCPT TO: their answers say how
                    record(row, _outcome(row, _Try.of(conn, recipients, None), now))
                except (smtplib.SMTPException, OSError, SmtpSetupError) as exc:
                    exc = _past_deadline(exc, watch, smtp)
                    if watch.fired:
                        down = exc
                    record(row, _outcome(row, _Try.of(conn, recipients, exc), now))
                    if watch.fired or not isinstance(exc, (smtplib.SMTPDataError, smtplib.SMTPSenderRefused)):
                        _close(conn)
                        conn = None
                except Exception as exc:  # noqa: BLE001 - e.g. an address the server cannot take; this row only
                    record(row, {"status": "failed", "attempts": row.attempts + 1,
                                 "last_error": f"the email could not be sent: {_describe(exc)}"})
                    _close(conn)
                    conn = None
                else:
                    record(row, _outcome(row, _Try.of(conn, recipients, None), now))
        finally:
            _close(conn)
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


def _past_deadline(exc: Exception, watch: _SessionWatch, smtp: Smtp) -> Exception:
    """The error to record: the deadline when the watch cut the session, else `exc` itself."""
    if not watch.fired or isinstance(exc, SessionDeadline):
        return exc
    return SessionDeadline(f"the SMTP session with {smtp.host}:{smtp.port} passed its {watch.seconds:g}s deadline "
                           "(alerts.smtp.session_deadline_seconds): the server answers too slowly or never finishes")


CASE_ALERTS = ("severe_complaint", "sla_warning", "sla_breach")


def _no_longer_needed(session, row: Outbox) -> str | None:
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


def _address(sender: str) -> str:
    from email.utils import parseaddr

    return parseaddr(sender)[1] or sender


def _close(conn: smtplib.SMTP | None) -> None:
    if conn is None:
        return
    try:
        conn.quit()
    except (smtplib.SMTPException, OSError):
        conn.close()


class MailerThread:
    """Sends the outbox every `interval` seconds in a daemon thread of its own (see the module docstring)."""

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
        self._thread = threading.Thread(target=self._loop, name="mailer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float) -> bool:
        """Ask the thread to stop and wait up to `timeout` seconds; False if an SMTP session still holds it."""
        self._stop.set()
        if self._thread is None:
            return True
        self._thread.join(max(0.0, timeout))
        return not self._thread.is_alive()


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def header_text(value: str) -> str:
    """`value` fit for an email header: one line, every control character (CR, LF, NUL, ESC...) a space."""
    return " ".join(_CONTROL.sub(" ", value).split())


def retry_failed(store: Store, ids: list[int] | None = None, *, now: datetime | None = None) -> int:
    """Put failed rows, and rows that may not have arrived (`unknown`), back in the queue (all, or these ids),
    for the recipients who did not certainly get them; returns how many. For the Sources page."""
    now = now or now_utc()
    with store.session() as s:
        n = 0
        for status, values in (("failed", {"refused": None}), ("unknown", {"unknown_to": None})):
            q = update(Outbox).where(Outbox.status == status)
            if ids is not None:
                q = q.where(Outbox.id.in_(ids))
            res = s.execute(q.values(status="pending", attempts=0, next_attempt_at=now, **values)
                            .execution_options(synchronize_session=False))
            n += res.rowcount or 0
        return n


def outbox_health(store: Store) -> dict[str, Any]:
    """The email queue at a glance.

    Keys: pending (waiting or being sent), retrying (pending after at least one failure), failed,
    sent, unknown (the server may hold them: not sent again by itself), refused (sent rows that one or
    more recipients refused for good), throttled (held back by alerts.rules.throttle_minutes), cancelled
    (a case alert whose case was resolved or answered before it went out), oldest_pending_at,
    last_sent_at, last_error ({id, kind, subject, error, attempts, status, next_attempt_at, refused,
    unknown_to} of the latest failing row, or None), recent_failures (up to 10 such dicts, newest first).
    """
    with store.session() as s:
        counts = dict(s.execute(select(Outbox.status, func.count()).group_by(Outbox.status)).all())
        retrying = s.scalar(select(func.count()).select_from(Outbox)
                            .where(Outbox.status.in_(["pending", "sending"]), Outbox.attempts > 0)) or 0
        oldest = s.scalar(select(func.min(Outbox.created_at)).where(Outbox.status.in_(["pending", "sending"])))
        last_sent = s.scalar(select(func.max(Outbox.sent_at)).where(Outbox.status == "sent"))
        refused = s.scalar(select(func.count()).select_from(Outbox)
                           .where(Outbox.status == "sent", Outbox.refused.is_not(None))) or 0
        failing = list(s.scalars(select(Outbox).where(Outbox.last_error.is_not(None),
                                                      or_(Outbox.status != "sent", Outbox.refused.is_not(None)))
                                 .order_by(Outbox.next_attempt_at.desc(), Outbox.id.desc()).limit(10)))
        recent = [{"id": r.id, "kind": r.kind, "subject": r.subject, "recipients": list(r.recipients),
                   "error": r.last_error, "attempts": r.attempts, "status": r.status,
                   "next_attempt_at": r.next_attempt_at, "refused": dict(r.refused or {}),
                   "unknown_to": list(r.unknown_to or [])} for r in failing]
    return {
        "pending": counts.get("pending", 0) + counts.get("sending", 0),
        "retrying": retrying,
        "failed": counts.get("failed", 0),
        "sent": counts.get("sent", 0),
        "unknown": counts.get("unknown", 0),
        "refused": refused,
        "throttled": counts.get("throttled", 0),
        "cancelled": counts.get("cancelled", 0),
        "oldest_pending_at": oldest,
        "last_sent_at": last_sent,
        "last_error": recent[0] if recent else None,
        "recent_failures": recent,
    }
