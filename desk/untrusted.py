"""Values that came from outside (post text, platform data, staff input) made safe where they are shown.

- `web_url`: the only links Hearken ever renders (dashboard, report HTML, emails) are http(s) ones,
  without a user name or password; anything else (`javascript:`, `data:`, a relative path) is shown as
  text, never as a link.
- `csv_cell`: a spreadsheet runs a cell that begins with = + - @, tab or CR as a formula; such a cell
  gets a leading apostrophe (OWASP, "CSV Injection"), which the spreadsheet shows as text. A text that
  begins with an apostrophe of its own gets one more, so taking one leading apostrophe off (what a
  spreadsheet shows, and `classifier.data.load_extra_labels`) gives back every text exactly.
- `log_text`: control characters (CR, LF, ...) written visibly, so a value cannot start a forged log line.
"""

from __future__ import annotations

import re

from collectors.clean import safe_link
from collectors.redact import without_credentials

_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f-\x9f]")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")
_ESCAPED_START = (*_FORMULA_START, "'")  # and the escape itself, so that removing it is exact
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")


def web_url(value: object) -> str | None:
    """`value` when it is an absolute http or https URL with a host, else None (never make it a link).

    The collectors store only such links (collectors.clean.safe_link, the same test); this holds for
    whatever the database holds, and refuses any control character or space outright.
    """
    if not isinstance(value, str):
        return None
    url = value.strip()
    if not url or _CONTROL_OR_SPACE.search(url):  # browsers drop tabs and newlines: "java\tscript:" runs
        return None
    link = safe_link(url)
    return without_credentials(link) if link else None


def csv_cell(value: str) -> str:
    """A text cell a spreadsheet will not run as a formula; one leading apostrophe off gives `value` back."""
    return "'" + value if value.startswith(_ESCAPED_START) else value


def log_text(value: object) -> str:
    """`value` on one line: CR, LF and other control characters written as escapes (\\n, \\x1b, ...)."""
    text = str(value)
    if not _CONTROL.search(text):
        return text
    return _CONTROL.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), text)
