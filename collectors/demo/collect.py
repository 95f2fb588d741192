"""The demo source: a bundled replay of posts about a fictional broadband company, re-timed to now.

A fresh install has no credentials, so Hearken shows this instead of an empty
queue. The posts (collectors/demo/data/demo_posts.jsonl, written for Hearken) mix
complaints, questions, praise and news in forum, Reddit and X style. Posts
with a positive `minutes_ago` are in the past when the replay starts; the
others appear over the following hour (faster with `speed`), and then the
future half repeats with fresh ids, so the queue keeps moving.

The demo goes through the same path as a real platform: term matching, the
exclusions (one post is about the unrelated "Northwind Traders" database),
our own account's posts skipped, and a customer's follow-up in a thread.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from importlib import resources
from typing import Any, ClassVar

from collectors.base import BadPayload, Mention, PollResult, collector_boundary
from collectors.match import TermMatcher

MAX_PER_POLL = 200


@dataclass(frozen=True, slots=True)
class _Post:
    id: str
    style: str
    author: str
    minutes_ago: float
    body: str
    title: str = ""
    thread: str | None = None
    parent: str | None = None


def load_posts(text: str | None = None) -> list[_Post]:
    """Parse the bundled replay (or `text` in the same JSON-lines shape)."""
    if text is None:
        text = resources.files("collectors.demo").joinpath("data/demo_posts.jsonl").read_text(encoding="utf-8")
    posts = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            posts.append(_Post(**row))
        except (ValueError, TypeError) as exc:
            raise BadPayload(f"demo_posts.jsonl line {lineno}: {exc}") from exc
    return posts


class DemoCollector:
    platform: ClassVar[str] = "demo"

    def __init__(self, settings: Any, *, matcher: TermMatcher, own_accounts: list[str], env: dict[str, str],
                 posts: list[_Post] | None = None, clock=None) -> None:
        self.name = settings.name
        self.speed = float(getattr(settings, "speed", 1.0))
        self.matcher = matcher
        self.own = {a.lstrip("@").casefold() for a in own_accounts}
        self.posts = posts if posts is not None else load_posts()
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self._first = sorted(self.posts, key=lambda p: -p.minutes_ago)
        self._future = [p for p in self._first if p.minutes_ago <= 0]
        horizon = max((-p.minutes_ago for p in self._future), default=0.0)
        self._cycle = timedelta(minutes=(horizon + 10) / self.speed)

    def _item(self, index: int, epoch: datetime) -> tuple[_Post, str, datetime, datetime]:
        """The index-th post of the endless replay: (post, id, when it appears, when it was posted)."""
        if index < len(self._first):
            post, suffix, start = self._first[index], "", epoch
        else:
            if not self._future:
                raise IndexError(index)
            rnd, pos = divmod(index - len(self._first), len(self._future))
            post, suffix, start = self._future[pos], f"-r{rnd + 1}", epoch + self._cycle * (rnd + 1)
        offset = timedelta(minutes=-post.minutes_ago / self.speed)
        posted = start + offset
        return post, post.id + suffix, max(start, posted), posted

    @collector_boundary("The demo replay")
    def poll(self, cursor: dict[str, Any] | None, *, read_budget: int | None = None) -> PollResult:
        now = self.clock()
        if cursor and "epoch" in cursor:
            epoch = datetime.fromisoformat(cursor["epoch"])
            index = int(cursor.get("next", 0))
        else:
            epoch, index = now, 0
        mentions: list[Mention] = []
        reads = 0
        capped = False
        while reads < MAX_PER_POLL:
            if read_budget is not None and reads >= read_budget:
                capped = True  # the rest once the budget renews
                break
            try:
                post, ext_id, appears, posted = self._item(index, epoch)
            except IndexError:
                break
            if appears > now:
                break
            index += 1
            reads += 1
            if post.author.casefold() in self.own:
                continue
            terms = self.matcher.match(post.title, post.body)
            if not terms:
                continue
            suffix = ext_id[len(post.id):]
            mentions.append(Mention(
                platform="demo",
                source=self.name,
                external_id=ext_id,
                url=f"https://demo.hearken.invalid/{post.style}/{ext_id}",
                author=("@" + post.author) if post.style == "x" else post.author,
                title=post.title,
                body=post.body,
                posted_at=posted,
                thread_id=(post.thread + suffix) if post.thread else ext_id,
                parent_id=(post.parent + suffix) if post.parent else None,
                matched_terms=terms,
                extra={"style": post.style},
            ))
        return PollResult(mentions=mentions, cursor={"epoch": epoch.isoformat(), "next": index}, reads=reads,
                          capped=capped)

    def close(self) -> None:
        pass
