"""HTML forums of any software, read from their pages with CSS selectors (httpx + beautifulsoup4).

This module fetches the pages and keeps the cursor; page.py reads a page into posts (selectors.py: what
a selector reads, seen.py: how a re-read post is recognised).

A forum source lists the thread (or listing) pages to read and names a preset
(phpBB, vBulletin 3/4/5, XenForo 1/2, NodeBB, Discourse's crawler view;
see presets.py) or its own selectors. From each configured page the
collector follows the "next page" link up to `max_pages` pages, so a thread
that grew by several pages since the last poll is read to its end; the cursor
remembers the last page reached and starts there next time.

Every request stays on the configured page's site: a redirect elsewhere fails the poll with the
reason, and a next-page link to another site ends the chain with a note (collectors/net/http.py).

Politeness: robots.txt is obeyed (disallowed pages are skipped with a note,
its Crawl-delay is waited between requests to the same host), every request
is conditional (ETag / If-Modified-Since), and a 429 or 503 with Retry-After
stops the poll with `RateLimited`. The page's charset comes from the header,
a BOM or its <meta>; a declared latin-1 is read as windows-1252, as browsers do.

Cursor::

    {"pages": {"<configured url>": {"resume": "<url of the last page reached>",
                                     "etag": ..., "last_modified": ...,
                                     "seen": [["<external id>", "<author digest>", <epoch>], ...]}}}

`seen` keeps the last `SEEN_PER_PAGE` posts per configured page, enough to
recognise a re-read page: each by its id, author and time (a post set aside,
or one remembered by an older Hearken, by its id alone). A seen id whose post
now has another author and another time is another post that was given the
id (the forum was restored from a backup and numbers again): it is read as
new, and the store keeps it apart from the post it replaced
(collectors/identity.py). On the first poll ever, posts of the pages passed
on the way are only remembered: mentions come from the last page reached (the
newest), so Hearken does not backfill years of a thread.

External ids are "<host>#<post id>" where the forum numbers posts across the
site (phpBB, vBulletin, XenForo), or "<thread url>#<n>" where it numbers them
per thread (Discourse). `thread_id` is the configured page's URL.

One post that cannot be read (no body, no plausible time: collectors/times.py)
is set aside with its HTML and the reason, and remembered as seen like the
others; the rest of the page is kept. Only when not one of several posts on a
page can be read is the page a failure (the layout changed: fix the selectors
and the posts are read then). A permalink that is not http(s) (`javascript:`),
or that leads off the site the page was read from (an absolute link elsewhere,
a `<base href>` or canonical link to another host), is never stored: the
page's address stands in for it, with a note.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx

from collectors.base import Mention, PollResult, SetAside, TryLater, collector_boundary
from collectors.forum.page import PLATFORM, PageReader
from collectors.forum.seen import Seen
from collectors.match import TermMatcher
from collectors.net import http
from collectors.redact import site

SEEN_PER_PAGE = 300


class ForumCollector:
    platform: ClassVar[str] = PLATFORM

    def __init__(self, settings: Any, *, matcher: TermMatcher, own_accounts: list[str], env: dict[str, str],
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.name = settings.name
        self.reader = PageReader(settings, matcher=matcher, own_accounts=own_accounts)
        self.client = http.make_client(settings.user_agent, headers={"Accept": "text/html,application/xhtml+xml"},
                                       limits=http.Limits.of(settings))
        self.robots = http.Robots(self.client, settings.user_agent, clock=clock) if settings.respect_robots else None
        self.sleep = sleep
        self.clock = clock
        self._last_request: dict[str, float] = {}

    # -- fetching -----------------------------------------------------------

    def _robots_allow(self, url: str) -> bool:
        """robots.txt's word on `url`. When the forum's server cannot be reached at all, the failure says so,
        and not that robots.txt is the trouble: a robots.txt answering an error keeps the robots wording."""
        try:
            return self.robots is None or self.robots.allowed(url)
        except TryLater as exc:
            cause = exc.__cause__
            while cause is not None and not isinstance(cause, httpx.TransportError):
                cause = cause.__cause__
            if cause is None:
                raise
            parts = urlsplit(url)
            host = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else parts.hostname
            port = parts.port or (443 if parts.scheme == "https" else 80)
            reason = str(cause) or type(cause).__name__
            raise TryLater(f"the forum at {host}:{port} could not be reached ({reason}); nothing was read "
                                "from it this poll", url=url) from exc

    def _wait_for_host(self, url: str, notes: list[str], fetched: dict[str, int]) -> bool:
        """Wait out robots.txt's Crawl-delay for url's host; False if the page must wait for a later poll.

        A delay up to http.MAX_CRAWL_DELAY is slept between requests. A longer one would hold the
        runner for minutes, so such a host gets one request per poll, and none while its delay runs.
        """
        if self.robots is None:
            return True
        delay = self.robots.crawl_delay(url)
        if delay <= 0:
            return True
        host = site(url)
        last = self._last_request.get(host)
        remaining = 0.0 if last is None else delay - (self.clock() - last)
        if delay > http.MAX_CRAWL_DELAY:
            if fetched.get(host) or remaining > 0:
                notes.append(f"robots.txt of {host} asks {delay:.0f}s between requests: "
                             f"{url} waits for a later poll")
                return False
            return True
        if remaining > 0:
            self.sleep(remaining)
        return True

    def _fetch(self, url: str, validators: http.Validators | None):
        host = site(url)
        try:
            response = http.get(self.client, url, what=f"forum {host}", headers=validators.headers() if validators else None)
        finally:
            self._last_request[host] = self.clock()
        return response

    # -- polling ------------------------------------------------------------

    @collector_boundary("The forum")
    def poll(self, cursor: dict[str, Any] | None, *, read_budget: int | None = None) -> PollResult:
        old_pages: dict[str, Any] = (cursor or {}).get("pages", {})
        new_pages: dict[str, Any] = {}
        mentions: list[Mention] = []
        set_aside: list[SetAside] = []
        notes: list[str] = []
        reads = 0
        fetched: dict[str, int] = {}
        for configured in (str(u) for u in self.settings.pages):
            state = old_pages.get(configured) or {}
            first_poll = not state
            seen = Seen(state.get("seen", []))
            url = state.get("resume") or configured
            if http.off_origin(configured, url):  # a cursor written before links were kept on their site
                url = configured
            validators = http.Validators.from_cursor(state)
            new_state = dict(state)
            pending: list[list[dict[str, Any]]] = []
            last_url = url
            unfetched_next: str | None = None  # a next page found but left for a later poll
            for page_no in range(self.settings.max_pages):
                if not self._robots_allow(url):
                    notes.append(f"robots.txt disallows {url} for {self.settings.user_agent!r}: skipped")
                    break
                if not self._wait_for_host(url, notes, fetched):
                    unfetched_next = url if page_no else None
                    break
                response = self._fetch(url, validators if page_no == 0 else None)
                fetched[site(url)] = fetched.get(site(url), 0) + 1
                if response.status_code == 304:
                    break
                final = str(response.url)  # links resolve against where redirects led
                v = http.Validators.from_response(response)
                html = http.decode_html(response.content, response.headers, forced=self.settings.encoding)
                del response  # the page's bytes: only what was read from them is kept
                posts, nxt = self.reader.read(html, final, configured, notes)
                reads += len(posts)
                pending.append(posts)
                last_url = url
                new_state.pop("etag", None)
                new_state.pop("last_modified", None)
                new_state.update(v.to_cursor())
                if nxt is not None and (why := http.off_origin(configured, nxt)):
                    notes.append(f"{final}: the next-page link to {nxt} was not followed: {why}")
                    nxt = None
                if nxt is None:
                    break
                url = nxt
                validators = None
            else:
                unfetched_next = url
                notes.append(f"{configured}: read {self.settings.max_pages} pages and there are more; continuing next poll")
            if pending and first_poll:
                pending = [[dict(p, remember_only=True) for p in page] for page in pending[:-1]] + pending[-1:]
            for page in pending:
                for post in page:
                    if seen.knows(post):
                        continue
                    seen.add(post)
                    if post.get("remember_only"):
                        continue
                    if "aside" in post:
                        set_aside.append(post["aside"])
                    elif post["mention"] is not None:
                        mentions.append(post["mention"])
            new_state["resume"] = unfetched_next or last_url
            if unfetched_next:  # validators belong to the page last read, not to this one
                new_state.pop("etag", None)
                new_state.pop("last_modified", None)
            new_state["seen"] = seen.to_cursor(SEEN_PER_PAGE)
            new_pages[configured] = new_state
        mentions.sort(key=lambda m: m.posted_at)
        return PollResult(mentions=mentions, cursor={"pages": new_pages}, reads=reads, notes=notes, set_aside=set_aside)

    def close(self) -> None:
        self.client.close()
