"""Reddit publisher (praw): a reply is a comment on the submission (t3_) or comment (t1_) we found.

Posting needs the script app's user credentials (username_env/password_env);
without them the source is read-only. A reply's id is the comment's fullname
(t1_...), as the collector gives its mentions.

To find our reply after a lost answer, our account's comments are read
newest first (/user/NAME/comments, 100 a page, paged with `after` by PRAW's
listing) back to the attempt time less the clock-skew allowance: a comment
whose parent is the post we answered and whose text is what we sent is ours.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import praw
import prawcore
import requests
from praw.exceptions import PRAWException, RedditAPIException
from prawcore.sessions import FiniteRetryStrategy

from collectors.errors import NotConfigured, Rejected, Unknown
from collectors.net.requests_adapter import mount_on, post_failure
from collectors.posting import Posted, Target, same_text
from collectors.reddit.client import SITE, make_reddit

LISTING_LIMIT = 1000  # Reddit serves at most this many items of a listing


@dataclass(frozen=True)
class _NoRetry(FiniteRetryStrategy):
    """prawcore retries a request after a 5xx or a read timeout, a POST included: a comment Reddit did make
    would be made again. Publishing tries once; an unclear answer becomes `Unknown` and is checked instead."""

    retries: int = 0

    def _sleep_seconds(self) -> float | None:
        return None


def _without_retries(reddit: praw.Reddit) -> None:
    for name in ("_core", "_authorized_core", "_read_only_core"):
        session = getattr(reddit, name, None)
        if session is not None and hasattr(session, "_retry_strategy_class"):
            session._retry_strategy_class = _NoRetry

# prawcore errors after which the comment certainly was not made
_REFUSED = (prawcore.exceptions.TooManyRequests, prawcore.exceptions.Forbidden, prawcore.exceptions.NotFound,
            prawcore.exceptions.BadRequest, prawcore.exceptions.OAuthException, prawcore.exceptions.InvalidToken,
            prawcore.exceptions.UnavailableForLegalReasons)


class RedditPublisher:
    platform = "reddit"

    def __init__(self, reddit: praw.Reddit, username: str) -> None:
        self.reddit = reddit
        self.username = username

    @staticmethod
    def fullname(target: Target) -> str:
        name = str(target.extra.get("fullname") or target.external_id)
        if not name.startswith(("t1_", "t3_")):
            raise Rejected(f"{name!r} is not a Reddit submission or comment id")
        return name

    def publish(self, target: Target, text: str) -> Posted:
        name = self.fullname(target)
        kind, _, rid = name.partition("_")
        thing = self.reddit.comment(rid) if kind == "t1" else self.reddit.submission(rid)
        try:
            comment = thing.reply(text)
        except RedditAPIException as exc:  # e.g. RATELIMIT, THREAD_LOCKED, TOO_OLD: refused
            raise Rejected("Reddit refused the comment: " + "; ".join(
                f"{i.error_type}: {i.message}" for i in exc.items)) from exc
        except _REFUSED as exc:
            raise Rejected(f"Reddit refused the comment ({type(exc).__name__})") from exc
        except prawcore.exceptions.RequestException as exc:
            raise post_failure(exc, "Reddit", f"{type(exc).__name__}: {exc}") from exc
        except (prawcore.exceptions.PrawcoreException, PRAWException) as exc:
            raise Unknown(f"no clear answer from Reddit ({type(exc).__name__}: {exc})") from exc
        if comment is None:
            raise Unknown("Reddit accepted the request but returned no comment")
        return Posted(comment.fullname, _link(comment))

    def find_ours(self, target: Target, text: str, since: datetime, skew: timedelta) -> Posted | None:
        name = self.fullname(target)
        cutoff = since - skew
        read = 0
        for c in self.reddit.redditor(self.username).comments.new(limit=None):
            read += 1
            created = datetime.fromtimestamp(float(c.created_utc), timezone.utc)
            if created < cutoff:
                return None  # older than the attempt: everything further back is too
            if c.parent_id == name and same_text(str(getattr(c, "body", "")), text):
                return Posted(c.fullname, _link(c))
        if read >= LISTING_LIMIT:
            raise Unknown(f"Reddit lists only our newest {LISTING_LIMIT} comments and all are newer than the "
                          "attempt; cannot tell whether the reply is up")
        return None

    def close(self) -> None:
        pass


def _link(comment) -> str:
    """The comment's address, from its permalink or (older API answers have none) its thread and id."""
    data = vars(comment)
    if data.get("permalink"):
        return SITE + data["permalink"]
    link_id = str(data.get("link_id") or "t3_")
    return f"{SITE}/comments/{link_id[3:]}/_/{comment.id}/"


def build(settings: Any, *, accounts: list[str], env: Mapping[str, str], data_dir: Path) -> RedditPublisher:
    """The publisher posting as the source's Reddit user (username_env/password_env)."""
    session = requests.Session()
    mount_on(session)
    reddit = make_reddit(settings, dict(env), session=session)  # NotConfigured without the app's credentials
    username = env.get(settings.username_env)
    if reddit.read_only or not username:
        raise NotConfigured(f"source {settings.name!r} has no Reddit user credentials "
                            f"({settings.username_env}/{settings.password_env}) to post with")
    reddit.validate_on_submit = True
    _without_retries(reddit)
    return RedditPublisher(reddit, username)
