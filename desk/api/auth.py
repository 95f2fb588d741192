"""Who is calling the HTTP API: the bearer token checked, its owner as the actor, the rate limit applied.

`caller` is the dependency every endpoint takes. It refuses (401) a request
without a token, with an unknown or revoked one, or one whose owner has left
`team:` in the config as it is now (`LiveConfig` reads the file again when it
changes), and (429, with Retry-After) one past its token's rate limit.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from desk.api.limits import TokenBuckets
from desk.api.tokens import Caller, TokenRefused, authenticate
from desk.config.schema import ConfigError, HearkenConfig, load_config
from desk.store.db import Store
from desk.team.users import sync_team

log = logging.getLogger(__name__)


class LiveConfig:
    """The config as it is in its file now: read again when the file changes, the last good version kept
    (and the mistake logged once) while it has mistakes. A reload mirrors the team into the users table."""

    def __init__(self, cfg: HearkenConfig, store: Store) -> None:
        self._cfg, self._store = cfg, store
        self._lock = threading.Lock()
        self._seen = self._mtime()
        self._failed_at: float | None = None

    def _mtime(self) -> float | None:
        try:
            return self._cfg.path.stat().st_mtime_ns if self._cfg.path else None
        except OSError:
            return None

    def current(self) -> HearkenConfig:
        mtime = self._mtime()
        if mtime is None or mtime == self._seen:
            return self._cfg
        with self._lock:
            if mtime != self._seen:
                try:
                    cfg = load_config(self._cfg.path)
                    cfg.api = self._cfg.api  # where it listens and its limits stay as started
                    sync_team(self._store, cfg)
                    self._cfg = cfg
                except ConfigError as exc:
                    if self._failed_at != mtime:
                        log.error("the configuration has mistakes; the API keeps the version it had: %s", exc)
                    self._failed_at = mtime
                self._seen = mtime
        return self._cfg


@dataclass
class ApiState:
    store: Store
    config: LiveConfig
    buckets: TokenBuckets


class ApiRefusal(Exception):
    """A request refused before it reached desk/ (no token, a bad one, over the rate limit)."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.headers = status, detail, headers or {}


_bearer = HTTPBearer(auto_error=False, description="A personal API token (hk_…) made on the dashboard's Team page")


def state(request: Request) -> ApiState:
    return request.app.state.hearken


def caller(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> Caller:
    """The token's owner, after the rate limit; 401 without a valid token, 429 past the limit."""
    st = state(request)
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiRefusal(401, "send a personal API token: Authorization: Bearer hk_… (made on the Team page)",
                         challenge)
    try:
        who = authenticate(st.store, st.config.current(), credentials.credentials.strip())
    except TokenRefused as exc:
        raise ApiRefusal(401, str(exc), challenge) from None
    request.state.caller = who
    wait = st.buckets.take(who.token_id)
    if wait:
        per_minute = st.config.current().api.rate_limit_per_minute
        raise ApiRefusal(429, f"this token made more than {per_minute} requests in a minute; try again in "
                              f"{wait} s", {"Retry-After": str(wait)})
    return who
