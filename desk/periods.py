"""Calendar periods as keys: the month of a read budget and the ISO week of a report.

Time inside Hearken is aware UTC; this module is the one place that turns an
instant into a calendar period, so each key is computed one way everywhere:

- a month (`month_key`) is a UTC calendar month, "2026-11": what a platform's
  monthly read cap counts in, and what the budget alert names;
- a week (`parse_week`, `week_name`) is an ISO week in the team's
  `sla.timezone`, "2026-W47": Monday 00:00 to the next Monday 00:00, local
  time (DST-correct), as the weekly report counts it.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from desk.errors import UserError

_WEEK = re.compile(r"(\d{4})-?W(\d{1,2})", re.I)


class WeekError(UserError, ValueError):
    """A text that is not an ISO week (e.g. '2026-W54')."""


def month_key(at: datetime) -> str:
    """The UTC calendar month of an instant: '2026-11'."""
    return at.astimezone(timezone.utc).strftime("%Y-%m")


def week_name(day: date) -> str:
    """The ISO week a date falls in: '2026-W47'."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def _monday(week: str) -> date:
    m = _WEEK.fullmatch(week.strip())
    if not m:
        raise WeekError(f"expected an ISO week such as 2026-W47, got {week!r}")
    try:
        return date.fromisocalendar(int(m.group(1)), int(m.group(2)), 1)
    except ValueError:
        raise WeekError(f"{week!r} is not a week of {m.group(1)}") from None


def canonical_week(week: str) -> str:
    """'2026w7' -> '2026-W07'."""
    return week_name(_monday(week))


def parse_week(week: str, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """'2026-W47' -> (Monday 00:00, next Monday 00:00) local time in `tz`, as aware UTC."""
    monday = _monday(week)
    start = datetime.combine(monday, time(0), tz)
    end = datetime.combine(monday + timedelta(days=7), time(0), tz)
    return start.astimezone(timezone.utc), end.astimezone(timezone.utc)


def previous_week(week: str) -> str:
    return week_name(_monday(week) - timedelta(days=7))


def _local_monday(tz: ZoneInfo, now: datetime) -> date:
    local = now.astimezone(tz).date()
    return local - timedelta(days=local.weekday())


def last_full_week(tz: ZoneInfo, now: datetime) -> str:
    """The ISO week before the one `now` falls in, in `tz`."""
    return week_name(_local_monday(tz, now) - timedelta(days=7))


def recent_weeks(tz: ZoneInfo, now: datetime, count: int = 12) -> list[str]:
    """The week in progress in `tz` first, then the last `count` full ISO weeks, newest first."""
    monday = _local_monday(tz, now)
    return [week_name(monday - timedelta(days=7 * i)) for i in range(0, count + 1)]
