"""Public replies, posted exactly once: record the attempt, call the platform, record the result.

A reply posted twice is worse than one posted late, so every path errs toward
not posting:

1. In one transaction holding the case's lock, the attempt is written as a
   `replies` row in status `posting` under an idempotency key (one per draft in
   the composer). A second click with the same key finds that row instead of
   making another; a reply by someone else in flight or unsettled, or one that
   appeared since the composer was opened (`seen_replies`), stops the post.
2. The platform is called outside any transaction, under a wall-clock
   deadline (`replies.publish_deadline_seconds`; see collectors/net/deadline.py).
3. The result is recorded: `posted` (with the platform's id and link; the
   case's first response time is set on the first one), `failed` (the platform
   refused it or it was never sent: safe to try again) or `unknown` (no answer
   in time, connection lost, 5xx: it may be up).
4. A reply left `unknown`, or left `posting` by a process that died (older than
   `replies.stale_after_seconds`), is never sent again by itself. "Check the
   platform" (`check_reply`, or the same draft posted again) pages back through
   our account's posts since it was sent, allowing `replies.clock_skew_seconds`
   either way, for one answering the same post with the same text. Found: it is
   recorded as posted. Not found within `replies.check_grace_seconds` of
   sending: still `unknown` (a platform can store or show a post late), and the
   outcome says when it can be concluded. Not found after that: `not_found`,
   which still posts nothing by itself.
5. Only `post_anyway`, by a person giving a reason, sends an unsettled reply
   again (once the grace period is over); who and why go to the audit trail.

What each state means, and the outcome a person is shown, is desk/cases/reply_status.py; the saved
replies and the {name}/{case} placeholders are desk/cases/templates.py.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from desk.cases import audit
from desk.cases.actions import ACTIVE, CaseError, authorize, lock_case
from desk.cases.publishing import Posted, Publisher, NotPosted, Target, MaybePosted, deadline, length_limit, publisher_for
from desk.cases.reply_status import (BUSY, CHECK_FAILED, UNSETTLED, ReplyOutcome, answered_count, clock, conclusive_at,
                                     is_busy, is_unsettled, outcome_of, sent_at)
from desk.config.schema import HearkenConfig, Replies
from desk.failpoints import failpoint
from desk.store.db import Store
from desk.store.models import Case, Event, MentionRow, Reply, now_utc
from desk.team.users import Actor

log = logging.getLogger(__name__)


class ReplyConflict(CaseError):
    """Posting now could make a second reply: someone else's is in flight, unknown, or new since you looked."""


def new_key() -> str:
    """A fresh idempotency key for one draft."""
    return uuid.uuid4().hex




def reply_with_key(store: Store, key: str) -> Reply | None:
    """The reply recorded under an idempotency key, if any (detached: read its fields only)."""
    with store.session() as s:
        reply = s.scalar(select(Reply).where(Reply.idempotency_key == key))
        if reply is not None:
            s.expunge(reply)
        return reply


def target_for(s: Session, case: Case, mention_id: int | None = None) -> Target:
    """The post to answer: the case's own post, or a later post of the customer's that joined the case."""
    m = s.get(MentionRow, mention_id or case.mention_id)
    if m is None or (m.id != case.mention_id and m.case_id != case.id):
        raise CaseError(f"post {mention_id} is not part of case #{case.id}")
    return Target(platform=case.platform, source=case.source, external_id=m.external_id, thread_id=m.thread_id,
                  url=m.url, author=m.author, extra=dict(m.extra or {}))


def _attempt_mention(s: Session, case_id: int, reply_id: int) -> int | None:
    """Which post a reply answered, as its first attempt recorded it."""
    for ev in s.scalars(select(Event).where(Event.case_id == case_id, Event.action == "reply_attempt")):
        if (ev.detail or {}).get("reply_id") == reply_id:
            return (ev.detail or {}).get("in_reply_to")
    return None


def _claim(r: Reply, status: str, actor: Actor, now: datetime) -> datetime:
    """Take the row for a send or a check; its lease token is the time taken."""
    r.status, r.attempted_at = status, now
    if status == "posting":
        r.author, r.error, r.sent_at = actor.name, None, now
    return now


def post_reply(store: Store, cfg: HearkenConfig, case_id: int, actor: Actor, text: str, *, key: str,
               seen_replies: int | None = None, env: Mapping[str, str] | None = None,
               mention_id: int | None = None) -> ReplyOutcome:
    """Post `text` publicly in reply to the case's post (or to `mention_id`, a later post in the case),
    at most once per `key`. The same key again after a lost answer looks on the platform instead of
    posting. See the module docstring."""
    rules = cfg.replies
    text = (text or "").strip()
    if not text:
        raise CaseError("the reply is empty")
    publisher = publisher_for(cfg, _locate(store, case_id=case_id)[1], env)  # read-only / no credentials: nothing recorded
    try:
        now = now_utc()
        with store.session() as s:
            case = lock_case(s, case_id)
            authorize(actor, case, "reply")
            reply = s.scalar(select(Reply).where(Reply.idempotency_key == key))
            if reply is not None and reply.case_id != case_id:
                raise CaseError("this draft belongs to another case")
            if reply is not None:  # the same draft again: it answers what its first attempt answered
                mention_id = _attempt_mention(s, case_id, reply.id)
            target = target_for(s, case, mention_id)
            limit = length_limit(case.platform, target.extra)
            if len(text) > limit:
                raise CaseError(f"the reply has {len(text)} characters; {case.platform} allows {limit}")
            check: tuple[str, str, datetime] | None = None  # (status it had, text sent, when sent)
            if reply is not None:
                if reply.status == "posted" or is_busy(reply, now, rules):
                    return outcome_of(reply, earlier=True, rules=rules)
                if reply.status == "failed":  # certainly not up: safe to send again
                    audit.record(s, case_id, actor.name, "reply_retry", reply_id=reply.id, previous_error=reply.error)
                    reply.body = text
                    token = _claim(reply, "posting", actor, now)
                else:  # it may be up: look, never send
                    check = (reply.status if reply.status in UNSETTLED else "unknown", reply.body, sent_at(reply))
                    audit.record(s, case_id, actor.name, "reply_check", reply_id=reply.id, was=reply.status)
                    token = _claim(reply, "checking", actor, now)
            else:
                if case.status not in ACTIVE:
                    raise CaseError(f"case #{case_id} is {case.status}; reopen it before replying")
                _refuse_if_unsettled(s, case_id, now, rules)
                if seen_replies is not None and answered_count(s, case_id) != seen_replies:
                    raise ReplyConflict("a reply was added to this case while you were writing; read it before posting")
                reply = Reply(case_id=case_id, idempotency_key=key, kind="public", platform=case.platform,
                              body=text, author=actor.name, status="posting", created_at=now)
                token = _claim(reply, "posting", actor, now)
                s.add(reply)
                s.flush()
                audit.record(s, case_id, actor.name, "reply_attempt", reply_id=reply.id, platform=case.platform,
                             length=len(text), in_reply_to=mention_id or case.mention_id, to=target.external_id)
            reply_id = reply.id
        if check is not None:
            was, sent_text, sent = check
            return _check(store, publisher, rules, reply_id, token, actor, target, sent_text, sent, was)
        return _send(store, publisher, rules, reply_id, token, actor, target, text)
    finally:
        publisher.close()


def check_reply(store: Store, cfg: HearkenConfig, reply_id: int, actor: Actor, *,
                env: Mapping[str, str] | None = None) -> ReplyOutcome:
    """Look on the platform for a reply whose outcome is unknown: posted if ours is there; if not, still
    `unknown` within the grace period after it was sent, `not_found` after it. Never posts."""
    rules = cfg.replies
    case_id, source = _locate(store, reply_id=reply_id)
    publisher = publisher_for(cfg, source, env)
    try:
        now = now_utc()
        with store.session() as s:
            case = lock_case(s, case_id)
            authorize(actor, case, "reply")  # it settles a reply and writes the case's history
            reply = s.get(Reply, reply_id, populate_existing=True)
            assert reply is not None
            if not is_unsettled(reply, now, rules):
                return outcome_of(reply, earlier=True, rules=rules)
            was = reply.status if reply.status in UNSETTLED else "unknown"
            target = target_for(s, case, _attempt_mention(s, case_id, reply_id))
            audit.record(s, case_id, actor.name, "reply_check", reply_id=reply_id, was=reply.status)
            body, sent = reply.body, sent_at(reply)
            token = _claim(reply, "checking", actor, now)
        return _check(store, publisher, rules, reply_id, token, actor, target, body, sent, was)
    finally:
        publisher.close()


def post_anyway(store: Store, cfg: HearkenConfig, reply_id: int, actor: Actor, *, reason: str,
                env: Mapping[str, str] | None = None) -> ReplyOutcome:
    """Send an unsettled reply again, by a person's decision: only once the grace period after it was sent
    is over, and only with a reason. Who and why are written to the audit trail before the call."""
    rules = cfg.replies
    reason = (reason or "").strip()
    if not reason:
        raise CaseError("say why the reply should be posted again: it may already be up")
    case_id, source = _locate(store, reply_id=reply_id)
    publisher = publisher_for(cfg, source, env)
    try:
        now = now_utc()
        with store.session() as s:
            case = lock_case(s, case_id)
            reply = s.get(Reply, reply_id, populate_existing=True)
            assert reply is not None
            authorize(actor, case, "reply")
            if case.status not in ACTIVE:
                raise CaseError(f"case #{case_id} is {case.status}; reopen it before replying")
            if not is_unsettled(reply, now, rules):
                return outcome_of(reply, earlier=True, rules=rules)
            if now < conclusive_at(reply, rules):
                raise CaseError(f"reply #{reply_id} may still appear on the platform until "
                                f"{clock(conclusive_at(reply, rules))}; check the platform again then")
            target = target_for(s, case, _attempt_mention(s, case_id, reply_id))
            audit.record(s, case_id, actor.name, "reply_post_anyway", reply_id=reply_id, reason=reason,
                         was=reply.status, sent_before=sent_at(reply), checked=reply.checked_at)
            body = reply.body
            token = _claim(reply, "posting", actor, now)
        return _send(store, publisher, rules, reply_id, token, actor, target, body)
    finally:
        publisher.close()


def _send(store: Store, publisher: Publisher, rules: Replies, reply_id: int, token: datetime, actor: Actor,
          target: Target, text: str) -> ReplyOutcome:
    failpoint("reply_before_call")
    seconds = rules.publish_deadline_seconds
    try:
        posted = deadline.run(publisher.publish, seconds, target, text)
    except deadline.DeadlinePassed as exc:
        error: Exception = (MaybePosted(f"no answer from the platform within the {seconds:g} s deadline") if exc.sent
                            else NotPosted(f"could not reach the platform within {seconds:g} s; nothing was sent"))
        return _record(store, rules, reply_id, token, actor, error=error)
    except (NotPosted, MaybePosted) as exc:
        return _record(store, rules, reply_id, token, actor, error=exc)
    except Exception as exc:  # noqa: BLE001 - an unexpected failure mid-call: we cannot tell whether it went out
        log.exception("publishing reply %s failed unexpectedly", reply_id)
        return _record(store, rules, reply_id, token, actor, error=MaybePosted(f"{type(exc).__name__}: {exc}"))
    failpoint("reply_after_call")
    return _record(store, rules, reply_id, token, actor, found=posted)


def _check(store: Store, publisher: Publisher, rules: Replies, reply_id: int, token: datetime, actor: Actor,
           target: Target, text: str, sent: datetime, was: str) -> ReplyOutcome:
    """Look for our reply; settle the row by what was seen. A look that fails leaves it as it was."""
    seconds = rules.check_deadline_seconds
    skew = timedelta(seconds=rules.clock_skew_seconds)
    try:
        found = deadline.run(publisher.find_ours, seconds, target, text, sent, skew)
    except Exception as exc:  # noqa: BLE001 - any failure to look leaves the outcome unknown
        why = (f"could not read our posts back to {clock(sent - skew)} within {seconds:g} s"
               if isinstance(exc, deadline.DeadlinePassed) else str(exc) or type(exc).__name__)
        _checked(store, rules, reply_id, token, actor, was, note=f"{CHECK_FAILED}: {why}",
                 action="reply_check_failed", looked=False)
        raise CaseError(f"could not check the platform for our reply ({why}); nothing was posted, "
                        "try the check again later") from exc
    if found is not None:
        return _record(store, rules, reply_id, token, actor, found=found, via="check")
    if token < sent + timedelta(seconds=rules.check_grace_seconds):
        return _checked(store, rules, reply_id, token, actor, "unknown", action="reply_not_found_yet", note=(
            f"not on the platform when checked at {clock(token)}; not conclusive before "
            f"{clock(sent + timedelta(seconds=rules.check_grace_seconds))}"))
    return _checked(store, rules, reply_id, token, actor, "not_found", action="reply_not_found", note=(
        f"not on the platform when checked at {clock(token)} (our posts read back to {clock(sent - skew)}); "
        "not posted again unless someone chooses Post anyway"))


def _checked(store: Store, rules: Replies, reply_id: int, token: datetime, actor: Actor, status: str, *,
             note: str, action: str, looked: bool = True) -> ReplyOutcome:
    with store.session() as s:
        reply = s.get(Reply, reply_id)
        assert reply is not None
        lock_case(s, reply.case_id)
        s.refresh(reply)
        if reply.status != "checking" or reply.attempted_at != token:
            return outcome_of(reply, earlier=True, rules=rules)
        reply.status, reply.error = status, note
        if looked:
            reply.checked_at = token
        audit.record(s, reply.case_id, actor.name, action, reply_id=reply_id, note=note)
        return outcome_of(reply, checked=True, rules=rules)


def _record(store: Store, rules: Replies, reply_id: int, token: datetime, actor: Actor, *,
            found: Posted | None = None, error: Exception | None = None, via: str = "post") -> ReplyOutcome:
    """Write the result of a send or a check. A success always lands; a failure only if this attempt
    still holds the row."""
    now = now_utc()
    with store.session() as s:
        reply = s.get(Reply, reply_id)
        assert reply is not None
        case = lock_case(s, reply.case_id)
        s.refresh(reply)
        if found is not None:
            if reply.status != "posted":
                reply.status, reply.external_id, reply.url, reply.error = "posted", found.external_id, found.url, None
                reply.posted_at = now
                if via == "check":
                    reply.checked_at = token
                if case.first_response_at is None:
                    case.first_response_at = now
                if case.status == "open":
                    case.status = "replied"
                audit.record(s, case.id, actor.name, "replied" if via == "post" else "reply_found",
                             reply_id=reply_id, platform=reply.platform, url=found.url, external_id=found.external_id)
            return outcome_of(reply, checked=via == "check")
        if reply.status != "posting" or reply.attempted_at != token:
            return outcome_of(reply, earlier=True, rules=rules)
        status = "failed" if isinstance(error, NotPosted) else "unknown"
        reason = getattr(error, "reason", None) or str(error)
        reply.status, reply.error = status, reason
        audit.record(s, case.id, actor.name, "reply_failed" if status == "failed" else "reply_unknown",
                     reply_id=reply_id, error=reason)
        return outcome_of(reply)


def _refuse_if_unsettled(s: Session, case_id: int, now: datetime, rules: Replies) -> None:
    for other in s.scalars(select(Reply).where(Reply.case_id == case_id, Reply.status.in_(BUSY + UNSETTLED))):
        if is_busy(other, now, rules):
            doing = "checking the platform for a reply to" if other.status == "checking" else "posting a reply to"
            raise ReplyConflict(f"{other.author} is {doing} this case right now")
        raise ReplyConflict(f"an earlier reply (#{other.id}) by {other.author} may already be up (its outcome is "
                            "unknown); check the platform for it first, or post it anyway with a reason")


def _locate(store: Store, *, case_id: int | None = None, reply_id: int | None = None) -> tuple[int, str]:
    """(case id, source name) of a case, or of the case a reply belongs to."""
    with store.session() as s:
        if reply_id is not None:
            row = s.execute(select(Case.id, Case.source).join(Reply, Reply.case_id == Case.id)
                            .where(Reply.id == reply_id)).first()
        else:
            row = s.execute(select(Case.id, Case.source).where(Case.id == case_id)).first()
    if row is None:
        raise CaseError(f"there is no reply #{reply_id}" if reply_id is not None else f"there is no case #{case_id}")
    return row[0], row[1]
