"""Reddit's PRAW client as every Reddit part builds it, and what its errors mean for a collector.

`make_reddit` builds a `praw.Reddit` from a source's settings and environment: read-only
(application-only OAuth) without a username and password, every request bounded by the source's
limits (collectors/net/sessions.py) and its JSON read leniently (`LenientJSONRequestor`).
`translate` turns a PRAW / prawcore exception into the collector error the desk understands;
`ratelimit_wait` reads the wait out of a RATELIMIT message. Rate limits: prawcore sleeps to spread
requests over Reddit's window; the collector gives its turn back instead (collect.py).
"""

from __future__ import annotations

import re
from typing import Any

import praw
import prawcore
from praw.exceptions import PRAWException, RedditAPIException

from collectors import clean
from collectors.base import AuthFailed, BadPayload, NotConfigured, RateLimited, TryLater
from collectors.net.http import Limits
from collectors.net.sessions import BoundedSession, LimitExceeded, RedirectRefused

SITE = "https://www.reddit.com"


class LenientJSONRequestor(prawcore.Requestor):
    """prawcore's requestor, its responses' JSON read as every collector reads it (collectors.clean.loads_json).

    A value nested 100,000 deep in one comment makes Python's json raise RecursionError, which prawcore
    does not catch: the whole listing would fail on every poll. Read this way it costs that value only.
    (PRAW documents requestor_class for wrapping the requestor like this.)
    """

    def request(self, *args: Any, **kwargs: Any):
        response = super().request(*args, **kwargs)
        response.json = lambda **_: clean.loads_json(response.content)  # type: ignore[method-assign]
        return response


def make_reddit(settings: Any, env: dict[str, str], *, session: Any = None) -> praw.Reddit:
    """A PRAW client from the source's settings and environment (read-only without user credentials).
    `session`: the requests.Session PRAW sends through (the publisher passes one with a deadline)."""
    client_id = env.get(settings.client_id_env)
    secret = env.get(settings.client_secret_env)
    if not client_id or not secret:
        missing = [n for n, v in ((settings.client_id_env, client_id), (settings.client_secret_env, secret)) if not v]
        raise NotConfigured(f"{settings.name}: environment variable(s) {', '.join(missing)} (Reddit app credentials) not set")
    kwargs: dict[str, Any] = {"client_id": client_id, "client_secret": secret, "user_agent": settings.user_agent,
                              "check_for_async": False, "check_for_updates": False,
                              "requestor_class": LenientJSONRequestor,
                              # every request bounded: deadline, byte cap, no redirect off Reddit
                              "requestor_kwargs": {"session": BoundedSession(Limits.of(settings))}}
    username, password = env.get(settings.username_env), env.get(settings.password_env)
    if username and password:
        kwargs.update(username=username, password=password)
    if settings.base_url:
        kwargs.update(oauth_url=settings.base_url.rstrip("/"), reddit_url=settings.base_url.rstrip("/"))
    if session is not None:
        kwargs["requestor_kwargs"] = {"session": session}
    reddit = praw.Reddit(**kwargs)
    if not (username and password):
        reddit.read_only = True
    return reddit


def ratelimit_wait(message: str) -> float | None:
    """Seconds from a Reddit RATELIMIT message ("Take a break for 9 minutes before trying again.")."""
    match = re.search(r"(\d+)\s*(millisecond|second|minute|hour)s?", message or "", re.I)
    if not match:
        return None
    n, unit = int(match.group(1)), match.group(2).lower()
    return n * {"millisecond": 0.001, "second": 1, "minute": 60, "hour": 3600}[unit]


def translate(exc: Exception, what: str, url: str) -> Exception:
    """The collector error for a PRAW / prawcore exception (also for publishers that post with PRAW)."""
    if isinstance(exc, prawcore.exceptions.TooManyRequests):
        wait = float(exc.retry_after) if exc.retry_after else None
        when = f"; it asked us to wait {wait:.0f}s" if wait is not None else ""
        return RateLimited(f"Reddit rate-limited us (HTTP 429) reading {what}{when}", url=exc.response.url or url,
                           retry_after=wait)
    if isinstance(exc, RedditAPIException):
        for item in exc.items:
            if item.error_type == "RATELIMIT":
                return RateLimited(f"Reddit RATELIMIT: {item.message}", url=url, retry_after=ratelimit_wait(item.message))
        return TryLater(f"Reddit refused {what}: {exc}", url=url)
    if isinstance(exc, prawcore.exceptions.BadJSON):
        return BadPayload(f"Reddit sent something that is not JSON for {what}", url=exc.response.url or url)
    if isinstance(exc, prawcore.exceptions.OAuthException):
        return AuthFailed(f"Reddit refused our credentials ({exc.error}: {exc.description or 'no detail'})", url=url)
    if isinstance(exc, prawcore.exceptions.ResponseException):
        status = exc.response.status_code
        rurl = exc.response.url or url
        if status == 401:
            return AuthFailed("Reddit refused the app's client id/secret (HTTP 401)", url=rurl)
        if status == 403:
            return AuthFailed(f"Reddit forbids reading {what} (HTTP 403: private, quarantined or banned)", url=rurl)
        if isinstance(exc, prawcore.exceptions.Redirect) or status in (302, 404):
            return TryLater(f"{what} does not exist on Reddit: check the config", url=rurl, retry_after=3600)
        if status == 429:
            return RateLimited(f"Reddit rate-limited us (HTTP 429) reading {what}", url=rurl)
        return TryLater(f"Reddit answered HTTP {status} reading {what}", url=rurl)
    if isinstance(exc, prawcore.exceptions.RequestException) and \
            isinstance(exc.original_exception, (LimitExceeded, RedirectRefused)):
        return TryLater(f"Reddit, reading {what}: {exc.original_exception}", url=url)
    if isinstance(exc, prawcore.exceptions.RequestException):
        return TryLater(f"Reddit could not be reached reading {what}: {exc.original_exception}", url=url)
    if isinstance(exc, (PRAWException, prawcore.exceptions.PrawcoreException)):
        return TryLater(f"Reddit error reading {what}: {exc}", url=url)
    return BadPayload(f"Reddit sent an unexpected listing for {what}: {type(exc).__name__}: {exc}", url=url)
