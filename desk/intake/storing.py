"""Storing a poll: its new mentions, set-aside items, warnings and the source's cursor in one transaction.

`store_poll` writes the new mentions and the source's next cursor in one
transaction: a crash before it commits loses nothing (the next poll fetches
the same posts again) and the unique key (platform, external_id) absorbs the
re-poll, so nothing is stored twice. On a platform whose ids can be reused (a
forum restored from a backup gives lost posts' ids to new ones), a post under
a stored id by another author and at another time is another post: it is
stored under an id of its own (``<id>~<its time>``), and the source carries a
warning (collectors/identity.py; `_tell_apart`). A row the database still
refuses (the collectors' normaliser should have made that impossible) is set
aside with the reason, in a savepoint of its own, so it never costs the rest
of the poll. `store_pushed` stores what a platform pushed (a webhook delivery) by the same rules,
without moving the source's cursor: polling stays the safety net, and the unique key absorbs the post
it reads again. A poll's warnings are kept in the audit trail and shown on the
Sources page (desk/intake/source_warnings.py); the source's own row is written
by desk/intake/source_state.py.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from collectors import PLATFORMS, clean
from collectors.base import Mention, PollResult, SetAside
from collectors.identity import own_id, same_post
from desk.errors import SourceError
from desk.intake import set_aside, source_state, source_warnings
from desk.intake.source_state import LeaseLost  # noqa: F401 - store_poll raises it
from desk.store.db import Store, insert_for
from desk.store.models import MentionRow, now_utc

log = logging.getLogger(__name__)


def mention_values(m: Mention, detected_at: datetime) -> dict:
    return {
        "platform": m.platform, "source": m.source, "external_id": m.external_id, "url": m.url,
        "author": m.author, "author_id": m.author_id, "title": m.title or "", "body": m.body,
        "posted_at": m.posted_at, "detected_at": detected_at, "thread_id": m.thread_id,
        "parent_id": m.parent_id, "matched_terms": list(m.matched_terms), "extra": dict(m.extra),
        "classified": False,
    }


class StoreFailed(SourceError):
    """The database refused a whole poll (not one row of it); the reason is one line, never the SQL."""


def db_reason(exc: BaseException) -> str:
    """One line saying why the database refused something: the driver's message, without SQL or parameters."""
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines()
    message = lines[0] if lines else ""
    return clean.reason_line(f"{type(orig).__name__}: {message}" if message else type(orig).__name__)


_REFUSED = (SQLAlchemyError, ValueError, TypeError)  # a driver or a bind processor refusing a value


def _tell_apart(s: Session, mentions: Sequence[Mention]) -> tuple[list[Mention], list[str]]:
    """The mentions to insert, each a post of its own: on a platform whose ids can be reused, a mention
    under a stored id that is another post (`same_post`) gets an id of its own; one stored so before is
    left out. Also returns the ids found reused. Should the database refuse the look-up (it cannot for
    mentions the collectors' normaliser has cleaned), the mentions go on as they are."""
    reusable = [m for m in mentions if _ids_can_be_reused(m.platform)]
    if not reusable:
        return list(mentions), []
    try:
        with s.begin_nested():
            return _told_apart(s, mentions, reusable)
    except _REFUSED as exc:
        log.warning("could not tell posts under reused ids apart (%s); storing them by id", db_reason(exc))
        return list(mentions), []


def _told_apart(s: Session, mentions: Sequence[Mention], reusable: list[Mention]) -> tuple[list[Mention], list[str]]:
    stored: dict[tuple[str, str], tuple[str, datetime]] = {}
    for platform in {m.platform for m in reusable}:
        ids = [m.external_id for m in reusable if m.platform == platform]
        for i in range(0, len(ids), 500):
            rows = s.execute(select(MentionRow.external_id, MentionRow.author, MentionRow.posted_at)
                             .where(MentionRow.platform == platform, MentionRow.external_id.in_(ids[i:i + 500])))
            stored.update(((platform, e), (a, at)) for e, a, at in rows)
    out: list[Mention] = []
    reused: list[str] = []
    for m in mentions:
        before = stored.get((m.platform, m.external_id))
        if before is None or same_post(before[0], before[1], m.author, m.posted_at):
            out.append(m)  # new, or the post stored before (the unique key absorbs it)
            continue
        others = s.execute(select(MentionRow.external_id, MentionRow.author, MentionRow.posted_at)
                           .where(MentionRow.platform == m.platform,
                                  MentionRow.external_id.startswith(m.external_id + "~", autoescape=True))).all()
        if any(same_post(a, at, m.author, m.posted_at) for _, a, at in others):
            continue  # stored under its own id at an earlier poll
        own = clean.fit_id(own_id(m.external_id, m.posted_at))
        out.append(replace(m, external_id=own, extra={**m.extra, "reused_id": m.external_id}))
        reused.append(m.external_id)
    return out, reused


def _ids_can_be_reused(platform: str) -> bool:
    plat = PLATFORMS.get(platform)
    return bool(plat and plat.ids_can_be_reused)


def _reused_warning(ids: Sequence[str]) -> str:
    shown = ", ".join(clean.shown(i) for i in ids[:3]) + (f" and {len(ids) - 3} more" if len(ids) > 3 else "")
    return (f"{len(ids)} new post(s) came under ids that posts stored earlier have ({shown}): the platform gave "
            "out its ids again (restored from a backup, or moved?). Each was stored as a post of its own; the "
            "earlier posts' links may now open the new ones.")


def _insert_mentions(s: Session, mentions: Sequence[Mention], now: datetime, refused: list[SetAside]) -> int:
    """Insert the mentions (new ones only); a row the database refuses is set aside, the others stored.

    Rows go in batches, each in a savepoint; when a batch is refused its rows are tried one by one,
    each in its own savepoint, so one refusal costs that row only.
    """
    def insert(rows: list[dict]) -> int:
        stmt = insert_for(s)(MentionRow).values(rows).on_conflict_do_nothing(
            index_elements=["platform", "external_id"]).returning(MentionRow.id)
        with s.begin_nested():
            return len(s.execute(stmt).all())

    new = 0
    for i in range(0, len(mentions), 200):  # keep each statement well inside SQLite's variable limit
        batch = list(mentions[i:i + 200])
        rows = [mention_values(m, now) for m in batch]
        try:
            new += insert(rows)
            continue
        except _REFUSED:
            pass
        for m, row in zip(batch, rows, strict=True):
            try:
                new += insert([row])
            except _REFUSED as exc:
                refused.append(clean.clean_set_aside(clean.set_aside_mention(
                    m, f"{m.platform} {clean.shown(m.external_id)}: the database refused it ({db_reason(exc)})")))
    return new


def _set_aside_note(items: Sequence[SetAside]) -> str:
    shown = "; ".join(i.reason for i in items[:3])
    more = f"; and {len(items) - 3} more" if len(items) > 3 else ""
    noun = "item" if len(items) == 1 else "items"
    return f"set aside {len(items)} {noun} that could not be read or stored (kept on the Sources page): {shown}{more}"


def store_poll(store: Store, source: str, platform: str, result: PollResult, *, now: datetime | None = None,
               owner: str | None = None) -> int:
    """Persist one poll: new mentions + set-aside items + cursor + source health, atomically.

    Returns how many mentions were new. With `owner`, the poll is stored only while that process
    still holds the source's lease (checked under a row lock), so a poll that outlived its lease
    never overwrites the cursor of the process that took over. A mention the database refuses is
    set aside with the reason, and the rest of the poll is stored; a failure of the whole
    transaction raises `StoreFailed` with a one-line reason.
    """
    now = now or now_utc()
    try:
        with store.session() as s:
            state = source_state.open_poll(s, source, platform, now=now, owner=owner)
            new, aside, warnings = _store_found(s, source, result, now)
            notes = warnings + ([_set_aside_note(aside)] if aside else []) + list(dict.fromkeys(result.notes))
            source_state.record_success(s, state, result, new=new, notes=notes, now=now)
    except _REFUSED as exc:
        raise StoreFailed(f"could not store the poll of {source}: {db_reason(exc)}") from None
    return new


def _store_found(s: Session, source: str, result: PollResult, now: datetime) -> tuple[int, list[SetAside], list[str]]:
    """What a poll or a push found, stored in `s`: its mentions (the new ones), the items set aside and
    the warnings; returns how many mentions were new, the items set aside and the warnings kept."""
    refused: list[SetAside] = []
    mentions, reused = _tell_apart(s, result.mentions)
    new = _insert_mentions(s, mentions, now, refused)
    aside = list(result.set_aside) + refused
    set_aside.record(s, aside, now=now)
    warnings = list(result.warnings) + ([_reused_warning(reused)] if reused else [])
    source_warnings.record(s, source, warnings)
    if aside:
        log.warning("source %s: set aside %d item(s): %s", source, len(aside), aside[0].reason)
    return new, aside, warnings


@dataclass(frozen=True)
class Pushed:
    """What storing a pushed post did: mentions new, mentions whose text an edit replaced, items set aside."""

    new: int = 0
    updated: int = 0
    set_aside: int = 0


def store_pushed(store: Store, source: str, platform: str, result: PollResult, *, edited: bool = False,
                 now: datetime | None = None) -> Pushed:
    """Store what a platform pushed (a webhook delivery) as a poll's mentions are stored, without the poll.

    The same transaction and rules as `store_poll` (the unique key absorbs a post stored before, by a
    poll or an earlier delivery; a post under a reused id is told apart; a row refused is set aside),
    but no lease is needed and the source's cursor, health and schedule are left as they are: polling
    goes on as the safety net and reads the same post again without storing it twice. With `edited`
    (the post was edited) a post stored before takes the new text, title and terms while it is not yet
    classified; once classified, an edit records nothing new, as a poll would not.
    """
    now = now or now_utc()
    try:
        with store.session() as s:
            source_state.open_push(s, source, platform)
            new, aside, _ = _store_found(s, source, result, now)
            updated = _edit_unclassified(s, result.mentions) if edited else 0
            source_state.record_pushed(s, source, new=new, now=now)
    except _REFUSED as exc:
        raise StoreFailed(f"could not store what {source} pushed: {db_reason(exc)}") from None
    return Pushed(new=new, updated=updated, set_aside=len(aside))


_EDITABLE = ("title", "body", "matched_terms", "url", "parent_id")


def _edit_unclassified(s: Session, mentions: Sequence[Mention]) -> int:
    """The edited text of each mention stored before by the same author and not yet classified."""
    updated = 0
    for m in mentions:
        values = mention_values(m, now_utc())
        updated += s.execute(update(MentionRow).where(
            MentionRow.platform == m.platform, MentionRow.external_id == m.external_id,
            MentionRow.author == m.author, MentionRow.classified.is_(False),
            or_(MentionRow.body != m.body, MentionRow.title != (m.title or "")))
            .values(**{k: values[k] for k in _EDITABLE})).rowcount
    return updated
