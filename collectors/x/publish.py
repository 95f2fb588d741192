"""X publisher (tweepy, API v2): a reply is create_tweet with in_reply_to_tweet_id.

Posting needs the four user-context keys (api_key_env, api_secret_env,
access_token_env, access_secret_env). A reply's id is the post id, as the
collector gives its mentions.

To find our reply after a lost answer, our account's timeline (GET
/2/users/:id/tweets, which shows a new post at once, unlike search) is read
page by page (`pagination_token`, 100 a page) from the newest post back to
the attempt time less the clock-skew allowance (`start_time`): a post
replying to that tweet whose text is what we sent is ours.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import requests
import tweepy

from collectors.errors import NotConfigured, Rejected, Unknown
from collectors.net.requests_adapter import mount_on, post_failure
from collectors.posting import Posted, Target, same_text
from collectors.x.collect import make_client

_REFUSED = (tweepy.BadRequest, tweepy.Unauthorized, tweepy.Forbidden, tweepy.NotFound, tweepy.TooManyRequests)
TIMELINE_LIMIT = 3200  # X serves at most this many of an account's newest posts


class XPublisher:
    platform = "x"

    def __init__(self, client: tweepy.Client, account: str) -> None:
        self.client = client
        self.account = account.lstrip("@")
        mount_on(client.session)

    def publish(self, target: Target, text: str) -> Posted:
        try:
            r = self.client.create_tweet(text=text, in_reply_to_tweet_id=target.external_id, user_auth=True)
        except _REFUSED as exc:
            raise Rejected(f"X refused the post ({type(exc).__name__}: {'; '.join(exc.api_messages) or exc})") from exc
        except requests.exceptions.RequestException as exc:
            raise post_failure(exc, "X", type(exc).__name__) from exc
        except tweepy.HTTPException as exc:  # a 5xx, or a 3xx (never followed on a POST), or anything else undocumented
            status = exc.response.status_code if exc.response is not None else "?"
            raise Unknown(f"no clear answer from X (HTTP {status}); it may have been posted") from exc
        try:
            tweet_id = str(_json(r)["data"]["id"])
        except (ValueError, KeyError, TypeError) as exc:
            raise Unknown("X answered without the new post's id") from exc
        return Posted(tweet_id, f"https://x.com/{self.account}/status/{tweet_id}")

    def find_ours(self, target: Target, text: str, since: datetime, skew: timedelta) -> Posted | None:
        cutoff = since - skew
        me = _json(self.client.get_me(user_auth=True))["data"]
        handle = me.get("username") or self.account
        token: str | None = None
        read = 0
        while True:
            page = _json(self.client.get_users_tweets(
                me["id"], max_results=100, pagination_token=token, start_time=cutoff.astimezone(timezone.utc),
                tweet_fields=["created_at", "referenced_tweets", "conversation_id"], user_auth=True))
            tweets = page.get("data") or []
            read += len(tweets)
            for tweet in tweets:
                refs = {r.get("type"): str(r.get("id")) for r in tweet.get("referenced_tweets") or []}
                created = _when(tweet)
                if created is not None and created < cutoff:
                    return None  # older than the attempt: everything further back is too
                if refs.get("replied_to") == target.external_id and same_text(str(tweet.get("text", "")), text):
                    return Posted(str(tweet["id"]), f"https://x.com/{handle}/status/{tweet['id']}")
            token = (page.get("meta") or {}).get("next_token")
            if not token or not tweets:
                if read >= TIMELINE_LIMIT:
                    raise Unknown(f"X shows only our newest {TIMELINE_LIMIT} posts and all are newer than the "
                                  "attempt; cannot tell whether the reply is up")
                return None

    def close(self) -> None:
        self.client.session.close()


def _when(tweet: dict) -> datetime | None:
    try:
        return datetime.fromisoformat(str(tweet.get("created_at", "")).replace("Z", "+00:00"))
    except ValueError:
        return None


def _json(r) -> dict:
    return r.json() if isinstance(r, requests.Response) else {"data": r.data}


def build(settings: Any, *, accounts: list[str], env: Mapping[str, str], data_dir: Path) -> XPublisher:
    """The publisher posting with the source's four user-context keys, as our first X account."""
    names = (settings.api_key_env, settings.api_secret_env, settings.access_token_env, settings.access_secret_env)
    missing = [n for n in names if not env.get(n)]
    if missing:
        raise NotConfigured(f"source {settings.name!r} cannot post: environment variable(s) {', '.join(missing)} not set")
    client = make_client(env.get(settings.bearer_token_env) or "", settings.base_url,
                         consumer_key=env[settings.api_key_env], consumer_secret=env[settings.api_secret_env],
                         access_token=env[settings.access_token_env],
                         access_token_secret=env[settings.access_secret_env])
    return XPublisher(client, (accounts or ["me"])[0])
