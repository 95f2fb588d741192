"""A source's state machine: the one module that writes `source_state` rows.

A source is `new` until its first poll, then `ok` (or `capped`: its collector stopped at the
platform's read budget), `failing` (retried with backoff), `auth_failed` or `disabled` (both wait
for a person). One process polls a source at a time, under a lease held in its row:

- `claim` takes (or renews) the lease, `renew` keeps it while a poll runs, `release` gives it back;
- `record_success` writes a stored poll's outcome (cursor, reads, notes, health) inside the poll's
  own transaction, and `record_failure` a failed one (reason, backoff);
- `read_budget` is what a source with a monthly read cap may still read.

A source going down is logged (and audited) once, when its status changes, and its recovery once,
at the first poll stored after it; never a line per poll.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

import collectors
from collectors import clean
from collectors.base import CollectorError, PollResult
from collectors.plain import reason_line
from desk.cases import audit
from desk.errors import SourceError
from desk.periods import month_key
from desk.store.db import Store, insert_for
from desk.store.models import SourceState

log = logging.getLogger(__name__)

NOTES_SHOWN = 10  # a poll's notes kept on the source's state; the rest are counted
WAITING_FOR_A_PERSON = ("disabled", "auth_failed")


def state_for(session: Session, name: str, platform: str) -> SourceState:
    """The source's row, created (status `new`) when it has none yet."""
    state = session.get(SourceState, name)
    if state is None:  # several runners may register the same source at once: insert-if-absent
        insert = insert_for(session)
        session.execute(insert(SourceState).values(
            name=name, platform=platform, status="new", consecutive_failures=0, mentions_total=0, reads_count=0,
        ).on_conflict_do_nothing(index_elements=["name"]))
        state = session.get(SourceState, name, populate_existing=True)
    return state


class LeaseLost(SourceError):
    """Another process took over the source while this poll ran; its result is thrown away, not stored."""


def open_poll(s: Session, name: str, platform: str, *, now: datetime, owner: str | None) -> SourceState:
    """Begin storing a poll in `s`: with `owner`, only while that process still holds the source's lease
    (checked under a row lock; else `LeaseLost`), so a poll that outlived its lease never overwrites the
    cursor of the process that took over."""
    if owner is not None:
        holder = s.execute(select(SourceState.lease_owner).where(SourceState.name == name)
                           .with_for_update()).scalar_one_or_none()
        if holder is not None and holder != owner:
            raise LeaseLost(f"source {name} is now polled by {holder}")
    state = state_for(s, name, platform)
    # Write first: this takes SQLite's write lock, and opens the transaction the savepoints of the poll's
    # rows nest in (pysqlite begins one only at the first write; a savepoint opened outside one would
    # commit on release).
    s.execute(update(SourceState).where(SourceState.name == name).values(last_poll_at=now))
    return state


def open_push(s: Session, name: str, platform: str) -> None:
    """Begin storing what the source pushed (a webhook delivery) in `s`: no lease, no poll recorded.

    A write comes first, as in `open_poll` (SQLite's write lock, and the transaction the savepoints of
    the rows nest in); it changes nothing of the row.
    """
    state_for(s, name, platform)
    s.execute(update(SourceState).where(SourceState.name == name)
              .values(mentions_total=SourceState.mentions_total))


def record_pushed(s: Session, name: str, *, new: int, now: datetime) -> None:
    """Count the mentions a push stored on the source (its cursor, health and schedule stay the poll's)."""
    if new:
        s.execute(update(SourceState).where(SourceState.name == name)
                  .values(mentions_total=SourceState.mentions_total + new, last_mention_at=now))


def register(store: Store, sources: Sequence[Any]) -> None:
    """A row for every configured source; one `enabled: false` is disabled, one enabled again is new."""
    with store.session() as s:
        for src in sources:
            state = state_for(s, src.name, src.type)
            if not src.enabled:
                state.status, state.status_reason = "disabled", "enabled: false in the config"
            elif state.status == "disabled":
                state.status, state.status_reason = "new", None


def claim(store: Store, name: str, owner: str, now: datetime, *, lease_seconds: float,
          due_by_stored_times: datetime | None = None, skip_disabled: bool = True) -> bool:
    """Take (or renew) `owner`'s lease on the source until `lease_seconds` from now; False if another holds it.

    With `due_by_stored_times` (a bound: a stored time further ahead than it was written on a clock that
    ran fast) the source must also be past its stored next poll and backoff, or have them beyond that bound.
    With `skip_disabled` a disabled source is never claimed.
    """
    conditions = [SourceState.name == name,
                  or_(SourceState.lease_owner.is_(None), SourceState.lease_owner == owner,
                      SourceState.lease_until < now)]
    if due_by_stored_times is not None:
        skewed = due_by_stored_times
        conditions += [or_(SourceState.next_poll_at.is_(None), SourceState.next_poll_at <= now,
                           SourceState.next_poll_at > skewed),
                       or_(SourceState.backoff_until.is_(None), SourceState.backoff_until <= now,
                           SourceState.backoff_until > skewed)]
    if skip_disabled:
        conditions.append(SourceState.status.notin_(["disabled"]))
    with store.session() as s:
        res = s.execute(update(SourceState).where(*conditions)
                        .values(lease_owner=owner, lease_until=now + timedelta(seconds=lease_seconds))
                        .execution_options(synchronize_session=False))
        return bool(res.rowcount)


def renew(store: Store, names: Sequence[str], owner: str, until: datetime) -> None:
    """Keep `owner`'s leases on these sources until `until` (a lease already longer is left as it is)."""
    if not names:
        return
    with store.session() as s:
        s.execute(update(SourceState)
                  .where(SourceState.name.in_(names), SourceState.lease_owner == owner, SourceState.lease_until < until)
                  .values(lease_until=until).execution_options(synchronize_session=False))


def release(store: Store, owner: str) -> None:
    """Give back every lease `owner` holds."""
    with store.session() as s:
        s.execute(update(SourceState).where(SourceState.lease_owner == owner)
                  .values(lease_owner=None, lease_until=None))


def cursor(store: Store, name: str, platform: str) -> dict | None:
    with store.session() as s:
        return state_for(s, name, platform).cursor


def read_budget(store: Store, src: Any, now: datetime) -> int | None:
    """Posts the source may still read this calendar month, or None when its platform has no read cap."""
    plat = collectors.PLATFORMS[src.type]
    if plat.read_cap(src) is None:
        return None
    with store.session() as s:
        st = state_for(s, src.name, src.type)
        used = st.reads_count if st.reads_month == month_key(now) else 0
    return plat.read_budget(src, used)


def set_next_poll(store: Store, name: str, at: datetime) -> None:
    with store.session() as s:
        s.execute(update(SourceState).where(SourceState.name == name).values(next_poll_at=at))


def record_success(s: Session, state: SourceState, result: PollResult, *, new: int, notes: Sequence[str],
                   now: datetime) -> None:
    """A poll stored (in `s`, the poll's own transaction): its cursor, reads and notes; the source is healthy."""
    s.refresh(state)
    recovered = state.status in ("failing", "auth_failed")
    month = month_key(now)
    if state.reads_month != month:
        state.reads_month, state.reads_count = month, 0
    state.reads_count += result.reads
    state.cursor = result.cursor
    state.last_poll_at = state.last_success_at = now
    state.status = "capped" if result.capped else "ok"
    notes = list(notes)
    if len(notes) > NOTES_SHOWN:
        notes = notes[:NOTES_SHOWN] + [f"and {len(notes) - NOTES_SHOWN} more notes"]
    state.status_reason = clean.fit("; ".join(notes), 4000) or None
    state.consecutive_failures = 0
    state.failing_since = None
    state.backoff_until = None
    if new:
        state.mentions_total += new
        state.last_mention_at = now
    if recovered:
        log.info("source %s recovered", state.name)
        audit.record(s, None, "system", "source_recovered", source=state.name)


def record_failure(store: Store, src: Any, exc: Exception, *, now: datetime, max_backoff: float, jitter: float,
                   schedule: Callable[[float], object], status: str = "failing",
                   retry_after: float | None = None) -> None:
    """A failed poll: the reason, and the wait before the next try (handed to `schedule` before it commits).

    A source waiting for a person (disabled, sign-in refused) waits the longest; one the platform asked
    to wait (`retry_after`) waits that long, within `max_backoff`; any other backs off exponentially.
    """
    platform = src.type
    # a platform's words (an error message, an exception quoting a body) as one clean line a database takes
    reason = reason_line(str(exc) if isinstance(exc, CollectorError) else f"{type(exc).__name__}: {exc}")
    if retry_after is not None and not (math.isfinite(retry_after) and retry_after >= 0):
        retry_after = None  # "Retry-After: inf" says nothing we can wait for
    if status not in WAITING_FOR_A_PERSON and retry_after is not None and retry_after > max_backoff:
        # a broken CDN or a misread header must not silence a source for a year: a person chose the longest wait
        reason += f"; waiting {max_backoff:g}s instead, the longest the runner waits (runner.max_backoff_seconds)"
    with store.session() as s:
        st = state_for(s, src.name, platform)
        first = st.status != status
        st.consecutive_failures += 1
        st.last_poll_at = now
        st.last_error, st.last_error_at = reason, now
        st.status, st.status_reason = status, reason
        st.failing_since = st.failing_since or now
        if status in WAITING_FOR_A_PERSON:
            wait = max_backoff
        elif retry_after is not None:
            wait = min(retry_after, max_backoff)
        else:
            wait = min(max_backoff, src.interval_seconds * 2 ** min(st.consecutive_failures - 1, 16))
            wait *= 1 + random.uniform(0, jitter)
        st.backoff_until = now + timedelta(seconds=wait)
        st.next_poll_at = st.backoff_until
        schedule(wait)
        if first:
            log.warning("source %s is %s: %s", src.name, status.replace("_", " "), reason)
            audit.record(s, None, "system", f"source_{status}", source=src.name, reason=reason)
