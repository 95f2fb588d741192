"""X (Twitter) through tweepy's API v2 client: recent search for the brand terms.

One query per source, built from the terms: ``("acme" OR "acme corp" OR
to:acme_help) -"acme anvil" -is:retweet -from:acme_help`` plus the source's
own `query` operators. `to:` brings in answers to our accounts even when they
do not name the brand; `-from:` keeps our own posts out (and they are dropped
again here, as are retweets, in case the query was edited).

X bills every post it returns. The runner passes `read_budget` (the monthly
cap less this month's reads, kept in the database); the collector never asks
for more posts than the budget leaves and says so in `PollResult.notes` when
it stops at the cap. `reads` counts the posts in `data` of every page.

Paging: results come newest first. With a cursor the collector asks for
everything after `since_id`, following `next_token` until the pages end. If it
must stop early (`max_pages`, or the read cap), it keeps a backlog so that the
next poll continues downwards from the oldest post read (`until_id`) to the
old `since_id` before moving `since_id` up. Nothing in a burst is skipped.

Text: X writes ``&``, ``<`` and ``>`` as ``&amp;`` ``&lt;`` ``&gt;`` (the
recorded pages in ../shared/fixtures/x show it); they are read back before the
terms are matched, so "AT&T" matches. A post without a numeric id, a readable
time or an author is set aside with its JSON and the reason, the rest of the
page kept; the cursor moves past it.

Cursor: ``{"since_id": "1380242611781386245"}``, or with a backlog
``{"since_id": "...", "backlog": {"until_id": "...", "newest": "..."}}``.
The first poll ever reads one page, the newest: no backfill.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import requests
import tweepy

from collectors import clean, times
from collectors.base import (
    AuthFailed, BadPayload, Mention, NotConfigured, PollResult, RateLimited, SetAside, TryLater, collector_boundary,
)
from collectors.net.http import Limits
from collectors.net.responses import retry_after_seconds
from collectors.net.sessions import BoundedSession, LimitExceeded, RedirectRefused
from collectors.match import TermMatcher

PLATFORM = "x"
API = "https://api.twitter.com"
MIN_PAGE = 10  # X's smallest max_results
MAX_QUERY = 4096
TWEET_FIELDS = ["created_at", "author_id", "conversation_id", "in_reply_to_user_id", "referenced_tweets", "lang", "note_tweet"]
EXPANSIONS = ["author_id", "in_reply_to_user_id", "referenced_tweets.id"]
USER_FIELDS = ["username", "name"]
_TWEET_ID = re.compile(r"\d{1,20}")
_USERNAME = re.compile(r"\w{1,50}", re.ASCII)


class _RebasedSession(BoundedSession):
    """Sends tweepy's requests for api.twitter.com to another address (a test server)."""

    def __init__(self, base_url: str, limits: Limits | None = None) -> None:
        super().__init__(limits)
        self.base_url = base_url.rstrip("/")

    def request(self, method, url, *args, **kwargs):  # type: ignore[override]
        if isinstance(url, str) and url.startswith(API):
            url = self.base_url + url[len(API):]
        return super().request(method, url, *args, **kwargs)


def _quote(term: str) -> str:
    return '"' + term.replace('"', "") + '"'


def build_query(terms: list[str], exclusions: list[str], own: list[str], extra: str = "") -> str:
    """The X search query for these terms, exclusions and own accounts."""
    wanted = [_quote(t) for t in terms] + [f"to:{a}" for a in own]
    parts = ["(" + " OR ".join(wanted) + ")" if len(wanted) > 1 else wanted[0]]
    parts += [f"-{_quote(x)}" for x in exclusions]
    parts.append("-is:retweet")
    parts += [f"-from:{a}" for a in own]
    if extra.strip():
        parts.append(extra.strip())
    return " ".join(parts)


def make_client(bearer_token: str, base_url: str | None = None, *, limits: Limits | None = None,
                **user_keys: str) -> tweepy.Client:
    """A tweepy v2 client that raises on rate limits (never sleeps), returns raw responses, and whose
    requests are bounded (collectors/net/sessions.py: deadline, byte cap, no redirect off X)."""
    client = tweepy.Client(bearer_token=bearer_token, wait_on_rate_limit=False, return_type=requests.Response, **user_keys)
    client.session = _RebasedSession(base_url, limits) if base_url else BoundedSession(limits)
    return client


def _required(tweet: dict[str, Any], name: str) -> Any:
    if tweet.get(name) is None:
        raise ValueError(f"no {name!r} field (were tweet.fields or expansions dropped from the request?)")
    return tweet[name]


class XCollector:
    platform: ClassVar[str] = PLATFORM

    def __init__(self, settings: Any, *, matcher: TermMatcher, own_accounts: list[str], env: dict[str, str]) -> None:
        self.settings = settings
        self.name = settings.name
        self.matcher = matcher
        self.own = [a.lstrip("@") for a in own_accounts if a.strip("@ ")]
        self.own_folded = {a.casefold() for a in self.own}
        token = env.get(settings.bearer_token_env)
        if not token:
            raise NotConfigured(f"{self.name}: environment variable {settings.bearer_token_env} (X bearer token) is not set")
        if not matcher.terms:
            raise NotConfigured(f"{self.name}: no terms to search X for")
        self.query = build_query(matcher.terms, matcher.exclusions, self.own, settings.query)
        if len(self.query) > MAX_QUERY:
            raise NotConfigured(f"{self.name}: the X query is {len(self.query)} characters, more than X accepts ({MAX_QUERY})")
        self.client = make_client(token, settings.base_url, limits=Limits.of(settings))

    # -- one page -------------------------------------------------------------

    def _page(self, max_results: int, **params: Any) -> tuple[dict[str, Any], str, Any]:
        url = API + "/2/tweets/search/recent"
        try:
            response = self.client.search_recent_tweets(
                self.query, max_results=max_results, expansions=EXPANSIONS, tweet_fields=TWEET_FIELDS,
                user_fields=USER_FIELDS, **{k: v for k, v in params.items() if v is not None})
        except tweepy.TooManyRequests as exc:
            wait = retry_after_seconds(exc.response.headers)
            body = exc.response.text[:300] if exc.response is not None else ""
            if "UsageCapExceeded" in body or "usage-capped" in body:
                raise RateLimited(f"X says this app's monthly post cap is used up: {' '.join(exc.api_messages) or body}",
                                  url=exc.response.url, retry_after=wait) from exc
            when = f"; the limit resets in {wait:.0f}s" if wait is not None else ""
            raise RateLimited(f"X rate limit reached for recent search (HTTP 429){when}", url=exc.response.url,
                              retry_after=wait) from exc
        except (tweepy.Unauthorized, tweepy.Forbidden) as exc:
            detail = "; ".join(exc.api_messages) or exc.response.reason
            raise AuthFailed(f"X refused the bearer token (HTTP {exc.response.status_code}: {detail})",
                             url=exc.response.url) from exc
        except tweepy.BadRequest as exc:
            raise TryLater(f"X rejected the search: {'; '.join(exc.api_messages)} (query: {self.query})",
                           url=exc.response.url, retry_after=3600) from exc
        except tweepy.TwitterServerError as exc:
            raise TryLater(f"X had a server error (HTTP {exc.response.status_code})", url=exc.response.url) from exc
        except tweepy.HTTPException as exc:
            raise TryLater(f"X answered HTTP {exc.response.status_code}", url=exc.response.url) from exc
        except (LimitExceeded, RedirectRefused) as exc:
            raise TryLater(f"X: {exc}", url=url) from exc
        except requests.RequestException as exc:
            raise TryLater(f"X could not be reached: {exc}", url=url) from exc
        url = response.url or url
        try:
            payload = clean.loads_json(response.content)
        except ValueError as exc:
            raise BadPayload(f"X sent something that is not JSON: {exc}", url=url) from exc
        if not isinstance(payload, dict) or not isinstance(payload.get("data", []), list) \
                or not isinstance(payload.get("meta", {}), dict):
            raise BadPayload("X sent a search page without the expected data/meta objects", url=url)
        return payload, url, response.headers

    def _mentions(self, payload: dict[str, Any]) -> tuple[list[Mention], list[SetAside]]:
        """The page's posts as mentions; a post that cannot be read is set aside, the others are kept."""
        includes = payload.get("includes") if isinstance(payload.get("includes"), dict) else {}
        users = {str(u.get("id")): u for u in includes.get("users") or [] if isinstance(u, dict)}
        own_ids = {uid for uid, u in users.items() if str(u.get("username", "")).casefold() in self.own_folded}
        return clean.guarded_items(list(payload.get("data") or []), lambda t: self._mention(t, users, own_ids),
                                   platform=PLATFORM, source=self.name,
                                   describe=lambda t: t.get("id") if isinstance(t, dict) else None)

    def _mention(self, tweet: Any, users: dict[str, dict], own_ids: set[str]) -> Mention | None:
        tid = str(tweet["id"])
        if not _TWEET_ID.fullmatch(tid):
            raise ValueError(f"its id {clean.shown(tid)} is not a number")
        note = tweet.get("note_tweet")
        text = (note.get("text") if isinstance(note, dict) else None) or tweet["text"]
        if not isinstance(text, str):
            raise ValueError(f"its text is a {type(text).__name__}, not a string")
        text = clean.unescape_x(text)
        posted_at = times.parse(_required(tweet, "created_at"))
        author_id = str(_required(tweet, "author_id"))
        refs = {r.get("type"): str(r.get("id")) for r in tweet.get("referenced_tweets") or [] if isinstance(r, dict)}
        if "retweeted" in refs:
            return None
        user = users.get(author_id, {})
        username = str(user.get("username") or author_id)
        if username.casefold() in self.own_folded or author_id in own_ids:
            return None
        reply_to_user = tweet.get("in_reply_to_user_id")
        reply_to_own = reply_to_user is not None and str(reply_to_user) in own_ids
        terms = self.matcher.match(text)
        if not terms and not reply_to_own:
            return None
        extra: dict[str, Any] = {"username": username, "lang": tweet.get("lang"),
                                 "in_reply_to_user_id": reply_to_user, "name": user.get("name")}
        if "quoted" in refs:
            extra["quoted_id"] = refs["quoted"]
        if reply_to_own:
            extra["reply_to_own"] = True
        # X's own address for a post needs no user name; use it when the name is not one X allows.
        link = f"https://x.com/{username}/status/{tid}" if _USERNAME.fullmatch(username) else f"https://x.com/i/web/status/{tid}"
        return Mention(
            platform=PLATFORM, source=self.name, external_id=tid, url=link, author="@" + username,
            author_id=author_id, body=text, posted_at=posted_at, thread_id=str(tweet.get("conversation_id") or tid),
            parent_id=refs.get("replied_to"), matched_terms=terms, extra=extra,
        )

    # -- poll -----------------------------------------------------------------

    @collector_boundary("X")
    def poll(self, cursor: dict[str, Any] | None, *, read_budget: int | None = None) -> PollResult:
        cursor = cursor or {}
        since = cursor.get("since_id")
        backlog = cursor.get("backlog") or {}
        until = backlog.get("until_id")
        newest = backlog.get("newest")
        first_poll = since is None
        notes: list[str] = []
        mentions: list[Mention] = []
        set_aside: list[SetAside] = []
        reads = 0
        oldest: str | None = None
        next_token = None
        finished = capped = False
        for _ in range(1 if first_poll else self.settings.max_pages):
            left = None if read_budget is None else read_budget - reads
            if left is not None and left < MIN_PAGE:
                notes.append(f"monthly read cap reached: {read_budget - reads if read_budget else 0} reads left this month"
                             f" (cap {self.settings.monthly_read_cap}); not reading X until next month")
                capped = True
                break
            size = self.settings.page_size if left is None else min(self.settings.page_size, left)
            payload, url, headers = self._page(size, since_id=since, until_id=until, next_token=next_token)
            data = payload.get("data", [])
            reads += len(data)
            found, aside = self._mentions(payload)
            mentions.extend(found)
            set_aside.extend(aside)
            ids = [int(t["id"]) for t in data if isinstance(t, dict) and _TWEET_ID.fullmatch(str(t.get("id")))]
            if ids:
                if newest is None or max(ids) > int(newest):
                    newest = str(max(ids))
                oldest = str(min(ids)) if oldest is None else str(min(min(ids), int(oldest)))
            next_token = (payload.get("meta") or {}).get("next_token")
            if not next_token:
                finished = True
                break
            if str(headers.get("x-rate-limit-remaining", "")).strip() == "0":
                wait = retry_after_seconds(headers)
                notes.append("X rate-limit window used up" + (f" for {wait:.0f}s" if wait is not None else "")
                             + "; the rest is read on a later poll")
                break
        if first_poll:
            finished = True
        elif not finished and not notes:
            notes.append(f"stopped after {self.settings.max_pages} pages; the rest is read on the next poll")
        if finished:
            new_cursor: dict[str, Any] = {"since_id": newest or since} if (newest or since) else {}
        else:
            new_cursor = {"since_id": since}
            if newest is not None:
                new_cursor["backlog"] = {"until_id": oldest or until, "newest": newest}
        mentions.sort(key=lambda m: (m.posted_at, int(m.external_id)))
        return PollResult(mentions=mentions, cursor=new_cursor, reads=reads, notes=notes, set_aside=set_aside,
                          capped=capped)

    def close(self) -> None:
        self.client.session.close()
