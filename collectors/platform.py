"""`Platform`: everything the desk may ask of one platform, the object each platform package exports.

A platform package (collectors/<name>/, see collectors/README.md) defines
`PLATFORM = Platform(...)` in its `__init__.py`, importing nothing heavier
than its settings model: the collector and publisher modules are named by
path and imported only when a source of that type is built, so a missing
optional library (praw, tweepy) affects only that platform's sources.

The hooks are plain functions with defaults that suit most platforms; a
platform overrides only what differs (X: a 280-character reply, a monthly
read cap). The desk never tests a platform's name: it asks its object.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from collectors.errors import NotConfigured, ReadOnlySource
from collectors.match import TermMatcher

DEFAULT_REPLY_LIMIT = 10000


def _reply_limit(extra: Mapping[str, Any]) -> int:
    return DEFAULT_REPLY_LIMIT


def fixed_reply_limit(characters: int) -> Callable[[Mapping[str, Any]], int]:
    """A `reply_limit` hook for a platform whose every reply may be up to `characters` long."""
    def reply_limit(extra: Mapping[str, Any]) -> int:
        return characters

    return reply_limit


def _no_cap(settings: Any) -> int | None:
    return None


def answers_us(extra: Mapping[str, Any]) -> bool:
    """The default meaning of "an answer to us": the collector flagged the mention `reply_to_own`."""
    return bool((extra or {}).get("reply_to_own"))


def _load(path: str) -> Any:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class Platform:
    """One platform: its name, settings model, where its reading and posting live, and its hooks.

    - `name`: the source `type` in the YAML, `Mention.platform`, and the key of `accounts:`.
    - `label`: how people call it ("X", "Reddit").
    - `settings`: the pydantic model of one source (a `SourceBase` with `type: Literal[name]`).
    - `collector`: "module:Class" of the collector, built with (settings, matcher=, own_accounts=, env=).
    - `publisher`: "module:function" building a `Publisher` from (settings, accounts=, env=, data_dir=);
      None when Hearken cannot post there (staff reply on the platform and record it).
    - `reply_limit(extra)`: the longest reply, in characters, to the mention with this `extra`.
    - `read_cap(settings)`: posts one source may read per calendar month (a billed API), or None.
    - `answers_us(extra)`: whether the mention with this `extra` answers one of our accounts.
    - `ids_can_be_reused`: the platform may give an id it gave one post to another later (a forum
      restored from a backup, or moved, numbers again); the store then tells posts under one id apart
      by author and time (collectors/identity.py). Where ids are for ever (Reddit, X) it stays False,
      so a post whose author became "[deleted]" is still the post stored before.
    - `quiet_loggers`: loggers of the platform's own client libraries that log headers, tokens or bodies at
      DEBUG; `hearken --verbose` keeps them at WARNING (desk/logs.py).
    """

    name: str
    label: str
    settings: type
    collector: str
    publisher: str | None = None
    reply_limit: Callable[[Mapping[str, Any]], int] = _reply_limit
    read_cap: Callable[[Any], int | None] = _no_cap
    answers_us: Callable[[Mapping[str, Any]], bool] = answers_us
    ids_can_be_reused: bool = False
    quiet_loggers: tuple[str, ...] = ()

    @property
    def can_post(self) -> bool:
        return self.publisher is not None

    def collect(self, settings: Any, *, matcher: TermMatcher, own_accounts: Sequence[str] = (),
                env: Mapping[str, str] | None = None) -> Any:
        """The collector for one source. Raises `NotConfigured` when its settings, credentials or library are missing."""
        try:
            cls = _load(self.collector)
        except (ImportError, AttributeError) as exc:
            raise NotConfigured(f"the {self.label} collector is not available: {exc}") from exc
        return cls(settings, matcher=matcher, own_accounts=list(own_accounts),
                   env=dict(os.environ if env is None else env))

    def publish(self, settings: Any, *, accounts: Sequence[str] = (), env: Mapping[str, str] | None = None,
                data_dir: Path | None = None) -> Any:
        """The publisher for one source. Raises `ReadOnlySource` or `NotConfigured`, with the reason."""
        if getattr(settings, "read_only", False):
            raise ReadOnlySource(f"source {settings.name!r} is read-only: Hearken never posts through it")
        if self.publisher is None:
            raise NotConfigured(f"Hearken cannot post on {self.label} sources; reply there and record it as "
                                "'replied elsewhere'")
        try:
            build = _load(self.publisher)
        except (ImportError, AttributeError) as exc:
            raise NotConfigured(f"the {self.label} publisher is not available: {exc}") from exc
        return build(settings, accounts=list(accounts), env=dict(os.environ if env is None else env),
                     data_dir=Path(data_dir) if data_dir is not None else Path("var"))

    def read_budget(self, settings: Any, used: int) -> int | None:
        """Posts this source may still read this month (`used` read so far), or None when it has no cap."""
        cap = self.read_cap(settings)
        return None if cap is None else max(0, cap - used)
