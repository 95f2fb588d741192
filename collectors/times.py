"""One strict parser for every time a platform writes, shared by all collectors.

A platform's time arrives as an epoch (seconds, milliseconds or microseconds,
as a number or digits), as ISO 8601 with or without a zone, or as the text a
forum prints ("Sun May 26, 2019 4:34 pm", "Yesterday, 02:21"). `parse`
reads any of them into timezone-aware UTC; a time written without a zone is
in the source's zone. It never guesses quietly: what it cannot read, or reads
as implausible (before 2000, or more than a day ahead of now), raises
`BadTime` with a reason a person can act on, and the item is set aside.

The epoch's unit comes from its size: a 13-digit value is milliseconds (read
as seconds it would be the year 45,000 or, cut to ten digits, 1557).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone, tzinfo

UTC = timezone.utc
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
FUTURE_SLACK = timedelta(days=1)

FORUM_FORMATS = (
    "%a %b %d, %Y %I:%M %p",   # phpBB: Sun May 26, 2019 4:34 pm
    "%b %d, %Y at %I:%M %p",   # XenForo: Oct 30, 2014 at 10:48 PM
    "%b %d, %Y %I:%M %p",
    "%B %d, %Y, %I:%M %p",
    "%B %d, %Y %I:%M %p",
    "%m-%d-%Y, %I:%M %p",      # vBulletin default: 06-15-2016, 03:03 PM
    "%Y-%m-%d, %H:%M",         # vBulletin ISO-ish: 2016-02-01, 02:21
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%d-%m-%Y, %H:%M",
    "%d.%m.%Y, %H:%M",
    "%d.%m.%Y %H:%M",
    "%d %b %Y, %H:%M",
    "%d %b %Y %H:%M",
    "%a %d %b %Y %H:%M",
    "%m/%d/%Y %I:%M %p",
    "%d/%m/%Y %H:%M",
)

_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")
_RELATIVE_DAY = re.compile(r"\b(today|yesterday)\b", re.I)


class BadTime(ValueError):
    """A time that cannot be read, or that cannot be true; `str()` says which and why."""


def from_epoch(value: float) -> datetime:
    """An epoch in seconds, milliseconds or microseconds (told apart by size) as aware UTC."""
    if not math.isfinite(value) or value < 0:
        raise BadTime(f"epoch {value!r} is not a time")
    magnitude = abs(value)
    if magnitude < 1e11:       # seconds: up to the year 5138
        seconds = value
    elif magnitude < 1e14:     # milliseconds
        seconds = value / 1e3
    elif magnitude < 1e17:     # microseconds
        seconds = value / 1e6
    else:
        raise BadTime(f"epoch {value!r} is too large to be a time in seconds, milliseconds or microseconds")
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise BadTime(f"epoch {value!r} is out of range ({exc})") from None


def check_plausible(dt: datetime, *, now: datetime | None = None) -> datetime:
    """`dt` as aware UTC if it could be when a post was written: not before 2000, at most a day ahead."""
    if dt.tzinfo is None:
        raise BadTime(f"{dt.isoformat()} has no time zone")
    dt = dt.astimezone(UTC)
    now = now or datetime.now(UTC)
    if dt < EARLIEST:
        raise BadTime(f"{dt.isoformat()} is before 2000, which no post of today's platforms can be")
    if dt > now + FUTURE_SLACK:
        raise BadTime(f"{dt.isoformat()} is more than a day in the future")
    return dt


def _text_time(text: str, zone: tzinfo, formats: Sequence[str], now: datetime) -> datetime | None:
    local_now = now.astimezone(zone)

    def day(m: re.Match[str]) -> str:
        d = local_now.date() - timedelta(days=1 if m.group(1).lower() == "yesterday" else 0)
        return d.strftime("%Y-%m-%d")

    text = _RELATIVE_DAY.sub(day, text)
    words = text.split()
    for start in range(len(words)):  # the time is at the end of a line such as "by Jakob » Sun May 26, ..."
        candidate = " ".join(words[start:])
        for fmt in formats:
            try:
                return datetime.strptime(candidate, fmt)
            except ValueError:
                continue
    return None


def parse(value: object, *, zone: tzinfo = UTC, formats: Sequence[str] = (), now: datetime | None = None,
          plausible: bool = True) -> datetime:
    """Read a platform's time as aware UTC, or raise `BadTime` saying why not.

    `value` may be an epoch (int, float or digits), ISO 8601 text, or text in
    one of `formats` (strptime) at the end of a line, where "Today" and
    "Yesterday" count in `zone`. A time without a zone is in `zone`. With
    `plausible` (the default) the result must also pass `check_plausible`.
    """
    now = now or datetime.now(UTC)
    if isinstance(value, bool) or value is None:
        raise BadTime(f"{value!r} is not a time")
    if isinstance(value, (int, float)):
        parsed = from_epoch(float(value))
    elif isinstance(value, datetime):
        parsed = value if value.tzinfo is not None else value.replace(tzinfo=zone)
    elif isinstance(value, str):
        text = " ".join(value.split())
        if not text:
            raise BadTime("the time is empty")
        if _NUMBER.fullmatch(text):
            parsed = from_epoch(float(text))
        else:
            try:
                parsed = datetime.fromisoformat(text)
            except ValueError:
                parsed = _text_time(text, zone, formats, now)
            if parsed is None:
                shown = text if len(text) <= 60 else text[:57] + "..."
                raise BadTime(f"{shown!r} is not a time we can read (ISO 8601, an epoch, or one of the forum formats)")
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=zone)
    else:
        raise BadTime(f"a {type(value).__name__} is not a time")
    parsed = parsed.astimezone(UTC)
    return check_plausible(parsed, now=now) if plausible else parsed
