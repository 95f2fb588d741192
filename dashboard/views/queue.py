"""Queue: active cases, most urgent first, with filters; claim, assign and not-a-complaint from the list."""

from __future__ import annotations

import streamlit as st

from dashboard import components as ui
from desk.cases import actions as cases
from desk.cases.queue import QueueFilters, open_queue
from desk.team.users import team_names

actor = ui.require_actor()
cfg = ui.config()
store = ui.store()

st.title("Queue")
ui.show_flash("queue")

platforms = sorted({s.type for s in cfg.sources})
with st.container(horizontal=True, key="filters"):
    f_platform = st.multiselect("Platform", platforms, key="f-platform", width=220)
    f_status = st.multiselect("Status", ["open", "replied"], default=["open", "replied"], key="f-status", width=220,
                              help="open: waiting for a first public reply; replied: waiting to be resolved")
    who = ["Anyone", "Me", "Unassigned"] + [n for n in team_names(cfg) if n != actor.name]
    f_who = st.selectbox("Assignee", who, key="f-assignee", width=200)
    f_sev = st.multiselect("Severity", [4, 3, 2, 1], format_func=ui.severity_label, key="f-severity", width=220)
    f_esc = st.checkbox("Escalated only", key="f-escalated")

assignee = {"Anyone": None, "Me": actor.name, "Unassigned": ""}.get(f_who, f_who)
filters = QueueFilters(platforms=tuple(f_platform), statuses=tuple(f_status) or ("open", "replied"),
                       assignee=assignee, severities=tuple(f_sev), escalated_only=f_esc)


def _act(fn, ok: str) -> None:
    with ui.refusals("queue"):
        fn()
        ui.flash("queue", "success", ok)
    st.rerun()


@st.fragment(run_every=cfg.dashboard.refresh_seconds)
def queue_list() -> None:
    actor = ui.recheck()  # this part reruns on its own: a sign-in ended meanwhile stops here
    q = open_queue(store, filters)
    c1, c2, c3 = st.columns(3)
    c1.metric("Active cases", q.total_active)
    c2.metric("Overdue", q.overdue_active)
    c3.metric("Shown", len(q.items))
    if q.overdue_active:
        st.warning(f"{q.overdue_active} case{'s are' if q.overdue_active != 1 else ' is'} past the SLA.",
                   icon=":material/alarm:")
    if not q.items:
        st.info("Nothing in the queue for these filters.")
    for item in q.items:
        with st.container(key=f"case-{item.case_id}", border=True):
            left, right = st.columns([4, 2])
            with left:
                due_kind = "reply" if item.status == "open" else "resolve"
                left_text = f"{due_kind}: {ui.fmt_left(item.time_left)}"
                st.markdown(
                    f"**#{item.case_id}** · {ui.severity_label(item.severity)} · {item.platform} · "
                    f"{item.status} · {f':red[**{left_text}**]' if item.overdue else left_text} · "
                    f"posted {ui.fmt_span(item.age)} ago · {ui.score_or_language(item.score, item.language)}")
                st.text(f"{item.author}: {item.title}" if item.title else item.author)
                st.text(item.excerpt)
                st.caption(f"Assignee: {ui.md_escape(item.assignee) or 'nobody'}"
                           + (f" · escalated to {ui.md_escape(item.escalated_to)}" if item.escalated_to else ""))
            with right:
                with st.container(horizontal=True):
                    st.page_link(ui.PAGES["case"], label="Open", icon=":material/open_in_new:",
                                 query_params={"id": str(item.case_id)})
                    claim = "take_over" if item.assignee else "claim"
                    if item.assignee != actor.name and cases.may(actor, claim, item.assignee) is None:
                        if st.button("Take over" if item.assignee else "Claim", key=f"claim-{item.case_id}"):
                            _act(lambda: cases.claim(store, item.case_id, actor), f"You have case #{item.case_id}.")
                    if item.status == "open" and cases.may(actor, "dismiss", item.assignee) is None \
                            and ui.confirmed("Not a complaint", f"dismiss-{item.case_id}",
                                             confirm=f"Yes: close #{item.case_id}, not a complaint",
                                             help="Closes the case and teaches the classifier"):
                        _act(lambda: cases.dismiss(store, item.case_id, actor),
                             f"Case #{item.case_id} closed as not a complaint; label saved.")
                    if cases.may(actor, "assign", item.assignee) is None:
                        with st.popover("Assign", key=f"assign-menu-{item.case_id}"):
                            names = ["—"] + team_names(cfg)
                            current = names.index(item.assignee) if item.assignee in names else 0
                            pick = st.selectbox("Assign to", names, index=current, key=f"assign-to-{item.case_id}")
                            if st.button("Assign", key=f"assign-{item.case_id}"):
                                _act(lambda: cases.assign(store, cfg, item.case_id, actor,
                                                          None if pick == "—" else pick),
                                     f"Case #{item.case_id} assigned to {pick}.")


queue_list()
