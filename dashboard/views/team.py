"""Team: everyone's own API tokens; for managers and admins, who is on the team, their roles, workload and
the escalations waiting on them."""

from __future__ import annotations

import streamlit as st

from dashboard import components as ui
from dashboard.api_tokens import api_tokens
from desk.cases.queue import QueueFilters, open_queue
from desk.team.users import forget_identity, team_overview

actor = ui.require_actor()
cfg = ui.config()
store = ui.store()

st.title("Team")
if not actor.at_least("manager"):
    st.info("The team overview is for managers and admins.")
    api_tokens(store, cfg, actor)
    st.stop()

members = team_overview(store, cfg)
st.dataframe([{"name": m.name, "email": m.email, "role": m.role, "active cases": m.active_cases,
               "escalated to them": m.escalated_to_them, "last seen": ui.fmt_time(m.last_seen_at),
               "signs in with": m.bound_issuer or ("—" if cfg.dashboard.auth == "oidc" else "local mode"),
               "live sign-ins": m.live_sessions}
              for m in members], hide_index=True, width="stretch")
st.caption("Members and roles come from team: in the configuration file; edit it to change them (a member "
           "removed from it is signed out everywhere at their next click).")
ui.show_flash("team")
bound = [m for m in members if m.bound_issuer]
if actor.at_least("admin") and bound:
    with st.expander("Forget a member's sign-in"):
        st.caption("Their sessions end now, and their next sign-in with a verified email binds them again "
                   "(for a member whose account at the identity provider was replaced).")
        who = st.selectbox("Member", bound, format_func=lambda m: f"{m.name} ({m.bound_issuer})", key="forget-who")
        if st.button("Forget sign-in", key="forget"):
            forget_identity(store, cfg, actor, who.email)
            ui.flash("team", "success", f"{who.name}'s sign-in is forgotten and their sessions have ended.")
            st.rerun()

st.subheader("Escalated cases")
escalated = open_queue(store, QueueFilters(escalated_only=True)).items
if not escalated:
    st.caption("No open escalations.")
for item in escalated:
    with st.container(border=True, key=f"escalated-{item.case_id}"):
        st.markdown(f"**#{item.case_id}** · to {ui.md_escape(item.escalated_to)} · {ui.fmt_left(item.time_left)}")
        st.text(f"{item.author}: {item.excerpt}")
        st.page_link(ui.PAGES["case"], label="Open", query_params={"id": str(item.case_id)})

api_tokens(store, cfg, actor)
