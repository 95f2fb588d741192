"""Collectors: one package per platform, and the registry that finds them.

Each platform is a package `collectors/<name>/` whose `__init__.py` exports
`PLATFORM`, a `collectors.platform.Platform` (settings model, collector,
publisher, hooks); collectors/README.md shows how to add one. This module is
the one registry: it finds every such package and derives from them what the
rest of Hearken needs (the platforms, the union of source settings the config
validates, the collector and publisher of a source). It names no platform.

A platform's collector and publisher modules are imported only when a source
of its type is built, so a missing optional library affects only that source. A source's `type` is
its platform's name (the key of `accounts:` and `Mention.platform` too).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Union

from pydantic import Field

from collectors.base import Collector, Mention, PollResult, SetAside
from collectors.errors import (
    AuthFailed, BadPayload, CollectorError, NotConfigured, PlatformError, PublishError, RateLimited,
    ReadOnlySource, Rejected, TryLater, Unknown,
)
from collectors.match import TermMatcher
from collectors.platform import Platform
from collectors.posting import Posted, Publisher, Target

__all__ = [
    "AuthFailed", "BadPayload", "Collector", "CollectorError", "Mention", "NotConfigured", "PlatformError",
    "PollResult", "PublishError", "RateLimited", "ReadOnlySource", "Rejected", "SetAside", "TryLater", "Unknown",
    "TermMatcher", "Platform", "Posted", "Publisher", "Target", "PLATFORMS", "NAMES", "SourceSettings",
    "platform", "build", "publisher",
]

_NOT_PLATFORMS = {"net"}  # shared plumbing, not a platform


def _discover() -> dict[str, Platform]:
    found: dict[str, Platform] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if not info.ispkg or info.name in _NOT_PLATFORMS:
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        plat = getattr(module, "PLATFORM", None)
        if not isinstance(plat, Platform):
            raise TypeError(f"collectors/{info.name}/__init__.py must define PLATFORM = Platform(...)")
        if plat.name in found:
            raise TypeError(f"two platform packages are named {plat.name!r}")
        found[plat.name] = plat
    return found


PLATFORMS: dict[str, Platform] = _discover()
NAMES: tuple[str, ...] = tuple(PLATFORMS)
SourceSettings = Annotated[Union[tuple(p.settings for p in PLATFORMS.values())],  # type: ignore[valid-type]
                           Field(discriminator="type")]


def platform(name: str) -> Platform:
    """The platform of a source type (or of a mention's `platform`). Raises NotConfigured for one that is unknown."""
    try:
        return PLATFORMS[name]
    except KeyError:
        raise NotConfigured(f"unknown source type {name!r} (known: {', '.join(NAMES)})") from None


def build(settings: Any, *, matcher: TermMatcher, own_accounts: Sequence[str] = (),
          env: Mapping[str, str] | None = None) -> Collector:
    """The collector for one source. Raises `NotConfigured` when its settings or credentials are missing."""
    return platform(settings.type).collect(settings, matcher=matcher, own_accounts=own_accounts, env=env)


def publisher(settings: Any, *, accounts: Sequence[str] = (), env: Mapping[str, str] | None = None,
              data_dir: Path | None = None) -> Publisher:
    """The publisher for one source. Raises `ReadOnlySource` or `NotConfigured` (with the reason)."""
    return platform(settings.type).publish(settings, accounts=accounts, env=env, data_dir=data_dir)
