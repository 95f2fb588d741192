"""SLA clocks: when a first response and a resolution are due, and where a case stands against them.

The clock starts when the customer posted (not when we noticed). With
business hours configured, only the minutes inside those hours (in the
configured time zone, DST-correct through zoneinfo) count: a complaint posted
on Friday evening with a 60-minute target is due at 10:00 on Monday when the
day starts at 09:00.

The first-response clock stops at the first public reply
(`cases.first_response_at`); the resolution clock stops at resolution
(`cases.resolved_at`). Neither runs after a case is resolved or dismissed.
`status(case, sla, now)` gives the dashboard "time left" or "overdue by" for
both clocks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Literal
from zoneinfo import ZoneInfo

from desk.config.schema import BusinessHours, HearkenConfig, Sla

Clock = Literal["first_response", "resolution"]


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
                # aware datetimes in one zone subtract as wall time; go through UTC for real minutes
                total += b.astimezone(timezone.utc) - a.astimezone(timezone.utc)
        local = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), tz)
    return total.total_seconds() / 60


def clock_minutes(sla: Sla, start: datetime, end: datetime) -> float:
    """Minutes the SLA clock ran between two moments (business minutes when business hours are set)."""
    return business_minutes_between(start, end, sla.business_hours, ZoneInfo(sla.timezone))


def target_minutes(sla: Sla, platform: str, severity: int | None, which: Clock) -> float:
    targets = getattr(sla.targets_for(platform), which)
    return targets.get(severity or 1) or targets.get(1) or min(targets.values())


def due(sla: Sla, platform: str, severity: int | None, posted_at: datetime, which: Clock) -> datetime:
    """When the `which` ("first_response" or "resolution") target falls due for a case."""
    minutes = target_minutes(sla, platform, severity, which)
    if sla.business_hours is None:
        return posted_at + timedelta(minutes=minutes)
    return add_business_minutes(posted_at, minutes, sla.business_hours, ZoneInfo(sla.timezone))


def due_times(sla: Sla, platform: str, severity: int | None, posted_at: datetime) -> tuple[datetime, datetime]:
    """(first response due, resolution due) for a complaint posted at `posted_at`."""
    return due(sla, platform, severity, posted_at, "first_response"), due(sla, platform, severity, posted_at, "resolution")


# --- where a case stands --------------------------------------------------------

State = Literal["running", "met", "breached", "stopped"]


@dataclass(frozen=True)
class ClockStatus:
    """One SLA clock of one case.

    state: running (not yet stopped, not yet due), breached (due passed before the clock stopped,
    whether or not it has stopped since), met (stopped on or before due), stopped (the case was
    dismissed or resolved before this clock could stop: no verdict).
    """

    which: Clock
    due: datetime
    stopped_at: datetime | None
    state: State
    seconds_left: float  # negative once overdue; frozen when the clock stopped

    @property
    def overdue(self) -> bool:
        return self.state == "breached"

    def describe(self) -> str:
        """Short text for a queue: "due in 1h 05m", "overdue by 20m", "met", "breached"."""
        if self.state == "running":
            return f"due in {human_duration(self.seconds_left)}"
        if self.state == "breached" and self.stopped_at is None:
            return f"overdue by {human_duration(-self.seconds_left)}"
        return self.state


@dataclass(frozen=True)
class SlaStatus:
    first_response: ClockStatus
    resolution: ClockStatus

    @property
    def next_due(self) -> ClockStatus | None:
        """The clock still running that falls due first (None when both have stopped)."""
        running = [c for c in (self.first_response, self.resolution) if c.stopped_at is None and c.state != "stopped"]
        return min(running, key=lambda c: c.due) if running else None


def human_duration(seconds: float) -> str:
    """A span for people: "45m", "3h 05m", "2d 04h" (negative spans count as zero)."""
    minutes = int(max(0, seconds) // 60)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}h"
    if hours:
        return f"{hours}h {mins:02d}m"
    return f"{mins}m"


def _clock(which: Clock, due_at: datetime, stopped_at: datetime | None, closed_at: datetime | None,
           now: datetime, *, dismissed: bool = False) -> ClockStatus:
    if stopped_at is not None:
        state: State = "met" if stopped_at <= due_at else "breached"
        return ClockStatus(which, due_at, stopped_at, state, (due_at - stopped_at).total_seconds())
    if closed_at is not None:  # resolved or dismissed without this clock stopping: it never runs on
        state = "breached" if closed_at > due_at and not dismissed else "stopped"
        return ClockStatus(which, due_at, closed_at, state, (due_at - closed_at).total_seconds())
    state = "breached" if now > due_at else "running"
    return ClockStatus(which, due_at, None, state, (due_at - now).total_seconds())


def status(case, cfg: HearkenConfig | Sla, now: datetime) -> SlaStatus:
    """Both SLA clocks of `case` (a `desk.store.models.Case`) at `now`.

    The first-response clock stops at `first_response_at`; the resolution clock at `resolved_at`.
    A dismissed case (not a complaint after all) stops both clocks with no verdict ("stopped"),
    at `resolved_at` or, failing that, its last update.
    """
    sla = cfg.sla if isinstance(cfg, HearkenConfig) else cfg
    first_due, res_due = case.first_response_due, case.resolution_due
    if first_due is None or res_due is None:
        first_due, res_due = due_times(sla, case.platform, case.severity, case.customer_posted_at)
    closed_at = None
    if case.status in ("resolved", "dismissed"):
        closed_at = case.resolved_at or case.updated_at or now
    resolved_at = case.resolved_at if case.status == "resolved" else None
    dismissed = case.status == "dismissed"
    return SlaStatus(
        first_response=_clock("first_response", first_due, case.first_response_at, closed_at, now,
                              dismissed=dismissed),
        resolution=_clock("resolution", res_due, resolved_at, closed_at if resolved_at is None else None, now,
                          dismissed=dismissed),
    )
