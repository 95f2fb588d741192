"""collectors/net/deadline.py's call deadline made real in requests, so in the clients built on it (PRAW, Tweepy).

`mount_on(session)` sends every request of a requests.Session through a `DeadlineAdapter`: inside
`deadline.run(...)`, each connection registers its socket with the call's `Deadline` (shut when the
deadline passes), a request that has not begun to go out by then is never sent, every timeout is cut
to the time left, and a body is read counted against the call's byte cap (urllib3 bounds each
inflated piece itself). Outside a call the adapter is requests' own. `never_sent` tells from a
requests error whether the request never left, so a reply may be tried again without doubling it;
`post_failure` makes of such an error the publish error a publisher raises.
"""

from __future__ import annotations

import socket
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import MaxRetryError, NewConnectionError

from collectors.errors import PublishError, Rejected, Unknown
from collectors.net.deadline import Deadline, TooLarge, current


class _Watched:
    """Registers the connection's socket with the current deadline on connect and on every request."""

    sock: socket.socket | None

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        d = current()
        if d is not None:
            d.watch(self.sock)

    def request(self, *args: Any, **kwargs: Any) -> None:
        d = current()
        if d is not None:
            if self.sock is None:
                self.connect()  # here rather than inside the request, so a connect that never completes is not "sent"
            d.watch(self.sock)  # a kept-alive socket from an earlier call
            d.sending()
        super().request(*args, **kwargs)  # type: ignore[misc]


_WATCHED: dict[type, type] = {}


def _watched(cls: type) -> type:
    """`cls` with its sockets registered: built on whatever connection class urllib3 is set to use now
    (a test's recorder may have swapped in its own)."""
    if issubclass(cls, _Watched):
        return cls
    if cls not in _WATCHED:
        _WATCHED[cls] = type(f"Watched{cls.__name__}", (_Watched, cls), {})
    return _WATCHED[cls]


class _Pool(HTTPConnectionPool):
    @property  # type: ignore[override]
    def ConnectionCls(self) -> type:  # noqa: N802 - urllib3's name
        return _watched(HTTPConnectionPool.ConnectionCls)


class _TlsPool(HTTPSConnectionPool):
    @property  # type: ignore[override]
    def ConnectionCls(self) -> type:  # noqa: N802 - urllib3's name
        return _watched(HTTPSConnectionPool.ConnectionCls)


_POOLS = {"http": _Pool, "https": _TlsPool}


class DeadlineAdapter(HTTPAdapter):
    """A requests adapter whose connections answer to the deadline of the call using them.
    Mount it on a session for both schemes (`mount_on`)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **kwargs: Any):
        manager = super().proxy_manager_for(proxy, **kwargs)
        manager.pool_classes_by_scheme = _POOLS
        return manager

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):  # type: ignore[override]
        d = current()
        if d is None:
            return super().send(request, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies=proxies)
        response = super().send(request, stream=True, timeout=_bounded(timeout, d), verify=verify, cert=cert,
                                proxies=proxies)
        if not stream:  # read the body here, counted against the cap, as requests would have read it whole
            body = bytearray()
            try:
                for chunk in response.raw.stream(64 * 1024, decode_content=True):
                    d.took(len(chunk))
                    body += chunk
            except TooLarge:
                response.close()
                raise
            response._content = bytes(body)  # what Response.content caches; requests reads bodies the same way
            response._content_consumed = True
        return response


def _bounded(timeout: Any, d: Deadline) -> Any:
    left = max(d.remaining(), 0.001)
    if isinstance(timeout, tuple):
        return tuple(left if t is None else min(float(t), left) for t in timeout)
    if timeout is None or isinstance(timeout, (int, float)):
        return left if timeout is None else min(float(timeout), left)
    return timeout  # a urllib3 Timeout object: the watchdog still bounds it


def never_sent(exc: BaseException) -> bool:
    """Whether a requests error shows the request never left: no connection was made (refused, no such host,
    connect timeout). A connection lost after that (`Connection aborted`) may have carried the request."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (requests.exceptions.ConnectTimeout, NewConnectionError)):
            return True
        if isinstance(exc, MaxRetryError) and isinstance(exc.reason, NewConnectionError):
            return True
        exc = getattr(exc, "original_exception", None) or exc.__cause__ or \
            next((a for a in exc.args if isinstance(a, BaseException)), None)
    return False


def post_failure(exc: BaseException, platform: str, detail: str) -> PublishError:
    """What a requests error while posting means: `Rejected` where the request never left (nothing was
    posted; it may be tried again), else `Unknown` (it may have been posted). `detail` ends the latter."""
    if never_sent(exc):
        return Rejected(f"could not reach {platform}: {exc}")
    return Unknown(f"no clear answer from {platform} ({detail})")


def mount_on(session) -> None:
    """Send every request of a requests.Session through a DeadlineAdapter."""
    adapter = DeadlineAdapter()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
