"""What a platform's answer means, whichever client fetched it.

- `check_response` turns a status code into the collector errors of collectors/errors.py:
  429 and 503-with-Retry-After become `RateLimited` with the wait the server
  asked for; 401/403 become `AuthFailed`; other failures `TryLater`. Every
  error names the URL.
- `retry_after_seconds` reads `Retry-After` (seconds or an HTTP date) and the
  `X-RateLimit-Reset` family of headers.
- `parse_json` reads a body as JSON the way every collector does (collectors/clean.py's `loads_json`).
- `Validators` keeps an ETag / Last-Modified pair for a conditional GET.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timezone
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from collectors.clean import loads_json
from collectors.errors import AuthFailed, BadPayload, RateLimited, TryLater


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


def wait_text(seconds: float | None) -> str:
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
        raise RateLimited(f"{what} rate-limited us (HTTP {status} {phrase}){wait_text(wait)}".replace("  ", " "),
                          url=url, retry_after=wait)
    if status in (401, 403):
        raise AuthFailed(f"{what} refused access (HTTP {status} {phrase}): check the API key and username", url=url)
    if status == 404:
        raise TryLater(f"{what} has no such page (HTTP 404): check the address in the config", url=url)
    raise TryLater(f"{what} answered HTTP {status} {phrase}".rstrip(), url=url, retry_after=wait)


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
