"""Sources: each source's health as the runner last recorded it (success, error, backoff, X read budget)."""

from __future__ import annotations

import streamlit as st

from dashboard import components as ui
from dashboard.components import md_escape
from desk.publishers import can_post
from desk.sources import source_health

actor = ui.require_actor()
cfg = ui.config()
store = ui.store()

st.title("Sources")
ICON = {"ok": "🟢", "new": "⚪", "failing": "🔴", "auth_failed": "⛔", "disabled": "⏸️", "capped": "🟠"}

rows = source_health(store, cfg)
if not rows:
    st.info("No sources are configured. Add some under sources: in the configuration.")
for h in rows:
    with st.container(border=True, key=f"source-{h.name}"):
        st.markdown(f"{ICON.get(h.status, '⚪')} **{ui.md_escape(h.name)}** · {h.type} · {ui.md_escape(h.status)}"
                    + (" · read-only (never posts)" if h.read_only else ""))
        a, b, c, d = st.columns(4)
        a.metric("Last success", ui.fmt_time(h.last_success_at))
        b.metric("Failures in a row", h.consecutive_failures)
        c.metric("Mentions stored", h.mentions_total)
        d.metric("Backing off until", ui.fmt_time(h.backoff_until) if h.backing_off else "—")
        if h.enabled:
            can, why = can_post(cfg, h.name)
            st.caption("Replies: posted publicly through this source" if can else f"Replies: off · {md_escape(why)}")
        if h.status_reason:
            st.text(f"Note: {h.status_reason}")
        if h.last_error:
            st.text(f"Last error ({ui.fmt_time(h.last_error_at)}): {h.last_error}")
        if h.read_cap is not None:
            used = h.budget_used or 0.0
            st.progress(min(used, 1.0), text=f"X reads this month: {h.reads_this_month or 0} of {h.read_cap}")
