"""The contract every collector keeps: the `Mention` it returns, the errors it raises.

A collector knows one platform. Given its settings and a cursor it returns the
new mentions that match the configured terms and the next cursor
(`PollResult`). It knows nothing of the database, the classifier or the
dashboard; the runner in desk/ stores what it returns.

The errors a collector raises are collectors/errors.py's, the values it returns collectors/results.py's
(both named here too).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

from collectors import clean
from collectors.errors import (  # noqa: F401 - the contract names them
    AuthFailed, BadPayload, CollectorError, NotConfigured, RateLimited, TryLater,
)
from collectors.results import Mention, PollResult, SetAside, utc  # noqa: F401 - the contract names them


_Poll = TypeVar("_Poll", bound=Callable[..., "PollResult"])


def collector_boundary(what: str) -> Callable[[_Poll], _Poll]:
    """Wrap a `poll` so that nothing but a CollectorError leaves it, and every mention leaves it clean.

    A platform library that trips over a malformed answer (tweepy reading a JSON `null` error body)
    raises whatever it raises; the source then shows "BadPayload: <what> sent an answer that could
    not be read: ..." instead of a traceback. What the poll returns goes through
    `collectors.clean.finish`: each mention normalised (or set aside when it cannot be).
    """

    def wrap(poll: _Poll) -> _Poll:
        @functools.wraps(poll)
        def guarded(self, *args: Any, **kwargs: Any) -> PollResult:
            try:
                result = poll(self, *args, **kwargs)
            except CollectorError:
                raise
            except Exception as exc:  # noqa: BLE001 - the boundary: every other failure becomes a collector error
                raise BadPayload(f"{what} sent an answer that could not be read ({type(exc).__name__}: {exc})",
                                 url=getattr(self, "api", None) or getattr(self, "base", None)) from exc
            return clean.finish(result)

        return guarded  # type: ignore[return-value]

    return wrap


@runtime_checkable
class Collector(Protocol):
    """One platform source. Built from its settings; `poll` is called by the runner on its interval."""

    platform: ClassVar[str]

    def poll(self, cursor: dict[str, Any] | None, *, read_budget: int | None = None) -> PollResult:
        """Return mentions newer than `cursor`. Read at most `read_budget` posts when it is given."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
