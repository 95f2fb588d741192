"""What the desk's publishers share: the errors that decide a retry, in desk's tree, and the platform's
publisher seen through them.

The error classes answer the one question that matters for exactly-once:
did the reply go out?

    PublishError        anything that went wrong (a desk.errors.PostingError)
     +-- Rejected       the platform refused it, or it was never sent: nothing was posted, a retry is safe
     +-- Unknown        it may have been posted (timeout, connection lost, 5xx): check the platform first
     +-- NotConfigured  no credentials to post with (nothing was sent)
     +-- ReadOnlySource the source is read-only (nothing was sent)

A platform's publisher (collectors/<platform>/publish.py) raises the same four from collectors/errors.py,
which imports nothing of desk/; `DeskPublisher` turns them into these before they reach desk/cases/replies.py or
a person, so the dashboard catches one root (desk.errors.HearkenError).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, TypeVar

from collectors import errors as platform_errors
from collectors.posting import Posted, Publisher, Target, same_text  # noqa: F401 - the desk's names for them
from desk.errors import PostingError

T = TypeVar("T")


class PublishError(PostingError):
    """Posting failed; `reason` is one line a person can act on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Rejected(PublishError):
    """Definitely not posted (refused, rate-limited, or never sent)."""


class Unknown(PublishError):
    """Maybe posted: the answer was lost. Look for our reply on the platform before trying again."""


class NotConfigured(PublishError):
    """The source has no credentials to post with."""


class ReadOnlySource(PublishError):
    """The source is read-only; Hearken never posts through it."""


_AS_DESK: tuple[tuple[type[platform_errors.PlatformError], type[PublishError]], ...] = (
    (platform_errors.ReadOnlySource, ReadOnlySource), (platform_errors.NotConfigured, NotConfigured),
    (platform_errors.Rejected, Rejected), (platform_errors.Unknown, Unknown))


@contextmanager
def in_desk_terms() -> Iterator[None]:
    """A platform package's publish error raised inside the block comes out as the desk's of the same kind
    (any other PlatformError as Unknown: whether it went out is not known)."""
    try:
        yield
    except platform_errors.PlatformError as exc:
        kind = next((desk for plat, desk in _AS_DESK if isinstance(exc, plat)), Unknown)
        raise kind(str(exc)) from exc


class DeskPublisher:
    """A platform's publisher whose errors are the desk's (`in_desk_terms`)."""

    def __init__(self, inner: Publisher) -> None:
        self._inner = inner
        self.platform = inner.platform

    def _call(self, fn: Callable[..., T], *args: Any) -> T:
        with in_desk_terms():
            return fn(*args)

    def publish(self, target: Target, text: str) -> Posted:
        return self._call(self._inner.publish, target, text)

    def find_ours(self, target: Target, text: str, since: datetime, skew: timedelta) -> Posted | None:
        return self._call(self._inner.find_ours, target, text, since, skew)

    def close(self) -> None:
        self._inner.close()
