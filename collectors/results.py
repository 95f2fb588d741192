"""What a poll returns: the `Mention`s it found, the items it `SetAside`, the next cursor (`PollResult`).

Plain values, importing nothing of the project: collectors/base.py names them in the contract every
collector keeps, collectors/clean.py normalises them at the collector boundary, and desk/ stores them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any


def utc(dt: datetime) -> datetime:
    """Return `dt` as timezone-aware UTC; a naive value is taken to be UTC already."""
    if dt.tzinfo is None:
        return dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc)


@dataclass(frozen=True, slots=True)
class Mention:
    """One public post that names the brand, as a collector found it.

    `(platform, external_id)` is unique across everything Hearken stores.
    `thread_id` groups a conversation (Reddit submission, X conversation,
    Discourse topic, forum thread); `parent_id` is the external id of the
    post this one answers, when known. `extra` holds platform details needed
    to reply later (subreddit, topic id, post number, ...), JSON-serialisable.
    """

    platform: str
    source: str
    external_id: str
    url: str
    author: str
    body: str
    posted_at: datetime
    title: str = ""
    author_id: str | None = None
    thread_id: str | None = None
    parent_id: str | None = None
    matched_terms: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.external_id:
            raise ValueError("Mention.external_id must not be empty")
        if self.posted_at.tzinfo is None:
            raise ValueError(f"Mention {self.platform}:{self.external_id}: posted_at must be timezone-aware")

    @property
    def text(self) -> str:
        """Title and body together, as the classifier reads them."""
        return f"{self.title}\n\n{self.body}".strip() if self.title else self.body


@dataclass(frozen=True, slots=True)
class SetAside:
    """An item the platform sent that could not be read or stored: kept apart with what it was and why.

    `raw` is what the platform sent for it (JSON or HTML, capped); `reason` is one line naming the
    item and what was wrong. The runner stores it in the set-aside table while the rest of the page
    is stored and the cursor moves on.
    """

    platform: str
    source: str
    reason: str
    raw: str
    external_id: str | None = None
    url: str | None = None


@dataclass(slots=True)
class PollResult:
    """What one poll found: the mentions (oldest first), the next cursor, and how many posts were read.

    `reads` counts every post the platform sent, matched or not; X bills each one.
    `cursor` is opaque to the runner: JSON-serialisable, handed back on the next poll.
    `set_aside` holds the items that could not be read (the cursor still moves past them).
    `capped` says the poll stopped early because the source's read budget (`read_budget`) ran out: the
    desk shows the source paused until the budget renews.
    `notes` say what this poll did unusually (they last until the next poll); `warnings` say what a
    person should know about the platform itself (its post ids went backwards: it was restored or
    moved), which the desk keeps on the Sources page for days.
    """

    mentions: list[Mention]
    cursor: dict[str, Any] | None
    reads: int = 0
    notes: list[str] = field(default_factory=list)
    set_aside: list[SetAside] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    capped: bool = False
