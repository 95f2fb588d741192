"""A requests.Session with the limits of collectors/net/http.py, for the clients built on requests (PRAW, Tweepy).

`BoundedSession(limits)` gives every request the same guarantees as the httpx collectors:

- a wall-clock deadline (`Limits.deadline`, and never past the poll's, see `http.poll_deadline`): a
  watchdog shuts the connection's socket when it passes, so a server dripping its headers or body
  one byte at a time cannot hold a poll thread; each read also waits at most what is left;
- a byte cap: the body is streamed and reading stops past `Limits.max_bytes`, so an endless answer
  cannot grow the process (the response then raises instead of returning);
- a default timeout (Tweepy passes none, which in requests means wait forever);
- redirects only on the origin asked for (`http.off_origin`), so a bearer token or cookie never
  follows a redirect to another site.

Failures raise `LimitExceeded` or `RedirectRefused`, both `requests.RequestException`s, so the
clients' own error handling (prawcore's RequestException, our `except requests.RequestException`)
reports them, with a reason a person can read.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any
from urllib.parse import urljoin

import requests
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from collectors.net import http

CONNECT_TIMEOUT = 10.0


class LimitExceeded(requests.RequestException):
    """The request ran past its deadline or sent more than the byte cap."""


class RedirectRefused(requests.RequestException):
    """The server redirected somewhere requests of this source never go."""


_local = threading.local()  # .watch: the _Watch of the request this thread is sending


class _Watch:
    """Shuts the sockets of one request's connections when its deadline passes: the connection's while
    the headers are awaited, then the response's (urllib3 `HTTPResponse.shutdown`, made for this)."""

    def __init__(self, at: float) -> None:
        self.conns: list[Any] = []
        self.responses: list[Any] = []
        self.fired = False
        self.timer = threading.Timer(max(0.0, at - time.monotonic()), self.fire)
        self.timer.daemon = True

    def __enter__(self) -> _Watch:
        _local.watch = self
        self.timer.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.timer.cancel()
        _local.watch = None

    def add(self, conn: Any) -> None:
        self.conns.append(conn)
        if self.fired:
            _cut(conn)

    def add_response(self, response: Any) -> None:
        self.responses.append(response)
        if self.fired:
            _shut(response)

    def fire(self) -> None:
        self.fired = True
        for conn in list(self.conns):
            _cut(conn)
        for response in list(self.responses):
            _shut(response)


def _shut(response: Any) -> None:
    try:
        response.shutdown()
    except Exception:  # noqa: BLE001 - released, closed, or a recorded response (vcrpy) with no socket
        pass


def _cut(conn: Any) -> None:
    sock = getattr(conn, "sock", None)
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _watched(conn: Any, send: Any) -> Any:
    watch = getattr(_local, "watch", None)
    if watch is not None:
        watch.add(conn)
    response = send()
    if watch is not None:
        watch.add_response(response)
    return response


class _WatchedHTTPPool(HTTPConnectionPool):
    def _make_request(self, conn, *args, **kwargs):  # type: ignore[override]
        return _watched(conn, lambda: super(_WatchedHTTPPool, self)._make_request(conn, *args, **kwargs))


class _WatchedHTTPSPool(HTTPSConnectionPool):
    def _make_request(self, conn, *args, **kwargs):  # type: ignore[override]
        return _watched(conn, lambda: super(_WatchedHTTPSPool, self)._make_request(conn, *args, **kwargs))


def _cut_timeout(timeout: Any, left: float) -> tuple[float, float]:
    if isinstance(timeout, tuple):
        connect, read = timeout
    else:
        connect = read = timeout
    connect = CONNECT_TIMEOUT if connect is None else connect
    read = http.DEFAULT_TIMEOUT if read is None else read
    return min(float(connect), left), min(float(read), left)


class _BoundedAdapter(HTTPAdapter):
    def __init__(self, limits: http.Limits) -> None:
        self.limits = limits
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):  # type: ignore[override]
        at, polls = http.request_deadline(self.limits)
        what = f"{request.url.split('?')[0]}"
        left = at - time.monotonic()
        if left <= 0:
            raise LimitExceeded(http.deadline_reason(what, self.limits, polls), request=request)
        with _Watch(at) as watch:
            try:
                response = super().send(request, stream=True, timeout=_cut_timeout(timeout, left), verify=verify,
                                        cert=cert, proxies=proxies)
            except requests.RequestException as exc:
                if watch.fired or time.monotonic() >= at - 0.05:
                    raise LimitExceeded(http.deadline_reason(what, self.limits, polls), request=request) from exc
                raise
            try:
                body = bytearray()
                for chunk in response.raw.stream(64 * 1024, decode_content=True):
                    body += chunk
                    if len(body) > self.limits.max_bytes:
                        raise LimitExceeded(http.too_large_reason(what, self.limits), request=request,
                                            response=response)
                if watch.fired:  # the cut socket ended the body early: what was read is not the answer
                    raise LimitExceeded(http.deadline_reason(what, self.limits, polls), request=request)
            except LimitExceeded:
                response.close()
                raise
            except Exception as exc:  # noqa: BLE001 - urllib3 and socket errors alike, once the watchdog cut in
                response.close()
                if watch.fired or time.monotonic() >= at - 0.05:
                    raise LimitExceeded(http.deadline_reason(what, self.limits, polls), request=request) from exc
                raise requests.ConnectionError(f"{what} broke off its answer: {exc}", request=request) from exc
        response._content = bytes(body)  # what requests' own .content sets once it has read the body
        response._content_consumed = True
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
        location = super().get_redirect_target(resp)
        if location:
            why = http.off_origin(resp.url, urljoin(resp.url, location))
            if why:
                raise RedirectRefused(f"{resp.url.split('?')[0]} redirected to {location}, which was not followed: {why}",
                                      request=resp.request, response=resp)
        return location
