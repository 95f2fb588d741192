"""One SMTP session: connecting under a wall-clock deadline, the email of an outbox row, and what the
server's answers mean.

Every session has a deadline (`alerts.smtp.session_deadline_seconds`, `SessionWatch`): a server that
drips its greeting forever is cut off when it passes, whatever smtplib is waiting for. The connection
remembers the server's answer to each RCPT TO and whether the whole message, final dot included, was
written (after which the server may hold it: RFC 1047's duplicate-message window); desk/notify/delivery.py
reads both to decide each recipient's fate. The worker that runs sessions is desk/notify/mailer.py.
"""

from __future__ import annotations

import email.policy
import os
import re
import smtplib
import socket
import ssl
import threading
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Any, Mapping

from desk.config.schema import Smtp
from desk.errors import UserError
from desk.notify.outbox import header_text
from desk.store.models import Outbox


class SmtpSetupError(UserError):
    """The SMTP settings cannot work as they are (e.g. a login variable that is not set)."""


class SessionDeadline(OSError):
    """The SMTP session ran past `alerts.smtp.session_deadline_seconds`; the server is treated as unusable for now."""


class SessionWatch:
    """Shuts an SMTP connection's socket once the session's deadline passes, whatever smtplib is waiting for."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.conn: smtplib.SMTP | None = None
        self.fired = False
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def _fire(self) -> None:
        self.fired = True
        sock = getattr(self.conn, "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self) -> SessionWatch:
        self._timer.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._timer.cancel()



# headers unfolded up to the SMTP line limit: folding a long subject can leave it starting with a space
_POLICY = email.policy.default.clone(max_line_length=998)


def build_message(row: Outbox, smtp: Smtp) -> EmailMessage:
    """The email for an outbox row: plain text, with an HTML alternative when the row has one."""
    msg = EmailMessage(policy=_POLICY)
    msg["From"] = smtp.sender
    msg["To"] = ", ".join(row.recipients)
    msg["Subject"] = row.subject
    msg["Date"] = format_datetime(row.created_at)
    msg["Message-ID"] = f"<hearken.{row.id}.{re.sub(r'[^A-Za-z0-9.-]', '-', row.dedupe_key)}@hearken.invalid>"
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Hearken-Alert"] = row.kind
    msg.set_content(row.body_text)
    if row.body_html:
        msg.add_alternative(row.body_html, subtype="html")
    return msg


class _Tracked:
    """What an SMTP connection learnt during one message: the server's answer to each RCPT TO, and whether
    the whole message, final dot included, was written to the server (after which it may hold it)."""

    rcpt_replies: dict[str, tuple[int, bytes]]
    dot_sent: bool

    def forget(self) -> None:
        self.rcpt_replies, self.dot_sent = {}, False

    def rcpt(self, recip: str, options: Any = ()) -> tuple[int, bytes]:
        code, resp = super().rcpt(recip, options)  # type: ignore[misc]
        self.rcpt_replies[recip] = (code, resp)
        return code, resp

    def send(self, s: Any) -> None:
        super().send(s)  # type: ignore[misc]
        if isinstance(s, bytes) and s.endswith(b"\r\n.\r\n"):  # smtplib.SMTP.data writes the message in one go
            self.dot_sent = True


class _WatchedSMTP(_Tracked, smtplib.SMTP):
    """smtplib.SMTP that its watch can cut from the start, while the server's greeting is still awaited."""

    def __init__(self, watch: SessionWatch, *args: Any, **kwargs: Any) -> None:
        watch.conn = self
        self.forget()
        super().__init__(*args, **kwargs)


class _WatchedSMTPSSL(_Tracked, smtplib.SMTP_SSL):
    def __init__(self, watch: SessionWatch, *args: Any, **kwargs: Any) -> None:
        watch.conn = self
        self.forget()
        super().__init__(*args, **kwargs)


def connect(smtp: Smtp, *, env: Mapping[str, str] | None = None, tls_context: ssl.SSLContext | None = None,
            watch: SessionWatch | None = None) -> smtplib.SMTP:
    """Open, secure and log in to the SMTP server as configured (under `watch`'s deadline when given)."""
    env = os.environ if env is None else env
    login = None
    if smtp.username_env:
        user, password = env.get(smtp.username_env), env.get(smtp.password_env or "", "")
        if not user:
            raise SmtpSetupError(f"alerts.smtp.username_env names ${smtp.username_env}, which is not set")
        if smtp.password_env and not password:
            raise SmtpSetupError(f"alerts.smtp.password_env names ${smtp.password_env}, which is not set")
        login = (user, password)
    context = tls_context or ssl.create_default_context()
    watch = watch or SessionWatch(smtp.session_deadline_seconds)
    if smtp.security == "ssl":
        conn: smtplib.SMTP = _WatchedSMTPSSL(watch, smtp.host, smtp.port, timeout=smtp.timeout_seconds, context=context)
    else:
        conn = _WatchedSMTP(watch, smtp.host, smtp.port, timeout=smtp.timeout_seconds)
    try:
        conn.ehlo()
        if smtp.security == "starttls":
            conn.starttls(context=context)
            conn.ehlo()
        if login:
            conn.login(*login)
    except BaseException:
        conn.close()
        raise
    return conn


def permanent(exc: Exception) -> bool:
    """True when the server rejected the message for good (5xx) rather than for now."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in exc.recipients.values())
    if isinstance(exc, (smtplib.SMTPAuthenticationError, smtplib.SMTPConnectError, smtplib.SMTPHeloError,
                        smtplib.SMTPNotSupportedError)):
        return False  # the server or our settings, not this message: keep the alert until they are fixed
    code = getattr(exc, "smtp_code", None)
    return isinstance(code, int) and code >= 500


def describe(exc: Exception) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        return f"{type(exc).__name__}: {exc.smtp_code} {text}"
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "every recipient refused: " + "; ".join(
            f"{r} ({c} {m.decode(errors='replace') if isinstance(m, bytes) else m})" for r, (c, m) in exc.recipients.items())
    return f"{type(exc).__name__}: {exc}"


def reply_text(code: int, resp: bytes | str) -> str:
    text = resp.decode(errors="replace") if isinstance(resp, bytes) else str(resp)
    return clean_line(f"{code} {text}")


def clean_line(text: str) -> str:
    return header_text(text)[:500]


def past_deadline(exc: Exception, watch: SessionWatch, smtp: Smtp) -> Exception:
    """The error to record: the deadline when the watch cut the session, else `exc` itself."""
    if not watch.fired or isinstance(exc, SessionDeadline):
        return exc
    return SessionDeadline(f"the SMTP session with {smtp.host}:{smtp.port} passed its {watch.seconds:g}s deadline "
                           "(alerts.smtp.session_deadline_seconds): the server answers too slowly or never finishes")


def address(sender: str) -> str:
    """The bare address of a From header ("Hearken <a@b>" -> "a@b"), for MAIL FROM."""
    return parseaddr(sender)[1] or sender


def close(conn: smtplib.SMTP | None) -> None:
    if conn is None:
        return
    try:
        conn.quit()
    except (smtplib.SMTPException, OSError):
        conn.close()
