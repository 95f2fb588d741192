"""Classification as stages: score what the polls stored, and open or continue cases.

`classify_pending` takes unclassified mentions in batches and runs, for each batch in one
transaction, the stages in order:

- `BATCH_STAGES`, on the whole batch before any lock on a thread is taken (inference holds none):
  each mention's language (desk/intake/languages.py; one in a language the model does not score is
  routed by the config instead), then the model's scores;
- `MENTION_STAGES`, for each mention under the batch's thread locks: claim it (exactly once, however
  many runners classify), store its score, join the case it continues, or open one for a complaint
  (desk/intake/case_rules.py, whose `ON_CASE_OPENED` hooks, the alert among them, run in the same
  transaction).

A stage is a function; a new one (spam, a spike) is one more entry in a list. A mention stage
returns False when the mention needs no further stage.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from desk.config.schema import HearkenConfig
from desk.intake import languages
from desk.intake.case_rules import existing_case, join_case, open_case
from desk.store.db import Store
from desk.store.models import Case, Classification, MentionRow, pack_vector

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


@dataclass
class Item:
    """One mention on its way through the stages."""

    mention: MentionRow
    text: str
    route: Any = None  # languages.Route: its language, and whether the model scores it
    prediction: Any = None  # the model's prediction, when it scored it
    vector: Any = None
    classification: Classification | None = None


@dataclass
class Batch:
    """What the stages of one batch share: its transaction, the config, the model, the outcome so far."""

    s: Session
    cfg: HearkenConfig
    model: Predictor
    items: list[Item]
    out: Outcome = field(default_factory=Outcome)


def route_languages(b: Batch) -> None:
    """The model reads English: a mention in a language the config does not score is routed instead."""
    for item, route in zip(b.items, languages.route(b.cfg, [i.text for i in b.items]), strict=True):
        item.route = route


def score(b: Batch) -> None:
    """The model's scores for the mentions it scores, in one call."""
    scored = [i for i in b.items if i.route.scored]
    if not scored:
        return
    preds, vectors = b.model.predict_with_embeddings([i.text for i in scored], threshold=b.cfg.classifier.threshold)
    for row, (item, p) in enumerate(zip(scored, preds)):
        item.prediction, item.vector = p, vectors[row]


def claim(b: Batch, item: Item) -> bool:
    """Mark the mention classified, once: False when another runner did it meanwhile."""
    m = item.mention
    claimed = b.s.execute(update(MentionRow).where(MentionRow.id == m.id, MentionRow.classified.is_(False))
                          .values(classified=True, language=item.route.language)).rowcount
    if not claimed:
        return False
    m.language = item.route.language
    b.out.classified += 1
    return True


def store_score(b: Batch, item: Item) -> bool:
    p = item.prediction
    if p is not None:
        item.classification = Classification(
            mention_id=item.mention.id, model_version=b.model.version, score=float(p.score),
            is_complaint=bool(p.is_complaint), severity=p.severity if p.is_complaint else None, topic=p.topic,
            embedding=pack_vector(item.vector) if p.is_complaint else None)
        b.s.add(item.classification)
    return True


def join_existing_case(b: Batch, item: Item) -> bool:
    """A follow-up joins the case it continues (and may reopen it); no case of its own then."""
    case, how = existing_case(b.s, item.mention)
    if case is None:
        return True
    c = item.classification
    # not scored: under "queue" a person reads it, so it counts as possibly a complaint
    possible = c.is_complaint if c else b.cfg.classifier.other_languages == "queue"
    join_case(b.s, case, item.mention, how, possible_complaint=possible, scored=c is not None)
    b.out.followups += 1
    return False


def open_new_case(b: Batch, item: Item) -> bool:
    """A case for a complaint, or for a post the model does not score (kept without one under "drop")."""
    c = item.classification
    if c is None and b.cfg.classifier.other_languages == "drop":
        b.out.not_scored += 1  # kept, unscored, no case: the Sources page lists it
    elif c is None or c.is_complaint:
        open_case(b.s, b.cfg, item.mention, c)
        b.out.cases_opened += 1
        b.out.not_scored += c is None
    return True


BATCH_STAGES: list[Callable[[Batch], None]] = [route_languages, score]
MENTION_STAGES: list[Callable[[Batch, Item], bool]] = [claim, store_score, join_existing_case, open_new_case]


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
            rows = list(s.scalars(q))
            if not rows:
                break
            texts = [_text(m) for m in rows]
            keep = _within_length(texts, max_chars)
            b = Batch(s, cfg, model, [Item(m, t) for m, t in zip(rows[:keep], texts[:keep])], out)
            for batch_stage in BATCH_STAGES:
                batch_stage(b)
            _lock_threads(s, [i.mention for i in b.items])
            for item in b.items:
                for stage in MENTION_STAGES:
                    if not stage(b, item):
                        break
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
