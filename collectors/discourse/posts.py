"""What one Discourse post's JSON says: its author's own words apart from the posts it quotes, the quotes,
and the fields a mention is made of (a missing one is a ValueError, which sets the post aside).

Quotes come in two forms: raw ``[quote="name, post:3, topic:5"]...[/quote]`` and cooked ``<aside
class="quote" data-username data-post data-topic>``. Discourse leaves `reply_to_user` out when a reply
quotes the post it answers (the site setting suppress_reply_when_quoting, on by default), so the quotes
are how an answer to us is recognised then.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bs4 import BeautifulSoup

from collectors import times

_QUOTE = re.compile(r'\[quote="?([^,"\]]+)([^\]]*)\](.*?)\[/quote\]', re.S | re.I)
_QUOTE_POST = re.compile(r"\bpost:\s*(\d+)")
_QUOTE_TOPIC = re.compile(r"\btopic:\s*(\d+)")


@dataclass(frozen=True)
class Quote:
    """A post quoted in another: whose, and where (topic and post number) when the quote says."""

    username: str
    topic: int | None
    post: int | None


def text_of(cooked: str) -> str:
    """The text of Discourse's rendered HTML (`cooked`, or a search result's `blurb`)."""
    return BeautifulSoup(cooked or "", "html.parser").get_text(" ", strip=True)


def as_int(value: object) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def own_words(post: dict) -> tuple[str, list[Quote]]:
    """What the author wrote without the posts they quote, and the quotes.

    raw: ``[quote="name, post:3, topic:5"]...[/quote]``; cooked: ``<aside class="quote" data-username
    data-post data-topic>``. Either way Discourse leaves out `reply_to_user` when the reply quotes the
    post it answers (the site setting suppress_reply_when_quoting, on by default).
    """
    raw = post.get("raw")
    if isinstance(raw, str) and raw:
        quotes = []
        for m in _QUOTE.finditer(raw):
            where = m.group(2)
            topic, number = _QUOTE_TOPIC.search(where), _QUOTE_POST.search(where)
            quotes.append(Quote(m.group(1).strip(), int(topic.group(1)) if topic else None,
                                int(number.group(1)) if number else None))
        return _QUOTE.sub(" ", raw).strip(), quotes
    soup = BeautifulSoup(str(post.get("cooked") or post.get("blurb") or ""), "html.parser")
    quotes = [Quote(str(q.get("data-username")), as_int(q.get("data-topic")), as_int(q.get("data-post")))
              for q in soup.select("aside.quote[data-username]")]
    for q in soup.select("aside.quote"):
        q.decompose()
    return soup.get_text(" ", strip=True), quotes


def required(post: dict, name: str) -> Any:
    """The field a mention cannot be made without; ValueError (the post is set aside) when it is missing."""
    if post.get(name) is None:
        raise ValueError(f"no {name!r} field")
    return post[name]


def created(post: dict) -> datetime | None:
    """When the post was written, or None when the time does not read."""
    try:
        return times.parse(post.get("created_at"))
    except times.BadTime:
        return None
