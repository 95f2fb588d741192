"""Metrics: the weekly public-response report for a week the user picks. desk/reports/weekly computes a
`WeeklyReport` (values only); this page draws it.

It owns the `report_week` selectbox and the three download buttons (`report_dl_html`, `report_dl_csv`,
`report_dl_json`). Run as a page (st.navigation, AppTest) it draws the report; imported (a test that
gives its own clock and embeddings), it only defines `weekly_report_view` and `draw`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import streamlit as st

from dashboard import components as ui
from dashboard.components import md_escape
from desk.config.schema import HearkenConfig
from desk.store.db import Store
from desk.store.models import now_utc
from desk.periods import recent_weeks
from desk.reports import weekly
from desk.reports.weekly import CASE_TABLE_COLUMNS, FIGURE_LABELS, WeeklyReport, cell, fmt, fmt_change

TILES = [("complaints", "Complaints", "n", "normal"), ("answered_share", "Answered publicly", "%", "normal"),
         ("first_reply_hours_median", "Median first public reply", "h", "inverse"),
         ("first_reply_hours_p90", "90th pct first public reply", "h", "inverse"),
         ("first_response_sla_share", "Within first-response SLA", "%", "normal"),
         ("resolution_sla_share", "Within resolution SLA", "%", "normal"),
         ("resolution_hours_median", "Median time to resolution", "h", "inverse"),
         ("still_open", "Still open", "n", "off")]


def weekly_report_view(store: Store, cfg: HearkenConfig, *, now: datetime | None = None,
                       embed: Callable[[Sequence[str]], Any] | None = None) -> WeeklyReport:
    """Pick a week (the one in progress first, marked partial, then the full ones), build its report, draw it.
    The week in progress is the one shown first when anything was posted in it (a fresh install has only it)."""
    weeks = recent_weeks(ZoneInfo(cfg.sla.timezone), now or now_utc())
    current = weeks[0]
    week = st.selectbox("Week", weeks, index=0 if weekly.week_has_data(store, cfg, current) else 1, key="report_week",
                        format_func=lambda w: w + (" (in progress: figures are partial)" if w == current else ""))
    rep = weekly.weekly_report(store, cfg, week, now=now, embed=embed)
    draw(rep)
    return rep


def draw(rep: WeeklyReport) -> None:
    tz = ZoneInfo(rep.timezone)
    st.caption(f"{rep.start.astimezone(tz):%a %d %b %Y} to {(rep.end.astimezone(tz) - timedelta(days=1)):%a %d %b %Y} "
               f"({rep.timezone}), as of {rep.generated_at.astimezone(tz):%Y-%m-%d %H:%M}; "
               f"change against {rep.previous_week}.")
    for note in rep.notes:
        st.info(note)

    for row in (TILES[:4], TILES[4:]):
        for col, (attr, label, unit, colour) in zip(st.columns(4), row):
            change = fmt_change(rep.change(attr), unit)
            col.metric(label, fmt(getattr(rep.overall, attr), unit), None if change == "-" else change,
                       delta_color=colour)

    st.subheader("Per platform")
    table = {"": [label for _, label, _ in FIGURE_LABELS],
             "overall": [fmt(getattr(rep.overall, a), u) for a, _, u in FIGURE_LABELS],
             f"change vs {rep.previous_week}": [fmt_change(rep.change(a), u) for a, _, u in FIGURE_LABELS]}
    for p, f in rep.platforms.items():
        table[p] = [fmt(getattr(f, a), u) for a, _, u in FIGURE_LABELS]
    st.dataframe(pd.DataFrame(table).set_index(""), width="stretch")

    left, right = st.columns(2)
    with left:
        st.caption("Complaints per day, and how many were answered publicly")
        per_day = [{"group": f"{i + 1} {d['day']}", "series": series, "value": d[field]}
                   for i, d in enumerate(rep.daily)
                   for series, field in (("complaints", "complaints"), ("answered publicly", "answered_publicly"))]
        if any(r["value"] for r in per_day):
            _bars(per_day, "complaints", whole=True)
        else:
            st.info("No complaints were posted this week, so there is nothing to chart per day.")
    with right:
        st.caption("Hours to first public reply (from the customer's post)")
        names = ["overall"] + list(rep.platforms)
        figs = [rep.overall] + list(rep.platforms.values())
        hours = [{"group": name, "series": series, "value": value} for name, f in zip(names, figs)
                 for series, value in (("median", f.first_reply_hours_median), ("90th percentile", f.first_reply_hours_p90))
                 if value is not None]
        if hours:
            _bars(hours, "hours", whole=False)
        else:
            st.info("No complaint from this week has been answered publicly yet, so there are no reply times to chart.")

    st.subheader("Recurring complaint themes")
    if rep.themes:
        st.dataframe(pd.DataFrame([{"theme": t.number, "common words": ", ".join(t.words), "complaints": t.size,
                                    "root causes": ", ".join(f"{k} ({v})" for k, v in t.root_causes.items()),
                                    "example": f"#{t.example_case_id}: {t.example_text}"} for t in rep.themes]),
                     hide_index=True, width="stretch")
        st.caption(f"{rep.unthemed} complaint(s) in no recurring theme.")
    else:
        st.caption("No recurring themes this week.")

    with st.expander(f"Cases ({len(rep.rows)})"):
        st.dataframe(pd.DataFrame([{c: cell(getattr(r, c)) for c in CASE_TABLE_COLUMNS} for r in rep.rows],
                                  columns=CASE_TABLE_COLUMNS),
                     hide_index=True, width="stretch")

    a, b, c = st.columns(3)
    a.download_button("Download HTML", weekly.to_html(rep), file_name=f"hearken-report-{rep.week}.html",
                      mime="text/html", key="report_dl_html")
    b.download_button("Download CSV (one row per case)", weekly.to_csv(rep),
                      file_name=f"hearken-report-{rep.week}.csv", mime="text/csv", key="report_dl_csv")
    c.download_button("Download JSON", weekly.to_json(rep), file_name=f"hearken-report-{rep.week}.json",
                      mime="application/json", key="report_dl_json")
    with st.expander("Definitions of every figure"):
        for k, v in rep.definitions.items():
            st.markdown(f"**{md_escape(k)}**: {md_escape(v)}")


def _bars(rows: list[dict[str, Any]], unit: str, *, whole: bool) -> None:
    """Grouped bars, one group per `group` (kept in order), one bar per `series`; counts get whole-number ticks."""
    axis: dict[str, Any] = {"format": "d", "tickMinStep": 1} if whole else {"format": ".1f"}
    st.vega_lite_chart(pd.DataFrame(rows), {
        "mark": {"type": "bar", "tooltip": True},
        "encoding": {
            "x": {"field": "group", "type": "nominal", "sort": None, "title": None, "axis": {"labelAngle": 0}},
            "xOffset": {"field": "series", "sort": None},
            "y": {"field": "value", "type": "quantitative", "title": unit, "axis": axis},
            "color": {"field": "series", "type": "nominal", "sort": None, "title": None,
                      "legend": {"orient": "bottom"}},
        },
    }, width="stretch")


if __name__ == "__main__":  # Streamlit runs a page as __main__
    ui.require_actor()
    cfg = ui.config()
    store = ui.store()
    st.title("Metrics")
    weekly_report_view(store, cfg)
