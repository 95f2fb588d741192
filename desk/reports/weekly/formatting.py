"""How the report writes a figure, a change, a cell and a long text, the same in every output."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any


def fmt(value: float | int | None, unit: str) -> str:
    """A figure in its unit: n (a count), % (a share, 0..1) or h (hours); '-' where there is none."""
    if value is None:
        return "-"
    if unit == "%":
        return f"{value * 100:.0f}%"
    if unit == "h":
        return f"{value:.1f} h"
    return f"{value:g}"


def fmt_change(value: float | None, unit: str) -> str:
    """A change against the week before, signed: percentage points for a share."""
    if value is None:
        return "-"
    if unit == "%":
        return f"{value * 100:+.0f} pts"
    if unit == "h":
        return f"{value:+.1f} h"
    return f"{value:+g}"


def cell(v: Any) -> str:
    """A table cell: yes/no, UTC times with Z, two decimals, '' for nothing."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, datetime):
        return v.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    if isinstance(v, float):
        return f"{v:.2f}"
    return str(v)


def clip(text: str, limit: int) -> str:
    """One line of at most `limit` characters, ending in '...' where it was cut."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3].rstrip() + "..."
