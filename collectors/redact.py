"""Passwords kept out of what Hearken shows and logs, wherever an address carries one.

An operator may write a private board as ``https://user:password@forum.example/``, or a database as
``postgresql://user@db/hearken?password=...`` (libpq and SQLAlchemy take both forms). Hearken still
uses such an address to connect, but never repeats its password: every error a platform package
raises (collectors/errors.py), every note and reason (collectors/clean.py), every log line
(desk/logs.py) and every address `hearken` prints goes through `hide_passwords`; a link stored or
drawn for a post carries no credentials at all (`without_credentials`).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

HIDDEN = "***"  # what SQLAlchemy writes for a hidden password, too

# scheme://user:password@ ; the password runs to the last @ of the authority (an @ in it is legal there)
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^\s/?#@:]*):([^\s/?#]*)@")
# query parameters that carry a secret (libpq's password and sslpassword, API keys and tokens)
_QUERY_SECRET = re.compile(
    r"(?i)([?&;](?:password|passwd|pwd|sslpassword|api[_-]?key|access_token|token|client_secret|secret)=)"
    r"([^&#\s'\"]*)")


def hide_passwords(text: str) -> str:
    """`text` with the password of every address in it replaced by ***: ``user:***@`` and ``password=***``."""
    if "://" not in text and "=" not in text:
        return text
    text = _USERINFO.sub(lambda m: f"{m.group(1)}{m.group(2)}:{HIDDEN}@", text)
    return _QUERY_SECRET.sub(lambda m: m.group(1) + HIDDEN, text)


def without_credentials(url: str) -> str:
    """`url` without the user name and password before its host: the address to store or show."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return hide_passwords(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def site(url: str) -> str:
    """The host (and port) of `url`, without any user name or password: how a message names a site."""
    try:
        return urlsplit(url).netloc.rpartition("@")[2]
    except ValueError:
        return hide_passwords(url)
