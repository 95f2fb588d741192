"""Warnings about a platform itself, kept where a person sees them: the Sources page, for `SHOWN_FOR`.

A poll's notes last until the next poll. A warning says something that stays true after the poll that
found it: a forum's post ids went backwards (it was restored from a backup, or moved), or new posts came
under ids that stored posts have. The poll that finds it is the only one that can say so (the next one
reads as usual), so `record` writes each warning into the audit trail, in the poll's transaction, and
the Sources page shows a source's warnings (`recent`) until a manager marks them as looked at
(`mark_seen`) or `SHOWN_FOR` has passed. Every one is logged at WARNING as well.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from desk.cases import audit
from desk.store.db import Store
from desk.store.models import Event, now_utc

log = logging.getLogger(__name__)

SHOWN_FOR = timedelta(days=7)
WARNED = "source_warning"
SEEN = "source_warnings_seen"


@dataclass(frozen=True)
class SourceWarning:
    source: str
    at: datetime
    text: str


def record(session: Session, source: str, warnings: Sequence[str]) -> None:
    """Keep each warning of one poll of `source`, in the caller's transaction."""
    for text in dict.fromkeys(warnings):
        log.warning("source %s: %s", source, text)
        audit.record(session, None, "system", WARNED, source=source, warning=text)


def recent(store: Store, *, now: datetime | None = None) -> dict[str, list[SourceWarning]]:
    """Per source, its warnings of the last `SHOWN_FOR` that nobody has marked as looked at, newest first."""
    now = now or now_utc()
    with store.session() as s:
        rows = s.execute(select(Event.action, Event.detail, Event.at)
                         .where(Event.action.in_((WARNED, SEEN)), Event.case_id.is_(None),
                                Event.at >= now - SHOWN_FOR)
                         .order_by(Event.at, Event.id)).all()
    out: dict[str, list[SourceWarning]] = {}
    for action, detail, at in rows:
        source = str((detail or {}).get("source", ""))
        if action == SEEN:
            out.pop(source, None)
        else:
            out.setdefault(source, []).insert(0, SourceWarning(source, at, str((detail or {}).get("warning", ""))))
    return out


def mark_seen(store: Store, source: str, actor: str) -> None:
    """A person has looked at `source`'s warnings: they leave the Sources page (the audit trail keeps them)."""
    with store.session() as s:
        audit.record(s, None, actor, SEEN, source=source)
