"""HTTP plumbing shared by the httpx collectors (Discourse, HTML forums).

- `check_response` turns a status code into the collector errors of base.py:
  429 and 503-with-Retry-After become `RateLimited` with the wait the server
  asked for; 401/403 become `AuthFailed`; other failures `TryLater`. Every
  error names the URL.
- `retry_after_seconds` reads `Retry-After` (seconds or an HTTP date) and the
  `X-RateLimit-Reset` family of headers.
- `Validators` keeps an ETag / Last-Modified pair for a conditional GET.
- `Robots` fetches and caches robots.txt per host (RFC 9309: a 4xx robots.txt
  allows everything, a 5xx or unreachable one allows nothing for now).
- `decode_html` picks a page's charset the way browsers do (header, BOM,
  <meta>), reading a declared latin-1 as windows-1252.
"""

from __future__ import annotations

import codecs
import re
import time
import urllib.robotparser
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from collectors.base import AuthFailed, BadPayload, RateLimited, TryLater
from collectors.clean import loads_json

DEFAULT_TIMEOUT = 20.0
USER_AGENT = "hearken/0.1 (+https://github.com/hearken/hearken)"
MAX_CRAWL_DELAY = 30.0  # a robots.txt Crawl-delay above this gets one page per poll instead of a long sleep


def make_client(user_agent: str, *, timeout: float = DEFAULT_TIMEOUT, headers: Mapping[str, str] | None = None) -> httpx.Client:
    """An httpx client with our user agent, a timeout and redirects followed."""
    all_headers = {"User-Agent": user_agent}
    all_headers.update(headers or {})
    return httpx.Client(timeout=timeout, headers=all_headers, follow_redirects=True)


def retry_after_seconds(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds the server asked us to wait, from Retry-After or rate-limit reset headers; None if it did not say."""
    now = time.time() if now is None else now
    value = headers.get("retry-after")
    if value:
        value = value.strip()
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                when = parsedate_to_datetime(value)
            except (TypeError, ValueError):
                when = None
            if when is not None:
                if when.tzinfo is None:
                    when = when.replace(tzinfo=timezone.utc)
                return max(0.0, when.timestamp() - now)
    for name in ("x-ratelimit-reset", "x-rate-limit-reset", "ratelimit-reset"):
        value = headers.get(name)
        if not value:
            continue
        try:
            reset = float(value)
        except ValueError:
            continue
        # Reddit sends seconds until reset; X and GitHub-style APIs send an epoch time.
        return max(0.0, reset - now) if reset > 1e9 else max(0.0, reset)
    return None


def _wait_text(seconds: float | None) -> str:
    return f"; the server asked us to wait {seconds:.0f}s" if seconds is not None else ""


def check_response(response: httpx.Response, *, what: str) -> None:
    """Raise the collector error for a failed response; return quietly on 2xx/304.

    `what` names the source in the reason ("Discourse forum.example.com").
    """
    status = response.status_code
    if 200 <= status < 300 or status == 304:
        return
    url = str(response.request.url)
    wait = retry_after_seconds(response.headers)
    phrase = response.reason_phrase or ""
    if status == 429 or (status == 503 and "retry-after" in response.headers):
        raise RateLimited(f"{what} rate-limited us (HTTP {status} {phrase}){_wait_text(wait)}".replace("  ", " "),
                          url=url, retry_after=wait)
    if status in (401, 403):
        raise AuthFailed(f"{what} refused access (HTTP {status} {phrase}): check the API key and username", url=url)
    if status == 404:
        raise TryLater(f"{what} has no such page (HTTP 404): check the address in the config", url=url)
    raise TryLater(f"{what} answered HTTP {status} {phrase}".rstrip(), url=url, retry_after=wait)


def get(client: httpx.Client, url: str, *, what: str, headers: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None) -> httpx.Response:
    """GET `url`; network failures become `TryLater` naming the URL, HTTP failures as `check_response`."""
    try:
        response = client.get(url, headers=dict(headers or {}), params=params)
    except httpx.TimeoutException as exc:
        raise TryLater(f"{what} did not answer in time ({type(exc).__name__})", url=url) from exc
    except httpx.HTTPError as exc:
        raise TryLater(f"{what} could not be reached: {exc}", url=url) from exc
    check_response(response, what=what)
    return response


def parse_json(response: httpx.Response, *, what: str) -> Any:
    """The response body as JSON, or `BadPayload` saying what was wrong and where."""
    url = str(response.request.url)
    try:
        return loads_json(response.content)  # bad UTF-8 and absurd nesting cost one item, not the page
    except ValueError as exc:
        ctype = response.headers.get("content-type", "no content type")
        raise BadPayload(f"{what} sent something that is not JSON ({ctype}): {exc}", url=url) from exc


@dataclass(slots=True)
class Validators:
    """ETag / Last-Modified of one URL, kept in a cursor between polls."""

    etag: str | None = None
    last_modified: str | None = None

    @classmethod
    def from_cursor(cls, data: Mapping[str, Any] | None) -> Validators:
        data = data or {}
        return cls(etag=data.get("etag"), last_modified=data.get("last_modified"))

    @classmethod
    def from_response(cls, response: httpx.Response) -> Validators:
        return cls(etag=response.headers.get("etag"), last_modified=response.headers.get("last-modified"))

    def headers(self) -> dict[str, str]:
        out = {}
        if self.etag:
            out["If-None-Match"] = self.etag
        if self.last_modified:
            out["If-Modified-Since"] = self.last_modified
        return out

    def to_cursor(self) -> dict[str, str]:
        return {k: v for k, v in (("etag", self.etag), ("last_modified", self.last_modified)) if v}


class Robots:
    """robots.txt per host, fetched once a day, with each host's crawl delay."""

    TTL = 24 * 3600.0

    def __init__(self, client: httpx.Client, user_agent: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.agent = user_agent
        self.clock = clock
        self._cache: dict[str, tuple[float, urllib.robotparser.RobotFileParser | None, bool]] = {}
        self._fractional: dict[str, float] = {}

    def _load(self, origin: str) -> tuple[urllib.robotparser.RobotFileParser | None, bool]:
        """(parser, allow_all). parser None with allow_all False means: nothing may be fetched now."""
        cached = self._cache.get(origin)
        if cached and self.clock() - cached[0] < self.TTL:
            return cached[1], cached[2]
        url = origin + "/robots.txt"
        try:
            response = self.client.get(url)
        except httpx.HTTPError as exc:
            raise TryLater(f"robots.txt could not be read ({exc}); not crawling until it can", url=url) from exc
        if response.status_code == 429:
            wait = retry_after_seconds(response.headers)
            raise RateLimited(f"robots.txt rate-limited us (HTTP 429){_wait_text(wait)}", url=url, retry_after=wait)
        if response.status_code >= 500:
            raise TryLater(f"robots.txt answered HTTP {response.status_code}; not crawling until it can be read", url=url)
        if 400 <= response.status_code < 500:
            entry = (self.clock(), None, True)  # RFC 9309 2.3.1.3: unavailable means no restrictions
        else:
            parser = urllib.robotparser.RobotFileParser(url)
            lines = decode_html(response.content, response.headers, sniff_meta=False).splitlines()
            parser.parse(lines)
            self._fractional[origin] = _fractional_delay(lines, self.agent)
            entry = (self.clock(), parser, False)
        self._cache[origin] = entry
        return entry[1], entry[2]

    @staticmethod
    def _origin(url: str) -> str:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}"

    def allowed(self, url: str) -> bool:
        parser, allow_all = self._load(self._origin(url))
        return True if allow_all or parser is None else parser.can_fetch(self.agent, url)

    def crawl_delay(self, url: str) -> float:
        parser, _ = self._load(self._origin(url))
        if parser is None:
            return 0.0
        delay = parser.crawl_delay(self.agent)
        if delay:
            return float(delay)
        return self._fractional.get(self._origin(url), 0.0)


def _fractional_delay(lines: list[str], agent: str) -> float:
    """A Crawl-delay such as 0.5 for our agent (or *), which urllib.robotparser ignores as not an integer."""
    name = agent.split("/")[0].strip().lower()
    groups: list[tuple[set[str], float | None]] = []
    agents: set[str] = set()
    in_rules = False
    for line in lines:
        key, _, value = line.split("#", 1)[0].partition(":")
        key, value = key.strip().lower(), value.strip()
        if key == "user-agent":
            if in_rules:
                agents, in_rules = set(), False
            agents.add(value.lower())
            groups.append((agents, None))
        elif key == "crawl-delay" and agents:
            in_rules = True
            try:
                groups.append((agents, float(value)))
            except ValueError:
                pass
        elif key in ("allow", "disallow"):
            in_rules = True
    for wanted in (lambda a: any(x != "*" and x in name for x in a), lambda a: "*" in a):
        delays = [d for a, d in groups if d is not None and wanted(a)]
        if delays:
            return delays[0]
    return 0.0


_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_\-:.]+)""", re.I)
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
# WHATWG Encoding: a page labelled latin-1 or ASCII is decoded as windows-1252 by every browser.
_WHATWG_ALIASES = {"iso-8859-1": "cp1252", "latin-1": "cp1252", "latin1": "cp1252", "l1": "cp1252",
                   "us-ascii": "cp1252", "ascii": "cp1252", "iso8859-1": "cp1252", "windows-1252": "cp1252"}


def _codec(label: str | None) -> str | None:
    if not label:
        return None
    label = label.strip().strip("\"'").lower()
    label = _WHATWG_ALIASES.get(label, label)
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def page_charset(content: bytes, headers: Mapping[str, str], *, forced: str | None = None, sniff_meta: bool = True) -> str:
    """The charset to read a page with: forced, BOM, Content-Type header, <meta>, else UTF-8."""
    if forced and _codec(forced):
        return _codec(forced)  # type: ignore[return-value]
    for bom, name in _BOMS:
        if content.startswith(bom):
            return name
    ctype = headers.get("content-type", "")
    match = re.search(r"charset\s*=\s*([^;\s]+)", ctype, re.I)
    if match and _codec(match.group(1)):
        return _codec(match.group(1))  # type: ignore[return-value]
    if sniff_meta:
        meta = _META_CHARSET.search(content[:4096])
        if meta and _codec(meta.group(1).decode("ascii", "replace")):
            return _codec(meta.group(1).decode("ascii", "replace"))  # type: ignore[return-value]
    return "utf-8"


def decode_html(content: bytes, headers: Mapping[str, str], *, forced: str | None = None, sniff_meta: bool = True) -> str:
    charset = page_charset(content, headers, forced=forced, sniff_meta=sniff_meta)
    text = content.decode(charset, errors="replace")
    return text[1:] if text.startswith("\ufeff") else text


def now_utc() -> datetime:
    return datetime.now(timezone.utc)
