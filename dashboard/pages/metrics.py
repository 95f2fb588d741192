"""Metrics: the weekly public-response report when desk.report is installed, else the essential counts."""

from __future__ import annotations

import importlib

import streamlit as st

from dashboard import components as ui
from desk.queue import essential_counts

actor = ui.require_actor()
cfg = ui.config()
store = ui.store()

st.title("Metrics")

try:
    report = importlib.import_module("desk.report")
except ModuleNotFoundError:
    report = None

shown = False
if report is not None and hasattr(report, "dashboard_view"):
    # desk.report draws its own figures from plain data; the page only hands it the store and config
    report.dashboard_view(st, store, cfg)
    shown = True

if not shown:
    c = essential_counts(store)
    st.caption("The last 7 days")
    a, b, cc, dd = st.columns(4)
    a.metric("Complaints opened", c["opened"])
    b.metric("Answered publicly", c["answered"])
    cc.metric("Resolved", c["resolved"])
    dd.metric("Still active", c["active"])
    e, f, g, h = st.columns(4)
    med = c["median_first_response_minutes"]
    e.metric("Median first reply", ui.fmt_span(__import__("datetime").timedelta(minutes=med)) if med is not None else "—")
    share = c["share_within_sla"]
    f.metric("Within SLA", f"{share:.0%}" if share is not None else "—")
    g.metric("Not complaints", c["dismissed"])
    h.metric("Team actions", c["actions"])
    if report is None:
        st.caption("The weekly report (desk/report.py) is not installed; these are the essential counts.")
