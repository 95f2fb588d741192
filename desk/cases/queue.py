"""Reading cases for the dashboard: the queue, one case in full, similar past cases, the history.

`open_queue` returns the active cases (open: awaiting a first public reply;
replied: awaiting resolution) most urgent first: the SLA clock that is
running (first response while open, resolution once replied), then severity.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import and_, func, or_, select
from sqlalchemy import case as sql_case
from sqlalchemy.orm import Session

from desk.cases.audit import history as audit_history
from desk.cases.actions import ACTIVE
from desk.store.db import Store
from desk.store.models import Case, Label, MentionRow, Reply, now_utc
from desk.cases.publishing import length_limit


@dataclass(frozen=True)
class QueueFilters:
    platforms: tuple[str, ...] = ()  # empty = all
    statuses: tuple[str, ...] = ACTIVE
    assignee: str | None = None  # None = anyone; "" = unassigned; else a name
    severities: tuple[int, ...] = ()  # empty = all
    escalated_only: bool = False


@dataclass(frozen=True)
class QueueItem:
    case_id: int
    status: str
    platform: str
    source: str
    author: str
    title: str
    excerpt: str
    url: str
    severity: int | None
    score: float | None
    topic: str | None
    assignee: str | None
    escalated_to: str | None
    customer_posted_at: datetime
    due: datetime | None  # the running SLA clock's due time
    age: timedelta
    time_left: timedelta | None  # negative when overdue
    language: str | None = None  # the post's language (classifier.language); None before it was recorded
    scored: bool = True  # False: in a language the complaint model does not score, queued for a reader

    @property
    def overdue(self) -> bool:
        return self.time_left is not None and self.time_left < timedelta(0)


@dataclass(frozen=True)
class Queue:
    items: list[QueueItem]
    overdue: int  # overdue among the items shown
    total_active: int  # every active case, whatever the filters
    overdue_active: int


def _due(case: Case) -> datetime | None:
    return case.first_response_due if case.status == "open" else case.resolution_due


def _excerpt(text: str, n: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def open_queue(store: Store, filters: QueueFilters | None = None, *, now: datetime | None = None,
               limit: int = 500) -> Queue:
    """The queue as the Queue page shows it: filtered, most urgent first, with overdue counts.

    The database filters, orders and limits: open cases on their first-response due time, replied ones
    on their resolution due time (each from the (status, due) index), and the two short lists are merged.
    """
    f = filters or QueueFilters()
    now = now or now_utc()
    far = datetime.max.replace(tzinfo=now.tzinfo)
    conditions = []
    if f.platforms:
        conditions.append(Case.platform.in_(f.platforms))
    if f.severities:
        conditions.append(Case.severity.in_(f.severities))
    if f.assignee == "":
        conditions.append(or_(Case.assignee.is_(None), Case.assignee == ""))
    elif f.assignee is not None:
        conditions.append(Case.assignee == f.assignee)
    if f.escalated_only:
        conditions.append(and_(Case.escalated_to.is_not(None), Case.escalated_to != ""))
    items: list[QueueItem] = []
    with store.session() as s:
        for status, due_col in (("open", Case.first_response_due), ("replied", Case.resolution_due)):
            if f.statuses and status not in f.statuses:
                continue
            q = (select(Case, MentionRow).join(MentionRow, MentionRow.id == Case.mention_id)
                 .where(Case.status == status, *conditions)
                 .order_by(due_col.asc().nulls_last(), Case.severity.desc().nulls_last(), Case.customer_posted_at,
                           Case.id)
                 .limit(limit))
            for case, m in s.execute(q):
                due = _due(case)
                items.append(QueueItem(
                    case_id=case.id, status=case.status, platform=case.platform, source=case.source,
                    author=m.author, title=m.title or "", excerpt=_excerpt(m.body), url=m.url,
                    severity=case.severity, score=case.score, topic=case.topic, assignee=case.assignee,
                    escalated_to=case.escalated_to, customer_posted_at=case.customer_posted_at, due=due,
                    age=now - case.customer_posted_at, time_left=(due - now) if due else None,
                    language=m.language, scored=case.score is not None))
        late = sql_case((and_(Case.status == "open", Case.first_response_due < now), 1),
                        (and_(Case.status == "replied", Case.resolution_due < now), 1), else_=0)
        total, overdue_active = s.execute(select(func.count(), func.coalesce(func.sum(late), 0))
                                          .where(Case.status.in_(ACTIVE))).one()
    items.sort(key=lambda i: (i.due or far, -(i.severity or 0), i.customer_posted_at, i.case_id))
    items = items[:limit]
    return Queue(items=items, overdue=sum(1 for i in items if i.overdue), total_active=int(total or 0),
                 overdue_active=int(overdue_active or 0))


# --- one case ----------------------------------------------------------------


@dataclass(frozen=True)
class Post:
    """A post in the thread, as its author wrote it (untrusted text: display it as plain text)."""

    mention_id: int | None
    external_id: str
    author: str
    title: str
    body: str
    url: str
    posted_at: datetime
    ours: bool = False
    is_case_post: bool = False
    relation: str = ""  # "parent", "this post", "earlier", "later", "our reply"
    in_case: bool = False  # the case's post or a customer's follow-up that joined the case: can be answered


@dataclass(frozen=True)
class ReplyView:
    reply_id: int
    kind: str
    platform: str
    body: str
    author: str
    status: str
    url: str | None
    error: str | None
    created_at: datetime
    posted_at: datetime | None


@dataclass(frozen=True)
class HistoryEntry:
    at: datetime
    actor: str
    action: str
    detail: dict


@dataclass(frozen=True)
class CaseDetail:
    case_id: int
    status: str
    platform: str
    source: str
    severity: int | None
    score: float | None
    topic: str | None
    model_version: str | None
    assignee: str | None
    escalated_to: str | None
    escalation_reason: str | None
    customer_posted_at: datetime
    opened_at: datetime
    first_response_due: datetime | None
    resolution_due: datetime | None
    first_response_at: datetime | None
    resolved_at: datetime | None
    resolution_note: str | None
    root_cause: str | None
    post: Post
    thread: list[Post]
    replies: list[ReplyView]
    history: list[HistoryEntry]
    labels: list[str] = field(default_factory=list)
    reply_limit: int = 10000  # characters the platform takes in a reply
    language: str | None = None  # the post's language (classifier.language)

    @property
    def scored(self) -> bool:
        """False for a post in a language the complaint model does not score (queued for a reader)."""
        return self.score is not None

    @property
    def customer(self) -> str:
        return self.post.author

    @property
    def answerable(self) -> list[Post]:
        """Posts a reply can answer: the case's post and the follow-ups that joined the case, newest first."""
        return sorted((p for p in self.thread if p.in_case and p.mention_id is not None),
                      key=lambda p: p.posted_at, reverse=True)

    def time_left(self, now: datetime | None = None) -> timedelta | None:
        now = now or now_utc()
        due = self.first_response_due if self.status == "open" else self.resolution_due
        return (due - now) if due and self.status in ACTIVE else None


def _post(m: MentionRow, relation: str, *, is_case_post: bool = False, case_id: int | None = None) -> Post:
    return Post(m.id, m.external_id, m.author, m.title or "", m.body, m.url, m.posted_at,
                is_case_post=is_case_post, relation=relation,
                in_case=is_case_post or (case_id is not None and m.case_id == case_id))


def case_detail(store: Store, case_id: int) -> CaseDetail | None:
    """Everything the Case page shows, or None when there is no such case."""
    with store.session() as s:
        case = s.get(Case, case_id)
        if case is None:
            return None
        m = s.get(MentionRow, case.mention_id)
        assert m is not None
        thread = _thread(s, case, m)
        replies = [ReplyView(r.id, r.kind, r.platform, r.body, r.author, r.status, r.url, r.error, r.created_at,
                             r.posted_at)
                   for r in s.scalars(select(Reply).where(Reply.case_id == case_id).order_by(Reply.id))]
        hist = [HistoryEntry(e.at, e.actor, e.action, dict(e.detail or {})) for e in audit_history(s, case_id)]
        labels = [f"{'complaint' if lab.is_complaint else 'not a complaint'} ({lab.author})"
                  for lab in s.scalars(select(Label).where(Label.mention_id == m.id))]
        cls = m.classification
        return CaseDetail(
            case_id=case.id, status=case.status, platform=case.platform, source=case.source,
            severity=case.severity, score=case.score, topic=case.topic,
            model_version=cls.model_version if cls else None, assignee=case.assignee,
            escalated_to=case.escalated_to, escalation_reason=case.escalation_reason,
            customer_posted_at=case.customer_posted_at, opened_at=case.opened_at,
            first_response_due=case.first_response_due, resolution_due=case.resolution_due,
            first_response_at=case.first_response_at, resolved_at=case.resolved_at,
            resolution_note=case.resolution_note, root_cause=case.root_cause,
            post=_post(m, "this post", is_case_post=True), thread=thread, replies=replies, history=hist,
            labels=labels, reply_limit=length_limit(case.platform, m.extra), language=m.language)


def _thread(s: Session, case: Case, m: MentionRow) -> list[Post]:
    """The conversation around the case's post: what it answers, what came after, and our replies, by time."""
    posts: list[Post] = []
    if m.thread_id:
        others = s.scalars(select(MentionRow).where(MentionRow.platform == m.platform, MentionRow.thread_id == m.thread_id,
                                                 MentionRow.id != m.id).order_by(MentionRow.posted_at, MentionRow.id))
        for o in others:
            if m.parent_id and o.external_id == m.parent_id:
                rel = "parent"
            else:
                rel = "earlier" if o.posted_at < m.posted_at else "later"
            posts.append(_post(o, rel, case_id=case.id))
    posts.append(_post(m, "this post", is_case_post=True))
    for r in s.scalars(select(Reply).where(Reply.case_id == case.id, Reply.status == "posted",
                                           Reply.kind == "public")):
        posts.append(Post(None, r.external_id or "", f"{r.author} (our reply)", "", r.body, r.url or "",
                          r.posted_at or r.created_at, ours=True, relation="our reply"))
    posts.sort(key=lambda p: p.posted_at)
    return posts


# --- similar past cases ----------------------------------------------------------


@dataclass(frozen=True)
class SimilarCase:
    case_id: int
    similarity: float
    status: str
    excerpt: str
    reply: str | None  # our first public reply, as posted
    resolution_note: str | None
    root_cause: str | None


Embed = Callable[[Sequence[str]], np.ndarray]


def similar_cases(store: Store, case_id: int, *, k: int = 3, embed: Embed | None = None,
                  candidates: int = 200, min_similarity: float = 0.3) -> list[SimilarCase]:
    """Past cases closest in meaning (classifier embeddings) that were answered or resolved, with their answers."""
    with store.session() as s:
        case = s.get(Case, case_id)
        if case is None:
            return []
        me = s.get(MentionRow, case.mention_id)
        rows = s.execute(
            select(Case, MentionRow).join(MentionRow, MentionRow.id == Case.mention_id)
            .where(Case.id != case_id, Case.status.in_(("replied", "resolved")))
            .order_by(Case.opened_at.desc()).limit(candidates)).all()
        if me is None or not rows:
            return []
        first_reply: dict[int, str] = {}
        for r in s.scalars(select(Reply).where(Reply.case_id.in_([c.id for c, _ in rows]), Reply.status == "posted")
                           .order_by(Reply.posted_at)):
            first_reply.setdefault(r.case_id, r.body)
        texts = [me.text] + [m.text for _, m in rows]
    if embed is None:
        import classifier

        embed = classifier.embed
    vecs = np.asarray(embed(texts), dtype=np.float32)
    sims = vecs[1:] @ vecs[0]
    order = np.argsort(-sims)[:k]
    out = []
    for i in order:
        if float(sims[i]) < min_similarity:
            continue
        c, m = rows[int(i)]
        out.append(SimilarCase(c.id, float(sims[i]), c.status, _excerpt(m.text, 200), first_reply.get(c.id),
                               c.resolution_note, c.root_cause))
    return out
