"""Every error a platform package raises, reading or posting, in one tree (catch the level you need)::

    PlatformError                 anything that went wrong with a platform; `reason` is one line a person can act on
     +-- CollectorError           a poll failed
     |    +-- NotConfigured       settings or credentials missing: the source is disabled (or cannot post), with the reason
     |    +-- AuthFailed          the platform refused our credentials: a person must act
     |    +-- TryLater            a passing failure: poll again later (after `retry_after` seconds if given)
     |         +-- RateLimited    the platform said 429 / rate limit
     |         +-- BadPayload     the platform answered something we could not read (names the URL)
     +-- PublishError             posting a reply failed; the subclass says whether it went out
          +-- NotConfigured       no credentials to post with: nothing was sent (the same class as above)
          +-- ReadOnlySource      the source is read-only: nothing was sent
          +-- Rejected            the platform refused it, or it was never sent: nothing was posted, a retry is safe
          +-- Unknown             it may have been posted (timeout, connection lost, 5xx): look on the platform first

Every error's `reason` and `url` have the passwords of addresses hidden (collectors/redact.py).

`NotConfigured` is one class under both branches: a source without credentials
neither polls nor posts, and whoever asks gets the same error with the same reason.
"""

from __future__ import annotations

from collectors.plain import URL_SHOWN, clean_text, fit, reason_line
from collectors.redact import hide_passwords


class PlatformError(Exception):
    """Something went wrong with a platform. `reason` is one line a person can act on; `url` where it happened.

    Both are stored (a source's status, a reply's error), shown and logged, and both may quote what a
    platform sent: they are kept to one line of plain text of a bounded length (collectors/plain.py), so a
    NUL, a CR/LF or a megabyte of error page never reaches the database, the log or the page as it came,
    and a password in an address (``https://user:pw@forum/``) is hidden in them.
    """

    def __init__(self, reason: str, *, url: str | None = None) -> None:
        reason = reason_line(reason)
        super().__init__(reason)
        self.reason = reason
        self.url = fit(hide_passwords(clean_text(str(url), multiline=False)), URL_SHOWN) if url else url

    def __str__(self) -> str:
        return f"{self.reason} ({self.url})" if self.url else self.reason


class CollectorError(PlatformError):
    """A poll failed."""


class PublishError(PlatformError):
    """Posting a reply failed."""


class NotConfigured(CollectorError, PublishError):
    """The source lacks settings or credentials (to poll, or to post); it is skipped, not retried."""


class AuthFailed(CollectorError):
    """The platform refused the credentials; retrying will not help until a person acts."""


class TryLater(CollectorError):
    """A passing failure (network, 5xx). Poll again later, after `retry_after` seconds if set."""

    def __init__(self, reason: str, *, url: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(reason, url=url)
        self.retry_after = retry_after


class RateLimited(TryLater):
    """The platform asked us to slow down (HTTP 429, Reddit RATELIMIT, X rate-limit headers)."""


class BadPayload(TryLater):
    """The platform answered with something we could not parse; nothing was stored from it."""


class ReadOnlySource(PublishError):
    """The source is read-only; Hearken never posts through it."""


class Rejected(PublishError):
    """Definitely not posted (refused, rate-limited, or never sent)."""


class Unknown(PublishError):
    """Maybe posted: the answer was lost. Look for our reply on the platform before trying again."""
