"""What Reddit's listing JSON holds, read one child at a time.

A listing (`Listing`) is a page of children; a child that is a submission (t3) or a comment (t1) is read
into a `Thing` by `read_post`, which raises, naming what is wrong, for a child without a usable id, time
or link id (the collector sets that one aside and keeps the rest of the page), and builds Reddit's
id-only address (``/comments/<post>/_/<comment>/``) for a comment that came without `permalink`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from collectors import clean, times
from collectors.reddit.client import SITE

FULLNAME = re.compile(r"t[1-6]_[0-9a-z]{1,13}")


@dataclass(frozen=True)
class Listing:
    children: list[Any]
    after: str | None


@dataclass(frozen=True)
class Thing:
    """A submission (t3) or comment (t1) as read from the listing's JSON."""

    kind: str
    fullname: str
    subreddit: str
    title: str
    body: str
    author: str
    author_id: str | None
    posted_at: datetime
    url: str
    link_id: str | None
    parent_id: str | None
    link_url: str | None
    note: str | None = None

    @property
    def kind_name(self) -> str:
        return "submission" if self.kind == "t3" else "comment"


def fullname_of(child: Any) -> str | None:
    """A listing child's fullname ("t3_abc"), or None when it has no usable one."""
    if not isinstance(child, dict) or not isinstance(child.get("data"), dict):
        return None
    data = child["data"]
    name = data.get("name")
    if not name and data.get("id") and child.get("kind"):
        name = f"{child['kind']}_{data['id']}"
    return name if isinstance(name, str) and FULLNAME.fullmatch(name) else None


def created_of(child: Any) -> float | None:
    data = child.get("data") if isinstance(child, dict) else None
    value = data.get("created_utc") if isinstance(data, dict) else None
    try:
        return times.parse(value).timestamp()
    except times.BadTime:
        return None


def _string(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"its {name!r} is a {type(value).__name__}, not text")
    return value


def read_post(child: Any) -> Thing | None:
    """One listing child as a post; None for what is not a post (a "more" stub); raises when it is unreadable."""
    if not isinstance(child, dict) or not isinstance(child.get("data"), dict):
        raise ValueError("it is not a Reddit object ({kind, data})")
    kind, data = child.get("kind"), child["data"]
    if kind not in ("t1", "t3"):
        return None
    fullname = fullname_of(child)
    if fullname is None:
        raise ValueError("no usable 'name' or 'id' field")
    posted_at = times.parse(data.get("created_utc"))
    author = data.get("author")
    author = "[deleted]" if author is None else str(author)
    sub = data.get("subreddit") or str(data.get("subreddit_name_prefixed") or "").removeprefix("r/")
    permalink, link_id = data.get("permalink"), data.get("link_id")
    if kind == "t1" and not (isinstance(link_id, str) and FULLNAME.fullmatch(link_id)):
        raise ValueError(f"comment without a usable 'link_id' ({clean.shown(link_id)})")
    note = None
    if isinstance(permalink, str) and permalink.startswith("/"):
        url = SITE + permalink
    else:  # Reddit answers /comments/<post>/_/<comment>/ for any comment, whatever the subreddit
        post36 = link_id[3:] if kind == "t1" else fullname[3:]
        url = f"{SITE}/comments/{post36}/" + (f"_/{fullname[3:]}/" if kind == "t1" else "")
        note = f"Reddit {fullname} came without a permalink; its address was built from its ids"
    if kind == "t3":
        title, body = _string(data, "title"), _string(data, "selftext")
    else:
        title, body = _string(data, "link_title"), _string(data, "body")
    return Thing(kind=kind, fullname=fullname, subreddit=str(sub), title=title, body=body, author=author,
                author_id=data.get("author_fullname") if isinstance(data.get("author_fullname"), str) else None,
                posted_at=posted_at, url=url, link_id=link_id if kind == "t1" else None,
                parent_id=str(data.get("parent_id") or link_id) if kind == "t1" else None,
                link_url=data.get("url") if kind == "t3" and data.get("is_self") is False else None, note=note)
