"""Classification: score what the polls stored, and open or continue cases.

`classify_pending` scores unclassified mentions in batches and, in one
transaction per batch, stores the scores, opens a case for each complaint
(with its SLA due times) and writes the alert outbox rows those cases cause.
Each mention's language is detected first; one in a language the model does
not score is routed by the config instead (desk/intake/languages.py).
A customer's follow-up in a thread that already has a case joins that case, and
so does an answer to one of our replies or accounts (`_existing_case`).
Storing a poll is desk/intake/storing.py's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from desk.cases import audit
from desk.cases.sla import due_times
from desk.config.schema import HearkenConfig
from desk.intake import languages
from desk.notify import alerts
from desk.store.db import Store
from desk.store.models import Case, Classification, Mention as MentionRow, Reply, now_utc, pack_vector

log = logging.getLogger(__name__)


class Predictor(Protocol):
    version: str

    def predict_with_embeddings(self, texts: Sequence[str], *, threshold: float | None = None) -> tuple[list, object]: ...


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
