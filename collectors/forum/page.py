"""One forum page read into posts, with the selectors of a preset or a config (collect.py fetches the pages).

Each post becomes what the seen list needs (its external id, author, time) and what it gives: a `Mention`
when it names a term or answers one of our accounts, or a `SetAside` with its HTML and the reason when it
cannot be read. The page is parsed a post at a time (stream.py). Links resolve against the page's <base>;
a permalink that is not http(s), or leads off the site the page was read from, is replaced by the page's
address, with a note. Where a post names the post it quotes or answers (the `parent` selector), that
post's external id is the mention's parent, as the desk joins an answer to its case.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import re
from datetime import datetime
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

from bs4 import Tag

from collectors import clean, times
from collectors.base import BadPayload, Mention, NotConfigured, SetAside
from collectors.forum.presets import DEFAULT_NEXT_PAGE, PRESETS
from collectors.forum.selectors import Spec, post_ref, read_time
from collectors.forum.stream import PostStream
from collectors.forum.text import html_text
from collectors.match import TermMatcher
from collectors.redact import site, without_credentials

PLATFORM = "forum"
FIELDS = ("post", "body", "author", "time", "permalink", "id", "title", "quote_author", "quote", "parent")


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


def _join(base: str, href: str) -> str | None:
    try:
        return urljoin(base, href)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return None



class PageReader:
    """Reads one forum source's pages: its merged selectors (preset, then the config's own), its zone and
    time formats, and who it is (terms to match, our own accounts)."""

    def __init__(self, settings: Any, *, matcher: TermMatcher, own_accounts: list[str]) -> None:
        self.name = settings.name
        self.preset = settings.preset
        self.matcher = matcher
        self.own = {a.lstrip("@").casefold() for a in own_accounts}
        self._own_patterns = [re.compile(rf"(?<!\w){re.escape(a)}(?!\w)", re.I) for a in self.own]
        self.zone = ZoneInfo(settings.timezone)
        merged: dict[str, Any] = dict(PRESETS.get(settings.preset, {}))
        if settings.selectors is not None:
            merged.update({k: v for k, v in settings.selectors.model_dump().items() if v is not None})
        if not merged.get("post") or not merged.get("body"):
            raise NotConfigured(f"{self.name}: selectors need 'post' and 'body' (preset {settings.preset})")
        self.sel = {k: Spec(merged.get(k)) for k in FIELDS}
        self.sel["next_page"] = Spec(merged.get("next_page") or DEFAULT_NEXT_PAGE)
        self.id_attr: str | None = merged.get("id_attr")
        self.id_scope: str = merged.get("id_scope") or "site"
        self.permalink_template: str | None = merged.get("permalink_template")
        self.formats = tuple(merged.get("time_format") or ()) + times.FORUM_FORMATS

    def read(self, html: str, page_url: str, thread_url: str,
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
                return read_time(t_el, attr, self.zone, self.formats)
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
        extra: dict[str, Any] = {"page": thread_url, "post_id": post["post_id"], "preset": self.preset}
        if reply_to_own:
            extra["reply_to_own"] = True
        return Mention(
            platform=PLATFORM, source=self.name, external_id=post["id"], url=post["url"], author=post["author"],
            body=post["body"], posted_at=post["posted_at"], title="", thread_id=thread_url,
            parent_id=post["parent"], matched_terms=terms, extra=extra,
        )

