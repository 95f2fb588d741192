"""Writing an alert to where its rule routes it: email and/or Slack, Teams and webhook channels.

`alert` is what desk/notify/alerts.py (and an escalation in desk/cases/actions.py) calls in the
transaction of the alert's cause. Per `alerts.routes.<kind>` it writes the email row
(desk/notify/outbox.queue, to the rule's recipients) and one row per channel, each with the channel's
name in `outbox.channel`, the message already drawn for that channel (desk/notify/cards.py) and the
dedupe key `<event>@<channel>`, so each (alert, channel) goes once. A channel limited to some `sources`
(a team's channel) is skipped for alerts about other sources. The secrets (the URL, the signing key)
are not in the row: the sender reads them from the environment when it sends (desk/notify/channels.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from desk.config.channels import EMAIL, Channel
from desk.config.schema import HearkenConfig
from desk.notify import cards, outbox
from desk.store.db import insert_for
from desk.store.models import Outbox, now_utc


def already(session: Session, dedupe_key: str) -> bool:
    """Whether this event was written already, to email or to any channel."""
    return session.scalar(select(Outbox.id).where(or_(Outbox.dedupe_key == dedupe_key,
                                                      Outbox.dedupe_key.like(dedupe_key + "@%"))).limit(1)) is not None


def has_channels(cfg: HearkenConfig, kind: str) -> bool:
    return any(name != EMAIL for name in cfg.alerts.routes.of(kind))


def alert(session: Session, cfg: HearkenConfig, *, kind: str, dedupe_key: str, recipients: list[str], subject: str,
          body_text: str, card: cards.Card, body_html: str | None = None, case_id: int | None = None,
          source: str | None = None, throttle_minutes: float = 0, now: datetime | None = None) -> Outbox | None:
    """Queue the alert by email and on its rule's channels; the first row written (email first), or None."""
    now = now or now_utc()
    route = cfg.alerts.routes.of(kind)
    first = None
    if EMAIL in route:
        first = outbox.queue(session, kind=kind, dedupe_key=dedupe_key, recipients=recipients, subject=subject,
                             body_text=body_text, body_html=body_html, case_id=case_id,
                             throttle_minutes=throttle_minutes, now=now)
    for name in route:
        channel = cfg.alerts.channels.get(name)
        if channel is None or (channel.sources and source is not None and source not in channel.sources):
            continue
        row = to_channel(session, name, channel, kind=kind, dedupe_key=f"{dedupe_key}@{name}", subject=subject,
                         body=cards.body_for(channel.type, card, event_type=f"alert.{kind}", event_id=dedupe_key,
                                             at=now),
                         case_id=case_id, throttle_minutes=throttle_minutes, now=now)
        first = first or row
    return first


def to_channel(session: Session, name: str, channel: Channel, *, kind: str, dedupe_key: str, subject: str,
               body: str, case_id: int | None, now: datetime, throttle_minutes: float = 0) -> Outbox | None:
    """One outbox row for one channel, unless this dedupe key exists; "throttled" when the channel heard of
    an alert of this kind within `throttle_minutes`."""
    if session.scalar(select(Outbox.id).where(Outbox.dedupe_key == dedupe_key)) is not None:
        return None
    status = "pending"
    if throttle_minutes > 0 and name.casefold() in outbox.recent_recipients(
            session, kind, now - timedelta(minutes=throttle_minutes)):
        status = "throttled"
    row_id = session.scalar(
        insert_for(session)(Outbox).values(
            kind=kind, dedupe_key=dedupe_key, recipients=[name], channel=name, subject=outbox.header_text(subject),
            body_text=body, body_html=None, case_id=case_id, status=status, attempts=0, created_at=now,
            next_attempt_at=now)
        .on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(Outbox.id))
    return session.get(Outbox, row_id) if row_id is not None else None
