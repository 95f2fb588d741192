"""SLA clocks: when a first response and a resolution are due, in wall-clock or business time.

The clock starts when the customer posted (not when we noticed). With
business hours configured, only the minutes inside those hours (in the
configured time zone) count: a complaint posted on Friday evening with a
60-minute target is due at 10:00 on Monday when the day starts at 09:00.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from desk.config import BusinessHours, Sla


def add_business_minutes(start: datetime, minutes: float, hours: BusinessHours, tz: ZoneInfo) -> datetime:
    """Return the moment `minutes` of business time after `start` (aware UTC in, aware UTC out)."""
    local = start.astimezone(tz)
    remaining = timedelta(minutes=minutes)
    for _ in range(3700):  # ten years of days: a hard stop for a bad config, never reached in practice
        day_open = datetime.combine(local.date(), hours.start_time, tz)
        day_close = datetime.combine(local.date(), hours.end_time, tz)
        if local.weekday() in hours.weekdays and local < day_close:
            begin = max(local, day_open)
            available = day_close - begin
            if remaining <= available:
                return (begin + remaining).astimezone(timezone.utc)
            remaining -= available
        next_day = local.date() + timedelta(days=1)
        local = datetime.combine(next_day, hours.start_time, tz)
    raise ValueError("business hours never open: check sla.business_hours.days")


def business_minutes_between(start: datetime, end: datetime, hours: BusinessHours | None, tz: ZoneInfo) -> float:
    """Minutes of the SLA clock between two moments (all minutes without business hours)."""
    if end <= start:
        return 0.0
    if hours is None:
        return (end - start).total_seconds() / 60
    total = timedelta()
    local, stop = start.astimezone(tz), end.astimezone(tz)
    while local < stop:
        day_open = datetime.combine(local.date(), hours.start_time, tz)
        day_close = datetime.combine(local.date(), hours.end_time, tz)
        if local.weekday() in hours.weekdays:
            a, b = max(local, day_open), min(stop, day_close)
            if b > a:
                total += b - a
        local = datetime.combine(local.date() + timedelta(days=1), hours.start_time, tz).replace(hour=0, minute=0)
    return total.total_seconds() / 60


def due(sla: Sla, platform: str, severity: int | None, posted_at: datetime, which: str) -> datetime:
    """When the `which` ("first_response" or "resolution") target falls due for a case."""
    targets = getattr(sla.targets_for(platform), which)
    minutes = targets.get(severity or 1) or targets.get(1) or min(targets.values())
    if sla.business_hours is None:
        return posted_at + timedelta(minutes=minutes)
    return add_business_minutes(posted_at, minutes, sla.business_hours, ZoneInfo(sla.timezone))


def due_times(sla: Sla, platform: str, severity: int | None, posted_at: datetime) -> tuple[datetime, datetime]:
    return due(sla, platform, severity, posted_at, "first_response"), due(sla, platform, severity, posted_at, "resolution")
