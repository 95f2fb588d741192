"""The outbox outside the worker: writing an alert's row, once per event, and reading the queue back.

`queue` adds a row in the caller's transaction, so an alert is written with the state that causes it
(desk/notify/alerts.py holds the rules that call it). Each row has a `dedupe_key` naming its event
(e.g. "severe:case:42"), unique in the outbox, so an event alerts once however often it is seen.
`throttle_minutes` caps alerts of one kind to one per recipient in that window; an alert with no
recipient left is kept as status "throttled" (never sent). Subjects and recipients are stripped of
control characters here (`header_text`), where the headers are made, so nothing a customer writes
can add a header line.

The worker that sends the rows is desk/notify/mailer.py; `outbox_health` summarises the queue for the
dashboard's Sources page and `retry_failed` puts rows back in it for a person who asked.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from desk.store.db import Store, insert_for
from desk.store.models import Outbox, now_utc

EMAIL = Outbox.channel.is_(None)  # the mailer's rows
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def header_text(value: str) -> str:
    """`value` fit for an email header: one line, every control character (CR, LF, NUL, ESC...) a space."""
    return " ".join(_CONTROL.sub(" ", value).split())


def recent_recipients(session: Session, kind: str, since: datetime) -> set[str]:
    rows = session.scalars(select(Outbox.recipients).where(
        Outbox.kind == kind, Outbox.created_at >= since, Outbox.status.in_(["pending", "sending", "sent"])))
    return {addr.casefold() for recipients in rows for addr in recipients}


def queue(session: Session, *, kind: str, dedupe_key: str, recipients: list[str], subject: str,
          body_text: str, body_html: str | None = None, case_id: int | None = None,
          throttle_minutes: float = 0, now: datetime | None = None) -> Outbox | None:
    """Add an outbox row unless one with this dedupe key exists or nobody would receive it.

    With `throttle_minutes`, recipients who were sent an alert of this `kind` within that
    window are left off; if nobody is left the row is stored as "throttled" and never sent.
    """
    recipients = sorted({header_text(r) for r in recipients if r and "@" in r})
    if not recipients:
        return None
    subject = header_text(subject)  # a username such as "evil\r\nBcc: x@y" must not become a header of its own
    if session.scalar(select(Outbox.id).where(Outbox.dedupe_key == dedupe_key)) is not None:
        return None
    now = now or now_utc()
    status = "pending"
    if throttle_minutes > 0:
        recent = recent_recipients(session, kind, now - timedelta(minutes=throttle_minutes))
        kept = [r for r in recipients if r.casefold() not in recent]
        if kept:
            recipients = kept
        else:
            status = "throttled"
    row_id = session.scalar(
        insert_for(session)(Outbox).values(
            kind=kind, dedupe_key=dedupe_key, recipients=recipients, subject=subject, body_text=body_text,
            body_html=body_html, case_id=case_id, status=status, attempts=0, created_at=now, next_attempt_at=now)
        .on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(Outbox.id))
    return session.get(Outbox, row_id) if row_id is not None else None


def retry_failed(store: Store, ids: list[int] | None = None, *, now: datetime | None = None,
                 channels: bool = False) -> int:
    """Put failed rows, and rows that may not have arrived (`unknown`), back in the queue (all, or these ids),
    for the recipients who did not certainly get them; returns how many. For the Sources page: emails, or
    with `channels` the Slack, Teams and webhook rows."""
    now = now or now_utc()
    with store.session() as s:
        n = 0
        for status, values in (("failed", {"refused": None}), ("unknown", {"unknown_to": None})):
            q = update(Outbox).where(Outbox.channel.is_not(None) if channels else EMAIL, Outbox.status == status)
            if ids is not None:
                q = q.where(Outbox.id.in_(ids))
            res = s.execute(q.values(status="pending", attempts=0, next_attempt_at=now, **values)
                            .execution_options(synchronize_session=False))
            n += res.rowcount or 0
        return n


def outbox_health(store: Store) -> dict[str, Any]:
    """The email queue at a glance (the channels' rows: desk/notify/channel_health.py).

    Keys: pending (waiting or being sent), retrying (pending after at least one failure), failed,
    sent, unknown (the server may hold them: not sent again by itself), refused (sent rows that one or
    more recipients refused for good), throttled (held back by alerts.rules.throttle_minutes), cancelled
    (a case alert whose case was resolved or answered before it went out), oldest_pending_at,
    last_sent_at, last_error ({id, kind, subject, error, attempts, status, next_attempt_at, refused,
    unknown_to} of the latest failing row, or None), recent_failures (up to 10 such dicts, newest first).
    """
    with store.session() as s:
        counts = dict(s.execute(select(Outbox.status, func.count()).where(EMAIL).group_by(Outbox.status)).all())
        retrying = s.scalar(select(func.count()).select_from(Outbox)
                            .where(EMAIL, Outbox.status.in_(["pending", "sending"]), Outbox.attempts > 0)) or 0
        oldest = s.scalar(select(func.min(Outbox.created_at)).where(EMAIL, Outbox.status.in_(["pending", "sending"])))
        last_sent = s.scalar(select(func.max(Outbox.sent_at)).where(EMAIL, Outbox.status == "sent"))
        refused = s.scalar(select(func.count()).select_from(Outbox)
                           .where(EMAIL, Outbox.status == "sent", Outbox.refused.is_not(None))) or 0
        failing = list(s.scalars(select(Outbox).where(EMAIL, Outbox.last_error.is_not(None),
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
