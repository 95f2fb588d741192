"""Reddit: read new posts and comments of subreddits and site-wide search (collect.py), reply with a comment
(publish.py), both through PRAW."""

from __future__ import annotations

from collectors.platform import Platform, fixed_reply_limit
from collectors.reddit.settings import RedditSource

REPLY_LIMIT = 10000  # characters in one comment


PLATFORM = Platform(
    name="reddit", label="Reddit", settings=RedditSource,
    collector="collectors.reddit.collect:RedditCollector", publisher="collectors.reddit.publish:build",
    reply_limit=fixed_reply_limit(REPLY_LIMIT), quiet_loggers=("praw", "prawcore"),
)


def __getattr__(name: str):
    if name in ("make_reddit", "ratelimit_wait", "translate"):  # imported here only when asked for: praw is heavy
        from collectors.reddit import client

        return getattr(client, name)
    raise AttributeError(name)
