"""X (Twitter): recent search for the brand terms (collect.py) and replies (publish.py), through Tweepy.

X bills every post it returns, so an X source has a monthly read cap (`monthly_read_cap`): the desk keeps
this month's reads and passes what is left as the poll's read budget.
"""

from __future__ import annotations

from typing import Any

from collectors.platform import Platform, fixed_reply_limit
from collectors.x.settings import XSource

REPLY_LIMIT = 280  # characters in one post


def read_cap(settings: Any) -> int | None:
    return int(settings.monthly_read_cap)


PLATFORM = Platform(
    name="x", label="X", settings=XSource,
    collector="collectors.x.collect:XCollector", publisher="collectors.x.publish:build",
    reply_limit=fixed_reply_limit(REPLY_LIMIT), read_cap=read_cap,
    quiet_loggers=("tweepy", "oauthlib", "requests_oauthlib"),
)


def __getattr__(name: str):
    if name in ("make_client", "build_query"):  # imported here only when asked for: tweepy is heavy
        from collectors.x import collect

        return getattr(collect, name)
    raise AttributeError(name)
