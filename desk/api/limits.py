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
