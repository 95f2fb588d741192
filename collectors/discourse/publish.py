"""Discourse publisher: a reply is POST /posts.json with topic_id, raw and reply_to_post_number.

Posting needs an API key and the username to post as (`api_key_env`,
`api_username_env` in the source settings). A reply's id is
"<host>/t/<topic id>/<post number>", the format of the collector's mentions,
so an answer to our reply joins its case.

To find our reply after a lost answer, the topic's post stream is read (GET
/t/{id}.json gives every post id in order; /t/{id}/posts.json?post_ids[]=...
fetches them in chunks of 20, as Discourse's own client does): every post
whose id is above the one we answered, newest id first. A post by our account
in that topic, answering the same post (or the topic), made since the attempt
(less the clock-skew allowance), whose raw text is what we sent, is ours. The
look does not stop at the first post older than the attempt: posts moved in
from another topic keep their old times and come last in the stream, so age
says nothing about the posts further back. The call's deadline bounds it; a
look that runs out leaves the reply unknown, never "not found".

A reply is `Rejected` (nothing was posted, safe to retry) only when Discourse
says so in its own words: one of its documented refusals (400, 403, 404, 422,
429) with its `errors` list. Any other answer (a 3xx from a proxy, 408, 409,
a 4xx page that is not Discourse's, a 5xx) is `Unknown`: the reply may be up.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx

from collectors.errors import NotConfigured, Rejected, Unknown
from collectors.net.deadline import httpx_client
from collectors.posting import Posted, Target, same_text
from collectors.redact import site

READ_TIMEOUT = 30.0  # seconds per read; the call's deadline (replies.publish_deadline_seconds) cuts it shorter
CHUNK = 20  # post ids per /t/{id}/posts.json request: what Discourse serves per page
REFUSALS = frozenset({400, 403, 404, 422, 429})  # with Discourse's errors list: refused, nothing posted
USER_AGENT = "hearken/0.1 (+https://example.com/hearken)"


class DiscoursePublisher:
    platform = "discourse"

    def __init__(self, base_url: str, api_key: str, username: str, *, accounts: list[str],
                 user_agent: str = "hearken") -> None:
        self.base = base_url.rstrip("/")
        self.host = site(self.base)
        self.username = username
        self.accounts = {a.casefold() for a in accounts} | {username.casefold()}
        self.client = httpx_client(self.base, timeout=READ_TIMEOUT, headers={
            "Api-Key": api_key, "Api-Username": username, "User-Agent": user_agent, "Accept": "application/json"})

    @staticmethod
    def _where(target: Target) -> tuple[int, int | None]:
        try:
            topic = int(target.extra["topic_id"])
        except (KeyError, TypeError, ValueError):
            raise Rejected(f"the post {target.external_id} has no Discourse topic id to reply in") from None
        number = target.extra.get("post_number")
        return topic, int(number) if number is not None else None

    def publish(self, target: Target, text: str) -> Posted:
        topic, number = self._where(target)
        payload: dict = {"topic_id": topic, "raw": text}
        if number and number > 1:
            payload["reply_to_post_number"] = number
        try:
            r = self.client.post(f"{self.base}/posts.json", json=payload)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise Rejected(f"could not reach {self.base}: {exc}") from exc  # never sent
        except httpx.HTTPError as exc:
            raise Unknown(f"no clear answer from {self.base} ({type(exc).__name__}: {exc})") from exc
        if r.status_code in (200, 201):
            try:
                return self._posted(r.json(), topic)
            except (ValueError, KeyError, TypeError) as exc:
                raise Unknown(f"{self.base} answered {r.status_code} with an unreadable body") from exc
        refusal = _refusal(r)
        if refusal is not None:
            raise Rejected(f"{self.base} refused the reply ({r.status_code}): {refusal}")
        raise Unknown(f"{self.base} answered HTTP {r.status_code} {r.reason_phrase}, which does not say whether "
                      "the reply was posted")

    def _posted(self, post: dict, topic: int) -> Posted:
        topic = int(post.get("topic_id") or topic)
        number = int(post["post_number"])
        slug = post.get("topic_slug") or "topic"
        return Posted(f"{self.host}/t/{topic}/{number}", f"{self.base}/t/{slug}/{topic}/{number}")

    def _get(self, path: str, params: Any = None) -> dict:
        r = self.client.get(f"{self.base}{path}", params=params)
        if r.status_code != 200:
            raise Unknown(f"{self.base}{path} answered {r.status_code}")
        try:
            data = r.json()
        except ValueError as exc:
            raise Unknown(f"{self.base}{path} answered with a body that is not JSON") from exc
        if not isinstance(data, dict):
            raise Unknown(f"{self.base}{path} answered with JSON that is not an object")
        return data

    def find_ours(self, target: Target, text: str, since: datetime, skew: timedelta) -> Posted | None:
        topic, number = self._where(target)
        cutoff = since - skew
        data = self._get(f"/t/{topic}.json", {"include_raw": 1})
        stream = data.get("post_stream") or {}
        known = {p.get("id"): p for p in stream.get("posts") or [] if isinstance(p, dict)}
        ids = [pid for pid in (stream.get("stream") or list(known)) if isinstance(pid, int)]
        floor = self._floor(target, number, known)
        # Newest post id first, every post made after the one we answered: ids count up as posts are made, so
        # ours is above that post's. Times do not order a topic (posts moved in from another keep theirs, days
        # old, and come last), so an old post is no sign that the rest are older: the look ends at the floor.
        wanted = sorted((pid for pid in ids if floor is None or pid > floor), reverse=True)
        for start in range(0, len(wanted), CHUNK):
            chunk = wanted[start:start + CHUNK]
            missing = [pid for pid in chunk if pid not in known]
            if missing:
                more = self._get(f"/t/{topic}/posts.json",
                                 [("post_ids[]", pid) for pid in missing] + [("include_raw", 1)])
                known.update({p.get("id"): p for p in (more.get("post_stream") or {}).get("posts") or []
                              if isinstance(p, dict)})
            for pid in chunk:
                p = known.get(pid)
                created = _when(p) if p is not None else None
                if created is not None and created >= cutoff and self._ours(p, number, text):
                    return self._posted(p, topic)
        return None

    @staticmethod
    def _floor(target: Target, number: int | None, known: dict) -> int | None:
        """The id of the post we answered (ours was made after it, so its id is higher), where it is known."""
        try:
            return int(target.extra["post_id"])
        except (KeyError, TypeError, ValueError):
            pass
        wanted = number or 1
        return next((pid for pid, p in known.items() if isinstance(pid, int) and p.get("post_number") == wanted), None)

    def _ours(self, post: dict, number: int | None, text: str) -> bool:
        if str(post.get("username", "")).casefold() not in self.accounts:
            return False
        answers = post.get("reply_to_post_number")
        to_topic = number in (None, 1)
        if not (answers is None or answers == number or (to_topic and answers == 1)):
            return False
        raw = post.get("raw")
        if raw is None and post.get("id") is not None:  # a forum that ignores include_raw
            raw = self._get(f"/posts/{post['id']}.json").get("raw")
        return raw is not None and same_text(str(raw), text)

    def close(self) -> None:
        self.client.close()


def _when(post: dict) -> datetime | None:
    try:
        when = datetime.fromisoformat(str(post.get("created_at", "")).replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _refusal(r: httpx.Response) -> str | None:
    """Discourse's words when `r` is one of its documented refusals of a post (nothing was posted), else None.

    Discourse refuses with 400 (a parameter missing), 403 (not permitted), 404 (no such topic), 422 (the
    post failed validation: too short, too similar, topic closed) or 429 (rate limit), each with a JSON
    body holding an `errors` list. The same status from anything else (a proxy's page, an empty body)
    proves nothing: the request may have reached Discourse and been stored.
    """
    if r.status_code not in REFUSALS:
        return None
    try:
        body = r.json()
    except ValueError:
        return None
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list) or not errors:
        return None
    return "; ".join(str(e) for e in errors)


def build(settings: Any, *, accounts: list[str], env: Mapping[str, str], data_dir: Path) -> DiscoursePublisher:
    """The publisher posting as the source's Api-Username; `accounts` are ours (replies by any of them are ours)."""
    key = env.get(settings.api_key_env) if settings.api_key_env else None
    user = env.get(settings.api_username_env) if settings.api_username_env else None
    if not key or not user:
        raise NotConfigured(f"source {settings.name!r} needs api_key_env and api_username_env set to post replies")
    return DiscoursePublisher(str(settings.base_url), key, user, accounts=list(accounts),
                              user_agent=getattr(settings, "user_agent", USER_AGENT))
