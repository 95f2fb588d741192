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

import html
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from desk.errors import PostingError


class PublishError(PostingError):
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
    """One platform's posting. desk/replies.py runs both calls under a wall-clock deadline
    (desk/publishers/deadline.py), so a publisher's HTTP client must be one built there."""

    platform: str

    def publish(self, target: Target, text: str) -> Posted:
        """Post `text` as a public reply to `target`. Raises Rejected or Unknown.
        `Posted.external_id` is in the format the platform's collector gives its mentions."""

    def find_ours(self, target: Target, text: str, since: datetime, skew: timedelta) -> Posted | None:
        """Our account's reply to `target` with this text, made since `since` (our clock; the platform's
        may be `skew` off either way). Pages back through our posts, newest first, until they are older
        than `since - skew`. None: it is not there. Raises when it could not read back that far."""

    def close(self) -> None: ...


LIMITS = {"x": 280, "reddit": 10000, "discourse": 32000, "forum": 10000}


def length_limit(platform: str, extra: dict[str, Any] | None = None) -> int:
    """The longest reply the platform takes, in characters (demo posts in X style get X's limit)."""
    if platform == "demo":
        return 280 if (extra or {}).get("style") == "x" else 10000
    return LIMITS.get(platform, 10000)


_WS = re.compile(r"\s+")
_LINK = re.compile(r"https?://\S+")
_LEADING_HANDLES = re.compile(r"^(?:@\w+\s+)+")


def _comparable(text: str) -> str:
    text = unicodedata.normalize("NFC", html.unescape(text or ""))
    text = _LINK.sub("<link>", text)  # X shortens links to t.co
    text = _LEADING_HANDLES.sub("", text.strip())  # X puts the @handles a reply answers before its text
    return _WS.sub(" ", text).strip().casefold()


def same_text(a: str, b: str) -> bool:
    """Whether two texts are the same reply, as platforms give back what we sent: trimmed and re-wrapped,
    with &, < and > as entities (Reddit, X), links shortened and the answered @handles put first (X)."""
    return _comparable(a) == _comparable(b)
