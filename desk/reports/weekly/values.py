"""The weekly report as values: one row per case, the figures of a platform or of all, a theme, the report.

These are plain data; desk/ renders them (`page`, `text`, `exports`) and the dashboard draws them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from desk.errors import UserError
from desk.reports.weekly.definitions import DEFINITIONS


class ReportError(UserError, ValueError):
    """A report that cannot be made as asked (e.g. a file format it does not write)."""


@dataclass
class CaseRow:
    """One case of the week: the CSV's row."""

    case_id: int
    mention_id: int
    platform: str
    source: str
    status: str
    severity: int | None
    topic: str | None
    assignee: str | None
    root_cause: str | None
    author: str
    url: str
    customer_posted_at: datetime
    detected_at: datetime | None
    opened_at: datetime | None
    first_public_reply_at: datetime | None
    first_response_at: datetime | None
    first_response_due: datetime | None
    resolved_at: datetime | None
    resolution_due: datetime | None
    hours_to_first_public_reply: float | None
    hours_to_first_public_reply_from_detection: float | None
    sla_clock_minutes_to_first_response: float | None
    hours_to_resolution: float | None
    first_response_sla: str  # met, missed, pending, none
    resolution_sla: str
    answered_publicly: bool
    theme: int | None = None

    @property
    def is_complaint(self) -> bool:
        return self.status != "dismissed"


@dataclass
class Figures:
    """One platform's figures for a week (or all platforms'); see definitions.DEFINITIONS."""

    mentions: int = 0
    complaints: int = 0
    dismissed: int = 0
    answered_publicly: int = 0
    answered_share: float | None = None
    first_reply_hours_median: float | None = None
    first_reply_hours_p90: float | None = None
    detect_reply_hours_median: float | None = None
    detect_reply_hours_p90: float | None = None
    resolved: int = 0
    resolution_hours_median: float | None = None
    resolution_hours_p90: float | None = None
    first_response_sla_met: int = 0
    first_response_sla_judged: int = 0
    first_response_sla_share: float | None = None
    resolution_sla_met: int = 0
    resolution_sla_judged: int = 0
    resolution_sla_share: float | None = None
    still_open: int = 0


@dataclass
class Theme:
    """A recurring complaint theme: two or more complaints of the week that read alike."""

    number: int
    size: int
    words: list[str]
    example_case_id: int
    example_text: str
    example_url: str
    case_ids: list[int]
    root_causes: dict[str, int]
    topics: dict[str, int]
    platforms: dict[str, int]


@dataclass
class WeeklyReport:
    """One ISO week's report, with the week before (`previous_*`) for the change of each figure."""

    week: str
    start: datetime
    end: datetime
    timezone: str
    generated_at: datetime
    previous_week: str
    overall: Figures
    platforms: dict[str, Figures]
    previous_overall: Figures
    previous_platforms: dict[str, Figures]
    themes: list[Theme]
    unthemed: int
    rows: list[CaseRow]
    daily: list[dict[str, Any]]
    definitions: dict[str, str] = field(default_factory=lambda: dict(DEFINITIONS))
    notes: list[str] = field(default_factory=list)

    def figures(self, platform: str | None = None, *, previous: bool = False) -> Figures:
        if platform is None:
            return self.previous_overall if previous else self.overall
        table = self.previous_platforms if previous else self.platforms
        return table.get(platform) or Figures()

    def change(self, attr: str, platform: str | None = None) -> float | None:
        """This week's figure minus the previous week's (None when either is missing)."""
        now, before = getattr(self.figures(platform), attr), getattr(self.figures(platform, previous=True), attr)
        if now is None or before is None:
            return None
        return now - before
