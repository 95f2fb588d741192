"""Publishers: one per platform, each posts a public reply in a thread and can find our earlier replies.

`publisher_for(cfg, source_name)` builds the publisher for the source a case
came from. A source marked `read_only: true` never gets one (`ReadOnlySource`);
one without posting credentials gets `NotConfigured` with the reason.

Only desk/replies.py calls `publish`: it records the attempt before the call
and the result after, which is what makes a reply go out at most once.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping

from desk.config import HearkenConfig
from desk.publishers.base import (
    NotConfigured,
    Posted,
    Publisher,
    PublishError,
    ReadOnlySource,
    Rejected,
    Target,
    Unknown,
    length_limit,
)

__all__ = ["NotConfigured", "Posted", "Publisher", "PublishError", "ReadOnlySource", "Rejected", "Target",
           "Unknown", "length_limit", "publisher_for", "can_post"]

_MODULES = {"demo": "desk.publishers.demo", "reddit": "desk.publishers.reddit", "x": "desk.publishers.x",
            "discourse": "desk.publishers.discourse"}


def _source(cfg: HearkenConfig, source_name: str):
    for src in cfg.sources:
        if src.name == source_name:
            return src
    raise NotConfigured(f"source {source_name!r} is no longer in the configuration")


def publisher_for(cfg: HearkenConfig, source_name: str, env: Mapping[str, str] | None = None) -> Publisher:
    """The publisher for a source. Raises ReadOnlySource or NotConfigured (with the reason)."""
    src = _source(cfg, source_name)
    if src.read_only:
        raise ReadOnlySource(f"source {source_name!r} is read-only: Hearken never posts through it")
    module_name = _MODULES.get(src.type)
    if module_name is None:
        raise NotConfigured(f"Hearken cannot post on {src.type} sources; reply there and record it as 'replied elsewhere'")
    module = importlib.import_module(module_name)
    return module.build(cfg, src, dict(os.environ if env is None else env))


def can_post(cfg: HearkenConfig, source_name: str, env: Mapping[str, str] | None = None) -> tuple[bool, str]:
    """(True, "") when a reply can be posted through this source, else (False, why not)."""
    try:
        pub = publisher_for(cfg, source_name, env)
    except (ReadOnlySource, NotConfigured) as exc:
        return False, str(exc)
    pub.close()
    return True, ""
