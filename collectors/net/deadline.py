"""Wall-clock deadlines for every platform request, reading and posting: a per-read timeout never bounds a whole call, this does.

Two kinds, one mechanism in the transports built here:

- a **request's** (and a **poll's**) deadline, per thread: `poll_deadline(seconds)` around a poll,
  `request_ends(at)` around one request (collectors/net/http.py's `fetch`); every connect, read and write
  waits at most what is left of it;
- a **call's** deadline (`run`, used for posting a reply and finding it again), described below.

httpx and requests time out each read, not a call: a platform that drips one
byte a second, or a client library that retries or sleeps on a rate-limit
header, keeps a call going for ever. `run(fn, seconds)` runs `fn` in a worker
thread with a `Deadline`, and the HTTP plumbing built for it (`httpx_transport`
here, for httpx; collectors/net/requests_adapter.py's `DeadlineAdapter` for
requests, so tweepy and praw) makes that deadline real inside it:

- every socket the call opens or reuses is registered with its Deadline; when
  the deadline passes, those sockets are shut down, so a blocked read or
  write returns at once, and a socket registered later is shut at once;
- a request that has not begun to go out by then is never sent, and
  `Deadline.sent` says whether any had begun;
- each connect and read waits at most the time left, and an answer may be
  at most `MAX_BYTES` long (an endless body is cut, not buffered), counted
  on the wire and again once inflated (httpx: collectors/net/inflate.py,
  a piece at a time; requests: urllib3, which bounds each piece itself), so
  a few kB of gzip bomb is cut at the cap too.

`run` returns within the deadline plus `MARGIN`, whatever the platform does;
past it, it raises `DeadlinePassed` (with `sent`), and a worker still inside a
library's sleep finds its sockets shut when it wakes.
"""

from __future__ import annotations

import contextvars
import socket
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpcore
import httpx
import requests

from collectors.net import inflate

T = TypeVar("T")
MARGIN = 0.5  # seconds a worker gets, after its sockets are shut, to hand back what it has
MAX_BYTES = 8 * 1024 * 1024  # the most one call may read; a platform's answers to us are a few kB

_current: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar("hearken_deadline", default=None)
_local = threading.local()  # per thread: .poll (the poll's deadline), .request (this request's), both monotonic


class RequestDeadlinePassed(Exception):
    """The current request's (or poll's) deadline passed; the transport turns it into a timeout."""


@contextmanager
def poll_deadline(seconds: float | None) -> Iterator[None]:
    """Requests made by this thread inside the block end by `seconds` from now, whatever their own deadline."""
    previous = getattr(_local, "poll", None)
    _local.poll = None if seconds is None else time.monotonic() + seconds
    try:
        yield
    finally:
        _local.poll = previous


def request_deadline(limits: Any) -> tuple[float, bool]:
    """(monotonic time a request with these limits must end by, whether it is the poll's deadline rather
    than its own `limits.deadline`)."""
    own = time.monotonic() + limits.deadline
    poll = getattr(_local, "poll", None)
    return (poll, True) if poll is not None and poll < own else (own, False)


@contextmanager
def request_ends(at: float) -> Iterator[None]:
    """The requests this thread makes inside the block end by the monotonic time `at`."""
    previous = getattr(_local, "request", None)
    _local.request = at
    try:
        yield
    finally:
        _local.request = previous


def request_left(timeout: float | None) -> float | None:
    """`timeout` cut to what is left of this thread's request deadline; past it, raise RequestDeadlinePassed."""
    at = getattr(_local, "request", None)
    if at is None:
        return timeout
    left = at - time.monotonic()
    if left <= 0:
        raise RequestDeadlinePassed("deadline")
    return left if timeout is None else min(timeout, left)


def _limit(timeout: float | None, timeout_error: type[Exception], what: str) -> tuple[Deadline | None, float | None]:
    """The current call's Deadline and `timeout` cut to the call's and the request's time left, or raise."""
    d = _current.get()
    if d is not None:
        timeout = d.bound(timeout)
        if timeout is None:
            raise timeout_error(f"{what} within the {d.seconds:g} s deadline")
    try:
        return d, request_left(timeout)
    except RequestDeadlinePassed:
        raise timeout_error("deadline") from None


class DeadlinePassed(Exception):
    """The call did not finish within its deadline. `sent`: a request had begun to go out by then."""

    def __init__(self, seconds: float, sent: bool) -> None:
        super().__init__(f"no answer within {seconds:g} s")
        self.seconds = seconds
        self.sent = sent


class TooLarge(requests.exceptions.RequestException):
    """An answer longer than the call's byte cap."""


class Deadline:
    """One call's (or one request's) wall-clock limit, its byte cap, and the sockets it is using.

    A request's Deadline inside a call's has the call's as `parent`: a socket it watches is the
    parent's to shut too, its bytes count against both caps, and it ends by the earlier of the two.
    """

    def __init__(self, seconds: float, max_bytes: int = MAX_BYTES, *, parent: Deadline | None = None) -> None:
        self.seconds = seconds
        self.max_bytes = max_bytes
        self.parent = parent
        self.received = 0
        self.at = time.monotonic() + seconds
        self.expired = False
        self.sent = False
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()

    def remaining(self) -> float:
        left = max(0.0, self.at - time.monotonic())
        return left if self.parent is None else min(left, self.parent.remaining())

    def bound(self, timeout: float | None) -> float | None:
        """`timeout` cut to the time left; None where no time is left."""
        left = self.remaining()
        if self.expired or left <= 0 or (self.parent is not None and self.parent.expired):
            return None
        return left if timeout is None else min(timeout, left)

    def watch(self, sock: Any) -> None:
        if not isinstance(sock, socket.socket):
            return
        with self._lock:
            if self.expired:
                _shut(sock)
            elif all(s is not sock for s in self._socks):
                self._socks.append(sock)
        if self.parent is not None:
            self.parent.watch(sock)

    def took(self, n: int) -> None:
        """`n` more bytes arrived; past `max_bytes` (this one's or the parent's) the call is cut."""
        self.received += n
        if self.received > self.max_bytes:
            raise TooLarge(f"the answer is longer than {self.max_bytes} bytes; cut off")
        if self.parent is not None:
            self.parent.took(n)

    def sending(self) -> None:
        """A request is about to go out; refused once the deadline has passed."""
        if self.parent is not None:
            self.parent.sending()
        with self._lock:
            if self.expired:
                raise ConnectionAbortedError(f"the {self.seconds:g} s deadline has passed; not sent")
            self.sent = True

    def expire(self) -> None:
        with self._lock:
            self.expired = True
            socks, self._socks = self._socks, []
        for sock in socks:
            _shut(sock)


@contextmanager
def watching(d: Deadline) -> Iterator[Deadline]:
    """Inside the block, connections this thread uses answer to `d`, and a watchdog expires `d` (shutting
    its sockets) when its time is up: a request that drips its answer a byte at a time ends then."""
    timer = threading.Timer(d.remaining(), d.expire)
    timer.daemon = True
    token = _current.set(d)
    timer.start()
    try:
        yield d
    finally:
        timer.cancel()
        _current.reset(token)


def _shut(sock: socket.socket) -> None:
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)  # the plain socket's: works under TLS, wakes a blocked recv
    except OSError:
        pass


def current() -> Deadline | None:
    """The deadline of the call running in this thread, if any."""
    return _current.get()


def run(fn: Callable[..., T], seconds: float, *args: Any, **kwargs: Any) -> T:
    """`fn(*args, **kwargs)` under a wall-clock deadline of `seconds` (see the module docstring)."""
    deadline = Deadline(seconds)
    box: dict[str, Any] = {}

    def work() -> None:
        _current.set(deadline)
        try:
            box["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller below
            box["error"] = exc

    worker = threading.Thread(target=contextvars.copy_context().run, args=(work,), daemon=True,
                              name="hearken-platform-call")
    worker.start()
    worker.join(deadline.remaining())
    if worker.is_alive():
        deadline.expire()
        worker.join(MARGIN)
    if worker.is_alive() or deadline.expired:  # whatever it made of a cut connection is not an answer
        raise DeadlinePassed(seconds, deadline.sent) from box.get("error")
    if "error" in box:
        raise box["error"]
    return box["value"]


# --- httpx: a network backend whose streams answer to the current deadline ---------------


class _Stream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def _deadline(self) -> Deadline | None:
        d = _current.get()
        if d is not None:
            d.watch(self._inner.get_extra_info("socket"))
        return d

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self._deadline()
        d, timeout = _limit(timeout, httpcore.ReadTimeout, "no answer")
        data = self._inner.read(max_bytes, timeout)
        if d is not None:
            try:
                d.took(len(data))
            except TooLarge as exc:
                raise httpcore.ReadError(str(exc)) from exc
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        d = self._deadline()
        if d is not None:
            try:
                d.sending()
            except ConnectionAbortedError as exc:
                raise httpcore.WriteError(str(exc)) from exc
        _, timeout = _limit(timeout, httpcore.WriteTimeout, "not sent")
        self._inner.write(buffer, timeout)

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        self._deadline()
        _, timeout = _limit(timeout, httpcore.ConnectTimeout, "no TLS connection")
        return _Stream(self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options=None) -> httpcore.NetworkStream:
        _, timeout = _limit(timeout, httpcore.ConnectTimeout, "no connection")
        stream = _Stream(self._inner.connect_tcp(host, port, timeout, local_address, socket_options))
        stream._deadline()
        return stream

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options=None) -> httpcore.NetworkStream:  # pragma: no cover - no proxy on a socket
        _, timeout = _limit(timeout, httpcore.ConnectTimeout, "no connection")
        return _Stream(self._inner.connect_unix_socket(path, timeout, socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def httpx_client(base_url: str, *, headers: dict[str, str] | None = None, **kwargs: Any) -> httpx.Client:
    """An httpx client for `base_url` whose calls answer to the current deadline, and whose answers are
    inflated within its byte cap (`httpx_transport`). The proxy the environment names for that address
    (HTTPS_PROXY, NO_PROXY, ...) is used, as httpx would."""
    scheme, host = urlsplit(base_url).scheme, urlsplit(base_url).hostname or ""
    proxy = None if urllib.request.proxy_bypass(host) else urllib.request.getproxies().get(scheme)
    return httpx.Client(transport=httpx_transport(proxy), trust_env=False,
                        headers={"Accept-Encoding": inflate.ACCEPT_ENCODING, **(headers or {})}, **kwargs)


class _Transport(httpx.HTTPTransport):
    """httpx's transport, with compressed bodies inflated a bounded piece at a time (collectors/net/inflate.py):
    inside a call, past the call's byte cap the answer is cut (TooLarge, an httpx.DecodingError); outside
    one, the reader counts (collectors/net/http.py's `fetch`)."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        d = _current.get()
        try:
            return inflate.inflating(response, d.max_bytes if d is not None else None)
        except inflate.InflateError:
            response.close()
            raise


def httpx_transport(proxy: str | None = None, *, limits: httpx.Limits | None = None) -> httpx.HTTPTransport:
    """An httpx transport whose connections answer to the deadlines of the request and the call using them."""
    transport = _Transport(proxy=proxy, **({"limits": limits} if limits is not None else {}))
    transport._pool._network_backend = _Backend()  # httpx takes no backend argument; httpcore's pools all keep it here
    return transport
