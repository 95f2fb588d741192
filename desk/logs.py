"""Logging for the `hearken` command: one line per record, no secret at any level.

- Every message is written on one line: CR, LF and other control characters in it are escaped, so a
  value from a platform (a forum post id holding a newline) cannot forge a line of its own. Tracebacks
  keep their lines.
- The HTTP and OAuth libraries log request headers and bodies at DEBUG (tweepy the X bearer token,
  prawcore the Reddit password grant, urllib3/httpx the URLs): they stay at WARNING even with --verbose.
- Whatever still gets through, every secret the configuration names (each `*_env` variable holding a
  key, token, secret or password, the database URL's password, and a password written into any address
  in the config) is replaced by `[redacted]`, and the password of any address a line holds
  (``user:pw@``, ``?password=``) by `***` (collectors/redact.py).
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Iterable, Mapping

from desk.config.environment import database_url_from_env

# libraries that log headers, tokens or request bodies at DEBUG; each platform names its own as well (QUIET)
SHARED_QUIET = ("urllib3", "requests", "httpx", "httpcore", "authlib", "alembic", "smtplib", "aiosmtpd", "mail.log")
MIN_SECRET = 4  # shorter values would redact ordinary words
REDACTED = "[redacted]"
_NOT_SECRET_WORDS = ("user",)  # a `*_env` key naming a user name; every other one names a secret


@functools.cache
def quiet_loggers() -> tuple[str, ...]:
    """The shared noisy loggers and each platform's own. The registry is imported here, not with this module,
    so that `hearken --help` starts without finding the platforms."""
    import collectors

    return (*SHARED_QUIET, *[name for p in collectors.PLATFORMS.values() for name in p.quiet_loggers])


def __getattr__(name: str):
    if name == "QUIET":  # logs.QUIET, computed on first use
        return quiet_loggers()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class OneLineFormatter(logging.Formatter):
    """Escapes control characters in the message itself; the traceback that follows stays readable."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        from desk.untrusted import log_text

        record.message = log_text(record.message)
        return super().formatMessage(record)


class Redact(logging.Filter):
    """Replaces known secret values anywhere in a record's final text."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def add(self, values: Iterable[str | None]) -> None:
        self.secrets.update(v for v in values if v and len(v) >= MIN_SECRET)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = self.scrub(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.scrub(record.exc_text)
        return True

    def scrub(self, text: str) -> str:
        from collectors.redact import hide_passwords

        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, REDACTED)
        return hide_passwords(text)


_redact = Redact()


def setup(verbose: bool = False, stream=None) -> None:
    """Configure the root logger for a command (INFO, or DEBUG with --verbose)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(OneLineFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_redact)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_hearken", False)]:
        root.removeHandler(old)
    handler._hearken = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    quiet = quiet_loggers()
    for name in quiet:
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("hearken").debug("verbose logging; these stay at WARNING as they log credentials: %s",
                                       ", ".join(quiet))


def config_secrets(cfg, env: Mapping[str, str] | None = None) -> list[str]:
    """The values of every secret the configuration names through a `*_env` key, plus database passwords."""
    from desk.store.db import url_secrets

    env = os.environ if env is None else env
    found: list[str] = []

    def walk(node) -> None:
        if isinstance(node, (list, tuple)):
            for item in node:
                walk(item)
            return
        fields = getattr(type(node), "model_fields", None)
        if not fields:
            if node is not None and "://" in str(node):  # an address (a forum page, a base_url): its password
                found.extend(_url_password(str(node)))
            return
        for name in fields:
            value = getattr(node, name, None)
            if name.endswith("_env") and isinstance(value, str) and not any(w in name for w in _NOT_SECRET_WORDS):
                found.append(env.get(value, ""))
            else:
                walk(value)

    walk(cfg)
    for url in (cfg.database_url(dict(env)), database_url_from_env(env) or ""):
        found.extend(url_secrets(url))
    return [v for v in found if v]


def _url_password(url: str) -> list[str]:
    """The password written into an address, as written and percent-decoded; [] when it has none."""
    from urllib.parse import unquote, urlsplit

    try:
        password = urlsplit(url).password
    except ValueError:
        return []
    return [password, unquote(password)] if password else []


def protect(cfg, env: Mapping[str, str] | None = None) -> None:
    """Redact this configuration's secrets from every log record from now on."""
    _redact.add(config_secrets(cfg, env))
