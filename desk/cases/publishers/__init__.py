"""Publishers, as the desk asks for them: the one for the source a case came from.

Each platform's publisher lives in its package (collectors/<platform>/publish.py,
built through the `collectors` registry); this module only finds the source in
the config and the data directory the desk keeps, hands back the publisher with
its errors in desk's tree (base.py), and names the deadline
(collectors/net/deadline.py) and the reply length limit under the names desk/
and the dashboard use.

A source marked `read_only: true` never gets one (`ReadOnlySource`); one without
posting credentials gets `NotConfigured` with the reason.

Only desk/cases/replies.py calls `publish`: it records the attempt before the call
and the result after, which is what makes a reply go out at most once.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

import collectors
from collectors.net import deadline
from collectors.platform import DEFAULT_REPLY_LIMIT
from desk.config.schema import HearkenConfig
from desk.cases.publishers.base import (DeskPublisher, NotConfigured, Posted, Publisher, PublishError, ReadOnlySource,
                                  Rejected, Target, Unknown, in_desk_terms)

__all__ = ["NotConfigured", "Posted", "Publisher", "PublishError", "ReadOnlySource", "Rejected", "Target",
           "Unknown", "data_dir", "deadline", "length_limit", "publisher_for", "can_post"]


def _source(cfg: HearkenConfig, source_name: str):
    for src in cfg.sources:
        if src.name == source_name:
            return src
    raise NotConfigured(f"source {source_name!r} is no longer in the configuration")


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
    """The publisher for a source. Raises ReadOnlySource or NotConfigured (with the reason)."""
    src = _source(cfg, source_name)
    env = dict(os.environ if env is None else env)
    with in_desk_terms():
        return DeskPublisher(collectors.publisher(src, accounts=list(cfg.accounts.get(src.type, [])), env=env,
                                                  data_dir=data_dir(cfg, env)))


def length_limit(platform: str, extra: Mapping[str, Any] | None = None) -> int:
    """The longest reply the platform takes, in characters (its package's `reply_limit` hook)."""
    try:
        return collectors.platform(platform).reply_limit(extra or {})
    except NotConfigured:
        return DEFAULT_REPLY_LIMIT  # a platform no longer installed: its mentions are still shown


def can_post(cfg: HearkenConfig, source_name: str, env: Mapping[str, str] | None = None) -> tuple[bool, str]:
    """(True, "") when a reply can be posted through this source, else (False, why not)."""
    try:
        pub = publisher_for(cfg, source_name, env)
    except (ReadOnlySource, NotConfigured) as exc:
        return False, str(exc)
    pub.close()
    return True, ""
