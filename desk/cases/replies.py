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
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from desk.cases import audit
from desk.cases.actions import ACTIVE, CaseError, authorize, lock_case
from desk.config.schema import HearkenConfig, Replies
from desk.failpoints import failpoint
from desk.store.db import Store
from desk.store.models import Case, Event, Mention, Reply, now_utc
from desk.cases.publishers import Posted, Publisher, Rejected, Target, Unknown, deadline, length_limit, publisher_for
from desk.team.users import Actor

log = logging.getLogger(__name__)

BUSY = ("posting", "checking")  # a process is at the platform with it right now (until stale)
UNSETTLED = ("unknown", "not_found")  # it may be up: nothing more is posted to the case until it is settled
CHECK_FAILED = "could not check the platform"  # how the note of a look that failed begins


class ReplyConflict(CaseError):
    """Posting now could make a second reply: someone else's is in flight, unknown, or new since you looked."""


@dataclass(frozen=True)
class ReplyOutcome:
    reply_id: int
    status: str  # posted | failed | unknown | not_found | posting | checking
    url: str | None = None
    external_id: str | None = None
    error: str | None = None
    earlier: bool = False  # this is the result of an earlier attempt with the same key
    checked: bool = False  # this outcome comes from looking on the platform
    conclusive_at: datetime | None = None  # when not finding it will count (unknown after a check)

    @property
    def message(self) -> str:
        if self.status == "posted":
            if self.checked:
                return "Found our reply on the platform; recorded as posted" + (f": {self.url}" if self.url else ".")
            return ("This reply was already posted" if self.earlier else "Posted publicly") + (
                f": {self.url}" if self.url else ".")
        if self.status == "failed":
            return f"Not posted: {self.error}. Nothing went out; you can try again."
        if self.status == "unknown" and self.checked:
            return (f"Our reply is not on the platform yet. That is not conclusive before {_clock(self.conclusive_at)}"
                    ": a platform can store or show a post late. Hearken will not post again; check again then.")
        if self.status == "unknown":
            return (f"The platform did not confirm the reply ({self.error}). It may be up: "
                    "Hearken will not post again until it has looked; use 'Check the platform'.")
        if self.status == "not_found":
            return ("Our reply is not on the platform. Hearken will not post it again by itself; if it should "
                    "go out, use 'Post anyway' and say why.")
        if self.status == "checking":
            return "Someone is checking the platform for this reply right now; wait a moment."
        return "This reply is being posted right now; wait a moment."


@dataclass(frozen=True)
class Unsettled:
    """A reply that may or may not be up: what the case page shows and offers for it."""

    reply_id: int
    status: str  # unknown | not_found | posting or checking left by a process that died
    author: str
    body: str
    sent_at: datetime
    checked_at: datetime | None
    conclusive_at: datetime  # from then on, not finding it is conclusive
    note: str | None
    in_flight: bool = False  # someone is at the platform with it right now (listed only when asked for)

    def may_post_anyway(self, now: datetime | None = None) -> bool:
        return (now or now_utc()) >= self.conclusive_at


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


PLACEHOLDERS = {"name": "the customer's name", "case": "the case reference, such as #HK12"}
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


class PlaceholderError(CaseError):
    """A reply still holds a {placeholder} that Hearken does not fill: posted, it would reach the public as is."""


def fill_placeholders(text: str, *, customer: str, case_id: int) -> str:
    """Put the customer's name and the case reference where a reply (a template, or what staff typed) says
    {name} and {case}: one pass over the text, so a name that itself holds braces is never filled again.
    Any other {word} raises PlaceholderError naming it: it would be posted literally."""
    values = {"name": customer.lstrip("@") or "there", "case": case_ref(case_id)}
    unknown = sorted({m.group(1) for m in _PLACEHOLDER.finditer(text) if m.group(1) not in values})
    if unknown:
        known = " and ".join(f"{{{k}}} ({v})" for k, v in PLACEHOLDERS.items())
        names = ", ".join(f"{{{u}}}" for u in unknown)
        raise PlaceholderError(f"the reply holds {names}, which Hearken does not fill in (it fills {known}); "
                               "write the words in its place, or it would reach the public as typed")
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def fill_template(template: str, *, customer: str, case_id: int) -> str:
    """A template with the customer's name and the case reference put in (the same filling as a typed reply)."""
    return fill_placeholders(template, customer=customer, case_id=case_id)


def case_ref(case_id: int) -> str:
    return f"#HK{case_id}"


def new_key() -> str:
    """A fresh idempotency key for one draft."""
    return uuid.uuid4().hex


def _clock(t: datetime | None) -> str:
    return t.strftime("%H:%M:%S UTC") if t else "later"


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


def _sent_at(r: Reply) -> datetime:
    return r.sent_at or r.attempted_at or r.created_at


def _conclusive_at(r: Reply, rules: Replies) -> datetime:
    return _sent_at(r) + timedelta(seconds=rules.check_grace_seconds)


def _outcome(r: Reply, *, earlier: bool = False, checked: bool = False, rules: Replies | None = None) -> ReplyOutcome:
    return ReplyOutcome(r.id, r.status, r.url, r.external_id, r.error, earlier, checked,
                        _conclusive_at(r, rules) if rules is not None and r.status == "unknown" else None)


def _busy(r: Reply, now: datetime, rules: Replies) -> bool:
    """At the platform right now, by a process that is still alive."""
    return r.status in BUSY and r.attempted_at is not None and \
        r.attempted_at > now - timedelta(seconds=rules.stale_after_seconds)


def _unsettled(r: Reply, now: datetime, rules: Replies) -> bool:
    """May be up, and nobody is at the platform with it: it must be looked for before anything else is posted."""
    return r.status in UNSETTLED or (r.status in BUSY and not _busy(r, now, rules))


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
                if reply.status == "posted" or _busy(reply, now, rules):
                    return _outcome(reply, earlier=True, rules=rules)
                if reply.status == "failed":  # certainly not up: safe to send again
                    audit.record(s, case_id, actor.name, "reply_retry", reply_id=reply.id, previous_error=reply.error)
                    reply.body = text
                    token = _claim(reply, "posting", actor, now)
                else:  # it may be up: look, never send
                    check = (reply.status if reply.status in UNSETTLED else "unknown", reply.body, _sent_at(reply))
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
            if not _unsettled(reply, now, rules):
                return _outcome(reply, earlier=True, rules=rules)
            was = reply.status if reply.status in UNSETTLED else "unknown"
            target = target_for(s, case, _attempt_mention(s, case_id, reply_id))
            audit.record(s, case_id, actor.name, "reply_check", reply_id=reply_id, was=reply.status)
            body, sent = reply.body, _sent_at(reply)
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
            if not _unsettled(reply, now, rules):
                return _outcome(reply, earlier=True, rules=rules)
            if now < _conclusive_at(reply, rules):
                raise CaseError(f"reply #{reply_id} may still appear on the platform until "
                                f"{_clock(_conclusive_at(reply, rules))}; check the platform again then")
            target = target_for(s, case, _attempt_mention(s, case_id, reply_id))
            audit.record(s, case_id, actor.name, "reply_post_anyway", reply_id=reply_id, reason=reason,
                         was=reply.status, sent_before=_sent_at(reply), checked=reply.checked_at)
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
        error: Exception = (Unknown(f"no answer from the platform within the {seconds:g} s deadline") if exc.sent
                            else Rejected(f"could not reach the platform within {seconds:g} s; nothing was sent"))
        return _record(store, rules, reply_id, token, actor, error=error)
    except (Rejected, Unknown) as exc:
        return _record(store, rules, reply_id, token, actor, error=exc)
    except Exception as exc:  # noqa: BLE001 - an unexpected failure mid-call: we cannot tell whether it went out
        log.exception("publishing reply %s failed unexpectedly", reply_id)
        return _record(store, rules, reply_id, token, actor, error=Unknown(f"{type(exc).__name__}: {exc}"))
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
        why = (f"could not read our posts back to {_clock(sent - skew)} within {seconds:g} s"
               if isinstance(exc, deadline.DeadlinePassed) else str(exc) or type(exc).__name__)
        _checked(store, rules, reply_id, token, actor, was, note=f"{CHECK_FAILED}: {why}",
                 action="reply_check_failed", looked=False)
        raise CaseError(f"could not check the platform for our reply ({why}); nothing was posted, "
                        "try the check again later") from exc
    if found is not None:
        return _record(store, rules, reply_id, token, actor, found=found, via="check")
    if token < sent + timedelta(seconds=rules.check_grace_seconds):
        return _checked(store, rules, reply_id, token, actor, "unknown", action="reply_not_found_yet", note=(
            f"not on the platform when checked at {_clock(token)}; not conclusive before "
            f"{_clock(sent + timedelta(seconds=rules.check_grace_seconds))}"))
    return _checked(store, rules, reply_id, token, actor, "not_found", action="reply_not_found", note=(
        f"not on the platform when checked at {_clock(token)} (our posts read back to {_clock(sent - skew)}); "
        "not posted again unless someone chooses Post anyway"))


def _checked(store: Store, rules: Replies, reply_id: int, token: datetime, actor: Actor, status: str, *,
             note: str, action: str, looked: bool = True) -> ReplyOutcome:
    with store.session() as s:
        reply = s.get(Reply, reply_id)
        assert reply is not None
        lock_case(s, reply.case_id)
        s.refresh(reply)
        if reply.status != "checking" or reply.attempted_at != token:
            return _outcome(reply, earlier=True, rules=rules)
        reply.status, reply.error = status, note
        if looked:
            reply.checked_at = token
        audit.record(s, reply.case_id, actor.name, action, reply_id=reply_id, note=note)
        return _outcome(reply, checked=True, rules=rules)


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
            return _outcome(reply, checked=via == "check")
        if reply.status != "posting" or reply.attempted_at != token:
            return _outcome(reply, earlier=True, rules=rules)
        status = "failed" if isinstance(error, Rejected) else "unknown"
        reason = getattr(error, "reason", None) or str(error)
        reply.status, reply.error = status, reason
        audit.record(s, case.id, actor.name, "reply_failed" if status == "failed" else "reply_unknown",
                     reply_id=reply_id, error=reason)
        return _outcome(reply)


def _refuse_if_unsettled(s: Session, case_id: int, now: datetime, rules: Replies) -> None:
    for other in s.scalars(select(Reply).where(Reply.case_id == case_id, Reply.status.in_(BUSY + UNSETTLED))):
        if _busy(other, now, rules):
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


def unsettled(store: Store, cfg: HearkenConfig, case_id: int, *, now: datetime | None = None,
              with_in_flight: bool = False) -> list[Unsettled]:
    """Replies of a case that may or may not be up; nothing more is posted to the case until each is settled.
    `with_in_flight` adds those someone is posting or checking right now."""
    rules = cfg.replies
    now = now or now_utc()
    with store.session() as s:
        rows = s.scalars(select(Reply).where(Reply.case_id == case_id, Reply.status.in_(BUSY + UNSETTLED))
                         .order_by(Reply.id))
        return [Unsettled(r.id, r.status, r.author, r.body, _sent_at(r), r.checked_at, _conclusive_at(r, rules),
                          r.error, _busy(r, now, rules)) for r in rows
                if _unsettled(r, now, rules) or (with_in_flight and _busy(r, now, rules))]


__all__ = ["BUSY", "CHECK_FAILED", "PLACEHOLDERS", "TEMPLATES", "UNSETTLED", "PlaceholderError", "ReplyConflict", "ReplyOutcome", "Unsettled", "answered_count",
           "case_ref", "check_reply", "fill_placeholders", "fill_template", "new_key", "post_anyway", "post_reply", "seen_replies",
           "target_for", "unsettled"]
