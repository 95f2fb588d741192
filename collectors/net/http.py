"""HTTP plumbing shared by the httpx collectors (Discourse, HTML forums).

- `make_client` and `get` / `fetch`: every request is bounded. `Limits` gives it a wall-clock deadline
  (redirects included; it holds against a server that sends one byte every few seconds, where a
  per-read timeout never fires) and a cap on the bytes read (the body is streamed and reading stops
  at the cap, so an endless answer costs at most that much memory). The cap counts the body as it is
  after Content-Encoding is undone, a piece at a time (collectors/net/inflate.py): a gzip bomb is cut
  at the cap like an endless body. Inside `poll_deadline(...)`
  (the runner sets it around each poll) no request outlives the poll either; both deadlines, and a
  platform call's, are kept by one mechanism, collectors/net/deadline.py, whose transport the
  client uses (posting uses the same). Redirects are followed
  only on the origin asked for (an http -> https upgrade of the same host included): a redirect to
  another site, to a private or loopback address, or to a scheme other than http(s) is refused
  with the reason, so credentials and content never come from anywhere but the configured platform.
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

collectors/net/sessions.py gives the requests-based clients (PRAW, Tweepy) the same limits.
"""

from __future__ import annotations

import codecs
import ipaddress
import math
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

from collectors.clean import loads_json
from collectors.errors import AuthFailed, BadPayload, RateLimited, TryLater
from collectors.net import deadline, inflate
from collectors.net.deadline import poll_deadline, request_deadline  # noqa: F401 - the readers' names for them

DEFAULT_TIMEOUT = 20.0  # seconds one read may wait; the request's deadline bounds the whole
USER_AGENT = "hearken/0.1 (+https://github.com/hearken/hearken)"
MAX_CRAWL_DELAY = 30.0  # a robots.txt Crawl-delay above this gets one page per poll instead of a long sleep
MAX_REDIRECTS = 5


@dataclass(frozen=True, slots=True)
class Limits:
    """What one request may cost: `deadline` seconds of wall clock (all redirects included) and
    `max_bytes` of body, after decompression. `read_timeout` still ends a silent connection early."""

    deadline: float = 30.0
    max_bytes: int = 10_000_000
    read_timeout: float = DEFAULT_TIMEOUT

    @classmethod
    def of(cls, settings: Any) -> Limits:
        """The limits a source's settings ask for (`request_deadline_seconds`, `max_response_bytes`)."""
        deadline = getattr(settings, "request_deadline_seconds", None) or cls.deadline
        max_bytes = getattr(settings, "max_response_bytes", None) or cls.max_bytes
        return cls(deadline=float(deadline), max_bytes=int(max_bytes), read_timeout=min(DEFAULT_TIMEOUT, float(deadline)))


LimitExceeded = deadline.RequestDeadlinePassed  # the request's deadline passed inside the transport


def deadline_reason(what: str, limits: Limits, polls: bool) -> str:
    if polls:
        return f"{what} was still answering when the poll ran out of time (poll_deadline_seconds)"
    return (f"{what} took longer than {limits.deadline:g}s for one request (request_deadline_seconds): "
            "it answers too slowly or never finishes")


def too_large_reason(what: str, limits: Limits) -> str:
    return (f"{what} sent more than {limits.max_bytes:,} bytes in one answer (max_response_bytes); "
            "stopped reading it")


class Client(httpx.Client):
    """An httpx client that knows its `Limits`; redirects are followed by `fetch`, under its rules. Its
    connections answer to the request's deadline, the poll's, and a platform call's (collectors/net/deadline.py)."""

    def __init__(self, *, limits: Limits, **kwargs: Any) -> None:
        super().__init__(transport=deadline.httpx_transport(limits=httpx.Limits(max_connections=10, keepalive_expiry=5.0)),
                         follow_redirects=False, **kwargs)
        self.request_limits = limits


def make_client(user_agent: str, *, timeout: float = DEFAULT_TIMEOUT, headers: Mapping[str, str] | None = None,
                limits: Limits | None = None) -> Client:
    """An httpx client with our user agent and bounded requests (see `fetch`)."""
    limits = limits or Limits(read_timeout=timeout)
    all_headers = {"User-Agent": user_agent, "Accept-Encoding": inflate.ACCEPT_ENCODING}
    all_headers.update(headers or {})
    read = min(timeout, limits.read_timeout)
    return Client(limits=limits, timeout=httpx.Timeout(read, connect=min(10.0, read)), headers=all_headers)


# --- where a request may go ------------------------------------------------------------------------


def _is_private(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return not ip.is_global


def origin_of(url: str | httpx.URL) -> str:
    u = httpx.URL(str(url))
    return f"{u.scheme}://{u.netloc.decode('ascii')}"


def off_origin(origin: str | httpx.URL, target: str | httpx.URL) -> str | None:
    """Why a request that began at `origin` must not go to `target`; None when it may.

    Allowed: the same scheme, host and port, or the same host upgraded from http to https (default
    ports). Refused: any other scheme, a private or loopback address (unless `origin` is one
    itself, then as another origin), any other host or port.
    """
    o, t = httpx.URL(str(origin)), httpx.URL(str(target))
    if t.scheme not in ("http", "https"):
        return f"a {t.scheme or 'schemeless'}: address is never followed"
    if (t.scheme, t.host, t.port) == (o.scheme, o.host, o.port):
        return None
    if t.host == o.host and o.scheme == "http" and t.scheme == "https" and o.port is None and t.port is None:
        return None
    if _is_private(t.host) and not _is_private(o.host):
        return f"{t.host} is a private or loopback address"
    return f"it is another site (requests stay on {origin_of(o)}; if the platform moved, change its address in the config)"


# --- one bounded request ------------------------------------------------------------------------


def fetch(client: Client, url: str, *, what: str, headers: Mapping[str, str] | None = None,
          params: Mapping[str, Any] | None = None) -> httpx.Response:
    """GET `url` within the client's limits, following redirects on its origin only; any status returned.

    Raises `TryLater` naming the URL when the server cannot be reached, runs past the deadline or
    redirects where we do not go, and `BadPayload` when the answer is larger than the cap.
    """
    limits = getattr(client, "request_limits", None) or Limits()
    at, polls = request_deadline(limits)
    request = client.build_request("GET", url, headers=dict(headers or {}), params=params)
    first = request.url
    with deadline.request_ends(at):
        for _hop in range(MAX_REDIRECTS + 1):
            try:
                response = client.send(request, stream=True)
            except httpx.TimeoutException as exc:
                if time.monotonic() >= at - 0.05:
                    raise TryLater(deadline_reason(what, limits, polls), url=str(request.url)) from exc
                raise TryLater(f"{what} did not answer in time ({type(exc).__name__})", url=str(request.url)) from exc
            except inflate.InflateError as exc:
                raise BadPayload(f"{what} sent an answer that cannot be read: {exc}", url=str(request.url)) from exc
            except httpx.HTTPError as exc:
                raise TryLater(f"{what} could not be reached: {exc}", url=str(request.url)) from exc
            try:
                location = response.headers.get("location") if response.is_redirect else None
                if location:
                    target = request.url.join(location)
                    why = off_origin(first, target)
                    if why:
                        raise TryLater(f"{what} redirected to {location}, which was not followed: {why}",
                                       url=str(request.url))
                    request = client.build_request("GET", target, headers=dict(headers or {}))
                    continue
                body = _read_capped(response, limits, what, at, polls)
            finally:
                response.close()
            return httpx.Response(response.status_code, content=body, request=request,
                                  headers=[(k, v) for k, v in response.headers.raw
                                           if k.lower() not in (b"content-encoding", b"content-length",
                                                                b"transfer-encoding")])
        raise TryLater(f"{what} redirected more than {MAX_REDIRECTS} times", url=str(first))


def _read_capped(response: httpx.Response, limits: Limits, what: str, at: float, polls: bool) -> bytes:
    """The body, inflated (by the transport, a piece at a time) and counted against `limits.max_bytes` as it comes."""
    url = str(response.request.url)
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits.max_bytes:
        raise BadPayload(too_large_reason(what, limits) + f" (it announced {int(declared):,})", url=url)
    body = bytearray()
    try:
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > limits.max_bytes:
                raise BadPayload(too_large_reason(what, limits), url=url)
    except httpx.TimeoutException as exc:
        if time.monotonic() >= at - 0.05:
            raise TryLater(deadline_reason(what, limits, polls), url=url) from exc
        raise TryLater(f"{what} stopped sending mid-answer ({type(exc).__name__})", url=url) from exc
    except inflate.InflateError as exc:
        raise BadPayload(f"{what} sent an answer that cannot be read: {exc}", url=url) from exc
    except httpx.HTTPError as exc:
        raise TryLater(f"{what} broke off its answer: {exc}", url=url) from exc
    return bytes(body)


def retry_after_seconds(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds the server asked us to wait, from Retry-After or rate-limit reset headers; None if it did not say
    (or said something that is no length of time: "inf", "nan", a date that does not parse)."""
    now = time.time() if now is None else now
    value = (headers.get("retry-after") or "").strip()
    if value:
        try:
            seconds: float | None = float(value)
        except ValueError:
            seconds = _until(value, now)
        if seconds is not None and math.isfinite(seconds):
            return max(0.0, seconds)
    for name in ("x-ratelimit-reset", "x-rate-limit-reset", "ratelimit-reset"):
        try:
            reset = float(headers.get(name) or "")
        except ValueError:
            continue
        if math.isfinite(reset):
            # Reddit sends seconds until reset; X and GitHub-style APIs send an epoch time.
            return max(0.0, reset - now) if reset > 1e9 else max(0.0, reset)
    return None


def _until(http_date: str, now: float) -> float | None:
    """Seconds from `now` until an HTTP date (Retry-After's other form)."""
    try:
        when = parsedate_to_datetime(http_date)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp() - now


def _wait_text(seconds: float | None) -> str:
    if seconds is None:
        return ""
    days = f" (about {seconds / 86400:,.0f} days)" if seconds >= 2 * 86400 else ""
    return f"; the server asked us to wait {seconds:,.0f}s{days}"


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


def get(client: Client, url: str, *, what: str, headers: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None) -> httpx.Response:
    """`fetch`, then HTTP failures as `check_response`."""
    response = fetch(client, url, what=what, headers=headers, params=params)
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

    def __init__(self, client: Client, user_agent: str, *, clock: Callable[[], float] = time.monotonic) -> None:
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
            response = fetch(self.client, url, what="robots.txt")
        except TryLater as exc:
            raise TryLater(f"{exc.reason}; not crawling until it can be read", url=url) from exc
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
