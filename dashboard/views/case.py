"""Case: the post in its thread, the classifier's view, similar past cases, the reply composer, actions, history."""

from __future__ import annotations

import streamlit as st

from dashboard import components as ui
from dashboard.composer import reply_composer
from desk.cases import actions as cases
from desk.notify.history import case_emails
from desk.cases.actions import ROOT_CAUSES
from desk.cases.queue import case_detail, open_queue, similar_cases
from desk.untrusted import web_url
from desk.team.users import team_names

actor = ui.require_actor()
cfg = ui.config()
store = ui.store()


MAX_ID = 2**63 - 1  # the largest id a database column holds; a longer number names no case


def _pick_case() -> int | None:
    """The case the link names; None when it names none. A link that names no case says so and stops."""
    raw = (st.query_params.get("id") or "").strip()
    if not raw:
        return None
    try:
        case_id = int(raw)
    except ValueError:
        case_id = 0
    if not 1 <= case_id <= MAX_ID:
        st.title("Case")
        st.error(f"There is no case {ui.md_escape(raw[:40])}: a case link ends in ?id= and the case's number.")
        st.stop()
    return case_id


case_id = _pick_case()
if case_id is None:
    st.title("Case")
    items = open_queue(store).items
    if not items:
        st.info("No active cases. Closed cases open from their link (…/case?id=N).")
        st.stop()
    choice = st.selectbox("Open a case", items, format_func=lambda i: f"#{i.case_id} {i.author}: {i.excerpt[:60]}",
                          key="case-picker")
    if st.button("Open", key="case-open"):
        st.query_params["id"] = str(choice.case_id)
        st.rerun()
    st.stop()

d = case_detail(store, case_id)
if d is None:
    st.title("Case")
    st.error(f"There is no case #{case_id}.")
    st.stop()

flash_key = f"case-{case_id}"


def act(fn, ok: str) -> None:
    with ui.refusals(flash_key):
        fn()
        ui.flash(flash_key, "success", ok)
    st.rerun()


st.title(f"Case #{case_id}")
ui.show_flash(flash_key)
left_now = d.time_left()
st.markdown(f"**{d.status}** · {ui.severity_label(d.severity)} · {d.platform} ({ui.md_escape(d.source)}) · "
            f"{'complaint ' if d.scored else ''}{ui.score_or_language(d.score, d.language)} · "
            f"topic {ui.md_escape(d.topic) or '—'} · "
            f"{'first reply' if d.status == 'open' else 'resolution'}: {ui.fmt_left(left_now)}")
if not d.scored:
    st.info(f"Written in '{ui.md_escape(d.language) or '?'}': the complaint model reads English only "
            f"(classifier.languages: {', '.join(cfg.classifier.languages)}), so this post was not scored. "
            "Read it and decide: reply, or Not a complaint.", icon=":material/translate:")

post_col, side_col = st.columns([3, 2], gap="large")

with post_col:
    with st.container(border=True, key="customer-post"):
        st.caption("The customer's post, exactly as written")
        st.text(f"{d.post.author} · {ui.fmt_time(d.post.posted_at)}")
        if d.post.title:
            st.text(d.post.title)
        st.text(d.post.body)
        if web_url(d.post.url):
            st.link_button("Open on the platform", d.post.url, icon=":material/open_in_new:")
        else:
            st.text(d.post.url)

    st.subheader("Thread")
    if len(d.thread) <= 1:
        st.caption("No other posts from this thread have been collected.")
    for p in d.thread:
        if p.is_case_post:
            st.caption(f"▶ this post · {ui.fmt_time(p.posted_at)}")
            continue
        with st.container(border=True):
            st.caption(f"{p.relation} · {ui.fmt_time(p.posted_at)}")
            st.text(f"{p.author}: {p.body}")

    st.subheader("Similar past cases")

    @st.cache_data(ttl=300, show_spinner="Finding similar cases…")
    def _similar(db: str, cid: int, stamp: int):
        return similar_cases(store, cid)

    sims = _similar(str(store.engine.url), case_id, len(d.history))
    if not sims:
        st.caption("No similar answered cases yet.")
    for sc in sims:
        with st.container(border=True):
            st.caption(f"#{sc.case_id} · {sc.status} · similarity {sc.similarity:.2f}"
                       + (f" · root cause {ROOT_CAUSES.get(sc.root_cause, sc.root_cause)}" if sc.root_cause else ""))
            st.text(sc.excerpt)
            if sc.reply:
                st.caption("How we answered")
                st.text(sc.reply)
            if sc.resolution_note:
                st.caption("How it was resolved")
                st.text(sc.resolution_note)

with side_col:
    st.subheader("Case")
    st.markdown(f"Assignee: **{ui.md_escape(d.assignee) or 'nobody'}**  \n"
                f"Opened: {ui.fmt_time(d.opened_at)} · customer posted {ui.fmt_time(d.customer_posted_at)}  \n"
                f"First reply due: {ui.fmt_time(d.first_response_due)} · replied: {ui.fmt_time(d.first_response_at)}  \n"
                f"Resolution due: {ui.fmt_time(d.resolution_due)}")
    if d.escalated_to:
        st.warning(f"Escalated to {d.escalated_to}: {ui.md_escape(d.escalation_reason)}")
    if d.status in ("resolved", "dismissed"):
        st.info(f"{d.status.capitalize()} {ui.fmt_time(d.resolved_at)}"
                + (f" · root cause: {ROOT_CAUSES.get(d.root_cause, d.root_cause)}" if d.root_cause else ""))
        if d.resolution_note:
            st.text(d.resolution_note)

    active = d.status in ("open", "replied")
    held_by_other = cases.may(actor, "reply", d.assignee)  # the role rule, as desk/cases/actions.py enforces it
    if held_by_other:
        st.info(held_by_other, icon=":material/lock:")
    with st.container(horizontal=True):
        claim = "take_over" if d.assignee else "claim"
        if active and d.assignee != actor.name and cases.may(actor, claim, d.assignee) is None:
            if st.button("Take over" if d.assignee else "Claim", key="claim", type="primary"):
                act(lambda: cases.claim(store, case_id, actor), "You have this case.")
        if d.status == "open" and not held_by_other and ui.confirmed(
                "Not a complaint", "dismiss", confirm="Yes: close it, not a complaint", about=case_id,
                help="Closes the case and teaches the classifier"):
            act(lambda: cases.dismiss(store, case_id, actor), "Closed as not a complaint; the label will train the classifier.")
        if not active and not held_by_other and st.button("Reopen", key="reopen"):
            act(lambda: cases.reopen(store, case_id, actor), "Case reopened.")

    if active and cases.may(actor, "assign", d.assignee) is None:
        with st.expander("Assign"):
            names = team_names(cfg)
            who = st.selectbox("Assign to", names, key="assign-to",
                               index=names.index(d.assignee) if d.assignee in names else 0)
            if st.button("Assign", key="assign"):
                act(lambda: cases.assign(store, cfg, case_id, actor, who), f"Assigned to {who}.")

    # --- reply composer -----------------------------------------------------------
    if active and not held_by_other:
        st.subheader("Reply publicly")
        reply_composer(store, cfg, actor, d, flash_key)

        with st.expander("Replied elsewhere"):
            where = st.text_input("Where", key="elsewhere-where", placeholder="phone call, X DM, the forum directly…")
            link = st.text_input("Link (optional)", key="elsewhere-url")
            note = st.text_area("What was said (optional)", key="elsewhere-text")
            if st.button("Record reply", key="elsewhere"):
                act(lambda: cases.replied_elsewhere(store, case_id, actor, where=where, url=link, text=note),
                    "Reply recorded; the first-response clock has stopped.")

        st.subheader("Resolve")
        note = st.text_area("What was done", key="resolve-note")
        cause = st.selectbox("Root cause", list(ROOT_CAUSES), format_func=ROOT_CAUSES.get, key="resolve-cause",
                             index=None, placeholder=f"Choose one (or '{ROOT_CAUSES['not_known']}')",
                             help="What the weekly report counts this case under; nothing is chosen for you.")
        if st.button("Resolve", key="resolve"):
            act(lambda: cases.resolve(store, case_id, actor, note=note, root_cause=cause), "Case resolved.")

    if active:
        with st.expander("Escalate to a manager"):
            managers = [n for n in team_names(cfg, "manager") if n != actor.name] or team_names(cfg, "manager")
            mgr = st.selectbox("Manager", managers, key="escalate-to")
            reason = st.text_area("Reason", key="escalate-reason")
            if st.button("Escalate", key="escalate"):
                act(lambda: cases.escalate(store, cfg, case_id, actor, manager=mgr, reason=reason),
                    f"Escalated to {mgr}. " + ("An email to them is queued; the history below shows when it "
                                               "is delivered." if cfg.alerts.enabled else
                                               "No email was sent: alerts.enabled is false."))
            if d.escalated_to and cases.may(actor, "clear_escalation", d.assignee) is None \
                    and st.button("Clear escalation", key="unescalate"):
                act(lambda: cases.clear_escalation(store, case_id, actor), "Escalation cleared.")

st.subheader("Replies")
if not d.replies:
    st.caption("No replies yet.")
REPLY_STATUS = {"posted": "posted", "failed": "not posted", "unknown": "outcome unknown",
                "not_found": "not found on the platform", "posting": "posting…", "checking": "checking the platform…"}
for r in d.replies:
    with st.container(border=True, key=f"reply-{r.reply_id}"):
        where = "publicly" if r.kind == "public" else f"elsewhere ({r.platform})"
        st.caption(f"#{r.reply_id} · {REPLY_STATUS.get(r.status, r.status)} · {where} · by {ui.md_escape(r.author)} · "
                   f"{ui.fmt_time(r.posted_at or r.created_at)}")
        st.text(r.body)
        if r.url:
            st.text(r.url)
        if r.error:
            st.text(("Note: " if r.status in ("unknown", "not_found") else "Error: ") + r.error)
        for h in d.history:  # a second send is a person's decision: who and why stay with the reply
            if h.action == "reply_post_anyway" and h.detail.get("reply_id") == r.reply_id:
                st.text(f"Posted anyway by {h.actor} at {ui.fmt_time(h.at)}: {h.detail.get('reason', '')}")

st.subheader("History")
with st.container(key="history"):
    # st.table renders markdown in its cells: every cell is escaped (details can quote customers' names)
    steps = sorted([*d.history, *case_emails(store, case_id)], key=lambda h: h.at)  # alert emails too
    st.table([{"when": ui.fmt_time(h.at, seconds=True), "who": ui.md_escape(h.actor),
               "action": h.action.replace("_", " "),
               "detail": ui.md_escape("; ".join(f"{k}: {v}" for k, v in h.detail.items()))} for h in steps],
             hide_index=True)
