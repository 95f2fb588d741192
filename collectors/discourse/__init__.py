"""Discourse forums over their JSON API: latest posts and search (collect.py), replies (publish.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from collectors.discourse.settings import DiscourseSource
from collectors.platform import Platform

REPLY_LIMIT = 32000  # Discourse's default max_post_length


def reply_limit(extra: Mapping[str, Any]) -> int:
    return REPLY_LIMIT


PLATFORM = Platform(
    name="discourse", label="Discourse", settings=DiscourseSource,
    collector="collectors.discourse.collect:DiscourseCollector", publisher="collectors.discourse.publish:build",
    reply_limit=reply_limit,
)
