"""What posting a public reply takes and gives, for every platform's publish module.

A platform that can post has a `publish.py` whose `build(...)` returns a
`Publisher`. The desk records each attempt before calling `publish` and the
result after, under a wall-clock deadline (collectors/net/deadline.py), which
is what makes a reply go out at most once; a publisher's HTTP clients must
therefore be ones built there. Errors are collectors/errors.py's
`PublishError` family: `Rejected` (nothing went out), `Unknown` (it may be up).
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol


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
    """Our reply as it stands on the platform. `external_id` is in the format of the platform's mention ids,
    so an answer to our reply (whose parent is this id) joins its case."""

    external_id: str
    url: str | None = None


class Publisher(Protocol):
    """One platform's posting, built for one source."""

    platform: str

    def publish(self, target: Target, text: str) -> Posted:
        """Post `text` as a public reply to `target`. Raises Rejected or Unknown."""

    def find_ours(self, target: Target, text: str, since: datetime, skew: timedelta) -> Posted | None:
        """Our account's reply to `target` with this text, made since `since` (our clock; the platform's
        may be `skew` off either way). Pages back through our posts, newest first, until they are older
        than `since - skew`. None: it is not there. Raises when it could not read back that far."""

    def close(self) -> None: ...


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
