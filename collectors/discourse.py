"""Discourse forums over their JSON API (httpx): latest posts and/or search.

Per forum it reads `/posts.json` (the newest posts across the forum, newest
first, paged back with `?before=<post id>`) and/or `/search.json` (one query
per configured search, `order:latest`, paged with `&page=N`). It pages back
until it reaches the newest post id it saw last time, so a burst bigger than
a page loses nothing, up to `max_pages` (a note says when it had to stop).

External ids are "<host>/t/<topic id>/<post number>": post numbers never
change within a topic, and the reply-to post number then gives the parent's
external id without another request. `extra` keeps topic id, post number,
reply-to post number and the post id, which is what posting a reply needs.

Cursor: ``{"latest": {"last_id": 123, "etag": ..., "last_modified": ...},
"search": {"<query>": {"last_id": 120, ...}}}``. The first poll ever reads one
page per feed and no further back: Hearken starts from now, it does not
backfill a forum's history.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

from bs4 import BeautifulSoup

from collectors import http
from collectors.base import BadPayload, Mention, NotConfigured, PollResult, utc, collector_boundary
from collectors.match import TermMatcher

PLATFORM = "discourse"
_REGULAR_POST = 1  # post_type: 1 regular, 2 moderator action, 3 small action, 4 whisper


_QUOTE = re.compile(r'\[quote="?([^,"\]]+)[^\]]*\](.*?)\[/quote\]', re.S | re.I)


def _text(cooked: str) -> str:
    return BeautifulSoup(cooked or "", "html.parser").get_text(" ", strip=True)


def _own_words(post: dict) -> tuple[str, list[str]]:
    """What the author wrote without the posts they quote, and whom they quote."""
    raw = post.get("raw")
    if raw:
        quoted = [m.group(1).strip() for m in _QUOTE.finditer(raw)]
        return _QUOTE.sub(" ", raw).strip(), quoted
    soup = BeautifulSoup(post.get("cooked") or post.get("blurb") or "", "html.parser")
    quoted = [str(q.get("data-username")) for q in soup.select("aside.quote[data-username]")]
    for q in soup.select("aside.quote"):
        q.decompose()
    return soup.get_text(" ", strip=True), quoted


class DiscourseCollector:
    platform: ClassVar[str] = PLATFORM

    def __init__(self, settings: Any, *, matcher: TermMatcher, own_accounts: list[str], env: dict[str, str]) -> None:
        self.settings = settings
        self.name = settings.name
        self.matcher = matcher
        self.own = {a.lstrip("@").casefold() for a in own_accounts}
        self.base = str(settings.base_url).rstrip("/")
        self.host = urlsplit(self.base).netloc
        self.what = f"Discourse {self.host}"
        headers: dict[str, str] = {"Accept": "application/json"}
        # public forums are read anonymously: a key only adds private categories (and lets Hearken post)
        for field, header in (("api_key_env", "Api-Key"), ("api_username_env", "Api-Username")):
            var = getattr(settings, field, None)
            if var and env.get(var):
                headers[header] = env[var]
        self.anonymous = "Api-Key" not in headers
        if "search" in settings.read and not self.search_queries():
            raise NotConfigured(f"{self.name}: reads search but has no search_query and no terms to search for")
        self.client = http.make_client(http.USER_AGENT, headers=headers)

    def search_queries(self) -> list[str]:
        if self.settings.search_query:
            return [self.settings.search_query]
        return [f'"{t}"' if " " in t else t for t in self.matcher.terms]

    # -- reading ---------------------------------------------------------

    def _get_json(self, path: str, params: dict[str, Any], validators: http.Validators | None = None):
        url = self.base + path
        response = http.get(self.client, url, what=self.what, params=params,
                            headers=validators.headers() if validators else None)
        if response.status_code == 304:
            return response, None
        return response, http.parse_json(response, what=self.what)

    def _latest(self, state: dict[str, Any] | None, notes: list[str]) -> tuple[list[dict], dict[str, Any], int]:
        """Posts newer than state["last_id"], newest first, and the new state."""
        last_id = int(state["last_id"]) if state and state.get("last_id") is not None else None
        validators = http.Validators.from_cursor(state)
        posts: list[dict] = []
        reads = 0
        before: int | None = None
        new_state = dict(state or {})
        for page in range(self.settings.max_pages):
            params = {"before": before} if before is not None else {}
            response, data = self._get_json("/posts.json", params, validators if page == 0 else None)
            if data is None:  # 304 Not Modified
                return [], new_state, reads
            if page == 0:
                new_state.update(http.Validators.from_response(response).to_cursor())
            items = data.get("latest_posts") if isinstance(data, dict) else None
            if not isinstance(items, list):
                raise BadPayload(f"{self.what}: /posts.json has no latest_posts list", url=str(response.request.url))
            reads += len(items)
            ids = [self._post_id(p, response) for p in items]
            reached = last_id is None or not items or min(ids) <= last_id
            posts.extend(p for p, i in zip(items, ids, strict=True) if last_id is None or i > last_id)
            if reached:
                break
            before = min(ids)
        else:
            notes.append(f"latest posts: stopped after {self.settings.max_pages} pages before reaching the last post seen; "
                         "older new posts were skipped (raise max_pages or poll more often)")
        newest = max((self._post_id(p, None) for p in posts), default=None)
        if newest is not None and (last_id is None or newest > last_id):
            new_state["last_id"] = newest
        return posts, new_state, reads

    def _search(self, query: str, state: dict[str, Any] | None, notes: list[str]) -> tuple[list[dict], dict[str, Any], int]:
        last_id = int(state["last_id"]) if state and state.get("last_id") is not None else None
        validators = http.Validators.from_cursor(state)
        new_state = dict(state or {})
        posts: list[dict] = []
        reads = 0
        for page in range(1, self.settings.max_pages + 1):
            params: dict[str, Any] = {"q": f"{query} order:latest"}
            if page > 1:
                params["page"] = page
            response, data = self._get_json("/search.json", params, validators if page == 1 else None)
            if data is None:
                return [], new_state, reads
            if page == 1:
                new_state.update(http.Validators.from_response(response).to_cursor())
            if not isinstance(data, dict) or not isinstance(data.get("posts", []), list):
                raise BadPayload(f"{self.what}: search.json has no posts list", url=str(response.request.url))
            items = data.get("posts", [])
            topics = {t.get("id"): t for t in data.get("topics", []) if isinstance(t, dict)}
            for item in items:
                topic = topics.get(item.get("topic_id"), {})
                item.setdefault("topic_title", topic.get("title", ""))
                item.setdefault("topic_slug", topic.get("slug", "topic"))
            reads += len(items)
            ids = [self._post_id(p, response) for p in items]
            posts.extend(p for p, i in zip(items, ids, strict=True) if last_id is None or i > last_id)
            more = (data.get("grouped_search_result") or {}).get("more_posts")
            if last_id is None or not items or min(ids) <= last_id or not more:
                break
        else:
            notes.append(f"search {query!r}: stopped after {self.settings.max_pages} pages before reaching the last post seen")
        newest = max((self._post_id(p, None) for p in posts), default=None)
        if newest is not None and (last_id is None or newest > last_id):
            new_state["last_id"] = newest
        return posts, new_state, reads

    def _post_id(self, post: Any, response) -> int:
        try:
            return int(post["id"])
        except (TypeError, KeyError, ValueError):
            url = str(response.request.url) if response is not None else self.base
            raise BadPayload(f"{self.what}: a post without a numeric id: {str(post)[:120]}", url=url) from None

    # -- turning posts into mentions --------------------------------------

    def _mention(self, post: dict, source_url: str) -> Mention | None:
        try:
            username = str(post["username"])
            topic_id = int(post["topic_id"])
            number = int(post["post_number"])
            posted_at = utc(datetime.fromisoformat(str(post["created_at"]).replace("Z", "+00:00")))
        except (KeyError, TypeError, ValueError) as exc:
            raise BadPayload(f"{self.what}: post {post.get('id')} lacks or garbles {exc}", url=source_url) from exc
        if username.casefold() in self.own:
            return None
        if post.get("post_type", _REGULAR_POST) != _REGULAR_POST or post.get("hidden") or post.get("deleted_at"):
            return None
        title = str(post.get("topic_title") or "")
        body = str(post.get("raw") or "") or _text(post.get("cooked") or post.get("blurb") or "")
        reply_to = post.get("reply_to_post_number")
        reply_user = (post.get("reply_to_user") or {}).get("username", "")
        own_words, quoted = _own_words(post)
        reply_to_own = (bool(reply_to) and str(reply_user).casefold() in self.own) or \
            any(q.casefold() in self.own for q in quoted)
        terms = self.matcher.match(title, own_words) if number == 1 else self.matcher.match(own_words)
        if not terms and not reply_to_own:
            return None
        extra: dict[str, Any] = {
            "forum": self.base, "topic_id": topic_id, "post_number": number,
            "reply_to_post_number": reply_to, "post_id": int(post["id"]),
            "category_id": post.get("category_id"),
        }
        if reply_to_own:
            extra["reply_to_own"] = True
        slug = post.get("topic_slug") or "topic"
        return Mention(
            platform=PLATFORM,
            source=self.name,
            external_id=f"{self.host}/t/{topic_id}/{number}",
            url=f"{self.base}/t/{slug}/{topic_id}/{number}",
            author=username,
            author_id=str(post["user_id"]) if post.get("user_id") is not None else None,
            title=title,
            body=body,
            posted_at=posted_at,
            thread_id=f"{self.host}/t/{topic_id}",
            parent_id=f"{self.host}/t/{topic_id}/{reply_to}" if reply_to else None,
            matched_terms=terms,
            extra=extra,
        )

    @collector_boundary("Discourse")
    def poll(self, cursor: dict[str, Any] | None, *, read_budget: int | None = None) -> PollResult:
        cursor = cursor or {}
        notes: list[str] = []
        found: dict[int, tuple[dict, str]] = {}
        new_cursor: dict[str, Any] = {}
        reads = 0
        if "latest" in self.settings.read:
            posts, new_cursor["latest"], n = self._latest(cursor.get("latest"), notes)
            reads += n
            found.update((int(p["id"]), (p, self.base + "/posts.json")) for p in posts)
        if "search" in self.settings.read:
            old = cursor.get("search") or {}
            new_cursor["search"] = {}
            for query in self.search_queries():
                posts, new_cursor["search"][query], n = self._search(query, old.get(query), notes)
                reads += n
                for p in posts:
                    found.setdefault(int(p["id"]), (p, self.base + "/search.json"))
        mentions = [m for pid in sorted(found) if (m := self._mention(*found[pid])) is not None]
        mentions.sort(key=lambda m: m.posted_at)
        return PollResult(mentions=mentions, cursor=new_cursor, reads=reads, notes=notes)

    def close(self) -> None:
        self.client.close()
