"""Public replies, posted exactly once: record the attempt, call the platform, record the result.

A reply posted twice is worse than one posted late, so every path errs toward
not posting:

1. In one transaction holding the case's lock, the attempt is written as a
   `replies` row in status `posting` under an idempotency key (one per draft in
   the composer). A second click with the same key finds that row instead of
   making another; a reply by someone else in flight, or one that appeared
   since the composer was opened (`seen_replies`), stops the post.
2. The platform is called outside any transaction.
3. The result is recorded: `posted` (with the platform's id and link; the
   case's first response time is set on the first one), `failed` (the platform
   refused or it was never sent: safe to try again) or `unknown` (timeout,
   connection lost: it may be up).
4. A row left `unknown`, or left `posting` by a process that died mid-call
   (older than `stale_after`), is never simply retried: the publisher first
   looks for our account's reply to that post on the platform. Found: it is
   recorded as posted. Not found: it may be posted again.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from desk import audit
from desk.cases import ACTIVE, CaseError, authorize, lock_case
from desk.config import HearkenConfig
from desk.db import Store
from desk.models import Case, Event, Mention, Reply, now_utc
from desk.publishers import Posted, Publisher, Rejected, Target, Unknown, length_limit, publisher_for
from desk.users import Actor

log = logging.getLogger(__name__)

STALE_AFTER = timedelta(seconds=120)  # longer than any publisher's own timeout; HEARKEN_REPLY_STALE_SECONDS overrides


def _stale_after(value: timedelta | None) -> timedelta:
    if value is not None:
        return value
    env = os.environ.get("HEARKEN_REPLY_STALE_SECONDS")
    return timedelta(seconds=float(env)) if env else STALE_AFTER
IN_FLIGHT = ("pending", "posting", "unknown")


class ReplyConflict(CaseError):
    """Posting now could make a second reply: someone else's is in flight, unknown, or new since you looked."""


@dataclass(frozen=True)
class ReplyOutcome:
    reply_id: int
    status: str  # posted | failed | unknown | posting
    url: str | None = None
    external_id: str | None = None
    error: str | None = None
    earlier: bool = False  # this is the result of an earlier attempt with the same key

    @property
    def message(self) -> str:
        if self.status == "posted":
            return ("This reply was already posted" if self.earlier else "Posted publicly") + (
                f": {self.url}" if self.url else ".")
        if self.status == "failed":
            return f"Not posted: {self.error}. Nothing went out; you can try again."
        if self.status == "unknown":
            return (f"The platform did not confirm the reply ({self.error}). It may be up: "
                    "use 'Check the platform' before trying again.")
        return "This reply is being posted right now; wait a moment."


TEMPLATES: dict[str, str] = {
    "Acknowledge and investigate": (
        "Hi {name}, thank you for raising this, and sorry for the trouble. I can see how frustrating this is. "
        "We're looking into it now and will update you here within 24 hours. Ref {case}"),
    "Billing correction": (
        "Hi {name}, thanks for flagging this. Being charged wrongly is stressful, and we'll put it right: "
        "our billing team will correct it and confirm here within 2 working days. Ref {case}"),
    "Outage update": (
        "Hi {name}, sorry, losing your connection is disruptive. We know about the fault in your area; "
        "engineers are on it and we'll post an update here by 6pm today. Thanks for telling us. Ref {case}"),
    "Move to private channel": (
        "Hi {name}, thanks for letting us know and sorry this happened. To fix it we need your account "
        "details: please send us a private message quoting {case} and we'll reply within 4 hours."),
    "Follow-up: resolved": (
        "Hi {name}, following up on {case}: this should now be fixed. Thank you for your patience and for "
        "raising it. If anything still isn't right, reply here and we'll pick it straight back up."),
}


def fill_template(template: str, *, customer: str, case_id: int) -> str:
    """Put the customer's name and the case reference into a template (plain replace: no format-string tricks)."""
    return template.replace("{name}", customer.lstrip("@") or "there").replace("{case}", case_ref(case_id))


def case_ref(case_id: int) -> str:
    return f"#HK{case_id}"


def new_key() -> str:
    """A fresh idempotency key for one draft."""
    return uuid.uuid4().hex


def _failpoint(name: str) -> None:
    """Test hook: with HEARKEN_FAILPOINT=name:FILE, touch FILE and hang here (so a test can kill -9 the process)."""
    spec = os.environ.get("HEARKEN_FAILPOINT", "")
    if spec.startswith(name + ":"):
        Path(spec.split(":", 1)[1]).touch()
        time.sleep(3600)


def target_for(s: Session, case: Case, mention_id: int | None = None) -> Target:
    """The post to answer: the case's own post, or a later post of the customer's that joined the case."""
    m = s.get(Mention, mention_id or case.mention_id)
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


def answered_count(s: Session, case_id: int) -> int:
    """Replies the case has (posted publicly or recorded as made elsewhere): the composer's `seen_replies`."""
    return s.scalar(select(func.count()).select_from(Reply).where(Reply.case_id == case_id,
                                                                   Reply.status == "posted")) or 0


def seen_replies(store: Store, case_id: int) -> int:
    with store.session() as s:
        return answered_count(s, case_id)


def _outcome(r: Reply, *, earlier: bool = False) -> ReplyOutcome:
    return ReplyOutcome(r.id, r.status, r.url, r.external_id, r.error, earlier)


def _stale(r: Reply, now: datetime, stale_after: timedelta) -> bool:
    return r.status == "unknown" or (r.status in ("pending", "posting")
                                     and (r.attempted_at is None or r.attempted_at <= now - stale_after))


def post_reply(store: Store, cfg: HearkenConfig, case_id: int, actor: Actor, text: str, *, key: str,
               seen_replies: int | None = None, env: Mapping[str, str] | None = None,
               stale_after: timedelta | None = None, mention_id: int | None = None) -> ReplyOutcome:
    """Post `text` publicly in reply to the case's post (or to `mention_id`, a later post in the case),
    at most once per `key`. See the module docstring."""
    stale_after = _stale_after(stale_after)
    text = (text or "").strip()
    if not text:
        raise CaseError("the reply is empty")
    publisher = publisher_for(cfg, _case_source(store, case_id), env)  # read-only / no credentials: nothing recorded
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
            check_since: datetime | None = None
            check_text = text
            if reply is not None:
                if reply.status == "posted":
                    return _outcome(reply, earlier=True)
                if reply.status in ("pending", "posting") and not _stale(reply, now, stale_after):
                    return _outcome(reply, earlier=True)
                if reply.status == "failed":
                    audit.record(s, case_id, actor.name, "reply_retry", reply_id=reply.id, previous_error=reply.error)
                else:  # unknown, or a posting left behind by a process that died: look before posting again
                    check_since = reply.attempted_at or reply.created_at
                    check_text = reply.body  # look for what was sent, even if the draft was edited since
                    audit.record(s, case_id, actor.name, "reply_check", reply_id=reply.id, was=reply.status)
                reply.status, reply.author, reply.error = "posting", actor.name, None
                reply.attempted_at = now
                if check_since is None:
                    reply.body = text
            else:
                if case.status not in ACTIVE:
                    raise CaseError(f"case #{case_id} is {case.status}; reopen it before replying")
                _refuse_if_in_flight(s, case_id, now, stale_after)
                if seen_replies is not None and answered_count(s, case_id) != seen_replies:
                    raise ReplyConflict("a reply was added to this case while you were writing; read it before posting")
                reply = Reply(case_id=case_id, idempotency_key=key, kind="public", platform=case.platform,
                              body=text, author=actor.name, status="posting", created_at=now, attempted_at=now)
                s.add(reply)
                s.flush()
                audit.record(s, case_id, actor.name, "reply_attempt", reply_id=reply.id, platform=case.platform,
                             length=len(text), in_reply_to=target_mention(s, case, mention_id),
                             to=target.external_id)
            reply_id, token = reply.id, now
        if check_since is not None:
            found = _look(store, publisher, reply_id, token, actor, target, check_text, check_since)
            if found is not None:
                return _record(store, reply_id, token, actor, found=found, via="check")
            if check_text != text:
                _set_body(store, reply_id, token, text)
        return _publish(store, publisher, reply_id, token, actor, target, text)
    finally:
        publisher.close()


def check_reply(store: Store, cfg: HearkenConfig, reply_id: int, actor: Actor, *,
                env: Mapping[str, str] | None = None, stale_after: timedelta | None = None) -> ReplyOutcome:
    """Settle a reply whose outcome is unknown by looking on the platform: posted if ours is there, else failed."""
    stale_after = _stale_after(stale_after)
    with store.session() as s:
        reply = s.get(Reply, reply_id)
        if reply is None:
            raise CaseError(f"there is no reply #{reply_id}")
        case_id = reply.case_id
    publisher = publisher_for(cfg, _case_source(store, case_id), env)
    try:
        now = now_utc()
        with store.session() as s:
            case = lock_case(s, case_id)
            reply = s.get(Reply, reply_id, populate_existing=True)
            assert reply is not None
            if not _stale(reply, now, stale_after):
                return _outcome(reply, earlier=True)
            since = reply.attempted_at or reply.created_at
            text = reply.body
            target = target_for(s, case, _attempt_mention(s, case_id, reply_id))
            audit.record(s, case_id, actor.name, "reply_check", reply_id=reply_id, was=reply.status)
            reply.status, reply.attempted_at = "posting", now  # hold it while we look
            token = now
        found = _look(store, publisher, reply_id, token, actor, target, text, since)
        if found is not None:
            return _record(store, reply_id, token, actor, found=found, via="check")
        return _record(store, reply_id, token, actor,
                       error=Rejected("not found on the platform after checking; safe to post again"), via="check")
    finally:
        publisher.close()


def target_mention(s: Session, case: Case, mention_id: int | None) -> int:
    return mention_id or case.mention_id


def _set_body(store: Store, reply_id: int, token: datetime, text: str) -> None:
    with store.session() as s:
        reply = s.get(Reply, reply_id)
        if reply is not None and reply.status == "posting" and reply.attempted_at == token:
            reply.body = text


def _look(store: Store, publisher: Publisher, reply_id: int, token: datetime, actor: Actor, target: Target,
          text: str, since: datetime) -> Posted | None:
    """Look for our reply on the platform. If looking fails, the reply goes back to unknown (nothing is posted)."""
    try:
        return publisher.find_ours(target, text, since)
    except Exception as exc:  # noqa: BLE001 - any failure to look leaves the outcome unknown
        _record(store, reply_id, token, actor, error=Unknown(f"could not check the platform: {exc}"), via="check")
        raise CaseError(f"could not check the platform for our reply ({exc}); nothing was posted, "
                        "try the check again later") from exc


def _publish(store: Store, publisher: Publisher, reply_id: int, token: datetime, actor: Actor,
             target: Target, text: str) -> ReplyOutcome:
    _failpoint("reply_before_call")
    try:
        posted = publisher.publish(target, text)
    except Rejected as exc:
        return _record(store, reply_id, token, actor, error=exc)
    except Unknown as exc:
        return _record(store, reply_id, token, actor, error=exc)
    except Exception as exc:  # noqa: BLE001 - an unexpected failure mid-call: we cannot tell whether it went out
        log.exception("publishing reply %s failed unexpectedly", reply_id)
        return _record(store, reply_id, token, actor, error=Unknown(f"{type(exc).__name__}: {exc}"))
    _failpoint("reply_after_call")
    return _record(store, reply_id, token, actor, found=posted)


def _record(store: Store, reply_id: int, token: datetime, actor: Actor, *, found: Posted | None = None,
            error: Exception | None = None, via: str = "post") -> ReplyOutcome:
    """Write the result. A success always lands; a failure only if this attempt still owns the row."""
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
                if case.first_response_at is None:
                    case.first_response_at = now
                if case.status == "open":
                    case.status = "replied"
                audit.record(s, case.id, actor.name, "replied" if via == "post" else "reply_found",
                             reply_id=reply_id, platform=reply.platform, url=found.url, external_id=found.external_id)
            return _outcome(reply)
        if reply.status != "posting" or reply.attempted_at != token:
            return _outcome(reply, earlier=True)
        status = "failed" if isinstance(error, Rejected) else "unknown"
        reason = getattr(error, "reason", None) or str(error)
        reply.status, reply.error = status, reason
        audit.record(s, case.id, actor.name, "reply_failed" if status == "failed" else "reply_unknown",
                     reply_id=reply_id, error=reason)
        return _outcome(reply)


def _refuse_if_in_flight(s: Session, case_id: int, now: datetime, stale_after: timedelta) -> None:
    for other in s.scalars(select(Reply).where(Reply.case_id == case_id, Reply.status.in_(IN_FLIGHT))):
        if _stale(other, now, stale_after):
            raise ReplyConflict(f"an earlier reply by {other.author} may already be up (its outcome is unknown); "
                                "check the platform for it first")
        raise ReplyConflict(f"{other.author} is posting a reply to this case right now")


def _case_source(store: Store, case_id: int) -> str:
    with store.session() as s:
        source = s.scalar(select(Case.source).where(Case.id == case_id))
    if source is None:
        raise CaseError(f"there is no case #{case_id}")
    return source


def pending_checks(store: Store, case_id: int, *, stale_after: timedelta | None = None) -> list[int]:
    """Replies of a case whose outcome must be checked on the platform before anything else is posted."""
    stale_after = _stale_after(stale_after)
    now = now_utc()
    with store.session() as s:
        rows = s.scalars(select(Reply).where(Reply.case_id == case_id, Reply.status.in_(IN_FLIGHT)))
        return [r.id for r in rows if _stale(r, now, stale_after)]


__all__ = ["STALE_AFTER", "TEMPLATES", "ReplyConflict", "ReplyOutcome", "answered_count", "case_ref",
           "check_reply", "fill_template", "new_key", "pending_checks", "post_reply", "seen_replies", "target_for"]
