"""Delivery to Slack, Teams and webhook channels at a glance: per channel, for the banner and the Sources page.

A channel is in trouble when one of its rows failed for good in the last week (a 4xx such as Slack's
channel_not_found is shown as the receiver said it), when rows are being retried (the receiver is down
or slow, or its URL's environment variable is not set), or when rows wait longer than `STUCK` without a
try (no `hearken run` sends them). The email side is desk/notify/health.py's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from desk.config.schema import HearkenConfig, key_location
from desk.notify.health import FAILED_RECENTLY, STUCK, Trouble
from desk.store.db import Store
from desk.store.models import Outbox, now_utc

LABELS = {"slack": "Slack", "teams": "Teams", "webhook": "Webhook"}


@dataclass(frozen=True)
class ChannelDelivery:
    name: str
    type: str  # slack, teams, webhook; "?" for a channel no longer in the config
    pending: int
    retrying: int
    failed_recently: int
    sent: int
    oldest_pending_at: datetime | None
    last_sent_at: datetime | None
    last_error: str | None
    next_retry_at: datetime | None


def channel_delivery(store: Store, cfg: HearkenConfig, *, now: datetime | None = None) -> list[ChannelDelivery]:
    """Each configured channel (and any other that still has rows waiting or failed), in config order."""
    now = now or now_utc()
    out: list[ChannelDelivery] = []
    with store.session() as s:
        counts: dict[str, dict[str, int]] = {}
        for name, status, n in s.execute(select(Outbox.channel, Outbox.status, func.count())
                                         .where(Outbox.channel.is_not(None)).group_by(Outbox.channel, Outbox.status)):
            counts.setdefault(name, {})[status] = n
        names = list(cfg.alerts.channels) + sorted(n for n, c in counts.items() if n not in cfg.alerts.channels
                                                   and (c.get("pending") or c.get("sending") or c.get("failed")))
        for name in names:
            mine = Outbox.channel == name
            waiting = Outbox.status.in_(("pending", "sending"))
            c = counts.get(name, {})
            latest = s.execute(select(Outbox.last_error).where(mine, Outbox.status.in_(("pending", "sending", "failed")),
                                                               Outbox.last_error.is_not(None))
                               .order_by(Outbox.id.desc()).limit(1)).scalar()
            channel = cfg.alerts.channels.get(name)
            out.append(ChannelDelivery(
                name=name, type=channel.type if channel else "?",
                pending=c.get("pending", 0) + c.get("sending", 0),
                retrying=s.scalar(select(func.count()).select_from(Outbox).where(mine, waiting, Outbox.attempts > 0)) or 0,
                failed_recently=s.scalar(select(func.count()).select_from(Outbox).where(
                    mine, Outbox.status == "failed", Outbox.created_at >= now - FAILED_RECENTLY)) or 0,
                sent=c.get("sent", 0),
                oldest_pending_at=s.scalar(select(func.min(Outbox.created_at)).where(mine, waiting)),
                last_sent_at=s.scalar(select(func.max(Outbox.sent_at)).where(mine, Outbox.status == "sent")),
                last_error=latest,
                next_retry_at=s.scalar(select(func.min(Outbox.next_attempt_at)).where(
                    mine, Outbox.status == "pending", Outbox.attempts > 0))))
    return out


def channel_trouble(store: Store, cfg: HearkenConfig, *, now: datetime | None = None,
                    rows: list[ChannelDelivery] | None = None) -> list[Trouble]:
    """One `Trouble` per channel whose alerts are failing, retrying or waiting with nobody sending them."""
    now = now or now_utc()
    if not cfg.alerts.enabled:
        return []
    out = []
    for d in channel_delivery(store, cfg, now=now) if rows is None else rows:
        stuck = d.pending > d.retrying and d.oldest_pending_at is not None and now - d.oldest_pending_at > STUCK
        if not (d.failed_recently or d.retrying or stuck):
            continue
        label = f"{LABELS.get(d.type, 'Channel')} channel {d.name}"
        parts = ([f"{d.failed_recently} failed for good this week"] if d.failed_recently else []) \
            + ([f"{d.retrying} being retried"] if d.retrying else []) \
            + ([f"{d.pending - d.retrying} waiting without a try: is 'hearken run' running? It sends them"]
               if stuck else [])
        channel = cfg.alerts.channels.get(d.name)
        if channel is None:
            fix = f"{d.name} is no longer in alerts.channels; put it back, or leave its messages unsent."
        else:
            fix = (f"check the webhook URL in ${channel.url_env}"
                   + (f" and the signing key in ${channel.secret_env}" if channel.secret_env else "")
                   + f" for 'hearken run' (alerts.channels.{d.name} at {key_location(cfg, 'alerts', 'channels', d.name)}); "
                   "the Sources page retries failed ones.")
        out.append(Trouble("channel", d.name, f"{label}: " + ", ".join(parts) + ".",
                           f"Last error: {d.last_error}" if d.last_error else None, fix))
    return out
