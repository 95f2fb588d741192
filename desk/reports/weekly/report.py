"""Building the weekly report: a week's rows, figures and themes, with the week before for comparison."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from desk.config.schema import HearkenConfig
from desk.store.db import Store
from desk.store.models import now_utc
from desk.periods import canonical_week, last_full_week, parse_week, previous_week
from desk.reports.weekly.figures import by_platform, case_rows, daily, mention_counts
from desk.reports.weekly.themes import themes_of
from desk.reports.weekly.values import WeeklyReport


def build(session: Session, cfg: HearkenConfig, week: str | None = None, *, now: datetime | None = None,
          embed: Callable[[Sequence[str]], Any] | None = None) -> WeeklyReport:
    """The report for `week` (default: the last full week) from an open session, as of `now`."""
    as_of = now or now_utc()
    tz = ZoneInfo(cfg.sla.timezone)
    week = week or last_full_week(tz, as_of)
    start, end = parse_week(week, tz)
    prev = previous_week(week)
    pstart, pend = parse_week(prev, tz)
    rows = case_rows(session, cfg, start, end, as_of)
    prev_rows = case_rows(session, cfg, pstart, pend, as_of)
    overall, platforms = by_platform(rows, mention_counts(session, start, end))
    prev_overall, prev_platforms = by_platform(prev_rows, mention_counts(session, pstart, pend))
    notes: list[str] = []
    if as_of < end:
        notes.append(f"The week is not over yet (built {as_of.astimezone(tz):%Y-%m-%d %H:%M}); figures are partial.")
    themes, unthemed = themes_of(session, rows, embed, notes, cfg.brand.terms)
    return WeeklyReport(week=canonical_week(week), start=start, end=end, timezone=cfg.sla.timezone, generated_at=as_of,
                        previous_week=prev, overall=overall, platforms=platforms, previous_overall=prev_overall,
                        previous_platforms=prev_platforms, themes=themes, unthemed=unthemed, rows=rows,
                        daily=daily(rows, start, tz), notes=notes)


def weekly_report(store: Store, cfg: HearkenConfig, week: str | None = None, *, now: datetime | None = None,
                  embed: Callable[[Sequence[str]], Any] | None = None) -> WeeklyReport:
    """The weekly public-response report (the dashboard's Metrics page and `hearken report` call this)."""
    with store.session() as s:
        return build(s, cfg, week, now=now, embed=embed)


def week_has_data(store: Store, cfg: HearkenConfig, week: str) -> bool:
    """Whether any mention was posted in `week` (cheap: the Metrics page asks it before it builds a report)."""
    start, end = parse_week(week, ZoneInfo(cfg.sla.timezone))
    with store.session() as s:
        return bool(mention_counts(s, start, end))
