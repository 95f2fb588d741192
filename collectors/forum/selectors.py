"""What a forum preset's selectors read from a post: `Spec` (alternatives of `css@attr`), a post's time from
the element a time selector finds, and the post id a parent reference names.

The selector syntax is presets.py's: a CSS selector, optionally ending in `@attr` to read that attribute
(a bare `@attr` reads the post element itself), `||` between alternatives tried left to right.
"""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

from bs4 import Tag

from collectors import times
from collectors.forum.text import line_text

_TIME_ATTRS = ("data-time", "datetime", "content", "title")


class Spec:
    """One field's selector: alternatives of `css@attr`."""

    def __init__(self, text: str | None) -> None:
        self.text = text or ""
        self.alternatives: list[tuple[str, str | None]] = []
        for alt in self.text.split("||"):
            alt = alt.strip()
            if not alt:
                continue
            css, attr = alt, None
            at = alt.rfind("@")
            if at >= 0 and re.fullmatch(r"[\w:.-]+", alt[at + 1:]):
                css, attr = alt[:at].strip(), alt[at + 1:]
            self.alternatives.append((css, attr))

    def __bool__(self) -> bool:
        return bool(self.alternatives)

    def elements(self, scope: Tag) -> list[tuple[Tag, str | None]]:
        """Every element the first matching alternative finds, with its attribute name."""
        for css, attr in self.alternatives:
            found = [scope] if not css else scope.select(css)
            if attr:
                found = [el for el in found if el.get(attr) is not None]
            if found:
                return [(el, attr) for el in found]
        return []

    @staticmethod
    def value(el: Tag, attr: str | None) -> str:
        """What one found element says: its `attr`, else its text, on one line."""
        value = el.get(attr) if attr else line_text(el)
        if isinstance(value, list):
            value = " ".join(value)
        return " ".join(str(value).split())

    def values(self, scope: Tag) -> list[str]:
        return [v for el, attr in self.elements(scope) if (v := self.value(el, attr))]

    def first(self, scope: Tag) -> str | None:
        values = self.values(scope)
        return values[0] if values else None


def read_time(el: Tag, attr: str | None, zone: ZoneInfo, formats: tuple[str, ...]) -> datetime:
    """The time an element gives: its `attr`, or else its time attributes and then its text, the first that reads."""
    candidates = [el.get(attr)] if attr else [el.get(a) for a in _TIME_ATTRS] + [el.get_text(" ", strip=True)]
    problems = []
    for value in candidates:
        if value:
            try:
                return times.parse(str(value), zone=zone, formats=formats)
            except times.BadTime as exc:
                problems.append(str(exc))
    if not problems:
        raise times.BadTime("the time element is empty")
    raise times.BadTime(problems[-1] if len(problems) == 1 else "; ".join(dict.fromkeys(problems)))


_POST_REFS = tuple(re.compile(p) for p in (
    r"[?&](?:p|pid|postid|post_id|id)=(\d+)",  # showthread.php?p=123, goto/post?id=123
    r"#post-?(\d+)\b", r"#p(\d+)\b",           # #post123, #post-123 (XenForo), #p123 (phpBB)
    r"/post/(\d+)", r"/node/(\d+)",            # NodeBB /post/123, vBulletin 5 /node/123
    r"\bpost:\s*(\d+)",                        # XenForo 2 data-source="post: 123"
))


def post_ref(value: str) -> str | None:
    """The post id a parent reference names: the value itself when it is a number, else the id in a link
    to the post (`?p=123#post123`, `/post/123`, `post: 123`, ...). None when it names no post."""
    value = value.strip()
    if value.isdigit():
        return value
    for pattern in _POST_REFS:
        match = pattern.search(value)
        if match:
            return match.group(1)
    return None
