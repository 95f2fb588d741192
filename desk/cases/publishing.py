"""Posting, as the desk asks for it: the publisher for the source a case came from, with its errors in
desk's tree.

Each platform's publisher lives in its package (collectors/<platform>/publish.py) and is built through
the `collectors` registry; this module finds the source in the config and the data directory the desk
keeps (beside the SQLite database: the demo platform's reply file lives there), and names the deadline
(collectors/net/deadline.py) and the reply length limit (the platform's `reply_limit` hook). It names no
platform. A source marked `read_only: true` never gets a publisher (`ReadOnly`); one without
posting credentials gets `CannotPost` with the reason.

The error classes answer the one question that matters for exactly-once: did the reply go out?

    PostFailed           anything that went wrong (a desk.errors.PostingError)
     +-- NotPosted       the platform refused it, or it was never sent: nothing was posted, a retry is safe
     +-- MaybePosted     it may have been posted (timeout, connection lost, 5xx): check the platform first
     +-- CannotPost      no credentials to post with (nothing was sent)
     +-- ReadOnly        the source is read-only (nothing was sent)

A platform's publisher raises their counterparts from collectors/errors.py (Rejected, Unknown,
NotConfigured, ReadOnlySource), which imports nothing of desk/;
`DeskPublisher` turns them into these before they reach desk/cases/replies.py or a person, so the
dashboard catches one root (desk.errors.HearkenError). Only desk/cases/replies.py calls `publish`: it
records the attempt before the call and the result after, which is what makes a reply go out at most once.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

import collectors
from collectors import errors as platform_errors
from collectors.net import deadline
from collectors.platform import DEFAULT_REPLY_LIMIT
from collectors.posting import Posted, Publisher, Target
from desk.config.schema import HearkenConfig
from desk.errors import PostingError

__all__ = ["CannotPost", "Posted", "Publisher", "PostFailed", "ReadOnly", "NotPosted", "Target",
           "MaybePosted", "data_dir", "deadline", "length_limit", "publisher_for", "can_post"]

T = TypeVar("T")


class PostFailed(PostingError):
    """Posting failed; `reason` is one line a person can act on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NotPosted(PostFailed):
    """Definitely not posted (refused, rate-limited, or never sent)."""


class MaybePosted(PostFailed):
    """Maybe posted: the answer was lost. Look for our reply on the platform before trying again."""


class CannotPost(PostFailed):
    """The source has no credentials to post with."""


class ReadOnly(PostFailed):
    """The source is read-only; Hearken never posts through it."""


_AS_DESK: tuple[tuple[type[platform_errors.PlatformError], type[PostFailed]], ...] = (
    (platform_errors.ReadOnlySource, ReadOnly), (platform_errors.NotConfigured, CannotPost),
    (platform_errors.Rejected, NotPosted), (platform_errors.Unknown, MaybePosted))


@contextmanager
def in_desk_terms() -> Iterator[None]:
    """A platform package's publish error raised inside the block comes out as the desk's of the same kind
    (any other PlatformError as MaybePosted: whether it went out is not known)."""
    try:
        yield
    except platform_errors.PlatformError as exc:
        kind = next((desk for plat, desk in _AS_DESK if isinstance(exc, plat)), MaybePosted)
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


def _source(cfg: HearkenConfig, source_name: str):
    for src in cfg.sources:
        if src.name == source_name:
            return src
    raise CannotPost(f"source {source_name!r} is no longer in the configuration")


def data_dir(cfg: HearkenConfig, env: Mapping[str, str]) -> Path:
    """Where a publisher may keep files (the demo platform's replies): beside the SQLite database, else var/."""
    try:
        url = make_url(cfg.database_url(dict(env)))
    except (ArgumentError, ValueError):  # a URL that does not parse: check-config names it, nothing runs on it
        return Path("var")
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database).resolve().parent
    return Path("var")


def publisher_for(cfg: HearkenConfig, source_name: str, env: Mapping[str, str] | None = None) -> Publisher:
    """The publisher for a source. Raises ReadOnly or CannotPost (with the reason)."""
    src = _source(cfg, source_name)
    env = dict(os.environ if env is None else env)
    with in_desk_terms():
        return DeskPublisher(collectors.publisher(src, accounts=list(cfg.accounts.get(src.type, [])), env=env,
                                                  data_dir=data_dir(cfg, env)))


def length_limit(platform: str, extra: Mapping[str, Any] | None = None) -> int:
    """The longest reply the platform takes, in characters (its package's `reply_limit` hook)."""
    try:
        return collectors.platform(platform).reply_limit(extra or {})
    except CannotPost:
        return DEFAULT_REPLY_LIMIT  # a platform no longer installed: its mentions are still shown


def can_post(cfg: HearkenConfig, source_name: str, env: Mapping[str, str] | None = None) -> tuple[bool, str]:
    """(True, "") when a reply can be posted through this source, else (False, why not)."""
    try:
        pub = publisher_for(cfg, source_name, env)
    except (ReadOnly, CannotPost) as exc:
        return False, str(exc)
    pub.close()
    return True, ""
