"""Alerts: outbox rows written in the same transaction as the event that causes them.

Each alert has a `dedupe_key` naming its event (e.g. "severe:case:42"), unique
in the outbox, so an event can never alert twice. Sending is done by the
outbox worker (desk/mailer.py).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from desk.config import HearkenConfig
from desk.models import Case, Mention, Outbox, now_utc


def queue(session: Session, *, kind: str, dedupe_key: str, recipients: list[str], subject: str,
          body_text: str, body_html: str | None = None, case_id: int | None = None) -> Outbox | None:
    """Add an outbox row unless one with this dedupe key exists or nobody would receive it."""
    if not recipients:
        return None
    if session.scalar(select(Outbox.id).where(Outbox.dedupe_key == dedupe_key)) is not None:
        return None
    row = Outbox(kind=kind, dedupe_key=dedupe_key, recipients=sorted(set(recipients)), subject=subject,
                 body_text=body_text, body_html=body_html, case_id=case_id, status="pending",
                 attempts=0, next_attempt_at=now_utc())
    session.add(row)
    return row


def case_url(cfg: HearkenConfig, case_id: int) -> str:
    return f"{cfg.dashboard.public_url.rstrip('/')}/case?id={case_id}"


def on_case_opened(session: Session, cfg: HearkenConfig, case: Case, mention: Mention) -> None:
    """A new complaint: alert at once when it is severe enough."""
    rules = cfg.alerts.rules
    if not cfg.alerts.enabled or not rules.severe_complaint:
        return
    if (case.severity or 0) < rules.min_severity:
        return
    recipients = cfg.resolve_recipients(rules.severe_recipients, fallback_role="manager")
    excerpt = mention.body if len(mention.body) <= 500 else mention.body[:497] + "..."
    queue(session, kind="severe_complaint", dedupe_key=f"severe:case:{case.id}", recipients=recipients,
          case_id=case.id,
          subject=f"[Hearken] Severity {case.severity} complaint on {case.platform} from {mention.author} (case #{case.id})",
          body_text=(f"A new complaint of severity {case.severity} needs a public reply.\n\n"
                     f"Author: {mention.author}\nPlatform: {case.platform} ({case.source})\n"
                     f"Posted: {mention.posted_at:%Y-%m-%d %H:%M} UTC\n"
                     f"First reply due: {case.first_response_due:%Y-%m-%d %H:%M} UTC\n\n"
                     f"> " + excerpt.replace("\n", "\n> ") + "\n\n"
                     f"Open the case: {case_url(cfg, case.id)}\nOriginal post: {mention.url}\n"))


def periodic_tasks(cfg: HearkenConfig, store) -> list:
    """(name, interval seconds, fn(now)) the runner calls on a schedule: SLA scans, outbox sending, digests."""
    return []
