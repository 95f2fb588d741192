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
(``/comments/<post>/_/<comment>/``) instead of costing the poll.

Rate limits: prawcore sleeps to spread requests over Reddit's window; when
the window is used up it would sleep until the reset, so the collector raises
`RateLimited` with the reset time instead and lets other sources run.

Cursor: ``{"listings": {"r/acme/new": {"newest": "t3_abc", "newest_utc": 1.7e9},
"search:acme": {"newest_utc": 1.7e9, "seen": ["t3_..."]}}}``. The first poll
ever reads the newest page of each listing only.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

import praw
import prawcore
from praw.exceptions import PRAWException, RedditAPIException

from collectors import clean, times
from collectors.base import (
    AuthFailed, BadPayload, Mention, NotConfigured, PollResult, RateLimited, SetAside, TryLater, collector_boundary,
)
from collectors.net.http import Limits
from collectors.match import TermMatcher
from collectors.net.sessions import BoundedSession, LimitExceeded, RedirectRefused

PLATFORM = "reddit"
SITE = "https://www.reddit.com"
SEEN_MAX = 300
BLOCKING_WAIT = 10.0  # prawcore may sleep this long between two requests; beyond it we give the turn back


class LenientJSONRequestor(prawcore.Requestor):
    """prawcore's requestor, its responses' JSON read as every collector reads it (collectors.clean.loads_json).

    A value nested 100,000 deep in one comment makes Python's json raise RecursionError, which prawcore
    does not catch: the whole listing would fail on every poll. Read this way it costs that value only.
    (PRAW documents requestor_class for wrapping the requestor like this.)
    """

    def request(self, *args: Any, **kwargs: Any):
        response = super().request(*args, **kwargs)
        response.json = lambda **_: clean.loads_json(response.content)  # type: ignore[method-assign]
        return response


def make_reddit(settings: Any, env: dict[str, str], *, session: Any = None) -> praw.Reddit:
    """A PRAW client from the source's settings and environment (read-only without user credentials).
    `session`: the requests.Session PRAW sends through (the publisher passes one with a deadline)."""
    client_id = env.get(settings.client_id_env)
    secret = env.get(settings.client_secret_env)
    if not client_id or not secret:
        missing = [n for n, v in ((settings.client_id_env, client_id), (settings.client_secret_env, secret)) if not v]
        raise NotConfigured(f"{settings.name}: environment variable(s) {', '.join(missing)} (Reddit app credentials) not set")
    kwargs: dict[str, Any] = {"client_id": client_id, "client_secret": secret, "user_agent": settings.user_agent,
                              "check_for_async": False, "check_for_updates": False,
                              "requestor_class": LenientJSONRequestor,
                              # every request bounded: deadline, byte cap, no redirect off Reddit
                              "requestor_kwargs": {"session": BoundedSession(Limits.of(settings))}}
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
    if isinstance(exc, prawcore.exceptions.RequestException) and \
            isinstance(exc.original_exception, (LimitExceeded, RedirectRefused)):
        return TryLater(f"Reddit, reading {what}: {exc.original_exception}", url=url)
    if isinstance(exc, prawcore.exceptions.RequestException):
        return TryLater(f"Reddit could not be reached reading {what}: {exc.original_exception}", url=url)
    if isinstance(exc, (PRAWException, prawcore.exceptions.PrawcoreException)):
        return TryLater(f"Reddit error reading {what}: {exc}", url=url)
    return BadPayload(f"Reddit sent an unexpected listing for {what}: {type(exc).__name__}: {exc}", url=url)


_FULLNAME = re.compile(r"t[1-6]_[0-9a-z]{1,13}")


@dataclass(frozen=True)
class _Listing:
    children: list[Any]
    after: str | None


@dataclass(frozen=True)
class _Post:
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


def _fullname(child: Any) -> str | None:
    """A listing child's fullname ("t3_abc"), or None when it has no usable one."""
    if not isinstance(child, dict) or not isinstance(child.get("data"), dict):
        return None
    data = child["data"]
    name = data.get("name")
    if not name and data.get("id") and child.get("kind"):
        name = f"{child['kind']}_{data['id']}"
    return name if isinstance(name, str) and _FULLNAME.fullmatch(name) else None


def _created(child: Any) -> float | None:
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
        return _Listing(listing["children"], listing.get("after") if isinstance(listing.get("after"), str) else None)

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
                items = [i for i in latest if (_created(i) or since + 1) > since and _fullname(i) != before]
                if items:
                    notes.append(f"{path}: the last post seen is gone; read the newest page back to its time")
                collected = list(reversed(items)) + collected
                break
            collected.extend(reversed(items))  # each page newer than the one before
            names = [n for n in map(_fullname, items) if n]
            if len(items) < limit or not names:
                break
            before = names[0]
        else:
            notes.append(f"{path}: read {self.settings.max_pages} full pages; the rest follows on the next poll")
        return collected, self._newest(list(reversed(collected)), state), reads

    @staticmethod
    def _newest(items_newest_first: list[Any], state: dict[str, Any]) -> dict[str, Any]:
        dated = [(t, n) for i in items_newest_first if (t := _created(i)) is not None and (n := _fullname(i))]
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
                created = _created(item)
                if _fullname(item) in seen_set or (newest_utc is not None and created is not None
                                                   and created < float(newest_utc)):
                    reached = True
                    continue
                found.append(item)
            if reached or not listing.after or newest_utc is None:
                break
            params = dict(params, after=listing.after)
        else:
            notes.append(f"search {query!r}: stopped after {self.settings.max_pages} pages before reaching the last post seen")
        seen.extend(n for n in map(_fullname, found) if n)
        times_found = [t for t in map(_created, found) if t is not None]
        if times_found:
            top = max([float(newest_utc or 0.0)] + times_found)
        else:  # nothing on the first poll: start from now, not from the beginning of time
            top = float(newest_utc) if newest_utc is not None else time.time()
        return list(reversed(found)), {"newest_utc": top, "seen": seen[-SEEN_MAX:]}, reads

    # -- items to mentions ----------------------------------------------------

    def _read(self, child: Any) -> _Post | None:
        """One listing child as a post; None for what is not a post (a "more" stub); raises when it is unreadable."""
        if not isinstance(child, dict) or not isinstance(child.get("data"), dict):
            raise ValueError("it is not a Reddit object ({kind, data})")
        kind, data = child.get("kind"), child["data"]
        if kind not in ("t1", "t3"):
            return None
        fullname = _fullname(child)
        if fullname is None:
            raise ValueError("no usable 'name' or 'id' field")
        posted_at = times.parse(data.get("created_utc"))
        author = data.get("author")
        author = "[deleted]" if author is None else str(author)
        sub = data.get("subreddit") or str(data.get("subreddit_name_prefixed") or "").removeprefix("r/")
        permalink, link_id = data.get("permalink"), data.get("link_id")
        if kind == "t1" and not (isinstance(link_id, str) and _FULLNAME.fullmatch(link_id)):
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
        return _Post(kind=kind, fullname=fullname, subreddit=str(sub), title=title, body=body, author=author,
                     author_id=data.get("author_fullname") if isinstance(data.get("author_fullname"), str) else None,
                     posted_at=posted_at, url=url, link_id=link_id if kind == "t1" else None,
                     parent_id=str(data.get("parent_id") or link_id) if kind == "t1" else None,
                     link_url=data.get("url") if kind == "t3" and data.get("is_self") is False else None, note=note)

    def _mention(self, post: _Post, *, reply_to_own: bool = False, terms: tuple[str, ...]) -> Mention:
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

    def _terms(self, post: _Post) -> tuple[str, ...]:
        return self.matcher.match(post.title, post.body) if post.kind == "t3" else self.matcher.match(post.body)

    def _answers_to_us(self, comments: list[_Post]) -> set[str]:
        """Fullnames of the comments whose parent was written by one of our accounts."""
        parents = sorted({c.parent_id for c in comments if c.parent_id and _FULLNAME.fullmatch(c.parent_id)})
        if not parents or not self.own:
            return set()
        authors: dict[str, str] = {}
        for start in range(0, len(parents), 100):
            chunk = parents[start:start + 100]
            for thing in self._get("api/info", {"id": ",".join(chunk)}).children:
                data = thing.get("data") if isinstance(thing, dict) else None
                name = _fullname(thing)
                if name and isinstance(data, dict):
                    authors[name] = str(data.get("author") or "").casefold()
        return {c.fullname for c in comments if authors.get(c.parent_id or "") in self.own}

    def _to_mentions(self, items: list[Any], notes: list[str]) -> tuple[list[Mention], list[SetAside]]:
        posts, aside = clean.guarded_items(items, self._read, platform=PLATFORM, source=self.name, describe=_fullname)
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
                items.update((_fullname(i) or f"unnamed-{id(i)}", i) for i in found)
        for query in self.settings.search:
            key = f"search:{query}"
            found, listings[key], n = self._search(query, old.get(key), notes)
            reads += n
            for i in found:
                items.setdefault(_fullname(i) or f"unnamed-{id(i)}", i)
        mentions, aside = self._to_mentions(list(items.values()), notes)
        mentions.sort(key=lambda m: m.posted_at)
        return PollResult(mentions=mentions, cursor={"listings": listings}, reads=reads, notes=notes, set_aside=aside)

    def close(self) -> None:
        session = getattr(self.reddit._core, "_requestor", None)
        if session is not None and hasattr(session, "close"):
            session.close()
