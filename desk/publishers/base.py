"""What every publisher shares: the reply target, the result, and the errors that decide a retry.

The error classes answer the one question that matters for exactly-once:
did the reply go out?

    PublishError        anything that went wrong
     +-- Rejected       the platform refused it, or it was never sent: nothing was posted, a retry is safe
     +-- Unknown        it may have been posted (timeout, connection lost, 5xx): check the platform first
     +-- NotConfigured  no credentials to post with (nothing was sent)
     +-- ReadOnlySource the source is read-only (nothing was sent)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


class PublishError(Exception):
    """Posting failed; `reason` is one line a person can act on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Rejected(PublishError):
    """Definitely not posted (refused, rate-limited, or never sent)."""


class Unknown(PublishError):
    """Maybe posted: the answer was lost. Look for our reply on the platform before trying again."""


class NotConfigured(PublishError):
    """The source has no credentials to post with."""


class ReadOnlySource(PublishError):
    """The source is read-only; Hearken never posts through it."""


@dataclass(frozen=True)
class Target:
    """The post to answer, as the collector stored it."""

    platform: str
    source: str
    external_id: str
    thread_id: str | None
    url: str
    author: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Posted:
    """Our reply as it stands on the platform."""

    external_id: str
    url: str | None = None


class Publisher(Protocol):
    platform: str

    def publish(self, target: Target, text: str) -> Posted:
        """Post `text` as a public reply to `target`. Raises Rejected or Unknown."""

    def find_ours(self, target: Target, text: str, since: datetime) -> Posted | None:
        """Our account's reply to `target` made at or after `since`, if the platform shows one."""

    def close(self) -> None: ...


LIMITS = {"x": 280, "reddit": 10000, "discourse": 32000, "forum": 10000}


def length_limit(platform: str, extra: dict[str, Any] | None = None) -> int:
    """The longest reply the platform takes, in characters (demo posts in X style get X's limit)."""
    if platform == "demo":
        return 280 if (extra or {}).get("style") == "x" else 10000
    return LIMITS.get(platform, 10000)


_WS = re.compile(r"\s+")


def same_text(a: str, b: str) -> bool:
    """Texts equal after collapsing whitespace (platforms trim and re-wrap)."""
    return _WS.sub(" ", a).strip().casefold() == _WS.sub(" ", b).strip().casefold()
