"""Items set aside: what a platform sent that could not be read or stored, kept for a person to look at.

A collector sets an item aside when it cannot read it (a post without a time,
a time before 2000, a comment without an id); `store_poll` sets a row aside
when the database refuses it. Either way the rest of the page is stored and
the cursor moves on; the item lands here with its raw payload (capped) and a
one-line reason that names it. The Sources page shows `summary()` per source;
`items()` lists them and `clear()` marks a source's items as looked at.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from collectors.base import SetAside
from desk.cases import audit
from desk.store.db import Store, insert_for
from desk.store.models import SetAsideItem, now_utc


@dataclass(frozen=True)
class Summary:
    """One source's set-aside items that nobody has cleared yet."""

    source: str
    count: int
    last_at: datetime
    last_reason: str

    def line(self) -> str:
        """What the Sources page prints for the source."""
        noun = "item" if self.count == 1 else "items"
        return (f"Set aside: {self.count} {noun} the platform sent could not be read or stored "
                f"(last {self.last_at:%Y-%m-%d %H:%M} UTC: {self.last_reason})")


def _key(item: SetAside) -> str:
    basis = f"id:{item.external_id}" if item.external_id else f"raw:{item.raw}"
    return hashlib.sha256(basis.encode("utf-8", "surrogatepass")).hexdigest()


def record(session: Session, items: Iterable[SetAside], *, now: datetime | None = None) -> int:
    """Store set-aside items in the caller's transaction; an item seen before updates its row. Returns how many."""
    now = now or now_utc()
    insert = insert_for(session)
    n = 0
    for item in items:
        stmt = insert(SetAsideItem).values(
            source=item.source, platform=item.platform, item_key=_key(item), external_id=item.external_id,
            url=item.url, reason=item.reason, raw=item.raw, first_seen_at=now, last_seen_at=now, times_seen=1)
        session.execute(stmt.on_conflict_do_update(
            index_elements=["source", "item_key"],
            set_={"last_seen_at": now, "reason": item.reason, "raw": item.raw,
                  "times_seen": SetAsideItem.times_seen + 1, "cleared_at": None, "cleared_by": None}))
        n += 1
    return n


def summary(store: Store) -> dict[str, Summary]:
    """Per source name: how many items are set aside and not yet cleared, and the newest one's reason."""
    with store.session() as s:
        rows = s.execute(select(SetAsideItem.source, func.count(), func.max(SetAsideItem.last_seen_at))
                         .where(SetAsideItem.cleared_at.is_(None)).group_by(SetAsideItem.source)).all()
        out: dict[str, Summary] = {}
        for source, count, last in rows:
            reason = s.scalar(select(SetAsideItem.reason)
                              .where(SetAsideItem.source == source, SetAsideItem.cleared_at.is_(None))
                              .order_by(SetAsideItem.last_seen_at.desc(), SetAsideItem.id.desc()).limit(1))
            out[source] = Summary(source, int(count), last, reason or "")
        return out


def items(store: Store, source: str | None = None, *, include_cleared: bool = False,
          limit: int = 100) -> list[SetAsideItem]:
    """The newest set-aside items (of one source, or all), detached from the session."""
    with store.session() as s:
        q = select(SetAsideItem).order_by(SetAsideItem.last_seen_at.desc(), SetAsideItem.id.desc()).limit(limit)
        if source is not None:
            q = q.where(SetAsideItem.source == source)
        if not include_cleared:
            q = q.where(SetAsideItem.cleared_at.is_(None))
        rows = list(s.scalars(q))
        s.expunge_all()
        return rows


def clear(store: Store, source: str, actor: str) -> int:
    """Mark a source's set-aside items as looked at (they stay in the table); recorded in the audit trail."""
    with store.session() as s:
        n = s.execute(update(SetAsideItem).where(SetAsideItem.source == source, SetAsideItem.cleared_at.is_(None))
                      .values(cleared_at=now_utc(), cleared_by=actor)).rowcount
        if n:
            audit.record(s, None, actor, "set_aside_cleared", source=source, items=n)
        return n
