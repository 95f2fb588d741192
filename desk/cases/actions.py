"""Actions on a case: claim, assign, not-a-complaint, resolve, reopen, escalate, replied elsewhere.

Every action runs in one transaction that first takes the case's row lock (an
UPDATE of its version, so two people acting at once are served one after the
other on SQLite and PostgreSQL alike), checks the actor's role and the case's
state, changes the case and writes the audit event. Roles are enforced here,
not only by the dashboard hiding a button: `authorize` holds the README's rules
and every action calls it (desk/cases/replies.py's post path too); the dashboard asks
`may` to decide which buttons to draw.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from desk.notify import cards, emails, routing
from desk.cases import audit
from desk.config.schema import HearkenConfig
from desk.store.db import Store
from desk.errors import UserError
from desk.store.models import Case, Label, MentionRow, Reply, now_utc
from desk.team.users import Actor, NotAllowed, actor_for_name

ROOT_CAUSES: dict[str, str] = {
    "outage": "Network or service outage",
    "billing": "Billing or payment error",
    "product_defect": "Faulty product or firmware",
    "delivery": "Delivery, installation or engineer visit",
    "support_process": "Slow or unhelpful support",
    "communication": "Unclear or missing communication",
    "policy": "Policy or pricing the customer disagrees with",
    "account": "Account or sign-in problem",
    "customer_side": "Cause on the customer's side",
    "other": "Other",
    "not_known": "Not known",
}

ACTIVE = ("open", "replied")


class CaseError(UserError):
    """The action does not fit the case as it is now (say why in one line)."""


class CaseNotFound(CaseError):
    pass


# The README's role table. Agents act on cases that are unassigned or their own; a case someone else has
# claimed is theirs until a manager reassigns or takes it over.
ON_ANY_CASE = {"escalate"}  # asking a manager for help is open to everyone
ON_OWN_OR_UNASSIGNED = {"claim", "reply", "replied_elsewhere", "resolve", "dismiss", "reopen"}
MANAGER_ONLY = {"assign", "take_over", "clear_escalation"}
ACTIONS = ON_ANY_CASE | ON_OWN_OR_UNASSIGNED | MANAGER_ONLY
_VERB = {"claim": "claim", "reply": "reply to", "replied_elsewhere": "record a reply to", "resolve": "resolve",
         "dismiss": "dismiss", "reopen": "reopen", "escalate": "escalate",
         "assign": "assigning", "take_over": "taking over", "clear_escalation": "clearing the escalation of"}


def may(actor: Actor, action: str, assignee: str | None) -> str | None:
    """None when `actor` may do `action` to a case held by `assignee`, else why not (one line)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown case action {action!r}")
    if actor.at_least("manager") or action in ON_ANY_CASE:
        return None
    if action == "take_over":
        return f"{assignee} has claimed this case; taking it over needs a manager or admin ({actor.name} is an agent)"
    if action in MANAGER_ONLY:
        return f"{_VERB[action].capitalize()} a case needs a manager or admin ({actor.name} is an agent)"
    if assignee and assignee != actor.name:
        return (f"{assignee} has claimed this case, so {actor.name} cannot {_VERB[action]} it; taking it over "
                "needs a manager or admin (escalate it to ask one)")
    return None


def authorize(actor: Actor, case: Case, action: str) -> None:
    """Raise NotAllowed unless the README's role rules let `actor` do `action` to `case` as it is now."""
    why = may(actor, action, case.assignee)
    if why:
        raise NotAllowed(f"case #{case.id}: {why}")


def lock_case(s: Session, case_id: int) -> Case:
    """Take the case's write lock in this transaction and return it freshly loaded."""
    bumped = s.execute(update(Case).where(Case.id == case_id).values(version=Case.version + 1)
                       .execution_options(synchronize_session=False)).rowcount
    if not bumped:
        raise CaseNotFound(f"there is no case #{case_id}")
    case = s.get(Case, case_id, populate_existing=True)
    assert case is not None
    return case


def claim(store: Store, case_id: int, actor: Actor) -> Case:
    """Take an unassigned (or own) case. Taking someone else's case is a reassignment (managers)."""
    with store.session() as s:
        case = lock_case(s, case_id)
        _require_active(case, "claim")
        if case.assignee == actor.name:
            return case
        authorize(actor, case, "take_over" if case.assignee else "claim")
        previous = case.assignee
        case.assignee = actor.name
        audit.record(s, case_id, actor.name, "claimed", previous=previous)
        return case


def assign(store: Store, cfg: HearkenConfig, case_id: int, actor: Actor, assignee: str | None) -> Case:
    """Give the case to a team member (None: unassign). Agents may only assign to themselves."""
    target = None
    if assignee is not None:
        target = actor_for_name(cfg, assignee)
        if target is None:
            raise CaseError(f"{assignee!r} is not a member of the team")
    with store.session() as s:
        case = lock_case(s, case_id)
        _require_active(case, "assign")
        new = target.name if target else None
        if new == case.assignee:
            return case
        is_self_claim = new == actor.name and case.assignee is None
        authorize(actor, case, "claim" if is_self_claim else "assign")
        previous = case.assignee
        case.assignee = new
        audit.record(s, case_id, actor.name, "assigned" if new else "unassigned", assignee=new, previous=previous)
        return case


def dismiss(store: Store, case_id: int, actor: Actor, *, note: str | None = None) -> Case:
    """Not a complaint: close the case and store a label that corrects the classifier."""
    with store.session() as s:
        case = lock_case(s, case_id)
        _require_active(case, "mark as not a complaint")
        authorize(actor, case, "dismiss")
        if _has_public_reply(s, case_id):
            raise CaseError(f"case #{case_id} already has a public reply; resolve it instead")
        case.status = "dismissed"
        case.resolved_at = now_utc()
        case.resolution_note = note
        s.add(Label(mention_id=case.mention_id, is_complaint=False, severity=None, author=actor.name))
        audit.record(s, case_id, actor.name, "dismissed", note=note, label="not a complaint")
        return case


def resolve(store: Store, case_id: int, actor: Actor, *, note: str, root_cause: str | None) -> Case:
    """Close the case with what was done and why it happened (chosen by a person: "not_known" when unknown)."""
    note = (note or "").strip()
    if not note:
        raise CaseError("a resolution needs a note saying what was done")
    if not root_cause:
        raise CaseError(f"a resolution needs a root cause: choose one, or '{ROOT_CAUSES['not_known']}'")
    if root_cause not in ROOT_CAUSES:
        raise CaseError(f"unknown root cause {root_cause!r}; expected one of {', '.join(ROOT_CAUSES)}")
    with store.session() as s:
        case = lock_case(s, case_id)
        _require_active(case, "resolve")
        authorize(actor, case, "resolve")
        case.status = "resolved"
        case.resolved_at = now_utc()
        case.resolution_note = note
        case.root_cause = root_cause
        audit.record(s, case_id, actor.name, "resolved", note=note, root_cause=root_cause)
        return case


def reopen(store: Store, case_id: int, actor: Actor, *, reason: str = "") -> Case:
    """Open a resolved or dismissed case again (the customer came back, or it was closed by mistake)."""
    with store.session() as s:
        case = lock_case(s, case_id)
        if case.status in ACTIVE:
            raise CaseError(f"case #{case_id} is {case.status}, not closed")
        authorize(actor, case, "reopen")
        was = case.status
        case.status = "replied" if case.first_response_at else "open"
        case.resolved_at = None
        audit.record(s, case_id, actor.name, "reopened", reason=reason.strip() or None, was=was)
        return case


def escalate(store: Store, cfg: HearkenConfig, case_id: int, actor: Actor, *, manager: str, reason: str) -> Case:
    """Hand the case to a named manager with a reason; the manager is emailed, and told on the channels
    alerts.routes.escalation names (through the outbox)."""
    reason = (reason or "").strip()
    if not reason:
        raise CaseError("an escalation needs a reason")
    target = actor_for_name(cfg, manager)
    if target is None or not target.at_least("manager"):
        raise CaseError(f"{manager!r} is not a manager on the team")
    with store.session() as s:
        case = lock_case(s, case_id)
        _require_active(case, "escalate")
        authorize(actor, case, "escalate")
        case.escalated_to = target.name
        case.escalated_at = now_utc()
        case.escalation_reason = reason
        ev = audit.record(s, case_id, actor.name, "escalated", to=target.name, reason=reason)
        s.flush()
        if cfg.alerts.enabled:
            mention = s.get(MentionRow, case.mention_id)
            intro = f"{actor.name} escalated case #{case_id} to you."
            facts = [("Reason", reason), ("Platform", f"{case.platform} ({case.source})"),
                     ("Customer", mention.author if mention else "?"), ("Severity", str(case.severity or "-"))]
            links = [("Open the case", emails.case_url(cfg, case_id))] \
                + ([("Original post", mention.url)] if mention and mention.url else [])
            text, body_html = emails.compose(intro, facts, quote=(mention.body[:500] if mention else None), links=links)
            card = cards.about_case(cfg, case, mention, f"{actor.name} escalated case #{case_id} to {target.name}",
                                    f"{actor.name} escalated case #{case_id} to {target.name}: {reason}")
            routing.alert(s, cfg, kind="escalation", dedupe_key=f"escalation:case:{case_id}:event:{ev.id}",
                          recipients=[target.email], case_id=case_id, source=case.source,
                          subject=f"[Hearken] {actor.name} escalated case #{case_id} to you",
                          body_text=text, body_html=body_html, card=card)
        return case


def clear_escalation(store: Store, case_id: int, actor: Actor, *, note: str = "") -> Case:
    """A manager takes the case back off the escalation list."""
    with store.session() as s:
        case = lock_case(s, case_id)
        authorize(actor, case, "clear_escalation")
        if not case.escalated_to:
            raise CaseError(f"case #{case_id} is not escalated")
        previous = case.escalated_to
        case.escalated_to = case.escalated_at = case.escalation_reason = None
        audit.record(s, case_id, actor.name, "escalation_cleared", previous=previous, note=note.strip() or None)
        return case


def replied_elsewhere(store: Store, case_id: int, actor: Actor, *, where: str, text: str = "",
                      url: str = "", at: datetime | None = None) -> Reply:
    """Record a reply made outside Hearken (phone, DM, the platform's own site); it counts as the first response."""
    where = (where or "").strip()
    if not where:
        raise CaseError("say where the reply was made (e.g. 'phone call', 'X DM')")
    at = at or now_utc()
    if at > now_utc():
        raise CaseError("a reply cannot be in the future")
    with store.session() as s:
        case = lock_case(s, case_id)
        if case.status == "dismissed":
            raise CaseError(f"case #{case_id} was dismissed as not a complaint")
        authorize(actor, case, "replied_elsewhere")
        body = text.strip() or f"(replied via {where})"
        same = s.scalar(select(Reply).where(Reply.case_id == case_id, Reply.kind == "elsewhere",
                                            Reply.author == actor.name, Reply.body == body,
                                            Reply.created_at >= now_utc() - timedelta(minutes=2)))
        if same is not None:  # a second click on the same form
            return same
        n = s.scalar(select(Reply.id).where(Reply.case_id == case_id).order_by(Reply.id.desc()).limit(1)) or 0
        reply = Reply(case_id=case_id, idempotency_key=f"elsewhere:{case_id}:{n + 1}:{at.timestamp():.0f}",
                      kind="elsewhere", platform=where[:20], body=body,
                      author=actor.name, status="posted", url=url.strip() or None, created_at=now_utc(),
                      attempted_at=at, posted_at=at)
        s.add(reply)
        if case.first_response_at is None or at < case.first_response_at:
            case.first_response_at = at
        if case.status == "open":
            case.status = "replied"
        audit.record(s, case_id, actor.name, "replied_elsewhere", where=where, url=url.strip() or None, at=at)
        s.flush()
        return reply


def _require_active(case: Case, what: str) -> None:
    if case.status not in ACTIVE:
        raise CaseError(f"cannot {what} case #{case.id}: it is {case.status}")


def _has_public_reply(s: Session, case_id: int) -> bool:
    return s.scalar(select(Reply.id).where(Reply.case_id == case_id, Reply.status == "posted").limit(1)) is not None


__all__ = ["ROOT_CAUSES", "CaseError", "CaseNotFound", "NotAllowed", "authorize", "may", "lock_case", "claim", "assign", "dismiss",
           "resolve", "reopen", "escalate", "clear_escalation", "replied_elsewhere"]
