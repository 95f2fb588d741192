"""Metrics: the weekly public-response report (desk.report draws it), else the essential counts from desk.queue."""

from __future__ import annotations

import importlib
from datetime import timedelta

import streamlit as st

from dashboard import components as ui
from desk.queue import essential_counts

actor = ui.require_actor()
cfg = ui.config()
store = ui.store()

st.title("Metrics")


def essential() -> None:
    c = essential_counts(store)
    st.caption("The last 7 days")
    for col, (label, value) in zip(st.columns(4), [("Complaints opened", c["opened"]),
                                                   ("Answered publicly", c["answered"]),
                                                   ("Resolved", c["resolved"]), ("Still active", c["active"])]):
        col.metric(label, value)
    med, share = c["median_first_response_minutes"], c["share_within_sla"]
    for col, (label, value) in zip(st.columns(4), [
            ("Median first reply", ui.fmt_span(timedelta(minutes=med)) if med is not None else "—"),
            ("Within SLA", f"{share:.0%}" if share is not None else "—"),
            ("Not complaints", c["dismissed"]), ("Team actions", c["actions"])]):
        col.metric(label, value)


try:
    report = importlib.import_module("desk.report")
except ModuleNotFoundError:
    report = None

if report is not None and hasattr(report, "dashboard_view"):
    report.dashboard_view(st, store, cfg)  # desk/ never imports Streamlit; the page hands it over
else:
    essential()
    st.caption("The weekly report (desk/report.py) is not installed; these are the essential counts.")
