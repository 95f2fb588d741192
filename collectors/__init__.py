"""Collectors: one module per platform, each turning a platform's posts into `Mention`s.

`build()` makes the collector for one source's settings. A platform module is
imported only when a source of its type is configured, so a missing optional
library affects only that source.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence

from collectors.base import (
    AuthFailed,
    BadPayload,
    Collector,
    CollectorError,
    Mention,
    NotConfigured,
    PollResult,
    RateLimited,
    SetAside,
    TryLater,
)
from collectors.match import TermMatcher

__all__ = [
    "AuthFailed", "BadPayload", "Collector", "CollectorError", "Mention", "NotConfigured",
    "PollResult", "RateLimited", "SetAside", "TryLater", "TermMatcher", "build", "PLATFORM_OF_TYPE",
]

# source type -> (module, class)
_REGISTRY: dict[str, tuple[str, str]] = {
    "demo": ("collectors.demo", "DemoCollector"),
    "reddit": ("collectors.reddit", "RedditCollector"),
    "x": ("collectors.x", "XCollector"),
    "discourse": ("collectors.discourse", "DiscourseCollector"),
    "forum": ("collectors.forum", "ForumCollector"),
}

PLATFORM_OF_TYPE = {"demo": "demo", "reddit": "reddit", "x": "x", "discourse": "discourse", "forum": "forum"}


def build(settings, *, matcher: TermMatcher, own_accounts: Sequence[str] = (), env: Mapping[str, str] | None = None) -> Collector:
    """Return the collector for one source. Raises `NotConfigured` when its settings or credentials are missing."""
    try:
        module_name, class_name = _REGISTRY[settings.type]
    except KeyError:
        raise NotConfigured(f"unknown source type {settings.type!r}") from None
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise NotConfigured(f"the {settings.type} collector is not available: {exc}") from exc
    import os

    return cls(settings, matcher=matcher, own_accounts=list(own_accounts), env=dict(os.environ if env is None else env))
