"""A case's alert emails and channel messages read back from the outbox, as steps of the case page's history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from desk.notify.emails import span
from desk.store.db import Store
from desk.store.models import Outbox, now_utc


@dataclass(frozen=True)
class EmailEvent:
    """One step of an alert email about a case, shaped like an audit entry (at, actor, action, detail)."""

    at: datetime
    actor: str
    action: str
    detail: dict


def case_emails(store: Store, case_id: int, *, now: datetime | None = None) -> list[EmailEvent]:
    """When each alert email about this case was queued, and when it was delivered, is failing or gave up."""
    now = now or now_utc()
    out: list[EmailEvent] = []
    with store.session() as s:
        rows = list(s.scalars(select(Outbox).where(Outbox.case_id == case_id).order_by(Outbox.id)))
    for r in rows:
        what = "email" if r.channel is None else "channel message"  # Slack, Teams, webhook: desk/notify/channels.py
        base = {"email" if r.channel is None else "message": f"#{r.id} {r.kind.replace('_', ' ')}",
                "to": ", ".join(r.recipients)}
        out.append(EmailEvent(r.created_at, "Hearken", f"{what} queued", dict(base, subject=r.subject)))
        at = r.sent_at or r.next_attempt_at or r.created_at
        delivered = r.delivered_to if r.delivered_to is not None else (r.recipients if r.status == "sent" else [])
        if r.status != "sent" and delivered:
            out.append(EmailEvent(at, "Hearken", f"{what} delivered", dict(base, to=", ".join(delivered))))
        for address, why in (r.refused or {}).items() if r.status in ("sent", "pending", "sending", "unknown") else ():
            out.append(EmailEvent(at, "Hearken", f"{what} refused", dict(base, to=address, error=why)))
        if r.status == "unknown":
            out.append(EmailEvent(at, "Hearken", f"{what} may not have arrived",
                                  dict(base, to=", ".join(r.unknown_to or []), error=r.last_error)))
        if r.status == "sent" and r.sent_at:
            out.append(EmailEvent(r.sent_at, "Hearken", f"{what} delivered", dict(base, to=", ".join(delivered))))
        elif r.status == "failed":
            out.append(EmailEvent(r.next_attempt_at or r.created_at, "Hearken", f"{what} failed",
                                  dict(base, attempts=r.attempts, error=r.last_error)))
        elif r.status in ("pending", "sending") and r.attempts:
            wait = (r.next_attempt_at - now).total_seconds() if r.next_attempt_at else 0
            out.append(EmailEvent(now, "Hearken", f"{what} not delivered yet",
                                  dict(base, attempts=r.attempts, error=r.last_error,
                                       next_try="in under a minute" if wait < 60 else f"in {span(timedelta(seconds=wait))}")))
        elif r.status in ("cancelled", "throttled"):
            out.append(EmailEvent(r.sent_at or r.created_at, "Hearken", f"{what} {r.status}",
                                  dict(base, reason=r.last_error)))
    return out
