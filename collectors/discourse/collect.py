"""Discourse forums over their JSON API (httpx): latest posts and/or search.

Per forum it reads `/posts.json` (the newest posts across the forum, newest
first, paged back with `?before=<post id>`) and/or `/search.json` (one query
per configured search, `order:latest`, paged with `&page=N`). It pages back
until it reaches the last post it saw, so a burst bigger than a page loses
nothing, up to `max_pages` (a note says when it had to stop). A post is new
when its id is above the highest seen or it was written after the newest seen
(`_Reading`): a forum restored from a backup or moved numbers its posts again
from lower ids, and ids alone would skip every post written after that (the
poll then says so in a warning, kept on the Sources page).

External ids are "<host>/t/<topic id>/<post number>": post numbers never
change within a topic, and the reply-to post number then gives the parent's
external id without another request. `extra` keeps topic id, post number,
reply-to post number and the post id, which is what posting a reply needs.

Answers to us: a post replying to one of our accounts (`reply_to_user`), to
one of our posts the collector has seen (`reply_to_post_number`; the cursor
remembers our last `OURS_MAX` posts), or quoting one of our accounts is
returned even without a term, with ``extra["reply_to_own"]`` and, for quotes
that name the post, ``extra["quotes"]`` (their external ids). Discourse
leaves `reply_to_user` out when the reply quotes the post it answers
(suppress_reply_when_quoting), which is why quotes are read at all.

A post without a numeric id, a readable time or the fields an id is made of
is set aside with its JSON and the reason; the rest of the page is kept. What one
post's JSON says (its own words, its quotes, its fields) is posts.py; turning
it into a mention is mention.py's (`Forum`), which a webhook delivery
(desk/api/discourse_hook.py) shares.

Cursor: ``{"latest": {"last_id": 123, "last_at": "<ISO time>", "etag": ..., "last_modified": ...},
"search": {"<query>": {"last_id": 120, "last_at": ...}}, "ours": ["<host>/t/5/3", ...]}``. The first poll ever reads one
page per feed and no further back: Hearken starts from now, it does not
backfill a forum's history.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from collectors import clean, times
from collectors.net import http
from collectors.base import BadPayload, NotConfigured, PollResult, SetAside, collector_boundary
from collectors.discourse.mention import PLATFORM, Forum
from collectors.discourse.posts import as_int, created
from collectors.match import TermMatcher

OURS_MAX = 500  # our own recent posts remembered in the cursor, to recognise answers to them


class _Reading:
    """One feed's reading in one poll: which posts are new against the cursor's mark, and the next mark.

    A post is new when its id is above the highest seen (`last_id`), or when it was written after the
    newest post seen (`last_at`, the forum's own clock). Ids alone would lose every later post of a
    forum whose ids went backwards (restored from a backup, moved to a new server, or one absurd id
    seen once); time alone would miss posts written in the same instant. When the newest id on the
    first page is below `last_id` and posts newer than `last_at` are there, the forum was renumbered:
    that is a warning, and reading goes on from the forum's new numbering.
    """

    def __init__(self, state: dict[str, Any] | None) -> None:
        self.last_id = as_int(state.get("last_id")) if state else None
        self.last_at = _parse_mark(state.get("last_at")) if state else None
        self.head: int | None = None  # the highest id on the first page: the forum's numbering now
        self.newest_at = self.last_at
        self.posts: list[dict] = []
        self.by_time = 0  # new posts whose id is not above last_id

    def _new(self, pid: int, at: datetime | None) -> bool:
        if self.last_id is None or pid > self.last_id:
            return True
        return self.last_at is not None and at is not None and at > self.last_at

    def page(self, pairs: list[tuple[dict, int]]) -> bool:
        """Take one page of (post, id), newest first; True when the next, older page may hold new posts."""
        if self.head is None and pairs:
            self.head = max(i for _, i in pairs)
        oldest: tuple[int, bool] | None = None
        for post, pid in pairs:
            at = created(post)
            new = self._new(pid, at)
            if new:
                self.posts.append(post)
                self.by_time += self.last_id is not None and pid <= self.last_id
            if at is not None and (self.newest_at is None or at > self.newest_at):
                self.newest_at = at
            if oldest is None or pid < oldest[0]:
                oldest = (pid, new)
        return self.last_id is not None and oldest is not None and oldest[1]

    def finish(self, state: dict[str, Any], what: str, warnings: list[str]) -> dict[str, Any]:
        """`state` with the mark moved past what was read, and a warning when the forum was renumbered."""
        newest = max((int(p["id"]) for p in self.posts), default=None)
        renumbered = (self.last_id is not None and self.head is not None and self.head < self.last_id
                      and self.by_time > 0)
        if renumbered:
            warnings.append(f"{what}: the forum's post ids went backwards (its newest is now {self.head}; "
                            f"{self.last_id} was seen before): restored from a backup, or moved? {self.by_time} "
                            "post(s) written since were read by their time, and reading goes on from its new "
                            "numbering. Posts written on the forum between the backup and the restore may be "
                            "gone from the forum itself; the queue keeps the ones Hearken read.")
            state["last_id"] = self.head
        elif newest is not None and (self.last_id is None or newest > self.last_id):
            state["last_id"] = newest
        if self.newest_at is not None:
            state["last_at"] = self.newest_at.isoformat()
        return state


def _parse_mark(value: object) -> datetime | None:
    try:
        return times.parse(value, plausible=False) if value else None
    except times.BadTime:
        return None


class DiscourseCollector:
    platform: ClassVar[str] = PLATFORM

    def __init__(self, settings: Any, *, matcher: TermMatcher, own_accounts: list[str], env: dict[str, str]) -> None:
        self.settings = settings
        self.name = settings.name
        self.matcher = matcher
        self.forum = Forum(settings.base_url, settings.name, matcher=matcher, own_accounts=own_accounts)
        self.base, self.host = self.forum.base, self.forum.host
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
        self.client = http.make_client(http.USER_AGENT, headers=headers, limits=http.Limits.of(settings))

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

    def _latest(self, state: dict[str, Any] | None, notes: list[str], unreadable: list[SetAside],
                warnings: list[str]) -> tuple[list[dict], dict[str, Any], int]:
        """Posts newer than the cursor's mark, newest first, and the new state."""
        reading = _Reading(state)
        validators = http.Validators.from_cursor(state)
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
            pairs = self._ids(items, str(response.request.url), unreadable)
            if not reading.page(pairs):
                break
            before = min(i for _, i in pairs)
        else:
            notes.append(f"latest posts: stopped after {self.settings.max_pages} pages before reaching the last post seen; "
                         "older new posts were skipped (raise max_pages or poll more often)")
        return reading.posts, reading.finish(new_state, "latest posts", warnings), reads

    def _search(self, query: str, state: dict[str, Any] | None, notes: list[str], unreadable: list[SetAside],
                warnings: list[str]) -> tuple[list[dict], dict[str, Any], int]:
        reading = _Reading(state)
        validators = http.Validators.from_cursor(state)
        new_state = dict(state or {})
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
            topics = {i: t for t in data.get("topics") or []
                      if isinstance(t, dict) and (i := as_int(t.get("id"))) is not None}
            pairs = self._ids(items, str(response.request.url), unreadable)
            for item, _ in pairs:
                topic = topics.get(as_int(item.get("topic_id"))) or {}
                item.setdefault("topic_title", topic.get("title", ""))
                item.setdefault("topic_slug", topic.get("slug", "topic"))
            reads += len(items)
            grouped = data.get("grouped_search_result")
            more = grouped.get("more_posts") if isinstance(grouped, dict) else None
            if not reading.page(pairs) or not more:
                break
        else:
            notes.append(f"search {query!r}: stopped after {self.settings.max_pages} pages before reaching the last post seen")
        return reading.posts, reading.finish(new_state, f"search {query!r}", warnings), reads

    def _ids(self, items: list[Any], url: str, unreadable: list[SetAside]) -> list[tuple[dict, int]]:
        """Each post of a page with its numeric id; a post without one is set aside."""
        out: list[tuple[dict, int]] = []
        for item in items:
            pid = as_int(item.get("id")) if isinstance(item, dict) else None
            if pid is None:
                shown = clean.shown(item.get("id")) if isinstance(item, dict) else f"a {type(item).__name__}"
                unreadable.append(SetAside(platform=PLATFORM, source=self.name, url=url, raw=clean.raw_payload(item),
                                           reason=f"{self.what}: a post whose id {shown} is not a number"))
            else:
                out.append((item, pid))
        return out

    @collector_boundary("Discourse")
    def poll(self, cursor: dict[str, Any] | None, *, read_budget: int | None = None) -> PollResult:
        cursor = cursor or {}
        notes: list[str] = []
        unreadable: list[SetAside] = []
        found: dict[int, dict] = {}
        new_cursor: dict[str, Any] = {}
        reads = 0
        warnings: list[str] = []
        if "latest" in self.settings.read:
            posts, new_cursor["latest"], n = self._latest(cursor.get("latest"), notes, unreadable, warnings)
            reads += n
            found.update((int(p["id"]), p) for p in posts)
        if "search" in self.settings.read:
            old = cursor.get("search") or {}
            new_cursor["search"] = {}
            for query in self.search_queries():
                posts, new_cursor["search"][query], n = self._search(query, old.get(query), notes, unreadable,
                                                                     warnings)
                reads += n
                for p in posts:
                    found.setdefault(int(p["id"]), p)
        posts = [found[pid] for pid in sorted(found)]
        remembered = cursor.get("ours") if isinstance(cursor.get("ours"), list) else []
        new_cursor["ours"] = self.forum.ours(posts, [str(x) for x in remembered])[-OURS_MAX:]
        mentions, aside = self.forum.mentions(posts, set(new_cursor["ours"]))
        mentions.sort(key=lambda m: m.posted_at)
        return PollResult(mentions=mentions, cursor=new_cursor, reads=reads, notes=notes,
                          set_aside=unreadable + aside, warnings=warnings)

    def close(self) -> None:
        self.client.close()
