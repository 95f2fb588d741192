"""What a reply row's state means: the outcome a person is shown, the replies that may or may not be up,
and the tests desk/cases/replies.py decides by (at the platform right now, unsettled, conclusive when).

A reply is `posting` or `checking` while a process is at the platform with it (until
`replies.stale_after_seconds`: then the process died), `unknown` or `not_found` while it may be up
(nothing more is posted to the case until it is settled), and `posted` or `failed` once settled.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from desk.config.schema import HearkenConfig, Replies
from desk.store.db import Store
from desk.store.models import Reply, now_utc

BUSY = ("posting", "checking")  # a process is at the platform with it right now (until stale)
UNSETTLED = ("unknown", "not_found")  # it may be up: nothing more is posted to the case until it is settled
CHECK_FAILED = "could not check the platform"  # how the note of a look that failed begins


@dataclass(frozen=True)
class ReplyOutcome:
    reply_id: int
    status: str  # posted | failed | unknown | not_found | posting | checking
    url: str | None = None
    external_id: str | None = None
    error: str | None = None
    earlier: bool = False  # this is the result of an earlier attempt with the same key
    checked: bool = False  # this outcome comes from looking on the platform
    conclusive_at: datetime | None = None  # when not finding it will count (unknown after a check)

    @property
    def message(self) -> str:
        if self.status == "posted":
            if self.checked:
                return "Found our reply on the platform; recorded as posted" + (f": {self.url}" if self.url else ".")
            return ("This reply was already posted" if self.earlier else "Posted publicly") + (
                f": {self.url}" if self.url else ".")
        if self.status == "failed":
            return f"Not posted: {self.error}. Nothing went out; you can try again."
        if self.status == "unknown" and self.checked:
            return (f"Our reply is not on the platform yet. That is not conclusive before {clock(self.conclusive_at)}"
                    ": a platform can store or show a post late. Hearken will not post again; check again then.")
        if self.status == "unknown":
            return (f"The platform did not confirm the reply ({self.error}). It may be up: "
                    "Hearken will not post again until it has looked; use 'Check the platform'.")
        if self.status == "not_found":
            return ("Our reply is not on the platform. Hearken will not post it again by itself; if it should "
                    "go out, use 'Post anyway' and say why.")
        if self.status == "checking":
            return "Someone is checking the platform for this reply right now; wait a moment."
        return "This reply is being posted right now; wait a moment."


@dataclass(frozen=True)
class Unsettled:
    """A reply that may or may not be up: what the case page shows and offers for it."""

    reply_id: int
    status: str  # unknown | not_found | posting or checking left by a process that died
    author: str
    body: str
    sent_at: datetime
    checked_at: datetime | None
    conclusive_at: datetime  # from then on, not finding it is conclusive
    note: str | None
    in_flight: bool = False  # someone is at the platform with it right now (listed only when asked for)

    def may_post_anyway(self, now: datetime | None = None) -> bool:
        return (now or now_utc()) >= self.conclusive_at


def clock(t: datetime | None) -> str:
    return t.strftime("%H:%M:%S UTC") if t else "later"


def answered_count(s: Session, case_id: int) -> int:
    """Replies the case has (posted publicly or recorded as made elsewhere): the composer's `seen_replies`."""
    return s.scalar(select(func.count()).select_from(Reply).where(Reply.case_id == case_id,
                                                                   Reply.status == "posted")) or 0


def seen_replies(store: Store, case_id: int) -> int:
    with store.session() as s:
        return answered_count(s, case_id)


def sent_at(r: Reply) -> datetime:
    return r.sent_at or r.attempted_at or r.created_at


def conclusive_at(r: Reply, rules: Replies) -> datetime:
    return sent_at(r) + timedelta(seconds=rules.check_grace_seconds)


def outcome_of(r: Reply, *, earlier: bool = False, checked: bool = False, rules: Replies | None = None) -> ReplyOutcome:
    return ReplyOutcome(r.id, r.status, r.url, r.external_id, r.error, earlier, checked,
                        conclusive_at(r, rules) if rules is not None and r.status == "unknown" else None)


def is_busy(r: Reply, now: datetime, rules: Replies) -> bool:
    """At the platform right now, by a process that is still alive."""
    return r.status in BUSY and r.attempted_at is not None and \
        r.attempted_at > now - timedelta(seconds=rules.stale_after_seconds)


def is_unsettled(r: Reply, now: datetime, rules: Replies) -> bool:
    """May be up, and nobody is at the platform with it: it must be looked for before anything else is posted."""
    return r.status in UNSETTLED or (r.status in BUSY and not is_busy(r, now, rules))


def unsettled(store: Store, cfg: HearkenConfig, case_id: int, *, now: datetime | None = None,
              with_in_flight: bool = False) -> list[Unsettled]:
    """Replies of a case that may or may not be up; nothing more is posted to the case until each is settled.
    `with_in_flight` adds those someone is posting or checking right now."""
    rules = cfg.replies
    now = now or now_utc()
    with store.session() as s:
        rows = s.scalars(select(Reply).where(Reply.case_id == case_id, Reply.status.in_(BUSY + UNSETTLED))
                         .order_by(Reply.id))
        return [Unsettled(r.id, r.status, r.author, r.body, sent_at(r), r.checked_at, conclusive_at(r, rules),
                          r.error, is_busy(r, now, rules)) for r in rows
                if is_unsettled(r, now, rules) or (with_in_flight and is_busy(r, now, rules))]

