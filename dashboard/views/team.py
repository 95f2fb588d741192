"""Team (managers and admins): who is on the team, their roles, workload and escalations waiting on them."""

from __future__ import annotations

import streamlit as st

from dashboard import components as ui
from desk.queue import QueueFilters, open_queue
from desk.users import team_overview

actor = ui.require_actor()
cfg = ui.config()
store = ui.store()

st.title("Team")
if not actor.at_least("manager"):
    st.info("The team overview is for managers and admins.")
    st.stop()

st.dataframe([{"name": m.name, "email": m.email, "role": m.role, "active cases": m.active_cases,
               "escalated to them": m.escalated_to_them, "last seen": ui.fmt_time(m.last_seen_at)}
              for m in team_overview(store, cfg)], hide_index=True, width="stretch")
st.caption("Members and roles come from team: in the configuration file; edit it and restart to change them.")

st.subheader("Escalated cases")
escalated = open_queue(store, QueueFilters(escalated_only=True)).items
if not escalated:
    st.caption("No open escalations.")
for item in escalated:
    with st.container(border=True, key=f"escalated-{item.case_id}"):
        st.markdown(f"**#{item.case_id}** · to {ui.md_escape(item.escalated_to)} · {ui.fmt_left(item.time_left)}")
        st.text(f"{item.author}: {item.excerpt}")
        st.page_link(ui.PAGES["case"], label="Open", query_params={"id": str(item.case_id)})
