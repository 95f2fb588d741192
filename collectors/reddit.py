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

Rate limits: prawcore sleeps to spread requests over Reddit's window; when
the window is used up it would sleep until the reset, so the collector raises
`RateLimited` with the reset time instead and lets other sources run.

Cursor: ``{"listings": {"r/acme/new": {"newest": "t3_abc", "newest_utc": 1.7e9},
"search:acme": {"newest_utc": 1.7e9, "seen": ["t3_..."]}}}``. The first poll
ever reads the newest page of each listing only.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any, ClassVar

import praw
import prawcore
from praw.exceptions import PRAWException, RedditAPIException
from praw.models import Comment, Submission

from collectors.base import (
    AuthFailed, BadPayload, Mention, NotConfigured, PollResult, RateLimited, TryLater, collector_boundary,
)
from collectors.match import TermMatcher

PLATFORM = "reddit"
SITE = "https://www.reddit.com"
SEEN_MAX = 300
BLOCKING_WAIT = 10.0  # prawcore may sleep this long between two requests; beyond it we give the turn back


def make_reddit(settings: Any, env: dict[str, str], *, session: Any = None) -> praw.Reddit:
    """A PRAW client from the source's settings and environment (read-only without user credentials).
    `session`: the requests.Session PRAW sends through (the publisher passes one with a deadline)."""
    client_id = env.get(settings.client_id_env)
    secret = env.get(settings.client_secret_env)
    if not client_id or not secret:
        missing = [n for n, v in ((settings.client_id_env, client_id), (settings.client_secret_env, secret)) if not v]
        raise NotConfigured(f"{settings.name}: environment variable(s) {', '.join(missing)} (Reddit app credentials) not set")
    kwargs: dict[str, Any] = {"client_id": client_id, "client_secret": secret, "user_agent": settings.user_agent,
                              "check_for_async": False, "check_for_updates": False}
    username, password = env.get(settings.username_env), env.get(settings.password_env)
    if username and password:
        kwargs.update(username=username, password=password)
    if settings.base_url:
        kwargs.update(oauth_url=settings.base_url.rstrip("/"), reddit_url=settings.base_url.rstrip("/"))
    if session is not None:
        kwargs["requestor_kwargs"] = {"session": session}
    reddit = praw.Reddit(**kwargs)
    if not (username and password):
        reddit.read_only = True
    return reddit


def ratelimit_wait(message: str) -> float | None:
    """Seconds from a Reddit RATELIMIT message ("Take a break for 9 minutes before trying again.")."""
    import re

    match = re.search(r"(\d+)\s*(millisecond|second|minute|hour)s?", message or "", re.I)
    if not match:
        return None
    n, unit = int(match.group(1)), match.group(2).lower()
    return n * {"millisecond": 0.001, "second": 1, "minute": 60, "hour": 3600}[unit]


def translate(exc: Exception, what: str, url: str) -> Exception:
    """The collector error for a PRAW / prawcore exception (also for publishers that post with PRAW)."""
    if isinstance(exc, prawcore.exceptions.TooManyRequests):
        wait = float(exc.retry_after) if exc.retry_after else None
        when = f"; it asked us to wait {wait:.0f}s" if wait is not None else ""
        return RateLimited(f"Reddit rate-limited us (HTTP 429) reading {what}{when}", url=exc.response.url or url,
                           retry_after=wait)
    if isinstance(exc, RedditAPIException):
        for item in exc.items:
            if item.error_type == "RATELIMIT":
                return RateLimited(f"Reddit RATELIMIT: {item.message}", url=url, retry_after=ratelimit_wait(item.message))
        return TryLater(f"Reddit refused {what}: {exc}", url=url)
    if isinstance(exc, prawcore.exceptions.BadJSON):
        return BadPayload(f"Reddit sent something that is not JSON for {what}", url=exc.response.url or url)
    if isinstance(exc, prawcore.exceptions.OAuthException):
        return AuthFailed(f"Reddit refused our credentials ({exc.error}: {exc.description or 'no detail'})", url=url)
    if isinstance(exc, prawcore.exceptions.ResponseException):
        status = exc.response.status_code
        rurl = exc.response.url or url
        if status == 401:
            return AuthFailed("Reddit refused the app's client id/secret (HTTP 401)", url=rurl)
        if status == 403:
            return AuthFailed(f"Reddit forbids reading {what} (HTTP 403: private, quarantined or banned)", url=rurl)
        if isinstance(exc, prawcore.exceptions.Redirect) or status in (302, 404):
            return TryLater(f"{what} does not exist on Reddit: check the config", url=rurl, retry_after=3600)
        if status == 429:
            return RateLimited(f"Reddit rate-limited us (HTTP 429) reading {what}", url=rurl)
        return TryLater(f"Reddit answered HTTP {status} reading {what}", url=rurl)
    if isinstance(exc, prawcore.exceptions.RequestException):
        return TryLater(f"Reddit could not be reached reading {what}: {exc.original_exception}", url=url)
    if isinstance(exc, (PRAWException, prawcore.exceptions.PrawcoreException)):
        return TryLater(f"Reddit error reading {what}: {exc}", url=url)
    return BadPayload(f"Reddit sent an unexpected listing for {what}: {type(exc).__name__}: {exc}", url=url)


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
            listing = self.reddit.get(path, params=params)
        except Exception as exc:  # noqa: BLE001 - every library error becomes a collector error
            raise translate(exc, path, url) from exc
        if not hasattr(listing, "children"):
            raise BadPayload(f"Reddit sent {type(listing).__name__} where a listing was expected for {path}", url=url)
        return listing

    # -- listings -------------------------------------------------------------

    def _forward(self, path: str, state: dict[str, Any] | None, notes: list[str]) -> tuple[list[Any], dict[str, Any], int]:
        """New items of a newest-first listing after state["newest"], oldest first."""
        limit = self.settings.page_limit
        state = dict(state or {})
        if not state.get("newest"):
            listing = self._get(path, {"limit": limit})
            items = list(listing.children)
            new_state = self._newest(items, state)
            return list(reversed(items)), new_state, len(items)
        collected: list[Any] = []
        reads = 0
        before = state["newest"]
        for page in range(self.settings.max_pages):
            items = list(self._get(path, {"limit": limit, "before": before}).children)
            reads += len(items)
            if not items and page == 0:
                # The cursor's post may be gone (deleted or removed): `before` then finds nothing.
                latest = list(self._get(path, {"limit": limit}).children)
                reads += len(latest)
                items = [i for i in latest if i.created_utc > float(state.get("newest_utc", 0)) and i.fullname != before]
                if items:
                    notes.append(f"{path}: the last post seen is gone; read the newest page back to its time")
                collected = list(reversed(items)) + collected
                break
            collected.extend(reversed(items))  # each page newer than the one before
            if len(items) < limit:
                break
            before = items[0].fullname
        else:
            notes.append(f"{path}: read {self.settings.max_pages} full pages; the rest follows on the next poll")
        return collected, self._newest(list(reversed(collected)), state), reads

    @staticmethod
    def _newest(items_newest_first: list[Any], state: dict[str, Any]) -> dict[str, Any]:
        if not items_newest_first:
            return state
        top = max(items_newest_first, key=lambda i: i.created_utc)
        return {"newest": top.fullname, "newest_utc": top.created_utc}

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
            items = list(listing.children)
            reads += len(items)
            reached = False
            for item in items:
                if item.fullname in seen_set or (newest_utc is not None and item.created_utc < float(newest_utc)):
                    reached = True
                    continue
                found.append(item)
            if reached or not listing.after or newest_utc is None:
                break
            params = dict(params, after=listing.after)
        else:
            notes.append(f"search {query!r}: stopped after {self.settings.max_pages} pages before reaching the last post seen")
        for item in found:
            seen.append(item.fullname)
        if found:
            top = max([float(newest_utc or 0.0)] + [float(i.created_utc) for i in found])
        else:  # nothing on the first poll: start from now, not from the beginning of time
            top = float(newest_utc) if newest_utc is not None else time.time()
        return list(reversed(found)), {"newest_utc": top, "seen": seen[-SEEN_MAX:]}, reads

    # -- items to mentions ----------------------------------------------------

    @staticmethod
    def _field(item: Any, name: str, default: Any = None) -> Any:
        """A field the listing sent, without PRAW's lazy fetch of the whole object when it is absent."""
        return vars(item).get(name, default)

    def _author(self, item: Any) -> str:
        return item.author.name if item.author is not None else "[deleted]"

    def _mention(self, item: Any, *, reply_to_own: bool = False, terms: tuple[str, ...] | None = None) -> Mention:
        sub = item.subreddit.display_name
        extra: dict[str, Any] = {"subreddit": sub, "fullname": item.fullname}
        if isinstance(item, Submission):
            title, body = item.title, self._field(item, "selftext") or ""
            thread, parent = item.fullname, None
            if self._field(item, "is_self") is False:
                extra["link_url"] = self._field(item, "url")
            kind = "submission"
        else:
            title = self._field(item, "link_title") or ""
            body = item.body
            thread, parent = item.link_id, item.parent_id
            extra.update(link_id=item.link_id, parent_id=item.parent_id)
            kind = "comment"
        extra["kind"] = kind
        if reply_to_own:
            extra["reply_to_own"] = True
        author = self._author(item)
        author_id = self._field(item, "author_fullname")
        return Mention(
            platform=PLATFORM, source=self.name, external_id=item.fullname, url=SITE + item.permalink,
            author=author, author_id=author_id, title=title, body=body,
            posted_at=datetime.fromtimestamp(float(item.created_utc), timezone.utc),
            thread_id=thread, parent_id=parent,
            matched_terms=terms if terms is not None else self._terms(item), extra=extra,
        )

    def _terms(self, item: Any) -> tuple[str, ...]:
        if isinstance(item, Submission):
            return self.matcher.match(item.title, self._field(item, "selftext") or "")
        return self.matcher.match(item.body)

    def _answers_to_us(self, comments: list[Any]) -> set[str]:
        """Fullnames of the comments whose parent was written by one of our accounts."""
        parents = sorted({c.parent_id for c in comments})
        if not parents or not self.own:
            return set()
        authors: dict[str, str] = {}
        for start in range(0, len(parents), 100):
            chunk = parents[start:start + 100]
            for thing in self._get("api/info", {"id": ",".join(chunk)}).children:
                authors[thing.fullname] = self._author(thing).casefold()
        return {c.fullname for c in comments if authors.get(c.parent_id) in self.own}

    def _to_mentions(self, items: list[Any]) -> list[Mention]:
        out: list[Mention] = []
        unmatched_comments = []
        for item in items:
            if not isinstance(item, (Submission, Comment)):
                continue
            if self._author(item).casefold() in self.own:
                continue
            terms = self._terms(item)
            if terms:
                out.append(self._mention(item, terms=terms))
            elif isinstance(item, Comment):
                unmatched_comments.append(item)
        answers = self._answers_to_us(unmatched_comments)
        out.extend(self._mention(c, reply_to_own=True, terms=()) for c in unmatched_comments if c.fullname in answers)
        return out

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
                items.update((i.fullname, i) for i in found)
        for query in self.settings.search:
            key = f"search:{query}"
            found, listings[key], n = self._search(query, old.get(key), notes)
            reads += n
            for i in found:
                items.setdefault(i.fullname, i)
        try:
            mentions = self._to_mentions(list(items.values()))
        except (AttributeError, TypeError, ValueError) as exc:
            raise BadPayload(f"Reddit sent a post we could not read: {exc}", url=self.api) from exc
        mentions.sort(key=lambda m: m.posted_at)
        return PollResult(mentions=mentions, cursor={"listings": listings}, reads=reads, notes=notes)

    def close(self) -> None:
        session = getattr(self.reddit._core, "_requestor", None)
        if session is not None and hasattr(session, "close"):
            session.close()
