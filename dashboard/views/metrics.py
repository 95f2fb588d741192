"""Metrics: the weekly public-response report for a week the user picks (dashboard/weekly_report.py draws it)."""

from __future__ import annotations

import streamlit as st

from dashboard import components as ui
from dashboard.weekly_report import weekly_report_view

actor = ui.require_actor()
cfg = ui.config()
store = ui.store()

st.title("Metrics")
weekly_report_view(store, cfg)
