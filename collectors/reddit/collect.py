"""Reddit through PRAW: new submissions and comments of configured subreddits, and site-wide search.

Credentials are an OAuth "script" app's client id and secret from the
environment; with a username and password too, PRAW acts as that account,
otherwise it is read-only (application-only OAuth), which is all collecting
needs.

Paging. A subreddit listing (`/r/<sub>/new`, `/r/<sub>/comments`) is read
forwards from the cursor with `before=<newest fullname seen>`, one page after
another while pages come back full, so a burst of any size between polls is
read completely (PRAW's streams ask for one page of 100 and drop the rest:
praw issue 1043). If the cursor's post was deleted, Reddit answers `before`
with nothing; then the newest page is read and kept back to the cursor's
time. Search (`sort=new`) is read backwards with `after` until it reaches a
post at or before the newest time already seen. Both stop at `max_pages`;
the subreddit listings resume where they stopped on the next poll.

Answers to us. For comments that name no term, the parents are looked up in
one `/api/info` request per page; a comment answering one of our accounts is
returned with ``extra["reply_to_own"] = True``.

Items are read from the listing's JSON one by one (PRAW still signs, paces
and retries the requests, and asks for ``raw_json=1``, so text comes without
HTML entities): a child without a usable id, time or link id is set aside
with its JSON and the reason while the rest of the page is kept, and a comment
without `permalink` gets Reddit's id-only address
(``/comments/<post>/_/<comment>/``) instead of costing the poll (things.py).

Rate limits: prawcore sleeps to spread requests over Reddit's window; when
the window is used up it would sleep until the reset, so the collector raises
`RateLimited` with the reset time instead and lets other sources run.

Cursor: ``{"listings": {"r/acme/new": {"newest": "t3_abc", "newest_utc": 1.7e9},
"search:acme": {"newest_utc": 1.7e9, "seen": ["t3_..."]}}}``. The first poll
ever reads the newest page of each listing only.

The PRAW client and what its errors mean are client.py's; reading one listing child into a post,
things.py's.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from collectors import clean
from collectors.base import BadPayload, Mention, NotConfigured, PollResult, RateLimited, SetAside, collector_boundary
from collectors.match import TermMatcher
from collectors.reddit import things
from collectors.reddit.client import make_reddit, translate

PLATFORM = "reddit"
SEEN_MAX = 300
BLOCKING_WAIT = 10.0  # prawcore may sleep this long between two requests; beyond it we give the turn back


class RedditCollector:
    platform: ClassVar[str] = PLATFORM

    def __init__(self, settings: Any, *, matcher: TermMatcher, own_accounts: list[str], env: dict[str, str]) -> None:
        self.settings = settings
        self.name = settings.name
        self.matcher = matcher
        self.own = {a.strip().removeprefix("/").removeprefix("u/").casefold() for a in own_accounts if a.strip()}
        if not settings.subreddits and not settings.search:
            raise NotConfigured(f"{self.name}: no subreddits and no search queries configured")
        self.reddit = make_reddit(settings, env)
        self.api = (settings.base_url or "https://oauth.reddit.com").rstrip("/")

    # -- requests -------------------------------------------------------------

    def _get(self, path: str, params: dict[str, Any]) -> Any:
        url = f"{self.api}/{path}"
        limiter = getattr(getattr(self.reddit._core, "_rate_limiter", None), "next_request_timestamp_ns", None)
        if limiter is not None:
            wait = (limiter - time.monotonic_ns()) / 1e9
            if wait > BLOCKING_WAIT:
                raise RateLimited(f"Reddit's rate-limit window is used up; it resets in {wait:.0f}s", url=url,
                                  retry_after=wait)
        try:
            # The JSON as sent, not PRAW objects: PRAW builds the whole listing at once (one child without
            # an id fails all of them) and fetches any field a child lacks with another request.
            body = self.reddit.request(method="GET", path=path, params=params)
        except Exception as exc:  # noqa: BLE001 - every library error becomes a collector error
            raise translate(exc, path, url) from exc
        listing = body.get("data") if isinstance(body, dict) and body.get("kind") == "Listing" else None
        if not isinstance(listing, dict) or not isinstance(listing.get("children"), list):
            raise BadPayload(f"Reddit sent {type(body).__name__} where a listing was expected for {path}", url=url)
        return things.Listing(listing["children"], listing.get("after") if isinstance(listing.get("after"), str) else None)

    # -- listings -------------------------------------------------------------

    def _forward(self, path: str, state: dict[str, Any] | None, notes: list[str]) -> tuple[list[Any], dict[str, Any], int]:
        """New items of a newest-first listing after state["newest"], oldest first."""
        limit = self.settings.page_limit
        state = dict(state or {})
        if not state.get("newest"):
            items = self._get(path, {"limit": limit}).children
            return list(reversed(items)), self._newest(items, state), len(items)
        collected: list[Any] = []
        reads = 0
        before = state["newest"]
        for page in range(self.settings.max_pages):
            items = self._get(path, {"limit": limit, "before": before}).children
            reads += len(items)
            if not items and page == 0:
                # The cursor's post may be gone (deleted or removed): `before` then finds nothing.
                latest = self._get(path, {"limit": limit}).children
                reads += len(latest)
                since = float(state.get("newest_utc", 0))
                items = [i for i in latest if (things.created_of(i) or since + 1) > since and things.fullname_of(i) != before]
                if items:
                    notes.append(f"{path}: the last post seen is gone; read the newest page back to its time")
                collected = list(reversed(items)) + collected
                break
            collected.extend(reversed(items))  # each page newer than the one before
            names = [n for n in map(things.fullname_of, items) if n]
            if len(items) < limit or not names:
                break
            before = names[0]
        else:
            notes.append(f"{path}: read {self.settings.max_pages} full pages; the rest follows on the next poll")
        return collected, self._newest(list(reversed(collected)), state), reads

    @staticmethod
    def _newest(items_newest_first: list[Any], state: dict[str, Any]) -> dict[str, Any]:
        dated = [(t, n) for i in items_newest_first if (t := things.created_of(i)) is not None and (n := things.fullname_of(i))]
        if not dated:
            return state
        newest_utc, newest = max(dated)
        return {"newest": newest, "newest_utc": newest_utc}

    def _search(self, query: str, state: dict[str, Any] | None, notes: list[str]) -> tuple[list[Any], dict[str, Any], int]:
        state = dict(state or {})
        newest_utc = state.get("newest_utc")
        seen = list(state.get("seen", []))
        seen_set = set(seen)
        params = {"q": query, "sort": "new", "t": "all", "restrict_sr": False, "limit": self.settings.page_limit,
                  "type": "link"}
        found: list[Any] = []
        reads = 0
        pages = 1 if newest_utc is None else self.settings.max_pages
        for _page in range(pages):
            listing = self._get("r/all/search/", params)  # the path PRAW uses
            reads += len(listing.children)
            reached = False
            for item in listing.children:
                created = things.created_of(item)
                if things.fullname_of(item) in seen_set or (newest_utc is not None and created is not None
                                                   and created < float(newest_utc)):
                    reached = True
                    continue
                found.append(item)
            if reached or not listing.after or newest_utc is None:
                break
            params = dict(params, after=listing.after)
        else:
            notes.append(f"search {query!r}: stopped after {self.settings.max_pages} pages before reaching the last post seen")
        seen.extend(n for n in map(things.fullname_of, found) if n)
        times_found = [t for t in map(things.created_of, found) if t is not None]
        if times_found:
            top = max([float(newest_utc or 0.0)] + times_found)
        else:  # nothing on the first poll: start from now, not from the beginning of time
            top = float(newest_utc) if newest_utc is not None else time.time()
        return list(reversed(found)), {"newest_utc": top, "seen": seen[-SEEN_MAX:]}, reads

    # -- items to mentions ----------------------------------------------------

    def _mention(self, post: things.Thing, *, reply_to_own: bool = False, terms: tuple[str, ...]) -> Mention:
        extra: dict[str, Any] = {"subreddit": post.subreddit, "fullname": post.fullname, "kind": post.kind_name}
        if post.kind == "t1":
            extra.update(link_id=post.link_id, parent_id=post.parent_id)
        if post.link_url is not None:
            extra["link_url"] = post.link_url
        if reply_to_own:
            extra["reply_to_own"] = True
        return Mention(
            platform=PLATFORM, source=self.name, external_id=post.fullname, url=post.url,
            author=post.author, author_id=post.author_id, title=post.title,
            body=post.body, posted_at=post.posted_at,
            thread_id=post.fullname if post.kind == "t3" else post.link_id, parent_id=post.parent_id,
            matched_terms=terms, extra=extra,
        )

    def _terms(self, post: things.Thing) -> tuple[str, ...]:
        return self.matcher.match(post.title, post.body) if post.kind == "t3" else self.matcher.match(post.body)

    def _answers_to_us(self, comments: list[things.Thing]) -> set[str]:
        """Fullnames of the comments whose parent was written by one of our accounts."""
        parents = sorted({c.parent_id for c in comments if c.parent_id and things.FULLNAME.fullmatch(c.parent_id)})
        if not parents or not self.own:
            return set()
        authors: dict[str, str] = {}
        for start in range(0, len(parents), 100):
            chunk = parents[start:start + 100]
            for thing in self._get("api/info", {"id": ",".join(chunk)}).children:
                data = thing.get("data") if isinstance(thing, dict) else None
                name = things.fullname_of(thing)
                if name and isinstance(data, dict):
                    authors[name] = str(data.get("author") or "").casefold()
        return {c.fullname for c in comments if authors.get(c.parent_id or "") in self.own}

    def _to_mentions(self, items: list[Any], notes: list[str]) -> tuple[list[Mention], list[SetAside]]:
        posts, aside = clean.guarded_items(items, things.read_post, platform=PLATFORM, source=self.name, describe=things.fullname_of)
        out: list[Mention] = []
        unmatched_comments = []
        for post in posts:
            if post.author.casefold() in self.own:
                continue
            terms = self._terms(post)
            if terms:
                out.append(self._mention(post, terms=terms))
            elif post.kind == "t1":
                unmatched_comments.append(post)
        answers = self._answers_to_us(unmatched_comments)
        out.extend(self._mention(c, reply_to_own=True, terms=()) for c in unmatched_comments if c.fullname in answers)
        kept = {m.external_id for m in out}
        notes.extend(p.note for p in posts if p.note and p.fullname in kept)
        return out, aside

    # -- poll -----------------------------------------------------------------

    @collector_boundary("Reddit")
    def poll(self, cursor: dict[str, Any] | None, *, read_budget: int | None = None) -> PollResult:
        old = (cursor or {}).get("listings", {})
        listings: dict[str, Any] = {}
        notes: list[str] = []
        items: dict[str, Any] = {}
        reads = 0
        for entry in self.settings.subreddits:
            sub, _, only = entry.strip().removeprefix("/").removeprefix("r/").lower().partition("/")
            kinds = [only.strip("/")] if only.strip("/") in ("new", "comments") else ["new", "comments"]
            for kind in kinds:  # Reddit ignores case; the cursor key must too
                path = f"r/{sub}/{kind}"
                found, listings[path], n = self._forward(path, old.get(path), notes)
                reads += n
                items.update((things.fullname_of(i) or f"unnamed-{id(i)}", i) for i in found)
        for query in self.settings.search:
            key = f"search:{query}"
            found, listings[key], n = self._search(query, old.get(key), notes)
            reads += n
            for i in found:
                items.setdefault(things.fullname_of(i) or f"unnamed-{id(i)}", i)
        mentions, aside = self._to_mentions(list(items.values()), notes)
        mentions.sort(key=lambda m: m.posted_at)
        return PollResult(mentions=mentions, cursor={"listings": listings}, reads=reads, notes=notes, set_aside=aside)

    def close(self) -> None:
        session = getattr(self.reddit._core, "_requestor", None)
        if session is not None and hasattr(session, "close"):
            session.close()
