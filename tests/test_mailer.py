"""The outbox worker against a real SMTP server on 127.0.0.1: delivery, retries, TLS, login, claims."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from sqlalchemy import select

from desk.notify import alerts
from desk.notify import delivery, mailer, outbox
from desk.store.models import Outbox
from tests.test_alerts_support import (SmtpServer, certs, free_port, make_cfg, new_case,  # noqa: F401
                                       password_authenticator, smtp_server, update_case)
from tests.hostile import SmtpTarpit

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 11, 17, 10, 0, tzinfo=UTC)


def _queue(store, n: int = 1, kind: str = "test", to: str = "sam@example.com") -> list[int]:
    ids = []
    with store.session() as s:
        for i in range(n):
            row = outbox.queue(s, kind=kind, dedupe_key=f"{kind}:{i}", recipients=[to], subject=f"Alert {i}",
                               body_text=f"body {i}", now=T0)
            s.flush()
            ids.append(row.id)
    return ids


def _status(store, row_id: int) -> Outbox:
    with store.session() as s:
        return s.get(Outbox, row_id)


def test_severe_complaint_arrives_once_to_managers_with_link_and_escaped_quote(store, smtp_server):
    cfg = make_cfg(smtp_server.port)
    body = 'Northwind cut me off <script>alert("x")</script> & nobody answers'
    case_id = new_case(store, cfg, posted_at=T0, severity=4, body=body, author="angry_ann")

    result = mailer.send_pending(store, cfg, now=dt.datetime.now(UTC))
    again = mailer.send_pending(store, cfg, now=dt.datetime.now(UTC) + dt.timedelta(hours=1))

    assert len(result.sent) == 1 and not again.sent
    [got] = smtp_server.messages
    assert sorted(got.rcpt_tos) == ["dana@example.com", "morgan@example.com"]  # managers, not the agent or admin
    subject = got.message["Subject"]
    assert "severity 4" in subject and f"case #{case_id}" in subject and "angry_ann" in subject
    assert '"Northwind cut me off <script>alert("x")</script> & nobody..."' in subject
    text, html = got.part("plain"), got.part("html")
    link = f"https://desk.example.com/case?id={case_id}"
    assert link in text and f'href="{link}"' in html
    assert "> " + body in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; nobody" in html
    assert "<script>" not in html
    assert got.message["From"] == "Hearken <hearken@localhost>"


def test_server_down_then_up_delivers_each_alert_once(store):
    cfg = make_cfg(free_port())
    ids = _queue(store, 3)
    server = SmtpServer(port=cfg.alerts.smtp.port)

    down = mailer.send_pending(store, cfg, now=T0)
    assert sorted(down.retrying) == ids and not down.sent
    health = outbox.outbox_health(store)
    assert health["pending"] == 3 and health["retrying"] == 3 and health["failed"] == 0
    assert "refused" in health["last_error"]["error"].lower()
    row = _status(store, ids[0])
    assert row.attempts == 1 and row.next_attempt_at == T0 + dt.timedelta(seconds=60)

    server.start()
    try:
        early = mailer.send_pending(store, cfg, now=T0 + dt.timedelta(seconds=30))  # still backing off
        assert not early.sent and not server.messages
        up = mailer.send_pending(store, cfg, now=T0 + dt.timedelta(seconds=61))
        later = mailer.send_pending(store, cfg, now=T0 + dt.timedelta(days=1))
    finally:
        server.stop()
    assert sorted(up.sent) == ids and not later.sent
    assert sorted(m.message["Subject"] for m in server.messages) == ["Alert 0", "Alert 1", "Alert 2"]
    health = outbox.outbox_health(store)
    assert health["sent"] == 3 and health["pending"] == 0 and health["last_sent_at"] == T0 + dt.timedelta(seconds=61)


def test_backoff_doubles_and_is_capped():
    assert [delivery.backoff_seconds(a) for a in (1, 2, 3, 7, 8, 30)] == [60, 120, 240, 3600, 3600, 3600]


def test_two_workers_never_send_the_same_row(store, smtp_server):
    cfg = make_cfg(smtp_server.port)
    ids = _queue(store, 12)
    results: list[mailer.SendResult] = []

    def work(name: str) -> None:
        results.append(mailer.send_pending(store, cfg, now=T0, worker=name))

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sent = [i for r in results for i in r.sent]
    assert sorted(sent) == ids
    assert sorted(m.message["Subject"] for m in smtp_server.messages) == sorted(f"Alert {i}" for i in range(12))


def test_claims_are_disjoint_and_an_expired_claim_is_taken_over(store):
    ids = _queue(store, 4)
    _, a = mailer.claim(store, "a", T0, limit=2)
    _, b = mailer.claim(store, "b", T0, limit=10)
    assert len(a) == 2 and sorted(a + b) == ids
    _, none = mailer.claim(store, "c", T0 + dt.timedelta(seconds=10))
    assert none == []
    _, taken = mailer.claim(store, "c", T0 + dt.timedelta(seconds=mailer.LEASE_SECONDS + 1))
    assert sorted(taken) == ids  # their workers died: the rows go out again


def _send_over_starttls(store, certs, password: str):
    """One queued alert sent to a STARTTLS server that wants the login hearken / s3cret."""
    server = SmtpServer(tls_context=certs.server_context(), require_starttls=True,
                        authenticator=password_authenticator("hearken", "s3cret"), auth_require_tls=True).start()
    try:
        cfg = make_cfg(server.port, **{"alerts.smtp.security": "starttls", "alerts.smtp.username_env": "SMTP_USER",
                                       "alerts.smtp.password_env": "SMTP_PASS"})
        [row_id] = _queue(store)
        res = mailer.send_pending(store, cfg, now=T0, env={"SMTP_USER": "hearken", "SMTP_PASS": password},
                                  tls_context=certs.client_context())
    finally:
        server.stop()
    return server, row_id, res


def test_starttls_with_login(store, certs):
    server, row_id, res = _send_over_starttls(store, certs, "s3cret")
    assert res.sent == [row_id]
    [got] = server.messages
    assert got.authenticated and got.rcpt_tos == ["sam@example.com"]


def test_wrong_password_is_retried_and_shown(store, certs):
    server, row_id, res = _send_over_starttls(store, certs, "wrong")
    assert res.retrying == [row_id] and not server.messages
    err = outbox.outbox_health(store)["last_error"]
    assert err["id"] == row_id and "535" in err["error"]


def test_untrusted_certificate_is_refused(store, certs):
    server = SmtpServer(tls_context=certs.server_context(), require_starttls=True).start()
    try:
        cfg = make_cfg(server.port, **{"alerts.smtp.security": "starttls"})
        [row_id] = _queue(store)
        res = mailer.send_pending(store, cfg, now=T0)  # the system's CAs do not know our self-signed cert
    finally:
        server.stop()
    assert res.retrying == [row_id] and not server.messages
    assert "CERTIFICATE_VERIFY_FAILED" in _status(store, row_id).last_error


def test_implicit_ssl(store, certs):
    server = SmtpServer(ssl_context=certs.server_context()).start()
    try:
        cfg = make_cfg(server.port, **{"alerts.smtp.security": "ssl"})
        [row_id] = _queue(store)
        res = mailer.send_pending(store, cfg, now=T0, tls_context=certs.client_context())
    finally:
        server.stop()
    assert res.sent == [row_id] and len(server.messages) == 1


def test_missing_login_variable_is_named(store, smtp_server):
    cfg = make_cfg(smtp_server.port, **{"alerts.smtp.username_env": "HEARKEN_TEST_NO_SUCH_VAR"})
    [row_id] = _queue(store)
    res = mailer.send_pending(store, cfg, now=T0, env={})
    assert res.retrying == [row_id] and not smtp_server.messages
    assert "HEARKEN_TEST_NO_SUCH_VAR" in _status(store, row_id).last_error


def test_permanent_rejection_fails_at_once(store, smtp_server):
    cfg = make_cfg(smtp_server.port)
    smtp_server.sink.refuse.add("nobody@example.com")
    [bad] = _queue(store, kind="bad", to="nobody@example.com")
    [good] = _queue(store, kind="good")
    res = mailer.send_pending(store, cfg, now=T0)
    assert res.failed == [bad] and res.sent == [good]
    health = outbox.outbox_health(store)
    assert health["failed"] == 1 and "550" in health["last_error"]["error"]
    assert outbox.retry_failed(store) == 1 and outbox.outbox_health(store)["pending"] == 1


def test_no_alert_for_a_case_resolved_before_sending(store, smtp_server):
    cfg = make_cfg(smtp_server.port)
    case_id = new_case(store, cfg, posted_at=T0, severity=4)
    update_case(store, case_id, status="resolved", resolved_at=T0 + dt.timedelta(minutes=5))
    res = mailer.send_pending(store, cfg, now=dt.datetime.now(UTC))  # the alert was queued at the real open time
    assert not res.sent and not smtp_server.messages
    with store.session() as s:
        row = s.scalar(select(Outbox).where(Outbox.case_id == case_id))
    assert row.status == "cancelled" and "resolved" in row.last_error


# --- an SMTP server that stalls, rows that cannot be sent ----------------------------------------


def _raw_row(store, subject: str, key: str = "raw:0") -> int:
    """An outbox row written as it is, without outbox.queue's header cleaning (as rows written before it was)."""
    with store.session() as s:
        row = Outbox(kind="test", dedupe_key=key, recipients=["sam@example.com"], subject=subject, body_text="body",
                     status="pending", attempts=0, created_at=T0, next_attempt_at=T0)
        s.add(row)
        s.flush()
        return row.id


def test_an_smtp_server_that_never_finishes_its_greeting_is_cut_off_at_the_session_deadline(store):
    with SmtpTarpit(every=0.3) as tarpit:
        cfg = make_cfg(tarpit.port, **{"alerts.smtp.session_deadline_seconds": 1.5})
        ids = _queue(store, 3)
        started = time.monotonic()
        res = mailer.send_pending(store, cfg, now=T0)
        took = time.monotonic() - started
    assert took < 3, f"the session took {took:.1f}s; 220- lines every 0.3s never trip a 5s read timeout"
    assert sorted(res.retrying) == ids and not res.sent, "all wait for the next try, with backoff"
    err = outbox.outbox_health(store)["last_error"]
    assert "passed its 1.5s deadline" in err["error"] and "session_deadline_seconds" in err["error"], err
    assert tarpit.connections == 1
    assert _status(store, ids[0]).next_attempt_at == T0 + dt.timedelta(seconds=60)


def test_a_row_that_cannot_be_built_fails_alone_and_the_rest_are_delivered(store, smtp_server):
    cfg = make_cfg(smtp_server.port)
    bad = _raw_row(store, "Complaint from evil\r\nBcc: x@y.example")  # first in the batch
    good = _queue(store, 5)
    res = mailer.send_pending(store, cfg, now=T0)
    assert res.failed == [bad] and sorted(res.sent) == good
    assert sorted(m.message["Subject"] for m in smtp_server.messages) == [f"Alert {i}" for i in range(5)]
    row = _status(store, bad)
    assert row.status == "failed" and row.attempts == 1
    assert "could not be built" in row.last_error and "linefeed or carriage return" in row.last_error, row.last_error
    health = outbox.outbox_health(store)
    assert health["failed"] == 1 and health["last_error"]["id"] == bad and "could not be built" in health["last_error"]["error"]
    assert not mailer.send_pending(store, cfg, now=T0 + dt.timedelta(days=1)).sent, "and it is not tried again"


def test_a_customer_name_with_cr_lf_cannot_add_a_header(store, smtp_server):
    cfg = make_cfg(smtp_server.port)
    case_id = new_case(store, cfg, posted_at=T0, severity=4, author="evil\r\nBcc: x@y.example")
    res = mailer.send_pending(store, cfg, now=dt.datetime.now(UTC))
    assert len(res.sent) == 1
    [got] = smtp_server.messages
    assert "x@y.example" not in got.rcpt_tos and got.message["Bcc"] is None
    assert "from evil Bcc: x@y.example: " in got.message["Subject"] and f"case #{case_id}" in got.message["Subject"]
    with store.session() as s:
        assert "\r" not in s.scalar(select(Outbox.subject).where(Outbox.case_id == case_id))


def _to_many(store, recipients: list[str], key: str = "esc:1") -> int:
    with store.session() as s:
        row = outbox.queue(s, kind="sla_breach", dedupe_key=key, recipients=recipients, subject="Escalated",
                           body_text="see the dashboard", now=T0)
        s.flush()
        return row.id


def test_a_recipient_refused_for_now_gets_it_alone_on_a_later_try_and_the_others_once(store, smtp_server):
    """A 450 (greylisting) for one of three: the other two get it at once, the row waits for that one only,
    and after the backoff the next try goes to them alone."""
    cfg = make_cfg(smtp_server.port)
    smtp_server.sink.defer.add("bob@example.com")
    row_id = _to_many(store, ["alex@example.com", "bob@example.com", "morgan@example.com"])
    first = mailer.send_pending(store, cfg, now=T0)
    assert first.retrying == [row_id]
    assert [m.rcpt_tos for m in smtp_server.messages] == [["alex@example.com", "morgan@example.com"]]
    row = _status(store, row_id)
    assert row.status == "pending" and row.delivered_to == ["alex@example.com", "morgan@example.com"]
    assert "bob@example.com: 450 4.2.0 greylisted" in row.last_error and row.refused is None
    health = outbox.outbox_health(store)
    assert health["pending"] == 1 and health["retrying"] == 1
    smtp_server.sink.defer.clear()
    assert not mailer.send_pending(store, cfg, now=T0 + dt.timedelta(seconds=30)).sent, "backing off"
    later = mailer.send_pending(store, cfg, now=T0 + dt.timedelta(seconds=61))
    assert later.sent == [row_id]
    assert [m.rcpt_tos for m in smtp_server.messages] == [["alex@example.com", "morgan@example.com"],
                                                          ["bob@example.com"]]
    row = _status(store, row_id)
    assert row.status == "sent" and set(row.delivered_to) == {"alex@example.com", "bob@example.com",
                                                             "morgan@example.com"}
    assert row.last_error is None


def test_a_recipient_refused_for_good_is_named_on_the_banner_and_the_others_are_delivered(store, smtp_server):
    from desk.notify.health import email_trouble

    cfg = make_cfg(smtp_server.port)
    smtp_server.sink.refuse.add("morgan@example.com")
    row_id = _to_many(store, ["dana@example.com", "morgan@example.com"])
    assert mailer.send_pending(store, cfg, now=T0).sent == [row_id]
    assert [m.rcpt_tos for m in smtp_server.messages] == [["dana@example.com"]]
    row = _status(store, row_id)
    assert row.delivered_to == ["dana@example.com"] and "550 5.1.1" in row.refused["morgan@example.com"]
    trouble = email_trouble(store, cfg, now=T0 + dt.timedelta(minutes=1))
    assert trouble is not None and f"#{row_id} sla breach to morgan@example.com" in trouble.headline, trouble
    assert not mailer.send_pending(store, cfg, now=T0 + dt.timedelta(days=1)).claimed, "never tried again"


def test_a_message_the_server_kept_before_hanging_up_is_not_sent_again_until_a_person_says_so(store, smtp_server):
    """The server keeps the message and drops the line before its 250: the outcome is unknown, so the row is
    `unknown` (named on the banner), never sent again by itself; "Retry" on the Sources page sends it again."""
    from desk.notify.health import email_trouble

    cfg = make_cfg(smtp_server.port)
    smtp_server.sink.drop_after_data = True
    [row_id] = _queue(store)
    res = mailer.send_pending(store, cfg, now=T0)
    assert res.unknown == [row_id] and len(smtp_server.messages) == 1
    row = _status(store, row_id)
    assert row.status == "unknown" and row.unknown_to == ["sam@example.com"] and "may have reached" in row.last_error
    smtp_server.sink.drop_after_data = False
    for later in (dt.timedelta(minutes=2), dt.timedelta(hours=2), dt.timedelta(days=2)):
        assert not mailer.send_pending(store, cfg, now=T0 + later).claimed
    assert len(smtp_server.messages) == 1
    assert outbox.outbox_health(store)["unknown"] == 1
    trouble = email_trouble(store, cfg, now=T0 + dt.timedelta(days=2))
    assert trouble is not None and "May not have arrived" in trouble.headline and "sam@example.com" in trouble.headline
    assert outbox.retry_failed(store, now=T0 + dt.timedelta(days=2)) == 1
    assert mailer.send_pending(store, cfg, now=T0 + dt.timedelta(days=2)).sent == [row_id]
    ids = [m.message["Message-ID"] for m in smtp_server.messages]
    assert len(ids) == 2 and ids[0] == ids[1], "the one resend carries the same Message-ID"


def test_a_session_that_breaks_before_the_message_was_sent_is_tried_again(store):
    """A server that hangs up at RCPT TO cannot hold the message: the row is tried again after the backoff."""
    from aiosmtpd.controller import Controller

    class HangUpAtRcpt:
        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
            server.transport.abort()
            return "250 never sent"

    port = free_port()
    controller = Controller(HangUpAtRcpt(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        [row_id] = _queue(store)
        res = mailer.send_pending(store, make_cfg(port), now=T0)
    finally:
        controller.stop()
    assert res.retrying == [row_id]
    row = _status(store, row_id)
    assert row.status == "pending" and row.unknown_to is None and row.attempts == 1
    assert row.next_attempt_at == T0 + dt.timedelta(seconds=60)


def test_a_wave_from_one_source_waits_its_turn_behind_no_other_source(store, smtp_server):
    """12 alerts of one source's cases queued before one of another source's: a pass of 5 takes the other
    source's alert too, round-robin by source, and each source's oldest first."""
    cfg = make_cfg(smtp_server.port)
    wave = [new_case(store, cfg, posted_at=T0, severity=4, platform="discourse") for _ in range(12)]
    other = new_case(store, cfg, posted_at=T0, severity=4, platform="demo")
    with store.session() as s:
        rows = {r.case_id: r.id for r in s.scalars(select(Outbox))}
    res = mailer.send_pending(store, cfg, now=dt.datetime.now(UTC) + dt.timedelta(seconds=1), limit=5)
    assert rows[other] in res.sent, "the other source's alert is in the first pass"
    assert sorted(res.sent) == sorted([rows[c] for c in wave[:4]] + [rows[other]])


def test_header_text_keeps_one_line():
    assert outbox.header_text("a\r\nb\x00c\x1b[31m\u2028d\te") == "a b c [31m d e"
