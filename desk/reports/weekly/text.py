"""The report as plain text (the email's text part) and as one headline (the email's subject, the CLI)."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from desk.reports.weekly.definitions import FIGURE_LABELS
from desk.reports.weekly.formatting import clip, fmt, fmt_change
from desk.reports.weekly.values import WeeklyReport


def headline(rep: WeeklyReport) -> str:
    """The week in one line: complaints, share answered publicly, median first reply."""
    o = rep.overall
    return (f"{o.complaints} complaints, {fmt(o.answered_share, '%')} answered publicly, "
            f"median first reply {fmt(o.first_reply_hours_median, 'h')}")


def to_text(rep: WeeklyReport) -> str:
    """The figures as a fixed-width table, then the themes and the definitions."""
    tz = ZoneInfo(rep.timezone)
    lines = [f"Hearken weekly public-response report, {rep.week}",
             f"{rep.start.astimezone(tz):%a %d %b %Y} to {(rep.end.astimezone(tz) - timedelta(days=1)):%a %d %b %Y} "
             f"({rep.timezone}); as of {rep.generated_at.astimezone(tz):%Y-%m-%d %H:%M}", ""]
    lines += rep.notes
    platforms = list(rep.platforms)
    width = max(len(label) for _, label, _ in FIGURE_LABELS)
    lines.append(" " * width + "  " + "  ".join(f"{h:>12}" for h in ["overall", f"vs {rep.previous_week}"]
                                                  + platforms))
    for attr, label, unit in FIGURE_LABELS:
        cells = [fmt(getattr(rep.overall, attr), unit), fmt_change(rep.change(attr), unit)]
        cells += [fmt(getattr(rep.platforms[p], attr), unit) for p in platforms]
        lines.append(f"{label:<{width}}  " + "  ".join(f"{c:>12}" for c in cells))
    if rep.themes:
        lines += ["", "Recurring complaint themes:"]
        for t in rep.themes:
            causes = ", ".join(f"{k} {v}" for k, v in t.root_causes.items()) or "no root cause yet"
            lines.append(f"  {t.number}. {', '.join(t.words)} ({t.size} complaints; {causes}); "
                         f"e.g. case #{t.example_case_id}: \"{clip(t.example_text, 120)}\"")
    lines += ["", "Definitions:"] + [f"  {k}: {v}" for k, v in rep.definitions.items()]
    return "\n".join(lines) + "\n"
