"""Plain text a database and a person can take, for anything a platform wrote: no controls, no lone
surrogates, fitted to a length. collectors/clean.py applies it to mentions; collectors/errors.py to
the reasons of every platform error, which are stored as a source's status and shown on the Sources
page (PostgreSQL refuses a NUL in a text column, and a log line must not be forged by a CR/LF).

It imports nothing of the project but collectors/redact.py (which imports nothing), so the error tree
can use it.
"""

from __future__ import annotations

import re

from collectors.redact import hide_passwords

REASON_LIMIT = 500
URL_SHOWN = 300  # characters of a URL quoted beside a reason

SURROGATE = re.compile("[\ud800-\udfff]")
# C0 and C1 controls and DEL, except tab and newline (CR is turned into newline first).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SPACE = re.compile(r"\s+")


def fix_surrogates(text: str) -> str:
    """Lone surrogates become U+FFFD; a pair that was left split is joined into its character."""
    if not SURROGATE.search(text):
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def clean_text(text: str | None, *, multiline: bool = True) -> str:
    """Text a database and a person can take: no controls, no lone surrogates.

    `multiline` keeps newlines and tabs (bodies); otherwise every run of
    whitespace becomes one space and the ends are trimmed (names, ids, titles).
    """
    if not text:
        return ""
    text = fix_surrogates(str(text))
    if multiline:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        return _CONTROL.sub("", text)
    return _SPACE.sub(" ", _CONTROL.sub("", text.replace("\r", " "))).strip()


def fit(text: str, limit: int, marker: str = "…") -> str:
    """`text` cut to `limit` characters, ending in `marker` when something was cut."""
    return text if len(text) <= limit else text[:limit - len(marker)] + marker


def reason_line(reason: object) -> str:
    """A reason as one line of at most `REASON_LIMIT` characters, with the passwords of addresses hidden."""
    return fit(hide_passwords(clean_text(str(reason), multiline=False)), REASON_LIMIT)
