"""The report as data and as files: CSV (one row per case), JSON (everything), and writing them to disk."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import asdict, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from desk.config.schema import HearkenConfig
from desk.reports.weekly.definitions import FIGURE_LABELS
from desk.reports.weekly.formatting import cell
from desk.reports.weekly.page import to_html
from desk.reports.weekly.values import CaseRow, ReportError, WeeklyReport
from desk.untrusted import csv_cell

CSV_COLUMNS = [f.name for f in fields(CaseRow)]


def _csv_value(v: Any) -> str:
    # text came from customers, platforms or staff: never let a spreadsheet run it (numbers stay numbers)
    return csv_cell(v) if isinstance(v, str) else cell(v)


def to_csv(rep: WeeklyReport) -> str:
    """One row per case posted in the week (dismissed ones included, with their status); times in UTC.

    A text cell beginning with = + - @, tab or CR gets a leading apostrophe, so it opens as text."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(CSV_COLUMNS)
    for r in rep.rows:
        w.writerow([_csv_value(getattr(r, c)) for c in CSV_COLUMNS])
    return buf.getvalue()


def _jsonable(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, float):
        return round(v, 4)
    return v


def _report_dict(rep: WeeklyReport) -> dict[str, Any]:
    changes = {"overall": {a: rep.change(a) for a, _, _ in FIGURE_LABELS}}
    for p in rep.platforms:
        changes[p] = {a: rep.change(a, p) for a, _, _ in FIGURE_LABELS}
    return {
        "week": rep.week, "start": rep.start, "end": rep.end, "timezone": rep.timezone,
        "generated_at": rep.generated_at, "previous_week": rep.previous_week,
        "overall": asdict(rep.overall), "platforms": {p: asdict(f) for p, f in rep.platforms.items()},
        "previous": {"overall": asdict(rep.previous_overall),
                     "platforms": {p: asdict(f) for p, f in rep.previous_platforms.items()}},
        "change": changes,
        "themes": [asdict(t) for t in rep.themes], "unthemed_complaints": rep.unthemed,
        "daily": rep.daily, "cases": [asdict(r) for r in rep.rows],
        "definitions": rep.definitions, "notes": rep.notes,
    }


def to_dict(rep: WeeklyReport) -> dict[str, Any]:
    """Everything in the report, with the change of each figure, as JSON-ready values (times in UTC, with Z)."""
    return _jsonable(_report_dict(rep))


def to_json(rep: WeeklyReport) -> str:
    return json.dumps(to_dict(rep), indent=2, ensure_ascii=False)


def output_dir(cfg: HearkenConfig) -> Path:
    """report.output_dir, relative to the config file's folder."""
    out = Path(cfg.report.output_dir)
    if not out.is_absolute():
        out = (cfg.path.parent if cfg.path else Path.cwd()) / out
    return out.resolve()


def write_files(rep: WeeklyReport, out_dir: Path, formats: Sequence[str] = ("html", "csv", "json")) -> list[Path]:
    """Write hearken-report-<week>.<format> files; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    render = {"html": to_html, "csv": to_csv, "json": to_json}
    written = []
    for f in formats:
        if f not in render:
            raise ReportError(f"unknown format {f!r}; expected html, csv or json")
        path = out_dir / f"hearken-report-{rep.week}.{f}"
        path.write_text(render[f](rep), encoding="utf-8", newline="")
        written.append(path)
    return written
