"""Alert rules end to end: state in the database -> periodic scan -> outbox -> a real SMTP server."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from desk.notify import alerts
from desk.notify import mailer, outbox
from desk.store.models import Event, Outbox, SourceState
from tests.test_alerts_support import make_cfg, new_case, smtp_server, update_case  # noqa: F401

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 11, 17, 10, 0, tzinfo=UTC)  # a Tuesday


def _run(store, cfg, now: dt.datetime) -> None:
    """What the runner does on a tick: every periodic task, in order."""
    for _name, _interval, fn in alerts.periodic_tasks(cfg, store):
        fn(now)


def _cfg(port: int, **kw):
    base = {"alerts.rules.severe_complaint": False, "alerts.rules.sla_warning_minutes": 30}
    base.update(kw)
    return make_cfg(port, **base)


def test_sla_warning_goes_to_the_assignee_once(store, smtp_server):
    cfg = _cfg(smtp_server.port)
    # severity 2: first reply due after 240 minutes, at 14:00
    case_id = new_case(store, cfg, posted_at=T0, severity=2, assignee="Sam Agent", body="Still no Northwind signal")
    _run(store, cfg, T0 + dt.timedelta(minutes=200))  # 40 minutes left: nothing yet
    assert not smtp_server.messages
    _run(store, cfg, T0 + dt.timedelta(minutes=215))  # 25 minutes left
    _run(store, cfg, T0 + dt.timedelta(minutes=220))
    [got] = smtp_server.messages
    assert got.rcpt_tos == ["sam@example.com"]
    assert got.message["Subject"].startswith("[Hearken] SLA warning: first public reply due in 25m")
    assert f"case #{case_id}" in got.message["Subject"]
    assert f"https://desk.example.com/case?id={case_id}" in got.part("plain")
    assert "> Still no Northwind signal" in got.part("plain")


def test_unassigned_warning_goes_to_managers(store, smtp_server):
    cfg = _cfg(smtp_server.port)
    new_case(store, cfg, posted_at=T0, severity=2)
    _run(store, cfg, T0 + dt.timedelta(minutes=230))
    [got] = smtp_server.messages
    assert sorted(got.rcpt_tos) == ["dana@example.com", "morgan@example.com"]


def test_breach_escalates_to_named_managers_only_once_per_clock(store, smtp_server):
    cfg = _cfg(smtp_server.port, **{"alerts.rules.escalation_managers": ["Dana Director"],
                                    "alerts.rules.sla_warning_minutes": 0})
    case_id = new_case(store, cfg, posted_at=T0, severity=4, assignee="Sam Agent")  # 60 min / 480 min
    _run(store, cfg, T0 + dt.timedelta(minutes=61))
    _run(store, cfg, T0 + dt.timedelta(minutes=90))
    update_case(store, case_id, first_response_at=T0 + dt.timedelta(minutes=95), status="replied")
    _run(store, cfg, T0 + dt.timedelta(minutes=481))
    _run(store, cfg, T0 + dt.timedelta(minutes=600))
    subjects = [m.message["Subject"] for m in smtp_server.messages]
    assert len(subjects) == 2, subjects
    assert subjects[0].startswith("[Hearken] SLA breached: first public reply overdue by 1m")
    assert subjects[1].startswith("[Hearken] SLA breached: resolution overdue by 1m")
    assert all(m.rcpt_tos == ["dana@example.com"] for m in smtp_server.messages)  # not Morgan, not everyone
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(Event).where(
            Event.case_id == case_id, Event.action == "sla_breached")) == 2


def test_no_alert_for_resolved_or_dismissed_cases(store, smtp_server):
    cfg = _cfg(smtp_server.port)
    resolved = new_case(store, cfg, posted_at=T0, severity=4)
    dismissed = new_case(store, cfg, posted_at=T0, severity=4)
    update_case(store, resolved, status="resolved", resolved_at=T0 + dt.timedelta(minutes=10), root_cause="billing")
    update_case(store, dismissed, status="dismissed")
    for minutes in (40, 59, 61, 500):
        _run(store, cfg, T0 + dt.timedelta(minutes=minutes))
    assert smtp_server.messages == []
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(Outbox)) == 0


def test_answered_case_gets_no_first_reply_alerts(store, smtp_server):
    cfg = _cfg(smtp_server.port)
    case_id = new_case(store, cfg, posted_at=T0, severity=4)
    update_case(store, case_id, first_response_at=T0 + dt.timedelta(minutes=5), status="replied")
    _run(store, cfg, T0 + dt.timedelta(minutes=45))
    _run(store, cfg, T0 + dt.timedelta(minutes=70))
    assert smtp_server.messages == []


def _source_state(store, **values) -> None:
    with store.session() as s:
        values.setdefault("reads_count", 0)
        s.add(SourceState(name=values.pop("name", "demo"), platform=values.pop("platform", "demo"),
                          consecutive_failures=0, mentions_total=0, **values))


def test_failing_source_alerts_admins_once_per_outage(store, smtp_server):
    cfg = _cfg(smtp_server.port, **{"alerts.rules.source_silent_minutes": 60})
    _source_state(store, status="failing", status_reason="HTTP 503 from the forum",
                  failing_since=T0, last_error="HTTP 503 from the forum", last_mention_at=T0 - dt.timedelta(hours=5))
    _run(store, cfg, T0 + dt.timedelta(minutes=59))
    assert not smtp_server.messages
    _run(store, cfg, T0 + dt.timedelta(minutes=61))
    _run(store, cfg, T0 + dt.timedelta(minutes=120))
    [got] = smtp_server.messages
    assert got.rcpt_tos == ["alex@example.com"]
    assert got.message["Subject"] == "[Hearken] Source demo failing for 1h 01m"
    assert "HTTP 503 from the forum" in got.part("plain")


def test_silent_source_alerts(store, smtp_server):
    cfg = _cfg(smtp_server.port, **{"alerts.rules.source_silent_minutes": 120,
                                    "alerts.rules.source_recipients": ["ops@example.com"]})
    _source_state(store, status="ok", last_success_at=T0 + dt.timedelta(hours=3), last_mention_at=T0)
    _run(store, cfg, T0 + dt.timedelta(minutes=119))
    _run(store, cfg, T0 + dt.timedelta(minutes=121))
    [got] = smtp_server.messages
    assert got.rcpt_tos == ["ops@example.com"] and "silent for 2h 01m" in got.message["Subject"]


def test_x_budget_warning_once_a_month(store, smtp_server):
    cfg = _cfg(smtp_server.port, sources=[{"type": "x", "name": "x", "monthly_read_cap": 1000}])
    _source_state(store, name="x", platform="x", status="ok", reads_month="2026-11", reads_count=899,
                  last_mention_at=T0)
    _run(store, cfg, T0 + dt.timedelta(minutes=1))
    assert not smtp_server.messages
    with store.session() as s:
        s.get(SourceState, "x").reads_count = 950
    _run(store, cfg, T0 + dt.timedelta(minutes=2))
    _run(store, cfg, T0 + dt.timedelta(minutes=3))
    [got] = smtp_server.messages
    assert got.message["Subject"] == "[Hearken] X read budget 95% used (x, 2026-11)"


def test_throttle_holds_back_a_second_alert_of_a_kind(store, smtp_server):
    cfg = _cfg(smtp_server.port, **{"alerts.rules.throttle_minutes": 60, "alerts.rules.sla_warning_minutes": 0,
                                    "alerts.rules.escalation_managers": ["Morgan Manager"]})
    first = new_case(store, cfg, posted_at=T0, severity=4)
    second = new_case(store, cfg, posted_at=T0 + dt.timedelta(minutes=10), severity=4)
    third = new_case(store, cfg, posted_at=T0 + dt.timedelta(minutes=80), severity=4)
    _run(store, cfg, T0 + dt.timedelta(minutes=75))   # first and second breached: one email
    _run(store, cfg, T0 + dt.timedelta(minutes=145))  # third breached, an hour after the first email
    subjects = [m.message["Subject"] for m in smtp_server.messages]
    assert len(subjects) == 2
    assert f"case #{first}" in subjects[0] and f"case #{third}" in subjects[1]
    with store.session() as s:
        held = s.scalar(select(Outbox).where(Outbox.dedupe_key == f"sla_breach:first_response:case:{second}"))
    assert held.status == "throttled"


def test_daily_digest_lists_open_cases_once_a_day(store, smtp_server):
    cfg = _cfg(smtp_server.port, **{"alerts.rules.daily_digest": True, "alerts.rules.digest_hour": 8,
                                    "alerts.rules.digest_recipients": ["Sam Agent"],
                                    "alerts.rules.sla_breach_to_managers": False, "sla.timezone": "Europe/London"})
    open_id = new_case(store, cfg, posted_at=T0, severity=1, body="<b>bold</b> complaint")
    closed = new_case(store, cfg, posted_at=T0, severity=1)
    update_case(store, closed, status="resolved", resolved_at=T0 + dt.timedelta(hours=1))
    day2 = dt.datetime(2026, 11, 18, 7, 59, tzinfo=UTC)
    _run(store, cfg, day2)
    assert not smtp_server.messages
    _run(store, cfg, day2 + dt.timedelta(minutes=1))
    _run(store, cfg, day2 + dt.timedelta(hours=5))
    [got] = smtp_server.messages
    assert got.rcpt_tos == ["sam@example.com"]
    assert got.message["Subject"] == "[Hearken] Daily digest 2026-11-18: 1 open, 1 overdue"
    text = got.part("plain")
    assert f"#{open_id}" in text and f"#{closed} " not in text
    assert f"https://desk.example.com/case?id={open_id}" in got.part("html")


def test_alerts_disabled_writes_nothing(store, smtp_server):
    cfg = _cfg(smtp_server.port, **{"alerts.enabled": False})
    new_case(store, cfg, posted_at=T0, severity=4)
    _run(store, cfg, T0 + dt.timedelta(minutes=61))
    assert outbox.outbox_health(store)["pending"] == 0 and not smtp_server.messages


def test_the_runner_schedules_the_scans_and_the_mailer(store, smtp_server):
    import classifier

    from desk.intake.runner import Runner

    clock = {"now": T0}
    cfg = _cfg(smtp_server.port, sources=[], **{"alerts.rules.sla_warning_minutes": 0})
    case_id = new_case(store, cfg, posted_at=T0, severity=4)
    runner = Runner(cfg, store, model_loader=classifier.load, clock=lambda: clock["now"])
    assert [name for name, _, _ in runner._tasks] == ["alerts.sla", "alerts.sources", "alerts.digest",
                                                      "report.weekly"]  # the mailer has a thread of its own
    runner.tick()
    runner.mailer.send_now()
    assert not smtp_server.messages
    clock["now"] = T0 + dt.timedelta(minutes=61)
    runner.tick()
    runner.mailer.send_now()
    [got] = smtp_server.messages
    assert f"case #{case_id}" in got.message["Subject"] and "SLA breached" in got.message["Subject"]
