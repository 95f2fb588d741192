"""Case intake rules: whether a classified mention continues a case, and opening a case for one that does not.

A customer's follow-up in a thread that already has a case joins that case, and so does an answer
to one of our replies or accounts (`existing_case`); a follow-up reopens a case that was replied to,
or a resolved one when it may be a complaint (`join_case`). Opening a case (`open_case`) sets its SLA
due times, writes its audit entry and then calls each of `ON_CASE_OPENED` in the same transaction:
the alert rule is one; a new reaction to a new case is one more function in that list.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

import collectors
from collectors.platform import answers_us as flagged_as_answer
from desk.cases import audit
from desk.cases.sla import due_times
from desk.config.schema import HearkenConfig
from desk.intake import languages
from desk.notify import alerts
from desk.store.models import Case, Classification, MentionRow, Reply, now_utc

# called with (session, cfg, case, mention) once a case is opened, in the transaction that opened it
ON_CASE_OPENED: list[Callable[[Session, HearkenConfig, Case, MentionRow], object]] = [alerts.on_case_opened]


def _answers_us(m: MentionRow) -> bool:
    """Whether the post answers one of our accounts, as its platform reads it (`Platform.answers_us`: by
    default the collector's `reply_to_own` flag; a platform no longer installed keeps that default)."""
    plat = collectors.PLATFORMS.get(m.platform)
    return (plat.answers_us if plat is not None else flagged_as_answer)(m.extra or {})


def answered_ids(m: MentionRow) -> list[str]:
    """External ids of the posts this mention answers: its parent, and (Discourse) the posts of ours it quotes."""
    quotes = (m.extra or {}).get("quotes") or []
    return [i for i in dict.fromkeys([m.parent_id, *quotes]) if isinstance(i, str) and i]


def existing_case(s: Session, m: MentionRow) -> tuple[Case | None, str]:
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
    if _answers_us(m) and m.thread_id:
        in_thread = (select(Case).join(Reply, Reply.case_id == Case.id)
                     .where(Case.platform == m.platform, Case.thread_id == m.thread_id,
                            Reply.status == "posted")
                     .order_by(Reply.id.desc()).limit(1))
        case = s.scalars(in_thread).first()
        if case is not None:
            return case, "answer to our account"
    return None, ""


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
                          answer_to_our_account=True if _answers_us(m) else None,
                          platform_time_ahead=f"the platform dated the post {ahead:.0f}s after we read it; the SLA "
                                              "counts from when we read it" if ahead > 0 else None)
    opened.at = case.opened_at  # the hooks' rows (the alert) are queued as of this instant too: the opening comes first
    for hook in ON_CASE_OPENED:
        hook(s, cfg, case, m)
    return case


def join_case(s: Session, case: Case, m: MentionRow, how: str, *, possible_complaint: bool, scored: bool) -> None:
    """The mention continues `case` (found `how`): it joins it, and reopens it when the rules say so."""
    m.case_id = case.id
    reopen = case.status == "replied" or (case.status == "resolved" and possible_complaint)
    audit.record(s, case.id, "system", "customer_followup", mention_id=m.id, author=m.author,
                 reopened=reopen, joined=how, language=None if scored else m.language)
    if reopen:
        case.status = "open"
        case.resolved_at = None
