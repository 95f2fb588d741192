"""The reply composer: templates, the platform's limit, a preview, and Post publicly (exactly once, via desk/).

It owns its session keys, all suffixed with the case id: the draft's
idempotency key (`reply-key-N`, kept until the reply is posted, so a second
click or a retry after a timeout reuses it), how many replies the writer had
seen when they started (`seen-N`), the draft (`draft-N`) and the template
chosen (`template-N`).

A reply whose outcome is unknown holds the composer: it shows what was sent,
"Check the platform", when not finding it becomes conclusive and, after that,
"Post anyway" with a reason (`anyway-reason-R`, `anyway-R`, per reply id R).
"""

from __future__ import annotations

import streamlit as st

from dashboard import components as ui
from desk.cases import replies, reply_status, templates
from desk.config.schema import HearkenConfig
from desk.store.db import Store
from desk.cases.publishing import can_post
from desk.cases.queue import CaseDetail
from desk.cases.replies import ReplyConflict
from desk.cases.reply_status import ReplyOutcome
from desk.team.users import Actor

NO_TEMPLATE = "(write my own)"


def reply_composer(store: Store, cfg: HearkenConfig, actor: Actor, d: CaseDetail, flash_key: str) -> ReplyOutcome | None:
    """Draw the composer for case `d`; returns the outcome when Post publicly was clicked and went through."""
    cid = d.case_id
    kkey, dkey, skey, tkey, used = f"reply-key-{cid}", f"draft-{cid}", f"seen-{cid}", f"template-{cid}", f"template-used-{cid}"
    limit = d.reply_limit
    ok, why_not = can_post(cfg, d.source)
    if kkey not in st.session_state:
        st.session_state[kkey] = replies.new_key()
        st.session_state[skey] = reply_status.seen_replies(store, cid)

    waiting = reply_status.unsettled(store, cfg, cid, with_in_flight=True)
    for u in waiting:
        _unsettled_reply(store, cfg, actor, u, flash_key, kkey, cid)

    names = [NO_TEMPLATE] + list(templates.TEMPLATES)
    if st.session_state.pop(f"reset-{cid}", False):  # after a post: an empty composer
        st.session_state[dkey] = ""
        st.session_state[tkey] = NO_TEMPLATE
        st.session_state.pop(used, None)
    tpl = st.selectbox("Template", names, key=tkey,
                       help="Acknowledge, show you understand, give a plan with a time, thank them.")
    if tpl != NO_TEMPLATE and tpl != st.session_state.get(used):
        st.session_state[dkey] = templates.fill_template(templates.TEMPLATES[tpl], customer=d.customer, case_id=cid)[:limit]
        st.session_state[used] = tpl

    reply_to = None
    if len(d.answerable) > 1:
        picked = st.selectbox("Reply to", d.answerable, key=f"reply-to-{cid}",
                              format_func=lambda p: f"{p.author} · {ui.fmt_time(p.posted_at)} · {p.body[:70]}",
                              help="The customer's newest post is picked first.")
        reply_to = picked.mention_id

    draft = st.text_area(f"Your reply (up to {limit} characters on {d.platform})", key=dkey, max_chars=limit,
                         height=160, placeholder="Hi {name}, …  ({name} and {case} are filled in for you)")
    text, unfilled = _filled(draft or "", d)
    st.caption(f"{len(text)}/{limit} characters" + (" (with {name} and {case} filled in)" if text != (draft or "") else ""))
    if unfilled:
        st.error(ui.md_escape(f"Post publicly is off: {unfilled}."), icon=":material/data_object:")
    elif text:
        with st.container(border=True, key="preview"):
            st.caption(f"Preview, exactly as it will be posted: in reply to {ui.md_escape(d.customer)}, as our account")
            st.text(text)
    if not ok:
        st.info(f"Posting is off for this source: {why_not}")
    held = bool(waiting)
    if waiting:
        st.caption("Posting is held until the reply above is settled: one public reply, never two.")
    if st.session_state.get(f"conflict-{cid}"):
        held = held or not st.checkbox("Someone else replied while I was writing. I have read it; post mine as well.",
                                       key=f"also-{cid}")
    if not st.button("Post publicly", key="post", type="primary",
                     disabled=not ok or not text.strip() or bool(unfilled) or held):
        return None
    out = None
    with ui.refusals(flash_key):
        try:
            out = replies.post_reply(store, cfg, cid, actor, text, key=st.session_state[kkey],
                                     seen_replies=st.session_state[skey], mention_id=reply_to)
        except ReplyConflict as exc:
            ui.flash(flash_key, "error", str(exc))
            st.session_state[skey] = reply_status.seen_replies(store, cid)  # shown it now: posting anyway must be explicit
            st.session_state[f"conflict-{cid}"] = True
        else:
            kind = {"posted": "success", "failed": "error", "unknown": "warning",
                    "not_found": "warning"}.get(out.status, "info")
            ui.flash(flash_key, kind, out.message)
            if out.status == "posted":
                del st.session_state[kkey]
                st.session_state[f"reset-{cid}"] = True
                st.session_state.pop(f"conflict-{cid}", None)
                st.session_state.pop(f"also-{cid}", None)
    st.rerun()
    return out


def _filled(draft: str, d: CaseDetail) -> tuple[str, str | None]:
    """What will be posted for this draft (its placeholders filled, as the templates are), or why it cannot be."""
    try:
        return templates.fill_placeholders(draft, customer=d.customer, case_id=d.case_id), None
    except templates.PlaceholderError as exc:
        return draft, str(exc)


def _unsettled_reply(store: Store, cfg: HearkenConfig, actor: Actor, u: reply_status.Unsettled, flash_key: str,
                     kkey: str, cid: int) -> None:
    """One reply that may or may not be up: what is known, Check the platform, and (after the grace
    period) Post anyway with a reason."""
    rid = u.reply_id
    with st.container(border=True, key=f"unsettled-{rid}"):
        if u.in_flight:
            doing = "checking the platform for" if u.status == "checking" else "posting"
            st.info(f"{u.author} is {doing} reply #{rid} right now.")
            return
        if u.status == "not_found":
            st.error(f"Reply #{rid} is not on the platform (checked {ui.fmt_time(u.checked_at, seconds=True)}). "
                     "It may never have gone out. Hearken will not post it again by itself.")
        elif u.checked_at is not None and not u.may_post_anyway():
            st.warning(f"Reply #{rid} may or may not be on the platform: it was not there when checked at "
                       f"{ui.fmt_time(u.checked_at, seconds=True)}, but a platform can store or show a post late. "
                       f"Not finding it is conclusive from {ui.fmt_time(u.conclusive_at, seconds=True)}.")
        else:
            st.warning(f"Reply #{rid} may or may not be on the platform (the answer was lost). "
                       "Hearken will not post again until it has looked.")
        st.caption(f"Sent by {ui.md_escape(u.author)} at {ui.fmt_time(u.sent_at, seconds=True)}:")
        st.text(u.body)
        if u.note and u.note.startswith(reply_status.CHECK_FAILED):
            st.caption(ui.md_escape(u.note))
        if st.button("Check the platform", key=f"check-{rid}"):
            with ui.refusals(flash_key):
                out = replies.check_reply(store, cfg, rid, actor)
                ui.flash(flash_key, {"posted": "success", "not_found": "error"}.get(out.status, "warning"), out.message)
            st.rerun()
        if not u.may_post_anyway():
            st.caption(f"If it is still not found from {ui.fmt_time(u.conclusive_at, seconds=True)}, "
                       "you can post it anyway.")
            return
        with st.expander("Post anyway", key=f"anyway-box-{rid}"):
            if u.status != "not_found":
                st.caption("Hearken could not settle this by looking: check the platform first if you can.")
            reason = st.text_area("Why post it again? This goes into the case history with your name.",
                                  key=f"anyway-reason-{rid}", placeholder="I read the thread: no reply from us")
            if st.button("Post anyway", key=f"anyway-{rid}", type="primary", disabled=not (reason or "").strip()):
                with ui.refusals(flash_key):
                    out = replies.post_anyway(store, cfg, rid, actor, reason=reason)
                    kind = {"posted": "success", "failed": "error"}.get(out.status, "warning")
                    ui.flash(flash_key, kind, out.message)
                    if out.status == "posted":
                        st.session_state.pop(kkey, None)
                        st.session_state[f"reset-{cid}"] = True
                st.rerun()
