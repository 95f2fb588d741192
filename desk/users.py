"""Who is acting: the team from the config, mirrored into the users table, and their roles.

Roles, from least to most: agent (works cases), manager (also reassigns,
handles escalations and changes settings), admin (everything). The config's
`team:` list is the source of truth; `sync_team` mirrors it into the users
table on each dashboard start, deactivating people removed from the list.

In `dashboard.auth: local` mode one person uses Hearken on their own machine
without signing in; they act as `dashboard.local_user` or the first admin.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from desk.config import HearkenConfig
from desk.db import Store
from desk.models import User, now_utc

ROLES = ("agent", "manager", "admin")


class NotAllowed(Exception):
    """The acting person's role does not allow this action."""


@dataclass(frozen=True)
class Actor:
    """A signed-in team member: the name is what the audit trail and assignees show."""

    name: str
    email: str
    role: str

    def at_least(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)

    def require(self, role: str, what: str) -> None:
        if not self.at_least(role):
            raise NotAllowed(f"{self.name} is {_article(self.role)} {self.role}; {what} needs a {role} or admin")


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def sync_team(store: Store, cfg: HearkenConfig) -> int:
    """Mirror cfg.team into the users table; returns how many members are active."""
    wanted = {m.email.casefold(): m for m in cfg.team}
    with store.session() as s:
        existing = {u.email.casefold(): u for u in s.scalars(select(User))}
        for key, member in wanted.items():
            user = existing.get(key)
            if user is None:
                s.add(User(email=member.email, name=member.name, role=member.role, active=True))
            else:
                user.name, user.role, user.active = member.name, member.role, True
        for key, user in existing.items():
            if key not in wanted and user.active:
                user.active = False
    return len(wanted)


def actor_for_email(cfg: HearkenConfig, email: str | None) -> Actor | None:
    """The team member signed in with this email, or None when they are not on the team."""
    if not email:
        return None
    for m in cfg.team:
        if m.email.casefold() == email.casefold():
            return Actor(m.name, m.email, m.role)
    return None


def actor_for_name(cfg: HearkenConfig, name: str) -> Actor | None:
    for m in cfg.team:
        if m.name.casefold() == name.casefold():
            return Actor(m.name, m.email, m.role)
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
    m = members[0]
    return Actor(m.name, m.email, m.role)


def touch(store: Store, actor: Actor, *, how: str = "local") -> None:
    """A new dashboard session: note when this person was last seen and write it to the audit trail."""
    from desk import audit

    with store.session() as s:
        user = s.scalar(select(User).where(User.email == actor.email))
        if user is not None:
            user.last_seen_at = now_utc()
        audit.record(s, None, actor.name, "signed_in", how=how, role=actor.role)


@dataclass(frozen=True)
class Member:
    name: str
    email: str
    role: str
    active_cases: int
    escalated_to_them: int
    last_seen_at: object


def team_overview(store: Store, cfg: HearkenConfig) -> list[Member]:
    """Each team member with their active cases and escalations waiting on them (the Team page)."""
    from sqlalchemy import func

    from desk.models import Case

    with store.session() as s:
        seen = {u.email.casefold(): u.last_seen_at for u in s.scalars(select(User))}
        load = dict(s.execute(select(Case.assignee, func.count()).where(Case.status.in_(("open", "replied")))
                              .group_by(Case.assignee)).all())
        esc = dict(s.execute(select(Case.escalated_to, func.count()).where(Case.status.in_(("open", "replied")))
                             .group_by(Case.escalated_to)).all())
    return [Member(m.name, m.email, m.role, load.get(m.name, 0), esc.get(m.name, 0), seen.get(m.email.casefold()))
            for m in cfg.team]


def team_names(cfg: HearkenConfig, role: str | None = None) -> list[str]:
    """Names of members with at least `role` (all members when None)."""
    if role is None:
        return [m.name for m in cfg.team]
    return [m.name for m in cfg.team if ROLES.index(m.role) >= ROLES.index(role)]
