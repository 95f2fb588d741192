"""The endpoints of /api/v1: the queue, a case with its thread, replies, actions on a case, the weekly report.

Each one calls the same desk/ function the dashboard calls, as the token's
owner, so the roles (desk.cases.actions.authorize), the audit trail and the
exactly-once path of a reply are the dashboard's own. Endpoints are plain
functions: FastAPI runs them in its thread pool, so a reply waiting on a slow
platform (up to replies.publish_deadline_seconds) holds no other request up.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from pydantic import Field

from desk.api.auth import ApiRefusal, caller, state
from desk.api.bodies import AssignBody, EscalateBody, NotAComplaintBody, ReopenBody, ReplyBody, ResolveBody, to_json
from desk.api.tokens import Caller
from desk.cases import actions, replies, templates
from desk.cases.actions import CaseNotFound
from desk.cases.queue import CaseDetail, QueueFilters, case_detail, open_queue
from desk.config.schema import email_key
from desk.reports import weekly

MAX_ID = 2**63 - 1  # the largest id a database column holds: beyond it a 422 names the field
CaseId = Annotated[int, Path(ge=1, le=MAX_ID, description="The case's number (#HK12 is 12).")]

router = APIRouter()

KEY_PATTERN = r"^[A-Za-z0-9._:-]+$"


def _detail(request: Request, case_id: int) -> CaseDetail:
    found = case_detail(state(request).store, case_id)
    if found is None:
        raise CaseNotFound(f"there is no case #{case_id}")
    return found


def _case_json(d: CaseDetail) -> dict[str, Any]:
    left = d.time_left()
    return to_json(d, customer=d.customer, time_left_seconds=left.total_seconds() if left is not None else None)


@router.get("/me", summary="Who this token acts as")
def me(who: Caller = Depends(caller)) -> dict[str, Any]:
    return {"name": who.actor.name, "email": who.actor.email, "role": who.actor.role, "token_id": who.token_id}


@router.get("/queue", summary="The queue, most urgent first, filtered")
def queue(request: Request, who: Caller = Depends(caller),
          platform: list[str] = Query([], description="Only these platforms (repeat the parameter for several)."),
          status: list[Literal["open", "replied"]] = Query([], description="open: awaiting a first public reply; "
                                                                            "replied: awaiting resolution."),
          assignee: str | None = Query(None, description="A member's name; an empty value: unassigned cases."),
          severity: list[Annotated[int, Field(ge=1, le=4)]] = Query([], description="Only these severities (1 mild ... 4 severe)."), escalated: bool = False,
          limit: int = Query(100, ge=1, le=500)) -> dict[str, Any]:
    filters = QueueFilters(platforms=tuple(platform), statuses=tuple(status) or actions.ACTIVE, assignee=assignee,
                           severities=tuple(severity), escalated_only=escalated)
    q = open_queue(state(request).store, filters, limit=limit)
    out = to_json(q)
    for item, shown in zip(q.items, out["items"]):
        shown["overdue"] = item.overdue
    return out


@router.get("/cases/{case_id}", summary="A case with its thread, replies and history")
def read_case(case_id: CaseId, request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    return _case_json(_detail(request, case_id))


@router.post("/cases/{case_id}/replies", summary="Post a public reply, at most once per Idempotency-Key",
             responses={201: {"description": "Posted"}, 200: {"description": "Posted earlier with this key"},
                        202: {"description": "Not confirmed by the platform yet: not posted again"},
                        502: {"description": "The platform refused it; nothing went out, safe to retry"}})
def post_reply(case_id: CaseId, body: ReplyBody, request: Request, response: Response, who: Caller = Depends(caller),
               idempotency_key: str = Header(alias="Idempotency-Key", min_length=1, max_length=64,
                                             pattern=KEY_PATTERN, description="One per reply you mean to post "
                                             "(a UUID): the same key again never posts a second reply.")
               ) -> dict[str, Any]:
    st = state(request)
    cfg = st.config.current()
    d = _detail(request, case_id)
    text = templates.fill_placeholders(body.text.strip(), customer=d.customer, case_id=case_id)
    owner = hashlib.sha256(email_key(who.actor.email).encode()).hexdigest()[:12]  # one person's keys are theirs
    key = f"api:{owner}:{idempotency_key}"
    earlier = replies.reply_with_key(st.store, key)
    if earlier is not None and earlier.status != "failed" and earlier.body != text:
        raise ApiRefusal(409, f"Idempotency-Key {idempotency_key!r} was already used for reply #{earlier.id} with "
                              "another text (it is not posted again); use a new key for a new reply")
    out = replies.post_reply(st.store, cfg, case_id, who.actor, text, key=key,
                             seen_replies=body.seen_replies, mention_id=body.in_reply_to)
    if out.status == "posted":
        response.status_code = 200 if out.earlier else 201
    else:
        response.status_code = 502 if out.status == "failed" else 202
    return to_json(out, message=out.message)


@router.post("/cases/{case_id}/claim", summary="Take the case")
def claim(case_id: CaseId, request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    actions.claim(state(request).store, case_id, who.actor)
    return _case_json(_detail(request, case_id))


@router.post("/cases/{case_id}/assign", summary="Give the case to a member (managers), or unassign it")
def assign(case_id: CaseId, body: AssignBody, request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    st = state(request)
    actions.assign(st.store, st.config.current(), case_id, who.actor, body.assignee)
    return _case_json(_detail(request, case_id))


@router.post("/cases/{case_id}/resolve", summary="Close the case with a note and a root cause")
def resolve(case_id: CaseId, body: ResolveBody, request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    actions.resolve(state(request).store, case_id, who.actor, note=body.note, root_cause=body.root_cause)
    return _case_json(_detail(request, case_id))


@router.post("/cases/{case_id}/reopen", summary="Open a resolved or dismissed case again")
def reopen(case_id: CaseId, body: ReopenBody, request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    actions.reopen(state(request).store, case_id, who.actor, reason=body.reason)
    return _case_json(_detail(request, case_id))


@router.post("/cases/{case_id}/escalate", summary="Hand the case to a named manager with a reason")
def escalate(case_id: CaseId, body: EscalateBody, request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    st = state(request)
    actions.escalate(st.store, st.config.current(), case_id, who.actor, manager=body.manager, reason=body.reason)
    return _case_json(_detail(request, case_id))


@router.post("/cases/{case_id}/not-a-complaint", summary="Close the case as not a complaint (labels the post)")
def not_a_complaint(case_id: CaseId, body: NotAComplaintBody, request: Request,
                    who: Caller = Depends(caller)) -> dict[str, Any]:
    actions.dismiss(state(request).store, case_id, who.actor, note=body.note)
    return _case_json(_detail(request, case_id))


@router.get("/reports/weekly", summary="The weekly public-response report")
def weekly_report(request: Request, who: Caller = Depends(caller),
                  week: str | None = Query(None, description="An ISO week such as 2026-W47; default the last "
                                                             "full week in sla.timezone.")) -> dict[str, Any]:
    st = state(request)
    return weekly.to_dict(weekly.weekly_report(st.store, st.config.current(), week))
