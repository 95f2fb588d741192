"""X publisher (tweepy, API v2): a reply is create_tweet with in_reply_to_tweet_id.

Posting needs the four user-context keys (api_key_env, api_secret_env,
access_token_env, access_secret_env). To find our reply after a lost answer,
our account's timeline since the customer's post is read (GET
/2/users/:id/tweets, which shows a new post at once, unlike search) and a
post replying to that tweet is taken as ours.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

import requests
import tweepy

from collectors.x import make_client
from desk.config import HearkenConfig
from desk.publishers.base import NotConfigured, Posted, Rejected, Target, Unknown

SKEW = timedelta(seconds=60)
_REFUSED = (tweepy.BadRequest, tweepy.Unauthorized, tweepy.Forbidden, tweepy.NotFound, tweepy.TooManyRequests)


class XPublisher:
    platform = "x"

    def __init__(self, client: tweepy.Client, account: str) -> None:
        self.client = client
        self.account = account.lstrip("@")

    def publish(self, target: Target, text: str) -> Posted:
        try:
            r = self.client.create_tweet(text=text, in_reply_to_tweet_id=target.external_id, user_auth=True)
        except _REFUSED as exc:
            raise Rejected(f"X refused the post ({type(exc).__name__}: {'; '.join(exc.api_messages) or exc})") from exc
        except requests.exceptions.ConnectTimeout as exc:
            raise Rejected(f"could not reach X: {exc}") from exc
        except (tweepy.TwitterServerError, requests.exceptions.RequestException) as exc:
            raise Unknown(f"no clear answer from X ({type(exc).__name__})") from exc
        try:
            tweet_id = str((r.json() if isinstance(r, requests.Response) else {"data": r.data})["data"]["id"])
        except (ValueError, KeyError, TypeError) as exc:
            raise Unknown("X answered without the new post's id") from exc
        return Posted(tweet_id, f"https://x.com/{self.account}/status/{tweet_id}")

    def find_ours(self, target: Target, text: str, since: datetime) -> Posted | None:
        me = _json(self.client.get_me(user_auth=True))["data"]
        page = _json(self.client.get_users_tweets(
            me["id"], since_id=target.external_id, max_results=100, user_auth=True,
            tweet_fields=["created_at", "referenced_tweets", "conversation_id"]))
        for tweet in page.get("data") or []:
            refs = {r.get("type"): str(r.get("id")) for r in tweet.get("referenced_tweets") or []}
            created = datetime.fromisoformat(str(tweet.get("created_at", "")).replace("Z", "+00:00"))
            if refs.get("replied_to") == target.external_id and created >= since - SKEW:
                return Posted(str(tweet["id"]), f"https://x.com/{me.get('username') or self.account}/status/{tweet['id']}")
        return None

    def close(self) -> None:
        self.client.session.close()


def _json(r) -> dict:
    return r.json() if isinstance(r, requests.Response) else {"data": r.data}


def build(cfg: HearkenConfig, src, env: Mapping[str, str]) -> XPublisher:
    names = (src.api_key_env, src.api_secret_env, src.access_token_env, src.access_secret_env)
    missing = [n for n in names if not env.get(n)]
    if missing:
        raise NotConfigured(f"source {src.name!r} cannot post: environment variable(s) {', '.join(missing)} not set")
    client = make_client(env.get(src.bearer_token_env) or "", src.base_url,
                         consumer_key=env[src.api_key_env], consumer_secret=env[src.api_secret_env],
                         access_token=env[src.access_token_env], access_token_secret=env[src.access_secret_env])
    account = (cfg.accounts.get("x") or ["me"])[0]
    return XPublisher(client, account)
