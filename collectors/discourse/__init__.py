"""Discourse forums over their JSON API: latest posts and search (collect.py), replies (publish.py)."""

from __future__ import annotations

from collectors.discourse.settings import DiscourseSource
from collectors.platform import Platform, fixed_reply_limit

REPLY_LIMIT = 32000  # Discourse's default max_post_length


PLATFORM = Platform(
    name="discourse", label="Discourse", settings=DiscourseSource,
    collector="collectors.discourse.collect:DiscourseCollector", publisher="collectors.discourse.publish:build",
    reply_limit=fixed_reply_limit(REPLY_LIMIT),
    ids_can_be_reused=True,  # topic and post numbers of a forum restored from a backup are given out again
)
