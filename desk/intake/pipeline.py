"""The stages after a collector: store a poll's mentions with its cursor, classify, open cases.

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
of the poll. A poll's warnings are kept in the audit trail and shown on the
Sources page (desk/intake/source_warnings.py).

`classify_pending` scores unclassified mentions in batches and, in one
transaction per batch, stores the scores, opens a case for each complaint
(with its SLA due times) and writes the alert outbox rows those cases cause.
Each mention's language is detected first; one in a language the model does
not score is routed by the config instead (desk/intake/languages.py).
A customer's follow-up in a thread that already has a case joins that case, and
so does an answer to one of our replies or accounts (`_existing_case`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from collectors import PLATFORMS, clean
from collectors.base import Mention, PollResult, SetAside
from collectors.identity import own_id, same_post
from desk.notify import alerts
from desk.cases import audit
from desk.intake import languages
from desk.intake import set_aside
from desk.intake import source_warnings
from desk.config.schema import HearkenConfig
from desk.store.db import Store
from desk.errors import SourceError
from desk.store.models import Case, Classification, Mention as MentionRow, Reply, SourceState, now_utc, pack_vector
from desk.periods import month_key  # TODO(issue 15): desk/intake/runner.py imports it from here until fix13's runner work lands
from desk.cases.sla import due_times

log = logging.getLogger(__name__)

CAP_NOTE = "monthly read cap reached"  # a collector's note that it stopped at its read budget
NOTES_SHOWN = 10  # a poll's notes kept on the source's state; the rest are counted


class Predictor(Protocol):
    version: str

    def predict_with_embeddings(self, texts: Sequence[str], *, threshold: float | None = None) -> tuple[list, object]: ...


def _insert(session: Session):
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def mention_values(m: Mention, detected_at: datetime) -> dict:
    return {
        "platform": m.platform, "source": m.source, "external_id": m.external_id, "url": m.url,
        "author": m.author, "author_id": m.author_id, "title": m.title or "", "body": m.body,
        "posted_at": m.posted_at, "detected_at": detected_at, "thread_id": m.thread_id,
        "parent_id": m.parent_id, "matched_terms": list(m.matched_terms), "extra": dict(m.extra),
        "classified": False,
    }


def state_for(session: Session, name: str, platform: str) -> SourceState:
    state = session.get(SourceState, name)
    if state is None:  # several runners may register the same source at once: insert-if-absent
        session.execute(_insert(session)(SourceState).values(
            name=name, platform=platform, status="new", consecutive_failures=0, mentions_total=0, reads_count=0,
        ).on_conflict_do_nothing(index_elements=["name"]))
        state = session.get(SourceState, name, populate_existing=True)
    return state


class LeaseLost(SourceError):
    """Another process took over the source while this poll ran; its result is thrown away, not stored."""


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
        stmt = _insert(s)(MentionRow).values(rows).on_conflict_do_nothing(
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
            if owner is not None:
                holder = s.execute(select(SourceState.lease_owner).where(SourceState.name == source)
                                   .with_for_update()).scalar_one_or_none()
                if holder is not None and holder != owner:
                    raise LeaseLost(f"source {source} is now polled by {holder}")
            state = state_for(s, source, platform)
            # Write first: this takes SQLite's write lock, and opens the transaction the savepoints below
            # nest in (pysqlite begins one only at the first write; a savepoint opened outside one would
            # commit on release).
            s.execute(update(SourceState).where(SourceState.name == source).values(last_poll_at=now))
            refused: list[SetAside] = []
            mentions, reused = _tell_apart(s, result.mentions)
            new = _insert_mentions(s, mentions, now, refused)
            aside = list(result.set_aside) + refused
            set_aside.record(s, aside, now=now)
            warnings = list(result.warnings) + ([_reused_warning(reused)] if reused else [])
            source_warnings.record(s, source, warnings)
            s.refresh(state)
            recovered = state.status in ("failing", "auth_failed")
            month = month_key(now)
            if state.reads_month != month:
                state.reads_month, state.reads_count = month, 0
            state.reads_count += result.reads
            state.cursor = result.cursor
            state.last_poll_at = state.last_success_at = now
            state.status = "capped" if any(n.startswith(CAP_NOTE) for n in result.notes) else "ok"
            notes = warnings + ([_set_aside_note(aside)] if aside else []) + list(dict.fromkeys(result.notes))
            if len(notes) > NOTES_SHOWN:
                notes = notes[:NOTES_SHOWN] + [f"and {len(notes) - NOTES_SHOWN} more notes"]
            state.status_reason = clean.fit("; ".join(notes), 4000) or None
            state.consecutive_failures = 0
            state.failing_since = None
            state.backoff_until = None
            if new:
                state.mentions_total += new
                state.last_mention_at = now
            if aside:
                log.warning("source %s: set aside %d item(s): %s", source, len(aside), aside[0].reason)
            if recovered:
                log.info("source %s recovered", source)
                audit.record(s, None, "system", "source_recovered", source=source)
    except _REFUSED as exc:
        raise StoreFailed(f"could not store the poll of {source}: {db_reason(exc)}") from None
    return new


@dataclass
class Outcome:
    classified: int = 0
    cases_opened: int = 0
    followups: int = 0
    not_scored: int = 0  # in a language the model does not score: queued for a reader, or set aside


def answered_ids(m: MentionRow) -> list[str]:
    """External ids of the posts this mention answers: its parent, and (Discourse) the posts of ours it quotes."""
    quotes = (m.extra or {}).get("quotes") or []
    return [i for i in dict.fromkeys([m.parent_id, *quotes]) if isinstance(i, str) and i]


def _existing_case(s: Session, m: MentionRow) -> tuple[Case | None, str]:
    """The case this mention continues, and how it was found ("" when none).

    - "same customer": the same author in the same thread continues their own case. Another customer
      posting in the thread is a customer of their own and gets a case of their own.
    - "answer to our reply": it answers (or quotes) a reply Hearken posted; the reply's external id has
      the same form as the mention ids of that platform (Reddit t1_..., an X post id, Discourse
      host/t/topic/n), so the join is by id, on every platform.
    - "answer to our account": the collector flagged it `reply_to_own` (it answers or quotes one of
      our accounts) but not a reply Hearken posted (one made on the platform itself, or a forum,
      where Hearken cannot post): it joins the case of our newest reply in the same thread.

    When none of these matches, the mention is new: a complaint opens a case of its own (even an
    answer to our account, for example to a post our team made outside Hearken), anything else is
    kept as a mention without a case.
    """
    if m.thread_id:
        same_customer = (select(Case).join(MentionRow, Case.mention_id == MentionRow.id)
                         .where(Case.platform == m.platform, Case.thread_id == m.thread_id,
                                MentionRow.author == m.author)
                         .order_by(Case.id).limit(1))
        case = s.scalars(same_customer).first()
        if case is not None:
            return case, "same customer"
    answered = answered_ids(m)
    if answered:
        answer_to_reply = (select(Case).join(Reply, Reply.case_id == Case.id)
                           .where(Reply.platform == m.platform, Reply.external_id.in_(answered))
                           .order_by(Reply.id.desc()).limit(1))
        case = s.scalars(answer_to_reply).first()
        if case is not None:
            return case, "answer to our reply"
    if (m.extra or {}).get("reply_to_own") and m.thread_id:
        in_thread = (select(Case).join(Reply, Reply.case_id == Case.id)
                     .where(Case.platform == m.platform, Case.thread_id == m.thread_id,
                            Reply.status == "posted")
                     .order_by(Reply.id.desc()).limit(1))
        case = s.scalars(in_thread).first()
        if case is not None:
            return case, "answer to our account"
    return None, ""


def _lock_threads(s: Session, batch: list[MentionRow]) -> None:
    """On PostgreSQL, serialise case decisions per thread across runners (sorted, so no deadlock).

    Without it two runners classifying two posts of one customer at the same time would each
    find no case and open two. SQLite needs nothing: it lets one writer in at a time.
    """
    if s.get_bind().dialect.name != "postgresql":
        return
    keys = sorted({f"{m.platform}|{m.thread_id}" for m in batch if m.thread_id})
    for key in keys:
        s.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": key})


def customer_posted_at(m: MentionRow) -> datetime:
    """When the SLA clocks start: when the platform says the customer posted, but never later than when we
    first read the post. A post cannot have been written after we read it; a platform whose clock runs
    fast (or a wrong time zone on a forum's server) would otherwise push every deadline out by as much."""
    return min(m.posted_at, m.detected_at) if m.detected_at is not None else m.posted_at


def open_case(s: Session, cfg: HearkenConfig, m: MentionRow, c: Classification | None) -> Case:
    """A case for a complaint (`c`), or, with `c` None, for a post in a language the model does not score."""
    posted = customer_posted_at(m)
    severity = c.severity if c else None
    first_due, resolution_due = due_times(cfg.sla, m.platform, severity, posted)
    case = Case(mention_id=m.id, platform=m.platform, source=m.source, thread_id=m.thread_id or m.external_id,
                status="open", severity=severity, score=c.score if c else None, topic=c.topic if c else None,
                customer_posted_at=posted, opened_at=now_utc(),
                first_response_due=first_due, resolution_due=resolution_due)
    s.add(case)
    s.flush()
    m.case_id = case.id
    ahead = (m.posted_at - posted).total_seconds()
    opened = audit.record(s, case.id, "system", "opened", score=round(c.score, 4) if c else None, severity=severity,
                          model=c.model_version if c else None, sla_first_response_due=first_due.isoformat(),
                          language=None if c else m.language,
                          not_scored=None if c else languages.not_scored_note(cfg, m.language or "?"),
                          answer_to_our_account=True if (m.extra or {}).get("reply_to_own") else None,
                          platform_time_ahead=f"the platform dated the post {ahead:.0f}s after we read it; the SLA "
                                              "counts from when we read it" if ahead > 0 else None)
    opened.at = case.opened_at  # the alert below is queued as of this instant too: the opening comes first
    alerts.on_case_opened(s, cfg, case, m)
    return case


def _within_length(texts: list[str], max_chars: int | None) -> int:
    """How many of the texts (at least one) fit in `max_chars` together."""
    if max_chars is None:
        return len(texts)
    total = 0
    for n, t in enumerate(texts):
        total += len(t)
        if total > max_chars and n:
            return n
    return len(texts)


def classify_pending(store: Store, cfg: HearkenConfig, model: Predictor, *, batch_size: int | None = None,
                     limit: int | None = None, max_chars: int | None = None,
                     should_stop: Callable[[], bool] | None = None) -> Outcome:
    """Classify mentions not yet classified, in batches, until none are left (or `limit` is reached).

    With `max_chars` a batch holds no more text than that (at least one post), so a batch of posts as
    long as posts may be is a few of them, not batch_size; `should_stop` is asked between batches.
    """
    batch_size = batch_size or cfg.classifier.batch_size
    out = Outcome()
    while limit is None or out.classified < limit:
        if should_stop is not None and should_stop():
            break
        with store.session() as s:
            q = select(MentionRow).where(MentionRow.classified.is_(False)).order_by(MentionRow.id).limit(batch_size)
            if s.get_bind().dialect.name == "postgresql":
                q = q.with_for_update(skip_locked=True)
            batch = list(s.scalars(q))
            if not batch:
                break
            texts = [_text(m) for m in batch]
            keep = _within_length(texts, max_chars)
            batch, texts = batch[:keep], texts[:keep]
            # the model reads English: a mention in a language the config does not score is routed instead
            routes = languages.route(cfg, texts)
            scored = [k for k, r in enumerate(routes) if r.scored]
            preds, vectors = (model.predict_with_embeddings([texts[k] for k in scored],
                                                            threshold=cfg.classifier.threshold)
                              if scored else ([], None))
            prediction = dict(zip(scored, range(len(scored))))
            _lock_threads(s, batch)
            for k, m in enumerate(batch):
                claimed = s.execute(update(MentionRow).where(MentionRow.id == m.id, MentionRow.classified.is_(False))
                                    .values(classified=True, language=routes[k].language)).rowcount
                if not claimed:
                    continue
                m.language = routes[k].language
                out.classified += 1
                c = None
                if k in prediction:
                    p, row = preds[prediction[k]], prediction[k]
                    c = Classification(mention_id=m.id, model_version=model.version, score=float(p.score),
                                       is_complaint=bool(p.is_complaint),
                                       severity=p.severity if p.is_complaint else None, topic=p.topic,
                                       embedding=pack_vector(vectors[row]) if p.is_complaint else None)
                    s.add(c)
                # not scored: under "queue" a person reads it, so it counts as possibly a complaint
                possible_complaint = c.is_complaint if c else cfg.classifier.other_languages == "queue"
                existing, how = _existing_case(s, m)
                if existing is not None:
                    m.case_id = existing.id
                    out.followups += 1
                    reopen = existing.status == "replied" or (existing.status == "resolved" and possible_complaint)
                    audit.record(s, existing.id, "system", "customer_followup", mention_id=m.id, author=m.author,
                                 reopened=reopen, joined=how, language=None if c else m.language)
                    if reopen:
                        existing.status = "open"
                        existing.resolved_at = None
                    continue
                if c is None and cfg.classifier.other_languages == "drop":
                    out.not_scored += 1  # kept, unscored, no case: the Sources page lists it
                elif c is None or c.is_complaint:
                    open_case(s, cfg, m, c)
                    out.cases_opened += 1
                    out.not_scored += c is None
    return out


def _text(m: MentionRow) -> str:
    import classifier

    return classifier.prepare_text(m.title or "", m.body)


def counts(store: Store) -> dict[str, int]:
    with store.session() as s:
        return {
            "mentions": s.scalar(select(func.count()).select_from(MentionRow)) or 0,
            "cases": s.scalar(select(func.count()).select_from(Case)) or 0,
            "open": s.scalar(select(func.count()).select_from(Case).where(Case.status == "open")) or 0,
        }
