"""Passwords kept out of what Hearken shows and logs, wherever an address carries one.

An operator may write a private board as ``https://user:password@forum.example/``, or a database as
``postgresql://user@db/hearken?password=...`` (libpq and SQLAlchemy take both forms). Hearken still
uses such an address to connect, but never repeats its password: every error a platform package
raises (collectors/errors.py), every note and reason (collectors/clean.py), every log line
(desk/logs.py) and every address `hearken` prints goes through `hide_passwords`; a link stored or
drawn for a post carries no credentials at all (`without_credentials`). A database URL is shown by
desk.store.db.shown_url instead, which reads it as SQLAlchemy does (percent-encoded parameter names included).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

HIDDEN = "***"  # what SQLAlchemy writes for a hidden password, too

# scheme://user:password@ ; in free text the password runs to the last @ before a space. A URL parser
# ends it at the last @ of the authority (before the first / ? #), SQLAlchemy at the first @ even past a
# / ? or # ("postgresql://u:s3cr/et@db/x" connects with the password "s3cr/et"); the last @ on the way
# covers both, at the price of hiding a port and path before an @ in a path ("https://h:8080/@bob").
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^\s/?#@:]*):(\S*)@")
# query parameters that carry a secret (libpq's password and sslpassword, API keys and tokens)
_SECRET_NAMES = r"password|passwd|pwd|sslpassword|api[_-]?key|access_token|token|client_secret|secret"
_QUERY_SECRET = re.compile(rf"(?i)([?&;](?:{_SECRET_NAMES})=)([^&#\s'\"]*)")


def is_secret_parameter(name: str) -> bool:
    """Whether a query parameter of this (percent-decoded) name carries a secret."""
    return re.fullmatch(_SECRET_NAMES, name.strip(), re.IGNORECASE) is not None


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
