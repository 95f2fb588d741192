"""HTTP plumbing shared by the httpx collectors (Discourse, HTML forums): bounded requests.

- `make_client` and `get` / `fetch`: every request is bounded. `Limits` gives it a wall-clock deadline
  (redirects included; it holds against a server that sends one byte every few seconds, where a
  per-read timeout never fires) and a cap on the bytes read (the body is streamed and reading stops
  at the cap, so an endless answer costs at most that much memory). The cap counts the body as it is
  after Content-Encoding is undone, a piece at a time (collectors/net/inflate.py): a gzip bomb is cut
  at the cap like an endless body. Inside `poll_deadline(...)`
  (the runner sets it around each poll) no request outlives the poll either; both deadlines, and a
  platform call's, are kept by one mechanism, collectors/net/deadline.py, whose transport the
  client uses (posting uses the same). Redirects are followed only on the origin asked for
  (collectors/net/origins.py).
- `Robots` fetches and caches robots.txt per host (RFC 9309: a 4xx robots.txt
  allows everything, a 5xx or unreachable one allows nothing for now).

What an answer means (status codes to collector errors, Retry-After, JSON, conditional-GET validators)
is collectors/net/responses.py's; the charset a page is read with, collectors/net/charset.py's. Their
names are also reachable here, as the collectors have always asked for them.
collectors/net/sessions.py gives the requests-based clients (PRAW, Tweepy) the same limits.
"""

from __future__ import annotations

import time
import urllib.robotparser
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from collectors.errors import BadPayload, RateLimited, TryLater
from collectors.net import deadline, inflate
from collectors.net.charset import decode_html  # noqa: F401 - the readers' names for them
from collectors.net.deadline import poll_deadline, request_deadline  # noqa: F401 - the readers' names for them
from collectors.net.origins import off_origin  # noqa: F401 - the readers' names for them
from collectors.net.responses import (  # noqa: F401 - the readers' names for them
    Validators, check_response, parse_json, retry_after_seconds, wait_text,
)

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


def get(client: Client, url: str, *, what: str, headers: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None) -> httpx.Response:
    """`fetch`, then HTTP failures as `check_response`."""
    response = fetch(client, url, what=what, headers=headers, params=params)
    check_response(response, what=what)
    return response


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
            raise RateLimited(f"robots.txt rate-limited us (HTTP 429){wait_text(wait)}", url=url, retry_after=wait)
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
