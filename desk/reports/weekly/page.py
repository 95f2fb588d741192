"""The report as one self-contained HTML page (the email's HTML part, the downloaded file), with inline SVG
charts: no scripts, nothing fetched."""

from __future__ import annotations

import html
from datetime import timedelta
from zoneinfo import ZoneInfo

from desk.reports.weekly.definitions import FIGURE_LABELS
from desk.reports.weekly.formatting import cell, fmt, fmt_change
from desk.reports.weekly.values import Theme, WeeklyReport
from desk.untrusted import web_url

# the columns of the cases table people read (the CSV has every field of CaseRow)
CASE_TABLE_COLUMNS = ["case_id", "platform", "status", "severity", "assignee", "root_cause", "customer_posted_at",
                      "hours_to_first_public_reply", "hours_to_resolution", "first_response_sla", "resolution_sla"]

def to_html(rep: WeeklyReport) -> str:
    """A self-contained HTML page: figures with their change, inline SVG charts, themes, cases, definitions."""
    tz = ZoneInfo(rep.timezone)
    e = html.escape
    platforms = list(rep.platforms)
    head = "".join(f"<th>{e(h)}</th>" for h in ["", "Overall", f"Change vs {rep.previous_week}"] + platforms)
    body = []
    for attr, label, unit in FIGURE_LABELS:
        cells = [fmt(getattr(rep.overall, attr), unit), fmt_change(rep.change(attr), unit)]
        for p in platforms:
            ch = fmt_change(rep.change(attr, p), unit)
            cells.append(fmt(getattr(rep.platforms[p], attr), unit) + (f" <small>({e(ch)})</small>" if ch != "-" else ""))
        body.append(f"<tr><th scope='row'>{e(label)}</th>" + "".join(f"<td>{c if '<small>' in c else e(c)}</td>"
                                                                      for c in cells) + "</tr>")
    figures = f"<table class='fig'><tr>{head}</tr>{''.join(body)}</table>"

    charts = svg_charts(rep)

    theme_rows = "".join(
        f"<tr><td>{t.number}</td><td>{e(', '.join(t.words))}</td><td>{t.size}</td>"
        f"<td>{e(', '.join(f'{k} ({v})' for k, v in t.root_causes.items()) or '-')}</td>"
        f"<td>{e(', '.join(f'{k} ({v})' for k, v in t.platforms.items()))}</td>"
        f"<td>{_example_link(t)}: <q>{e(t.example_text)}</q></td></tr>"
        for t in rep.themes)
    themes = (f"<table><tr><th>#</th><th>Common words</th><th>Complaints</th><th>Root causes given</th>"
              f"<th>Platforms</th><th>Example</th></tr>{theme_rows}</table>"
              f"<p>{rep.unthemed} complaint(s) fell in no recurring theme.</p>" if rep.themes
              else "<p>No recurring themes this week.</p>")

    case_rows = "".join("<tr>" + "".join(f"<td>{e(cell(getattr(r, c)))}</td>" for c in CASE_TABLE_COLUMNS) + "</tr>"
                        for r in rep.rows)
    cases = (f"<details><summary>{len(rep.rows)} case(s)</summary><table><tr>"
             + "".join(f"<th>{e(c)}</th>" for c in CASE_TABLE_COLUMNS) + f"</tr>{case_rows}</table></details>")
    definitions = "<dl>" + "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in rep.definitions.items()) + "</dl>"
    notes = "".join(f"<p class='note'>{e(n)}</p>" for n in rep.notes)
    period = (f"{rep.start.astimezone(tz):%a %d %b %Y} to {(rep.end.astimezone(tz) - timedelta(days=1)):%a %d %b %Y} "
              f"({rep.timezone}); as of {rep.generated_at.astimezone(tz):%Y-%m-%d %H:%M}")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Hearken weekly report {e(rep.week)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 70em; }}
table {{ border-collapse: collapse; margin: 1em 0; }} td, th {{ border: 1px solid #ccc; padding: .3em .6em; }}
table.fig td {{ text-align: right; white-space: nowrap; }} th[scope=row] {{ text-align: left; font-weight: normal; }}
.note {{ color: #a33; }} dt {{ font-weight: bold; margin-top: .5em; }} svg {{ margin: .5em 1em .5em 0; }}
</style></head><body>
<h1>Weekly public-response report {e(rep.week)}</h1>
<p>{e(period)}</p>{notes}
<h2>Figures</h2>{figures}
<h2>Charts</h2>{''.join(charts)}
<h2>Recurring complaint themes</h2>{themes}
<h2>Cases</h2>{cases}
<h2>Definitions</h2>{definitions}
</body></html>
"""


def _example_link(t: Theme) -> str:
    """The theme's example case, linked to its post only when that is an http(s) address."""
    url = web_url(t.example_url)
    label = f"#{t.example_case_id}"
    return f"<a href=\"{html.escape(url)}\">{label}</a>" if url else label


def svg_charts(rep: WeeklyReport) -> list[str]:
    """The report's charts as inline SVG strings (also usable by the dashboard with st.html)."""
    platforms = list(rep.platforms)
    charts = [
        bar_chart("Time to first public reply, hours (from the customer's post)", ["overall"] + platforms,
                  [("median", [rep.overall.first_reply_hours_median]
                    + [rep.platforms[p].first_reply_hours_median for p in platforms], "#4c78a8"),
                   ("90th percentile", [rep.overall.first_reply_hours_p90]
                    + [rep.platforms[p].first_reply_hours_p90 for p in platforms], "#f58518")]),
        bar_chart("Complaints per day, and how many were answered publicly", [d["day"] for d in rep.daily],
                  [("complaints", [d["complaints"] for d in rep.daily], "#9ecae9"),
                   ("answered publicly", [d["answered_publicly"] for d in rep.daily], "#54a24b")]),
        bar_chart(f"Share within SLA, % ({rep.week} and {rep.previous_week})", ["first response", "resolution"],
                  [(rep.previous_week, [_pct(rep.previous_overall.first_response_sla_share),
                                        _pct(rep.previous_overall.resolution_sla_share)], "#bab0ac"),
                   (rep.week, [_pct(rep.overall.first_response_sla_share),
                               _pct(rep.overall.resolution_sla_share)], "#4c78a8")]),
    ]
    if rep.themes:
        charts.append(bar_chart("Complaints per recurring theme", [f"{t.number}. {', '.join(t.words[:2])}"
                                                                   for t in rep.themes[:10]],
                                [("complaints", [t.size for t in rep.themes[:10]], "#e45756")]))

    return charts


def _pct(v: float | None) -> float | None:
    return None if v is None else v * 100


def bar_chart(title: str, labels: list[str], series: list[tuple[str, list[float | None], str]],
              width: int = 520, height: int = 240) -> str:
    """A grouped bar chart as inline SVG (no scripts); missing values draw no bar."""
    e = html.escape
    values = [v for _, vs, _ in series for v in vs if v is not None]
    top = max(values) if values else 1.0
    top = top if top > 0 else 1.0
    left, bottom, plot_h = 40, 50, height - 90
    plot_w = width - left - 10
    group_w = plot_w / max(1, len(labels))
    bar_w = group_w * 0.8 / max(1, len(series))
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' role='img' "
             f"aria-label='{e(title)}' style='font: 11px sans-serif'>",
             f"<text x='0' y='14' style='font-weight:bold'>{e(title)}</text>",
             f"<line x1='{left}' y1='{height - bottom}' x2='{width - 10}' y2='{height - bottom}' stroke='#999'/>",
             f"<text x='{left - 4}' y='{height - bottom - plot_h + 4}' text-anchor='end'>{top:.3g}</text>",
             f"<text x='{left - 4}' y='{height - bottom}' text-anchor='end'>0</text>"]
    for gi, label in enumerate(labels):
        gx = left + gi * group_w + group_w * 0.1
        for si, (name, vs, color) in enumerate(series):
            v = vs[gi] if gi < len(vs) else None
            if v is None:
                continue
            h = plot_h * v / top
            x = gx + si * bar_w
            parts.append(f"<rect x='{x:.1f}' y='{height - bottom - h:.1f}' width='{bar_w - 1:.1f}' height='{h:.1f}' "
                         f"fill='{color}'><title>{e(name)}: {v:.3g}</title></rect>")
        parts.append(f"<text x='{gx + group_w * 0.4:.1f}' y='{height - bottom + 14}' text-anchor='middle'>"
                     f"{e(label[:18])}</text>")
    for si, (name, _, color) in enumerate(series):
        x = left + si * 140
        parts.append(f"<rect x='{x}' y='{height - 18}' width='10' height='10' fill='{color}'/>"
                     f"<text x='{x + 14}' y='{height - 9}'>{e(name)}</text>")
    parts.append("</svg>")
    return "".join(parts)
