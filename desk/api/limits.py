"""Rate limits per token: a token bucket in this process (`api.rate_limit_per_minute`).

Each token's bucket holds up to a minute's allowance and refills evenly, so a
client may burst up to the limit and then goes at the limit's pace. A request
with the bucket empty is refused with how many seconds until one is allowed
(the API sends it as Retry-After). Several `hearken api` processes each keep
their own buckets.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable


class TokenBuckets:
    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0  # tokens per second
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[int, tuple[float, float]] = {}  # key -> (tokens left, when counted)

    def take(self, key: int) -> int:
        """0 when a request under `key` may go now (and count it), else the whole seconds to wait."""
        now = self._clock()
        with self._lock:
            tokens, then = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - then) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0
            self._buckets[key] = (tokens, now)
            return max(1, math.ceil((1.0 - tokens) / self.rate))


class BodyCap:
    """ASGI middleware: a request body over `max_bytes` is refused with 413 before the app reads it, by its
    Content-Length or, without one (chunked), as soon as the bytes received pass the cap. The token is not
    checked first, so the cap is what keeps an unauthenticated upload from filling the process's memory."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await self._refuse(send)
            return
        seen = 0
        started = refused = False

        async def counted_receive():
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:  # answer 413 now; to the app the client has gone away
                    refused = True
                    if not started:
                        await self._refuse(send)
                    return {"type": "http.disconnect"}
            return message

        async def tracked_send(message):
            nonlocal started
            if refused:
                return  # the 413 is the answer; what the app says after the "disconnect" goes nowhere
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except Exception:
            if not refused:
                raise

    async def _refuse(self, send) -> None:
        body = b'{"detail":"the request body is larger than ' + str(self.max_bytes).encode() + b' bytes"}'
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

