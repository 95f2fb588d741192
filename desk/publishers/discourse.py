"""Discourse publisher: a reply is POST /posts.json with topic_id, raw and reply_to_post_number.

Posting needs an API key and the username to post as (`api_key_env`,
`api_username_env` in the source settings). To find our reply after a lost
answer, the topic's newest posts are read (GET /t/{id}.json, then
/t/{id}/posts.json for the tail of a long topic) and one by our account,
answering the same post, made since the attempt began, is taken as ours.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

import httpx

from desk.config import HearkenConfig
from desk.publishers.base import NotConfigured, Posted, Rejected, Target, Unknown

SKEW = timedelta(seconds=60)  # clocks differ between us and the forum
TIMEOUT = 20.0  # seconds; HEARKEN_PUBLISH_TIMEOUT overrides it
USER_AGENT = "hearken/0.1 (+https://example.com/hearken)"


class DiscoursePublisher:
    platform = "discourse"

    def __init__(self, base_url: str, api_key: str, username: str, *, accounts: list[str],
                 user_agent: str = "hearken", timeout: float = 20.0) -> None:
        self.base = base_url.rstrip("/")
        self.username = username
        self.accounts = {a.casefold() for a in accounts} | {username.casefold()}
        self.client = httpx.Client(timeout=timeout, headers={"Api-Key": api_key, "Api-Username": username,
                                                             "User-Agent": user_agent, "Accept": "application/json"})

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
            raise Unknown(f"no answer from {self.base} ({type(exc).__name__})") from exc
        if r.status_code in (200, 201):
            try:
                post = r.json()
                return Posted(str(post["id"]), self._url(post))
            except (ValueError, KeyError, TypeError) as exc:
                raise Unknown(f"{self.base} answered {r.status_code} with an unreadable body") from exc
        if r.status_code >= 500:
            raise Unknown(f"{self.base} answered {r.status_code}")
        raise Rejected(f"{self.base} refused the reply ({r.status_code}): {_errors(r)}")

    def _url(self, post: dict) -> str:
        slug = post.get("topic_slug") or "topic"
        return f"{self.base}/t/{slug}/{post['topic_id']}/{post['post_number']}"

    def find_ours(self, target: Target, text: str, since: datetime) -> Posted | None:
        topic, number = self._where(target)
        r = self.client.get(f"{self.base}/t/{topic}.json")
        r.raise_for_status()
        data = r.json()
        stream = data.get("post_stream", {})
        posts = list(stream.get("posts", []))
        have = {p.get("id") for p in posts}
        tail = [pid for pid in stream.get("stream", [])[-50:] if pid not in have]
        if tail:
            more = self.client.get(f"{self.base}/t/{topic}/posts.json", params=[("post_ids[]", pid) for pid in tail])
            more.raise_for_status()
            posts += more.json().get("post_stream", {}).get("posts", [])
        for p in sorted(posts, key=lambda p: p.get("post_number", 0), reverse=True):
            if str(p.get("username", "")).casefold() not in self.accounts:
                continue
            created = datetime.fromisoformat(str(p.get("created_at", "")).replace("Z", "+00:00"))
            answers = p.get("reply_to_post_number")
            if created >= since - SKEW and (answers == number or (number in (None, 1) and not answers)):
                p.setdefault("topic_id", topic)
                return Posted(str(p["id"]), self._url(p))
        return None

    def close(self) -> None:
        self.client.close()


def _errors(r: httpx.Response) -> str:
    try:
        body = r.json()
        return "; ".join(body.get("errors") or []) or str(body.get("error_type") or body)[:200]
    except ValueError:
        return r.text[:200]


def build(cfg: HearkenConfig, src, env: Mapping[str, str]) -> DiscoursePublisher:
    key = env.get(src.api_key_env) if src.api_key_env else None
    user = env.get(src.api_username_env) if src.api_username_env else None
    if not key or not user:
        raise NotConfigured(f"source {src.name!r} needs api_key_env and api_username_env set to post replies")
    return DiscoursePublisher(str(src.base_url), key, user, accounts=list(cfg.accounts.get("discourse", [])),
                              user_agent=getattr(src, "user_agent", USER_AGENT),
                              timeout=float(env.get("HEARKEN_PUBLISH_TIMEOUT") or TIMEOUT))
