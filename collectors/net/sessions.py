"""A requests.Session with the limits of collectors/net/http.py, for the clients built on requests (PRAW, Tweepy).

`BoundedSession(limits)` gives every request the same guarantees as the httpx collectors:

- a wall-clock deadline (`Limits.deadline`, and never past the poll's, see `http.poll_deadline`): a
  watchdog shuts the connection's socket when it passes, so a server dripping its headers or body
  one byte at a time cannot hold a poll thread; each read also waits at most what is left. The
  mechanism is collectors/net/deadline.py's, the one posting runs under: each request gets a
  `Deadline` of its own, inside the call's when the request is part of one;
- a byte cap: the body is streamed and reading stops past `Limits.max_bytes`, so an endless answer
  cannot grow the process (the response then raises instead of returning);
- a default timeout (Tweepy passes none, which in requests means wait forever);
- redirects only on the origin asked for (collectors/net/origins.py), so a bearer token or cookie never
  follows a redirect to another site, and only for a GET or HEAD: requests would send a POST again on
  a 307 or 308 (and a platform that stored the post before redirecting would hold two), so the caller
  gets the 3xx itself and a publisher reads it as "may have been posted".

Failures raise `LimitExceeded` or `RedirectRefused`, both `requests.RequestException`s, so the
clients' own error handling (prawcore's RequestException, our `except requests.RequestException`)
reports them, with a reason a person can read.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urljoin

import requests

from collectors.net import deadline, http
from collectors.net.origins import off_origin
from collectors.net.requests_adapter import DeadlineAdapter

CONNECT_TIMEOUT = 10.0
SAFE_METHODS = frozenset({"GET", "HEAD"})  # the only requests whose redirects are followed


class LimitExceeded(requests.RequestException):
    """The request ran past its deadline or sent more than the byte cap."""


class RedirectRefused(requests.RequestException):
    """The server redirected somewhere requests of this source never go."""


def _cut_timeout(timeout: Any, left: float) -> tuple[float, float]:
    if isinstance(timeout, tuple):
        connect, read = timeout
    else:
        connect = read = timeout
    connect = CONNECT_TIMEOUT if connect is None else connect
    read = http.DEFAULT_TIMEOUT if read is None else read
    return min(float(connect), left), min(float(read), left)


class _BoundedAdapter(DeadlineAdapter):
    """collectors/net/requests_adapter.py's adapter, each request under a Deadline of its own: the request's (or the
    poll's) time and this source's byte cap, inside the call's deadline when there is one."""

    def __init__(self, limits: http.Limits) -> None:
        self.limits = limits
        super().__init__()

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):  # type: ignore[override]
        at, polls = http.request_deadline(self.limits)
        what = f"{request.url.split('?')[0]}"
        left = at - time.monotonic()
        if left <= 0:
            raise LimitExceeded(http.deadline_reason(what, self.limits, polls), request=request)
        own = deadline.Deadline(left, self.limits.max_bytes, parent=deadline.current())

        def late() -> bool:
            return own.expired or time.monotonic() >= at - 0.05

        with deadline.watching(own):
            try:
                response = super().send(request, stream=False, timeout=_cut_timeout(timeout, left), verify=verify,
                                        cert=cert, proxies=proxies)
            except deadline.TooLarge as exc:
                if own.received > own.max_bytes:
                    raise LimitExceeded(http.too_large_reason(what, self.limits), request=request) from exc
                raise
            except requests.RequestException as exc:
                if late():
                    raise LimitExceeded(http.deadline_reason(what, self.limits, polls), request=request) from exc
                raise
            except Exception as exc:  # noqa: BLE001 - urllib3 and socket errors alike, once the watchdog cut in
                if late():
                    raise LimitExceeded(http.deadline_reason(what, self.limits, polls), request=request) from exc
                raise requests.ConnectionError(f"{what} broke off its answer: {exc}", request=request) from exc
            if own.expired:  # the cut socket ended the body early: what was read is not the answer
                response.close()
                raise LimitExceeded(http.deadline_reason(what, self.limits, polls), request=request)
        response.close()  # the body is read: the connection goes back to the pool
        return response


class BoundedSession(requests.Session):
    """A requests session whose requests are bounded as collectors/net/http.py's (see the module docstring)."""

    def __init__(self, limits: http.Limits | None = None) -> None:
        super().__init__()
        self.limits = limits or http.Limits()
        adapter = _BoundedAdapter(self.limits)
        self.mount("https://", adapter)
        self.mount("http://", adapter)

    def request(self, method, url, *args, **kwargs):  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = (CONNECT_TIMEOUT, self.limits.read_timeout)
        return super().request(method, url, *args, **kwargs)

    def get_redirect_target(self, resp):  # type: ignore[override]
        if (resp.request.method or "GET").upper() not in SAFE_METHODS:
            return None  # the 3xx itself goes back to the caller: it may answer a post that was made
        location = super().get_redirect_target(resp)
        if location:
            why = off_origin(resp.url, urljoin(resp.url, location))
            if why:
                raise RedirectRefused(f"{resp.url.split('?')[0]} redirected to {location}, which was not followed: {why}",
                                      request=resp.request, response=resp)
        return location
