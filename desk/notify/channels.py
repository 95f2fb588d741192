"""The channel sender: posts the Slack, Teams and webhook rows of the outbox, each once, none waiting on another.

The rows are written by desk/notify/routing.py (alerts) and desk/notify/case_events.py (a case's life),
in the transaction of their cause. A row is claimed before it is sent, as an email is
(desk/notify/mailer.claim, here with `channels=True`): pending -> sending (for a lease) -> sent, or back
to pending with a backoff, or failed. Each row is posted in a thread of its own, at most `POOL` at once,
under a wall-clock deadline (`alerts.channels.<name>.timeout_seconds`, collectors/net/deadline.run), so a
receiver that hangs holds up only its own row: the sender claims the next due rows while it waits.

What an answer means:

- 2xx: delivered (Slack answers 200 "ok", Teams Workflows 202).
- 429 and 5xx, a connection refused or cut, no answer within the deadline: tried again after an
  exponential backoff (desk/notify/delivery.backoff_seconds), or after the receiver's Retry-After when it
  says one, capped at an hour; failed after `MAX_ATTEMPTS` tries.
- any other 4xx (Slack's 404 channel_not_found or 410 channel_is_archived, a receiver refusing our
  signature) and a redirect: failed at once with the answer shown on the banner and the Sources page,
  since sending the same again would get the same answer.

A receiver that took the body but whose answer never came is sent it again; webhook receivers drop the
repeat by its `Hearken-Event-Id` (docs/webhooks.md). Signing: `sign` and `verify` (the receiver's side).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import socket
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any, Mapping

import httpx
from sqlalchemy import select

from collectors.net import deadline
from collectors.net.responses import retry_after_seconds
from desk.config.channels import Channel
from desk.config.schema import HearkenConfig
from desk.failpoints import failpoint
from desk.notify.delivery import BACKOFF_CAP_SECONDS, MAX_ATTEMPTS, backoff_seconds
from desk.notify.mailer import MailerThread, SendResult, claim, finish, no_longer_needed
from desk.store.db import Store
from desk.store.models import Outbox, now_utc

log = logging.getLogger(__name__)

POOL = 8  # rows posted at once
PER_CHANNEL = POOL // 2  # of them for one channel at most: a receiver that hangs leaves the others room
SEND_INTERVAL_SECONDS = 2.0
LEASE_SLACK_SECONDS = 10.0  # a claim outlives the longest deadline by this much: past it, its worker died
REPLAY_WINDOW_SECONDS = 300  # what a receiver should accept (docs/webhooks.md)
USER_AGENT = "Hearken-Webhooks/1"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """`sha256=` and the hex HMAC-SHA256, keyed with `secret`, of "<timestamp>.<body>"."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, body: bytes, timestamp: str, signature: str, *, now: float | None = None,
           tolerance: float = REPLAY_WINDOW_SECONDS) -> bool:
    """What a receiver checks: the signature matches this body and timestamp, and the timestamp is recent."""
    try:
        ts = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs((time.time() if now is None else now) - ts) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, ts, body), signature or "")


class Final(Exception):
    """The receiver refused the message for good: sending it again would get the same answer."""


class Again(Exception):
    """Try again later (after `retry_after` seconds when the receiver said)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _answer(response: httpx.Response) -> str:
    text = " ".join(response.text[:300].split())
    return f"HTTP {response.status_code}" + (f": {text}" if text else "")


def post(row: Outbox, name: str, channel: Channel, env: Mapping[str, str]) -> str:
    """Post one row to its channel within the channel's deadline; the receiver's answer, or Final / Again."""
    url = (env.get(channel.url_env) or "").strip()
    if not url:
        raise Again(f"channel {name}: the environment variable {channel.url_env} (its webhook URL) is not set")
    body = row.body_text.encode()
    headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": USER_AGENT}
    if channel.type == "webhook":
        secret = env.get(channel.secret_env or "") or ""
        if not secret:
            raise Again(f"channel {name}: the environment variable {channel.secret_env} (its signing key) is not set")
        ts = int(time.time())
        headers |= {"Hearken-Event-Id": row.dedupe_key.rsplit("@", 1)[0], "Hearken-Delivery": str(row.id),
                    "Hearken-Timestamp": str(ts), "Hearken-Signature": sign(secret, ts, body)}

    def call() -> httpx.Response:
        with deadline.httpx_client(url, timeout=channel.timeout_seconds) as client:
            return client.post(url, content=body, headers=headers)

    def hidden(text: str) -> str:  # the URL is a secret (Slack's and Teams' carry their token): never shown
        return text.replace(url, f"${channel.url_env}")[:500]

    try:
        response = deadline.run(call, channel.timeout_seconds)
    except deadline.DeadlinePassed:
        raise Again(f"no answer within {channel.timeout_seconds:g}s") from None
    except (httpx.HTTPError, OSError, ValueError) as exc:
        raise Again(hidden(f"could not reach the receiver at ${channel.url_env}: {type(exc).__name__}: {exc}")) from None
    if 200 <= response.status_code < 300:
        return _answer(response)
    if response.status_code == 429 or response.status_code >= 500 or response.status_code == 408:
        raise Again(_answer(response), retry_after_seconds(response.headers))
    where = " (a redirect, not followed: set the address it points to)" if response.is_redirect else ""
    raise Final(hidden(_answer(response) + where))


def deliver(row: Outbox, cfg: HearkenConfig, env: Mapping[str, str], now: datetime) -> dict[str, Any]:
    """One try of one row: the row's new state."""
    attempts = row.attempts + 1
    channel = cfg.alerts.channels.get(row.channel or "")
    if channel is None:
        return {"status": "failed", "attempts": attempts,
                "last_error": f"channel {row.channel!r} is no longer in alerts.channels"}
    try:
        post(row, row.channel or "", channel, env)
    except Final as exc:
        return {"status": "failed", "attempts": attempts, "refused": {row.channel: str(exc)},
                "last_error": f"{row.channel} refused it for good: {exc}"}
    except Again as exc:
        if attempts >= MAX_ATTEMPTS:
            return {"status": "failed", "attempts": attempts, "last_error": f"gave up after {attempts} tries: {exc}"}
        wait = backoff_seconds(attempts) if exc.retry_after is None else min(BACKOFF_CAP_SECONDS, exc.retry_after)
        return {"status": "pending", "attempts": attempts, "next_attempt_at": now + timedelta(seconds=wait),
                "last_error": f"{row.channel}: {exc} (tried again later)"}
    except Exception as exc:  # noqa: BLE001 - a row that cannot be sent fails alone
        return {"status": "failed", "attempts": attempts, "last_error": f"could not be sent: {type(exc).__name__}: {exc}"}
    return {"status": "sent", "attempts": attempts, "sent_at": now, "delivered_to": [row.channel], "last_error": None}


class ChannelSender:
    """Claims due channel rows while it has room (`POOL`) and posts each in a thread of its own."""

    def __init__(self, store: Store, cfg: HearkenConfig, *, worker: str | None = None,
                 env: Mapping[str, str] | None = None, pool: int = POOL) -> None:
        self.store, self.cfg, self.env, self.pool = store, cfg, env, pool
        self.worker = worker or f"{socket.gethostname()}:{os.getpid()}"
        self._executor = ThreadPoolExecutor(pool, thread_name_prefix="channel-send")
        self._busy = 0
        self._busy_by: Counter[str] = Counter()  # rows at each channel's receiver now
        self.per_channel = max(1, min(PER_CHANNEL, pool // 2))
        self._lock = threading.Lock()
        longest = max((c.timeout_seconds for c in cfg.alerts.channels.values()), default=10.0)
        self.lease_seconds = longest + deadline.MARGIN + LEASE_SLACK_SECONDS

    def send_due(self, now: datetime | None = None, *, wait: bool = False) -> SendResult:
        """Claim the due rows there is room for and start posting them; with `wait`, until they are done."""
        now = now or now_utc()
        result = SendResult()
        with self._lock:
            room = self.pool - self._busy
            full = tuple(sorted(c for c, n in self._busy_by.items() if n >= self.per_channel))
        if room <= 0:
            return result
        token, ids = claim(self.store, self.worker, now, limit=room, lease_seconds=self.lease_seconds, channels=True,
                           skip_channels=full)
        result.claimed = len(ids)
        if not ids:
            return result
        with self.store.session() as s:
            rows = list(s.scalars(select(Outbox).where(Outbox.id.in_(ids)).order_by(Outbox.id)))
            stale = {r.id: why for r in rows if (why := no_longer_needed(s, r))}
        futures = []
        for row in rows:
            if row.id in stale:
                finish(self.store, token, row.id, {"status": "cancelled", "last_error": stale[row.id]})
                continue
            with self._lock:
                over = self._busy_by[row.channel] >= self.per_channel
                if not over:
                    self._busy += 1
                    self._busy_by[row.channel] += 1
            if over:  # its channel's share of the pool is taken: back in the queue, untried
                finish(self.store, token, row.id, {"status": "pending"})
                continue
            futures.append(self._executor.submit(self._one, row, token, now, result))
        if wait:
            for f in futures:
                f.result()
        return result

    def _one(self, row: Outbox, token: str, now: datetime, result: SendResult) -> None:
        try:
            failpoint("channel_before_send")
            values = deliver(row, self.cfg, os.environ if self.env is None else self.env, now)
            if finish(self.store, token, row.id, values):
                {"sent": result.sent, "pending": result.retrying, "failed": result.failed}[values["status"]].append(row.id)
            if values["status"] != "sent":
                log.warning("channel %s: outbox row #%s %s: %s", row.channel, row.id, values["status"],
                            values.get("last_error"))
        except Exception:  # noqa: BLE001 - the row's claim runs out and it is tried again
            log.exception("channel %s: outbox row #%s could not be recorded", row.channel, row.id)
        finally:
            with self._lock:
                self._busy -= 1
                self._busy_by[row.channel] -= 1

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def send_channels(store: Store, cfg: HearkenConfig, *, now: datetime | None = None,
                  env: Mapping[str, str] | None = None, worker: str | None = None) -> SendResult:
    """Every due row, waiting for each: for a caller that runs everything in one loop, and for tests. A pass
    takes at most `PER_CHANNEL` rows of one channel, so it goes on until a pass finds nothing due."""
    sender = ChannelSender(store, cfg, env=env, worker=worker)
    total = SendResult()
    try:
        while (one := sender.send_due(now, wait=True)).claimed:
            total.claimed += one.claimed
            for name in ("sent", "retrying", "failed", "unknown"):
                getattr(total, name).extend(getattr(one, name))
        return total
    finally:
        sender.close()


class ChannelThread(MailerThread):
    """The channel sender's loop, in a daemon thread of its own beside the mailer's (started by the runner)."""

    name = "channels"

    def __init__(self, store: Store, cfg: HearkenConfig, *, clock=now_utc, worker: str | None = None) -> None:
        super().__init__(store, cfg, interval=SEND_INTERVAL_SECONDS, clock=clock, worker=worker)
        self.sender = ChannelSender(store, cfg, worker=worker)

    def send_now(self) -> SendResult:
        return self.sender.send_due(self.clock())

    def stop(self, timeout: float) -> bool:
        stopped = super().stop(timeout)
        self.sender.close()
        return stopped
