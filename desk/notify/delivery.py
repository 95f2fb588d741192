"""What one try did to each recipient of an outbox row, and the row's state after it.

Each recipient has a state of its own, because the server answers for each: `delivered_to` (it
accepted the message for them), `refused` (address -> its 5xx reason: never tried again) and
`unknown_to` (the whole message reached the server but its answer did not reach us: it may hold it,
so it is never sent again by itself). A recipient refused for now (a 4xx) keeps the row pending for
that recipient only, with an exponential backoff, until `MAX_ATTEMPTS`. desk/notify/mailer.py's module
docstring tells the whole story.
"""

from __future__ import annotations

import smtplib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from desk.notify.smtp import describe, permanent, reply_text
from desk.store.models import Outbox

MAX_ATTEMPTS = 20
BACKOFF_BASE_SECONDS = 60.0
BACKOFF_CAP_SECONDS = 3600.0


def backoff_seconds(attempts: int) -> float:
    """Wait before the next try after `attempts` failed tries: 1, 2, 4 ... minutes, at most an hour."""
    return min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(0, attempts - 1))


def to_try(row: Outbox) -> list[str]:
    """The row's recipients still to be tried: neither delivered, refused for good, nor possibly delivered."""
    done = set(row.delivered_to or []) | set(row.refused or {}) | set(row.unknown_to or [])
    return [r for r in row.recipients if r not in done]


@dataclass
class Try:
    """One try of one row, recipient by recipient."""

    delivered: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)  # for good (5xx)
    deferred: dict[str, str] = field(default_factory=dict)  # for now: tried again after the backoff
    unknown: list[str] = field(default_factory=list)  # the server may hold it: never sent again by itself

    @classmethod
    def of(cls, conn: smtplib.SMTP | None, recipients: list[str], exc: Exception | None) -> Try:
        """What happened to each recipient, from the server's answers to RCPT TO and how the try ended."""
        t = cls()
        replies: dict[str, tuple[int, bytes]] = getattr(conn, "rcpt_replies", {}) if conn is not None else {}
        dot_sent = bool(getattr(conn, "dot_sent", False)) if conn is not None else False
        whole = describe(exc) if exc is not None else ""
        for r in recipients:
            code, resp = replies.get(r, (0, b""))
            if code and code not in (250, 251):  # refused at RCPT TO, whatever came after
                (t.refused if code >= 500 else t.deferred)[r] = reply_text(code, resp)
            elif exc is None:
                t.delivered.append(r)
            elif isinstance(exc, smtplib.SMTPResponseException):  # the server answered MAIL FROM or the message
                (t.refused if permanent(exc) else t.deferred)[r] = whole
            elif code and dot_sent:
                t.unknown.append(r)
            else:  # the session broke before the server could hold the message for this recipient
                t.deferred[r] = whole
        return t


def outcome(row: Outbox, t: Try, now: datetime) -> dict[str, Any]:
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


def failure(row: Outbox, exc: Exception, now: datetime) -> dict[str, Any]:
    """The row's new state when the whole try failed before any recipient was asked (the server is down...)."""
    return outcome(row, Try.of(None, to_try(row), exc), now) | {"last_error": describe(exc)}
