"""One Discourse post as a `Mention`: the mapping a poll (collect.py) and a webhook delivery share.

A post is the same JSON whether `/posts.json`, `/search.json` or a webhook (`{"post": {...}}`, Discourse's
WebHookPostSerializer, a PostSerializer with raw, topic title and category) brings it, so one `Forum`
turns it into a mention: the same id ("<host>/t/<topic id>/<post number>"), the same term matching, our
own accounts and posts that are not regular public ones (moderator actions, whispers, hidden or deleted
posts, private messages) left out, answers to us kept without a term. What the post's JSON says (its
own words, its quotes, its fields) is posts.py's.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from collectors import clean, times
from collectors.base import Mention, PollResult, SetAside
from collectors.discourse.posts import as_int, own_words, required, text_of
from collectors.match import TermMatcher
from collectors.redact import site

PLATFORM = "discourse"
_REGULAR_POST = 1  # post_type: 1 regular, 2 moderator action, 3 small action, 4 whisper
_PRIVATE = "private_message"  # topic_archetype of a private message (webhooks send it; /posts.json leaves PMs out)
_SLUG = re.compile(r"[^\w-]+")


class Forum:
    """One source's forum: its address, the terms it matches and our accounts on it."""

    def __init__(self, base_url: object, source: str, *, matcher: TermMatcher, own_accounts: Sequence[str]) -> None:
        self.base = str(base_url).rstrip("/")
        self.host = site(self.base)
        self.source = source
        self.matcher = matcher
        self.own = {a.lstrip("@").casefold() for a in own_accounts}

    def ext(self, topic: int, number: int) -> str:
        return f"{self.host}/t/{topic}/{number}"

    def describe(self, post: dict) -> str:
        topic, number = as_int(post.get("topic_id")), as_int(post.get("post_number"))
        return self.ext(topic, number) if topic is not None and number is not None else f"post id {post.get('id')}"

    def ours(self, posts: list[dict], remembered: list[str]) -> list[str]:
        """Our own posts' ids, remembered and new: an answer to one is an answer to us even without reply_to_user."""
        ours = list(remembered)
        for p in posts:
            if str(p.get("username", "")).casefold() in self.own:
                topic, number = as_int(p.get("topic_id")), as_int(p.get("post_number"))
                if topic is not None and number is not None:
                    ours.append(self.ext(topic, number))
        return list(dict.fromkeys(ours))

    def mentions(self, posts: list[dict], ours: set[str]) -> tuple[list[Mention], list[SetAside]]:
        """The posts that are mentions, and those that could not be read (each set aside with the reason)."""
        return clean.guarded_items(posts, lambda p: self.mention(p, ours), platform=PLATFORM, source=self.source,
                                   describe=self.describe)

    def mention(self, post: dict, ours: set[str]) -> Mention | None:
        """The post as a mention; None when it is ours, not a regular public post, or neither names a term
        nor answers us."""
        username = clean.clean_text(str(required(post, "username")), multiline=False)
        topic_id = int(required(post, "topic_id"))
        number = int(required(post, "post_number"))
        posted_at = times.parse(required(post, "created_at"))
        pid = int(required(post, "id"))
        if username.casefold() in self.own:
            return None
        if post.get("post_type", _REGULAR_POST) != _REGULAR_POST or post.get("hidden") or post.get("deleted_at") \
                or post.get("topic_archetype") == _PRIVATE:
            return None
        title = str(post.get("topic_title") or "")
        raw = post.get("raw")
        body = str(raw) if isinstance(raw, str) and raw else text_of(str(post.get("cooked") or post.get("blurb") or ""))
        reply_to = as_int(post.get("reply_to_post_number"))
        reply_user = post.get("reply_to_user")
        reply_user = str(reply_user.get("username", "")) if isinstance(reply_user, dict) else ""
        parent = self.ext(topic_id, reply_to) if reply_to else None
        words, quotes = own_words(post)
        quoted_ours = [self.ext(q.topic or topic_id, q.post) for q in quotes
                       if q.username.casefold() in self.own and q.post is not None]
        reply_to_own = (bool(reply_to) and reply_user.casefold() in self.own) or parent in ours or \
            any(q.username.casefold() in self.own for q in quotes)
        terms = self.matcher.match(title, words) if number == 1 else self.matcher.match(words)
        if not terms and not reply_to_own:
            return None
        extra: dict[str, Any] = {
            "forum": self.base, "topic_id": topic_id, "post_number": number,
            "reply_to_post_number": reply_to, "post_id": pid,
            "category_id": post.get("category_id"),
        }
        if reply_to_own:
            extra["reply_to_own"] = True
        if quoted_ours:
            extra["quotes"] = quoted_ours
        slug = post.get("topic_slug") if isinstance(post.get("topic_slug"), str) else None
        return Mention(
            platform=PLATFORM,
            source=self.source,
            external_id=self.ext(topic_id, number),
            url=f"{self.base}/t/{_SLUG.sub('-', slug or '') or 'topic'}/{topic_id}/{number}",
            author=username,
            author_id=str(post["user_id"]) if post.get("user_id") is not None else None,
            title=title,
            body=body,
            posted_at=posted_at,
            thread_id=f"{self.host}/t/{topic_id}",
            # a quote of our post without the reply button still answers that post
            parent_id=parent or (quoted_ours[0] if quoted_ours else None),
            matched_terms=terms,
            extra=extra,
        )


def pushed(forum: Forum, post: Any, *, ours: Sequence[str] = ()) -> PollResult:
    """A post the forum pushed (a webhook delivery) as a poll's result: the mention, cleaned as every poll's
    are (collectors.clean.finish), or the post set aside with the reason; no cursor (a push moves none)."""
    if not isinstance(post, dict):
        aside = [SetAside(platform=PLATFORM, source=forum.source, raw=clean.raw_payload(post),
                          reason=f"Discourse {forum.host}: a webhook delivery whose post is a {type(post).__name__}")]
        return clean.finish(PollResult(mentions=[], cursor=None, set_aside=aside))
    mentions, aside = forum.mentions([post], set(ours))
    return clean.finish(PollResult(mentions=mentions, cursor=None, set_aside=aside))
