"""The weekly public-response report: how fast and how well the team answered complaints in public.

    from desk.reports import weekly
    rep = weekly.weekly_report(store, cfg, "2026-W47")   # default: the last full ISO week
    weekly.to_html(rep), weekly.to_csv(rep), weekly.to_json(rep), weekly.to_text(rep)

A week is an ISO week in `sla.timezone` (desk/periods.py): Monday 00:00 to
the next Monday 00:00, local time. Every figure counts the complaints
*posted* in the week (the customer's post time), measured as of the moment
the report is built (`generated_at`); the exact definition of each figure
travels with the report in `DEFINITIONS` and is printed in every output.

The rooms, in the order a report is made:

    definitions.py   what each figure means (printed with every output) and its label
    values.py        the values: CaseRow (one per case, the CSV's row), Figures, Theme, WeeklyReport
    figures.py       which cases a week holds (SQL) and the statistics over them
    themes.py        recurring themes: the complaints clustered by the classifier's embeddings
    report.py        build() / weekly_report(): the week and the week before, as one WeeklyReport
    formatting.py    how a figure, a change, a cell and a long text are written in every output
    page.py          HTML with inline SVG charts;  text.py  plain text and the headline
    exports.py       CSV and JSON, and the files written to report.output_dir

desk/ computes and renders; the dashboard draws a WeeklyReport with its own
widgets (dashboard/views/metrics.py). Nothing here imports Streamlit.
"""

from desk.reports.weekly.definitions import DEFINITIONS, FIGURE_LABELS, THEME_SIMILARITY
from desk.reports.weekly.exports import CSV_COLUMNS, output_dir, to_csv, to_dict, to_json, write_files
from desk.reports.weekly.figures import figures_for, percentile
from desk.reports.weekly.formatting import cell, fmt, fmt_change
from desk.reports.weekly.page import CASE_TABLE_COLUMNS, bar_chart, svg_charts, to_html
from desk.reports.weekly.report import build, week_has_data, weekly_report
from desk.reports.weekly.text import headline, to_text
from desk.reports.weekly.themes import cluster
from desk.reports.weekly.values import CaseRow, Figures, ReportError, Theme, WeeklyReport

__all__ = ["CASE_TABLE_COLUMNS", "CSV_COLUMNS", "DEFINITIONS", "FIGURE_LABELS", "THEME_SIMILARITY", "CaseRow", "Figures", "ReportError",
           "Theme", "WeeklyReport", "bar_chart", "build", "cell", "cluster", "figures_for", "fmt", "fmt_change",
           "headline", "output_dir", "percentile", "svg_charts", "to_csv", "to_dict", "to_html", "to_json", "to_text",
           "week_has_data", "weekly_report", "write_files"]
