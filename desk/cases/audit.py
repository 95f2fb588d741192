"""The audit trail: every action on a case, by whom and when, in the same transaction as the action."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from desk.store.models import Event, now_utc


def _jsonable(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.isoformat()
    return v


def record(session: Session, case_id: int | None, actor: str, action: str, **detail: Any) -> Event:
    """Add one audit event; it commits or rolls back with the caller's transaction."""
    ev = Event(case_id=case_id, actor=actor, action=action,
               detail={k: _jsonable(v) for k, v in detail.items() if v is not None}, at=now_utc())
    session.add(ev)
    return ev


def history(session: Session, case_id: int) -> list[Event]:
    return list(session.scalars(select(Event).where(Event.case_id == case_id).order_by(Event.at, Event.id)))
