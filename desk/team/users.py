"""Who is acting: the team from the config, mirrored into the users table, their roles and their sign-ins.

Roles, from least to most: agent (works cases), manager (also reassigns,
handles escalations and changes settings), admin (everything). The config's
`team:` list is the source of truth; `sync_team` mirrors it into the users
table, deactivating people removed from the list and ending their sessions.

OIDC sign-in (`sign_in`): the provider's claims come from Streamlit's signed
cookie, but the cookie alone never lets anyone in. Each sign-in is a row in
`dashboard_sessions`, live until it expires (`dashboard.session_hours`), its
person signs out (`sign_out` ends all of their sessions) or leaves the team.
A person is matched by email only on their first sign-in, and only when the
provider says it verified that address (`email_verified` true, OpenID Connect
Core 5.1); from then on they are bound to the provider's issuer and subject.

In `dashboard.auth: local` mode one person uses Hearken on their own machine
without signing in; they act as `dashboard.local_user` or the first admin.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from desk.config.schema import HearkenConfig, TeamMember, email_key
from desk.store.db import Store
from desk.errors import UserError
from desk.store.models import DashboardSession, User, now_utc

ROLES = ("agent", "manager", "admin")
FRESH_SIGN_IN = timedelta(minutes=10)  # a sign-in we have no row for is accepted only this soon after it was issued
SEEN_EVERY = timedelta(minutes=1)  # how often a live session's last_seen_at is written


class NotAllowed(UserError):
    """The acting person's role does not allow this action."""


class SignInRefused(UserError):
    """This sign-in does not let its holder in; the message says why, for the person at the screen."""


@dataclass(frozen=True)
class Actor:
    """A signed-in team member: the name is what the audit trail and assignees show."""

    name: str
    email: str
    role: str
    session_id: str | None = field(default=None, compare=False)  # oidc: the server-side session

    def at_least(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)

    def require(self, role: str, what: str) -> None:
        if not self.at_least(role):
            needs = "an admin" if role == "admin" else f"{_article(role)} {role} or admin"
            raise NotAllowed(f"{self.name} is {_article(self.role)} {self.role}; {what} needs {needs}")


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _actor(m: TeamMember, session_id: str | None = None) -> Actor:
    return Actor(m.name, m.email, m.role, session_id)


def _user_for_email(s: Session, email: str) -> User | None:
    key = email_key(email)
    return next((u for u in s.scalars(select(User)) if email_key(u.email) == key), None)


def sync_team(store: Store, cfg: HearkenConfig) -> int:
    """Mirror cfg.team into the users table; returns how many members are active.

    A member removed from the config is deactivated and every session of theirs ends at once.
    """
    wanted = {email_key(m.email): m for m in cfg.team}
    now = now_utc()
    with store.session() as s:
        existing = {email_key(u.email): u for u in s.scalars(select(User))}
        for key, member in wanted.items():
            user = existing.get(key)
            if user is None:
                s.add(User(email=member.email, name=member.name, role=member.role, active=True))
            else:
                user.email, user.name, user.role, user.active = member.email, member.name, member.role, True
        for key, user in existing.items():
            if key not in wanted and user.active:
                user.active = False
                _end_sessions(s, user.id, "removed from the team", now)
    return len(wanted)


def member_for_email(cfg: HearkenConfig, email: str | None) -> TeamMember | None:
    if not email:
        return None
    key = email_key(email)
    return next((m for m in cfg.team if email_key(m.email) == key), None)


def actor_for_name(cfg: HearkenConfig, name: str) -> Actor | None:
    for m in cfg.team:
        if m.name.casefold() == name.casefold():
            return _actor(m)
    return None


def local_actor(cfg: HearkenConfig) -> Actor:
    """Who acts in local mode: dashboard.local_user, else the first admin, else the first member."""
    if cfg.dashboard.local_user:
        found = actor_for_name(cfg, cfg.dashboard.local_user)
        if found is None:
            raise ValueError(f"dashboard.local_user {cfg.dashboard.local_user!r} is not a member of team:")
        return found
    members = cfg.members("admin") or cfg.team
    if not members:
        return Actor("Local user", "local@localhost", "admin")
    return _actor(members[0])


def touch(store: Store, actor: Actor, *, how: str = "local") -> None:
    """A new dashboard session: note when this person was last seen and write it to the audit trail."""
    from desk.cases import audit

    with store.session() as s:
        user = s.scalar(select(User).where(User.email == actor.email))
        if user is not None:
            user.last_seen_at = now_utc()
        audit.record(s, None, actor.name, "signed_in", how=how, role=actor.role)


# --- OIDC sign-in, kept on the server --------------------------------------------------------------


def email_verified(claims: Mapping[str, Any]) -> bool:
    """OIDC Core 5.1: `email_verified` true means the provider checked the address; false or absent means it
    did not. The string "true" counts too (some providers, e.g. Amazon Cognito, send the boolean as text)."""
    value = claims.get("email_verified")
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def session_key(claims: Mapping[str, Any]) -> str:
    """The server-side name of one sign-in: a hash of its ID token's claims (nonce and issue time included)."""
    kept = {k: v for k, v in claims.items() if k not in ("tokens", "is_logged_in")}
    return hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()


def _issued_at(claims: Mapping[str, Any]) -> datetime | None:
    iat = claims.get("iat")
    if isinstance(iat, bool) or not isinstance(iat, (int, float)):
        return None
    try:
        return datetime.fromtimestamp(iat, timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


def _when(at: datetime, cfg: HearkenConfig) -> str:
    from zoneinfo import ZoneInfo

    return at.astimezone(ZoneInfo(cfg.sla.timezone)).strftime("%d %b %H:%M")


def sign_in(store: Store, cfg: HearkenConfig, claims: Mapping[str, Any], *, now: datetime | None = None) -> Actor:
    """The team member these OIDC claims belong to, in a live server-side session; else SignInRefused.

    Called on every page run: a known session is checked (live, not expired, its person still on the
    team and active); an unknown one is a new sign-in and is recorded, binding the person on first use.
    """
    now = now or now_utc()
    issuer, subject = str(claims.get("iss") or ""), str(claims.get("sub") or "")
    if not issuer or not subject:
        raise SignInRefused("the identity provider did not say who you are (no issuer or subject in the sign-in)")
    key = session_key(claims)
    with store.session() as s:  # a refusal is returned, not raised, so that ending a session is committed
        row = s.get(DashboardSession, key)
        outcome = (_check_session(s, cfg, row, now, claims) if row is not None
                   else _new_session(s, cfg, claims, key, issuer, subject, now))
    if isinstance(outcome, SignInRefused):
        raise outcome
    return outcome


def _check_session(s: Session, cfg: HearkenConfig, row: DashboardSession, now: datetime,
                   claims: Mapping[str, Any]) -> Actor | SignInRefused:
    if row.ended_at is not None:
        return SignInRefused(f"this sign-in ended at {_when(row.ended_at, cfg)} ({row.end_reason}); sign in again")
    user = s.get(User, row.user_id)
    member = _current_member(cfg, user)
    if member is None:
        _end_sessions(s, row.user_id, "removed from the team", now)
        return _not_on_team(claims)
    if row.expires_at <= now:
        row.ended_at, row.end_reason = now, "expired"
        return SignInRefused(f"your sign-in expired after {cfg.dashboard.session_hours:g} hours; sign in again")
    if now - row.last_seen_at >= SEEN_EVERY:
        row.last_seen_at = user.last_seen_at = now
    return _actor(member, row.id)


def _new_session(s: Session, cfg: HearkenConfig, claims: Mapping[str, Any], key: str, issuer: str, subject: str,
                 now: datetime) -> Actor | SignInRefused:
    from desk.cases import audit

    issued = _issued_at(claims)
    if issued is None or abs(now - issued) > FRESH_SIGN_IN:
        return SignInRefused("this sign-in is not one Hearken knows (it was issued "
                             + (f"at {_when(issued, cfg)}" if issued else "at no stated time") + "); sign in again")
    user = s.scalar(select(User).where(User.oidc_issuer == issuer, User.oidc_subject == subject))
    if user is None:
        user = _bind(s, cfg, claims, issuer, subject, now)
        if isinstance(user, SignInRefused):
            return user
    member = _current_member(cfg, user)
    if member is None:
        return _not_on_team(claims)
    s.add(DashboardSession(id=key, user_id=user.id, issuer=issuer, subject=subject, created_at=now,
                           last_seen_at=now, expires_at=now + timedelta(hours=cfg.dashboard.session_hours)))
    user.last_seen_at = now
    audit.record(s, None, member.name, "signed_in", how="oidc", role=member.role, issuer=issuer)
    return _actor(member, key)


def _bind(s: Session, cfg: HearkenConfig, claims: Mapping[str, Any], issuer: str, subject: str,
          now: datetime) -> User | SignInRefused:
    """First sign-in of this identity: match a team member by verified email and bind them to it."""
    from desk.cases import audit

    email = str(claims.get("email") or "")
    if not email_verified(claims):  # said before looking at the team, so it tells a stranger nothing about it
        return SignInRefused(f"your identity provider has not verified the address {email or '(none given)'}: "
                             "Hearken only matches a verified email to a team member. Verify it with your "
                             "provider, then sign in again.")
    member = member_for_email(cfg, email)
    if member is None:
        return _not_on_team(claims)
    user = _user_for_email(s, member.email)
    if user is None:
        user = User(email=member.email, name=member.name, role=member.role, active=True)
        s.add(user)
        s.flush()
    if user.oidc_subject is not None:
        return SignInRefused(f"{member.name} already signs in with another account (issuer {user.oidc_issuer}); "
                             "an admin can forget that sign-in on the Team page if it is no longer theirs")
    user.oidc_issuer, user.oidc_subject, user.bound_at = issuer, subject, now
    audit.record(s, None, member.name, "identity_bound", issuer=issuer, subject=subject, email=email)
    return user


def _current_member(cfg: HearkenConfig, user: User | None) -> TeamMember | None:
    if user is None or not user.active:
        return None
    return member_for_email(cfg, user.email)


def _not_on_team(claims: Mapping[str, Any]) -> SignInRefused:
    return SignInRefused("you are signed in, but not as a member of this team. Ask an admin to add you "
                         "under team: in the Hearken configuration.")


def _end_sessions(s: Session, user_id: int, reason: str, now: datetime) -> int:
    res = s.execute(update(DashboardSession)
                    .where(DashboardSession.user_id == user_id, DashboardSession.ended_at.is_(None))
                    .values(ended_at=now, end_reason=reason).execution_options(synchronize_session=False))
    return res.rowcount or 0


def sign_out(store: Store, actor: Actor, *, reason: str = "signed out") -> int:
    """End every session of this person at once (every browser, every copied cookie); returns how many."""
    from desk.cases import audit

    now = now_utc()
    with store.session() as s:
        user = _user_for_email(s, actor.email)
        if user is None:
            return 0
        ended = _end_sessions(s, user.id, reason, now)
        audit.record(s, None, actor.name, "signed_out", sessions=ended)
        return ended


def forget_identity(store: Store, cfg: HearkenConfig, actor: Actor, email: str) -> None:
    """An admin unbinds a member from their provider identity (their next verified sign-in binds again)."""
    from desk.cases import audit

    actor.require("admin", "forgetting someone's sign-in")
    now = now_utc()
    with store.session() as s:
        user = _user_for_email(s, email)
        if user is None:
            raise ValueError(f"{email} has never signed in")
        previous = (user.oidc_issuer, user.oidc_subject)
        user.oidc_issuer = user.oidc_subject = user.bound_at = None
        _end_sessions(s, user.id, f"sign-in forgotten by {actor.name}", now)
        audit.record(s, None, actor.name, "identity_forgotten", member=user.name, issuer=previous[0],
                     subject=previous[1])


@dataclass(frozen=True)
class MemberOverview:
    name: str
    email: str
    role: str
    active_cases: int
    escalated_to_them: int
    last_seen_at: object
    bound_issuer: str | None = None
    live_sessions: int = 0


def team_overview(store: Store, cfg: HearkenConfig) -> list[MemberOverview]:
    """Each team member with their active cases, escalations waiting on them and sign-in (the Team page)."""
    from desk.store.models import Case

    now = now_utc()
    with store.session() as s:
        users = {email_key(u.email): u for u in s.scalars(select(User))}
        live = dict(s.execute(select(DashboardSession.user_id, func.count())
                              .where(DashboardSession.ended_at.is_(None), DashboardSession.expires_at > now)
                              .group_by(DashboardSession.user_id)).all())
        load = dict(s.execute(select(Case.assignee, func.count()).where(Case.status.in_(("open", "replied")))
                              .group_by(Case.assignee)).all())
        esc = dict(s.execute(select(Case.escalated_to, func.count()).where(Case.status.in_(("open", "replied")))
                             .group_by(Case.escalated_to)).all())
    out = []
    for m in cfg.team:
        u = users.get(email_key(m.email))
        out.append(MemberOverview(m.name, m.email, m.role, load.get(m.name, 0), esc.get(m.name, 0),
                          u.last_seen_at if u else None, u.oidc_issuer if u else None,
                          live.get(u.id, 0) if u else 0))
    return out


def team_names(cfg: HearkenConfig, role: str | None = None) -> list[str]:
    """Names of members with at least `role` (all members when None)."""
    if role is None:
        return [m.name for m in cfg.team]
    return [m.name for m in cfg.team if ROLES.index(m.role) >= ROLES.index(role)]
