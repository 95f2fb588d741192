"""HTML forums of any software, read from their pages with CSS selectors (httpx + beautifulsoup4).

A forum source lists the thread (or listing) pages to read and names a preset
(phpBB, vBulletin 3/4, XenForo 1/2, Discourse's crawler view; see
presets.py) or its own selectors. From each configured page the
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

import copy
import dataclasses
import hashlib
import re
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import urljoin, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import httpx
from bs4 import Tag

from collectors import clean, times
from collectors.net import http
from collectors.base import BadPayload, Mention, NotConfigured, PollResult, SetAside, TryLater, collector_boundary
from collectors.forum.presets import DEFAULT_NEXT_PAGE, PRESETS
from collectors.forum.stream import PostStream
from collectors.forum.text import html_text, line_text
from collectors.identity import fingerprint, same_fingerprint
from collectors.match import TermMatcher
from collectors.redact import site, without_credentials

PLATFORM = "forum"
SEEN_PER_PAGE = 300

_TIME_ATTRS = ("data-time", "datetime", "content", "title")


class Spec:
    """One field's selector: alternatives of `css@attr`."""

    def __init__(self, text: str | None) -> None:
        self.text = text or ""
        self.alternatives: list[tuple[str, str | None]] = []
        for alt in self.text.split("||"):
            alt = alt.strip()
            if not alt:
                continue
            css, attr = alt, None
            at = alt.rfind("@")
            if at >= 0 and re.fullmatch(r"[\w:.-]+", alt[at + 1:]):
                css, attr = alt[:at].strip(), alt[at + 1:]
            self.alternatives.append((css, attr))

    def __bool__(self) -> bool:
        return bool(self.alternatives)

    def elements(self, scope: Tag) -> list[tuple[Tag, str | None]]:
        """Every element the first matching alternative finds, with its attribute name."""
        for css, attr in self.alternatives:
            found = [scope] if not css else scope.select(css)
            if attr:
                found = [el for el in found if el.get(attr) is not None]
            if found:
                return [(el, attr) for el in found]
        return []

    @staticmethod
    def value(el: Tag, attr: str | None) -> str:
        """What one found element says: its `attr`, else its text, on one line."""
        value = el.get(attr) if attr else line_text(el)
        if isinstance(value, list):
            value = " ".join(value)
        return " ".join(str(value).split())

    def values(self, scope: Tag) -> list[str]:
        return [v for el, attr in self.elements(scope) if (v := self.value(el, attr))]

    def first(self, scope: Tag) -> str | None:
        values = self.values(scope)
        return values[0] if values else None


def _read_time(el: Tag, attr: str | None, zone: ZoneInfo, formats: tuple[str, ...]) -> datetime:
    """The time an element gives: its `attr`, or else its time attributes and then its text, the first that reads."""
    candidates = [el.get(attr)] if attr else [el.get(a) for a in _TIME_ATTRS] + [el.get_text(" ", strip=True)]
    problems = []
    for value in candidates:
        if value:
            try:
                return times.parse(str(value), zone=zone, formats=formats)
            except times.BadTime as exc:
                problems.append(str(exc))
    if not problems:
        raise times.BadTime("the time element is empty")
    raise times.BadTime(problems[-1] if len(problems) == 1 else "; ".join(dict.fromkeys(problems)))


_POST_REFS = tuple(re.compile(p) for p in (
    r"[?&](?:p|pid|postid|post_id|id)=(\d+)",  # showthread.php?p=123, goto/post?id=123
    r"#post-?(\d+)\b", r"#p(\d+)\b",           # #post123, #post-123 (XenForo), #p123 (phpBB)
    r"/post/(\d+)", r"/node/(\d+)",            # NodeBB /post/123, vBulletin 5 /node/123
    r"\bpost:\s*(\d+)",                        # XenForo 2 data-source="post: 123"
))


def post_ref(value: str) -> str | None:
    """The post id a parent reference names: the value itself when it is a number, else the id in a link
    to the post (`?p=123#post123`, `/post/123`, `post: 123`, ...). None when it names no post."""
    value = value.strip()
    if value.isdigit():
        return value
    for pattern in _POST_REFS:
        match = pattern.search(value)
        if match:
            return match.group(1)
    return None


def same_site(url: str, page_url: str) -> bool:
    """Whether `url` is on the site `page_url` was read from: the same host name, "www." aside.

    A post's permalink is shown to staff as the post on the platform; one that leads to another site
    (written by whoever controls the page, or a post on it) would send them elsewhere.
    """
    def host(u: str) -> str:
        name = (urlsplit(u).hostname or "").lower()
        return name.removeprefix("www.")

    try:
        return host(url) == host(page_url) != ""
    except ValueError:
        return False


class _Seen:
    """The posts one configured page has shown, oldest first: an id, with its author and time where read."""

    def __init__(self, entries: Any) -> None:
        self.marks: dict[str, tuple[str, int] | None] = {}
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, str):
                self.marks[entry] = None
            elif isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], str):
                try:
                    self.marks[entry[0]] = (str(entry[1]), int(entry[2]))
                except (TypeError, ValueError):
                    self.marks[entry[0]] = None

    @staticmethod
    def _mark(post: dict[str, Any]) -> tuple[str, int] | None:
        return None if "aside" in post else fingerprint(post["author"], post["posted_at"])

    def knows(self, post: dict[str, Any]) -> bool:
        """Whether this post was seen before: its id, and (where both are known) its author and time."""
        if post["id"] not in self.marks:
            return False
        known, mark = self.marks[post["id"]], self._mark(post)
        if known is None or mark is None:
            if known is None and mark is not None:
                self.marks[post["id"]] = mark  # an id remembered alone: remember its post from now on
            return True
        return same_fingerprint(known, mark)

    def add(self, post: dict[str, Any]) -> None:
        self.marks.pop(post["id"], None)
        self.marks[post["id"]] = self._mark(post)

    def to_cursor(self, limit: int) -> list[Any]:
        return [key if mark is None else [key, *mark] for key, mark in list(self.marks.items())[-limit:]]


def _join(base: str, href: str) -> str | None:
    try:
        return urljoin(base, href)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return None


class ForumCollector:
    platform: ClassVar[str] = PLATFORM

    def __init__(self, settings: Any, *, matcher: TermMatcher, own_accounts: list[str], env: dict[str, str],
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.name = settings.name
        self.matcher = matcher
        self.own = {a.lstrip("@").casefold() for a in own_accounts}
        self._own_patterns = [re.compile(rf"(?<!\w){re.escape(a)}(?!\w)", re.I) for a in self.own]
        self.zone = ZoneInfo(settings.timezone)
        merged: dict[str, Any] = dict(PRESETS.get(settings.preset, {}))
        if settings.selectors is not None:
            merged.update({k: v for k, v in settings.selectors.model_dump().items() if v is not None})
        if not merged.get("post") or not merged.get("body"):
            raise NotConfigured(f"{self.name}: selectors need 'post' and 'body' (preset {settings.preset})")
        self.sel = {k: Spec(merged.get(k)) for k in ("post", "body", "author", "time", "permalink", "id", "title",
                                                "quote_author", "quote", "parent")}
        self.sel["next_page"] = Spec(merged.get("next_page") or DEFAULT_NEXT_PAGE)
        self.id_attr: str | None = merged.get("id_attr")
        self.id_scope: str = merged.get("id_scope") or "site"
        self.permalink_template: str | None = merged.get("permalink_template")
        formats = merged.get("time_format") or ()
        self.formats = tuple(formats) + times.FORUM_FORMATS
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

    # -- parsing ------------------------------------------------------------

    def _read_page(self, html: str, page_url: str, thread_url: str,
                   notes: list[str]) -> tuple[list[dict[str, Any]], str | None]:
        """The page's posts and its next page. A post is reduced as it is parsed (collectors/forum/stream.py)
        to what the seen list needs (id, author, time) and what it gives (a mention, or None), or, when it cannot
        be read, {"id", "aside"}."""
        found: list[list[tuple[Any, dict[str, Any]]]] = [[] for _ in self.sel["post"].alternatives]
        where: dict[str, str] = {}
        offsite: list[str] = []

        def on_post(page: PostStream, el: Tag, which: int) -> None:
            if not where:  # <base> and the canonical link are in the head, read before any post
                where.update(self._page_urls(page, page_url))
            index = sum(len(f) for f in found)
            try:
                post = self._post(el, index, where["base"], where["canonical"], page_url, thread_url, notes, offsite)
                record = {"id": post["id"], "author": post["author"], "posted_at": post["posted_at"],
                          "mention": self._mention(post, thread_url)}
            except Exception as exc:  # noqa: BLE001 - one odd post loses only itself
                record = self._unreadable(el, index, page_url, thread_url, exc)
            found[which].append(((el.sourceline or 0, el.sourcepos or 0), record))

        page = PostStream(html, post=self.sel["post"], on_post=on_post, value=Spec.value,
                          facts={"title": self.sel["title"], "next_page": self.sel["next_page"]})
        which = page.winner()
        if which is None:
            raise BadPayload(f"{self.name}: no post on the page matched {self.sel['post'].text!r} "
                             "(the forum's layout changed, or the page needs a login)", url=page_url)
        if offsite:
            notes.append(f"{page_url}: {len(offsite)} permalink(s) lead off {urlsplit(page_url).hostname} "
                         f"(the first: {clean.shown(offsite[0], 200)}); stored the page's address instead")
        posts = [record for _, record in sorted(found[which], key=lambda pair: pair[0])]
        if not any("aside" not in p for p in posts) and len(posts) > 1:
            # Not one of several posts readable: the layout changed. Fail the page (nothing is remembered
            # as seen), so the posts are read once the selectors are fixed.
            reasons = "; ".join(p["aside"].reason for p in posts[:3])
            raise BadPayload(f"{self.name}: {len(posts)} posts found but none readable: {reasons}", url=page_url)
        title = page.first("title") or ""
        for p in posts:
            if p.get("mention") is not None:
                p["mention"] = dataclasses.replace(p["mention"], title=title)
        base = where.get("base") or self._page_urls(page, page_url)["base"]
        return posts, self._next_page(page.first("next_page"), base, page_url)

    @staticmethod
    def _page_urls(soup: Tag, page_url: str) -> dict[str, str]:
        """What the page's links resolve against (its <base>) and its canonical address."""
        base_tag = soup.find("base", href=True)
        base = (_join(page_url, base_tag["href"]) if base_tag else None) or page_url
        canonical_tag = soup.find("link", rel="canonical", href=True)
        canonical = (_join(base, canonical_tag["href"]) if canonical_tag else None) or page_url
        return {"base": base, "canonical": canonical}

    def _post_id(self, el: Tag) -> str | None:
        raw_id = None
        if self.id_attr and el.get(self.id_attr):
            raw_id = str(el.get(self.id_attr))
        elif self.sel["id"]:
            raw_id = self.sel["id"].first(el)
        if not raw_id:
            return None
        digits = re.search(r"\d+", raw_id)
        return digits.group(0) if digits else clean.clean_text(raw_id, multiline=False)

    def _external_id(self, post_id: str, page_url: str, thread_url: str) -> str:
        if self.id_scope == "thread":
            parts = urlsplit(thread_url)
            return f"{site(thread_url)}{parts.path}" + (f"?{parts.query}" if parts.query else "") + f"#{post_id}"
        return f"{site(page_url)}#{post_id}"

    def _post(self, el: Tag, index: int, base: str, canonical: str, page_url: str, thread_url: str,
              notes: list[str], offsite: list[str]) -> dict[str, Any]:
        post_id = self._post_id(el)
        body_el = self.sel["body"].elements(el)
        if not body_el:
            raise ValueError(f"no body ({self.sel['body'].text!r} found nothing)")
        posted_at = self._time(el)
        body_tag, body_attr = body_el[0]
        body = str(body_tag.get(body_attr)) if body_attr else html_text(body_tag)
        own_words = body
        if self.sel["quote"] and not body_attr:
            trimmed = copy.copy(body_tag)
            for quote, _ in self.sel["quote"].elements(trimmed):
                if quote is not trimmed:
                    quote.decompose()
            own_words = html_text(trimmed)
        author = self.sel["author"].first(el) if self.sel["author"] else None
        link = self.sel["permalink"].first(el) if self.sel["permalink"] else None
        fallback = f"{page_url.split('#')[0]}#{post_id}" if post_id else page_url
        if link:
            url = clean.safe_link(_join(base, link))
            if url is None:
                notes.append(f"{page_url}: post {post_id or index + 1}'s permalink {clean.shown(link)} "
                             "is not an http(s) link; stored the page's address instead")
                url = fallback
        elif self.permalink_template and post_id:
            url = self.permalink_template.format(page=canonical.rstrip("/"), id=post_id)
        else:
            url = fallback
        if not same_site(url, page_url):  # a <base href>, a canonical link or a post's own link elsewhere
            offsite.append(url)
            url = fallback
        if post_id is None:
            post_id = hashlib.sha256(f"{author}|{posted_at.isoformat()}|{body[:500]}".encode("utf-8", "replace")).hexdigest()[:16]
        quoted = self.sel["quote_author"].values(el) if self.sel["quote_author"] else []
        parent = self._parent(el, post_id)
        return {"id": self._external_id(post_id, page_url, thread_url), "post_id": post_id, "url": url,
                "author": author or "", "body": body, "posted_at": posted_at, "quoted": quoted,
                "own_words": own_words,
                "parent": self._external_id(parent, page_url, thread_url) if parent else None}

    def _parent(self, el: Tag, post_id: str) -> str | None:
        """The id of the post this one answers or quotes, where the page says (the first such reference)."""
        if not self.sel["parent"]:
            return None
        for value in self.sel["parent"].values(el):
            ref = post_ref(value)
            if ref and ref != post_id:
                return ref
        return None

    def _time(self, el: Tag) -> datetime:
        """The post's time from the first time element that reads as a plausible one; BadTime says why not."""
        if not self.sel["time"]:
            raise times.BadTime("no time selector is configured")
        problems = []
        for t_el, attr in self.sel["time"].elements(el):
            try:
                return _read_time(t_el, attr, self.zone, self.formats)
            except times.BadTime as exc:
                problems.append(str(exc))
        if not problems:
            raise times.BadTime(f"no time ({self.sel['time'].text!r} found nothing)")
        raise times.BadTime("; ".join(problems[:2]))

    def _unreadable(self, el: Tag, index: int, page_url: str, thread_url: str, exc: Exception) -> dict[str, Any]:
        try:
            post_id = self._post_id(el)
        except Exception:  # noqa: BLE001
            post_id = None
        raw = str(el)
        key = post_id or "unreadable-" + hashlib.sha256(raw.encode("utf-8", "replace")).hexdigest()[:16]
        external_id = self._external_id(key, page_url, thread_url)
        why = str(exc) if isinstance(exc, (times.BadTime, ValueError)) else f"{type(exc).__name__}: {exc}"
        name = f"post {post_id if post_id and post_id.isdigit() else clean.shown(post_id)}" if post_id \
            else f"post {index + 1} on the page"
        return {"id": external_id, "aside": SetAside(
            platform=PLATFORM, source=self.name, reason=f"{self.name}: {name}: {why}", raw=clean.safe_raw(raw),
            external_id=external_id if post_id else None, url=page_url)}

    @staticmethod
    def _next_page(href: str | None, base: str, page_url: str) -> str | None:
        if not href or href.startswith("#"):
            return None
        nxt = clean.safe_link(_join(base, href))  # never javascript:, data:, file: ...
        if nxt is None:
            return None
        parts = urlsplit(nxt)
        nxt = urlunsplit((parts.scheme, parts.netloc, parts.path, parts.query, ""))
        return None if nxt == page_url else nxt

    def _mention(self, post: dict[str, Any], thread_url: str) -> Mention | None:
        if post["author"].casefold() in self.own:
            return None
        reply_to_own = any(p.search(q) for q in post["quoted"] for p in self._own_patterns)
        terms = self.matcher.match(post["own_words"])  # what the author wrote, not what they quoted
        if not terms and not reply_to_own:
            return None
        thread_url = without_credentials(thread_url)  # a private board's login stays in the config
        extra: dict[str, Any] = {"page": thread_url, "post_id": post["post_id"], "preset": self.settings.preset}
        if reply_to_own:
            extra["reply_to_own"] = True
        return Mention(
            platform=PLATFORM, source=self.name, external_id=post["id"], url=post["url"], author=post["author"],
            body=post["body"], posted_at=post["posted_at"], title="", thread_id=thread_url,
            parent_id=post["parent"], matched_terms=terms, extra=extra,
        )

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
            seen = _Seen(state.get("seen", []))
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
                posts, nxt = self._read_page(html, final, configured, notes)
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
