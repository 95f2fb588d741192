"""Personal API tokens: made by a team member for themself, shown once, kept only as a hash, revocable.

A token is `hk_` and 43 URL-safe characters of a 32-byte random secret (the
prefix makes a leaked one easy to find with grep or a secret scanner). Only the
SHA-256 of the whole token is stored: for a secret this random a plain hash is
enough (nothing to guess), and a lookup by hash needs no per-row salt.

A token acts as its owner with the owner's role in the config as it is now:
`authenticate` refuses a revoked token, and one whose owner has left `team:`.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from desk.cases import audit
from desk.config.schema import HearkenConfig, email_key
from desk.errors import UserError
from desk.store.db import Store
from desk.store.models import ApiToken, User, now_utc
from desk.team.users import Actor, actor_for_name, member_for_email

PREFIX = "hk_"
SHOWN = 8  # characters of the token kept in clear to tell tokens apart on the Team page ("hk_" and 5 more)
USED_EVERY = timedelta(minutes=1)  # how often a token's last_used_at is written


class TokenRefused(UserError):
    """This token does not let its holder in (unknown, revoked, or its owner left the team)."""


@dataclass(frozen=True)
class TokenInfo:
    """A token as its owner's list shows it: never the secret."""

    token_id: int
    name: str
    shown_prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class Caller:
    """Who a request with a valid token is: the token's id (for the rate limit and the audit) and its owner."""

    token_id: int
    actor: Actor


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _owner(s, actor: Actor) -> User:
    key = email_key(actor.email)
    user = next((u for u in s.scalars(select(User)) if email_key(u.email) == key), None)
    if user is None:  # a member who never opened the dashboard since the team was last synced
        user = User(email=actor.email, name=actor.name, role=actor.role, active=True)
        s.add(user)
        s.flush()
    return user


def create_token(store: Store, actor: Actor, name: str) -> tuple[TokenInfo, str]:
    """A new token for `actor` themself: (what the list shows, the token). The token is shown only now."""
    name = " ".join((name or "").split())
    if not name:
        raise UserError("give the token a name that says where it is used (e.g. 'CRM sync')")
    if len(name) > 100:
        raise UserError(f"a token's name has at most 100 characters, not {len(name)}")
    token = PREFIX + secrets.token_urlsafe(32)
    with store.session() as s:
        user = _owner(s, actor)
        row = ApiToken(user_id=user.id, name=name, token_hash=hash_token(token), shown_prefix=token[:SHOWN],
                       created_at=now_utc())
        s.add(row)
        s.flush()
        audit.record(s, None, actor.name, "api_token_created", token_id=row.id, name=name)
        return _info(row), token


def list_tokens(store: Store, actor: Actor) -> list[TokenInfo]:
    """The actor's own tokens, newest first, revoked ones included."""
    with store.session() as s:
        user = s.scalar(select(User).where(User.email == actor.email))
        if user is None:
            return []
        rows = s.scalars(select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id.desc()))
        return [_info(r) for r in rows]


def revoke_token(store: Store, actor: Actor, token_id: int) -> TokenInfo:
    """Revoke one of the actor's own tokens (admins may revoke anyone's); a request with it gets 401 from now."""
    with store.session() as s:
        row = s.get(ApiToken, token_id)
        owner = s.get(User, row.user_id) if row is not None else None
        if row is None or owner is None or (email_key(owner.email) != email_key(actor.email)
                                            and not actor.at_least("admin")):
            raise UserError(f"{actor.name} has no API token #{token_id}")
        if row.revoked_at is None:
            row.revoked_at, row.revoked_by = now_utc(), actor.name
            audit.record(s, None, actor.name, "api_token_revoked", token_id=row.id, name=row.name, owner=owner.name)
        return _info(row)


def authenticate(store: Store, cfg: HearkenConfig, token: str, *, now: datetime | None = None) -> Caller:
    """The caller a bearer token stands for, acting with its owner's current role; else TokenRefused."""
    now = now or now_utc()
    if not token.startswith(PREFIX):
        raise TokenRefused("this is not a Hearken API token (they begin with hk_); make one on the Team page")
    with store.session() as s:
        row = s.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
        if row is None:
            raise TokenRefused("unknown API token; make one on the Team page")
        if row.revoked_at is not None:
            raise TokenRefused(f"API token {row.shown_prefix}… was revoked by {row.revoked_by}")
        user = s.get(User, row.user_id)
        member = member_for_email(cfg, user.email) if user is not None and user.active else None
        if member is None:
            raise TokenRefused(f"API token {row.shown_prefix}… belongs to someone who is no longer on the team")
        if row.last_used_at is None or now - row.last_used_at >= USED_EVERY:
            row.last_used_at = now
        actor = actor_for_name(cfg, member.name)
        assert actor is not None
        return Caller(row.id, actor)


def _info(row: ApiToken) -> TokenInfo:
    return TokenInfo(row.id, row.name, row.shown_prefix, row.created_at, row.last_used_at, row.revoked_at)
