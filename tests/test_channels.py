"""Alert channels and case-event webhooks (issue 18), against real HTTP receivers on 127.0.0.1.

Each receiver is an `http.server` in a thread that records what arrived (path, headers, body) and answers
as it is told: 200, a 404 with Slack's `channel_not_found`, a 500 once, a 429 with Retry-After, or no
answer at all. The Slack and Teams bodies are checked against the shapes their documentation publishes
(Block Kit for incoming webhooks; an Adaptive Card in a `message` attachment for Teams), the webhook's
against docs/webhook-event.schema.json, and its signature as a receiver checks it. SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import json
import signal
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jsonschema
import pytest
from sqlalchemy import select

from desk.cases import actions
from desk.notify import case_events, routing
from desk.notify.cards import Card
from desk.notify.channel_health import channel_trouble
from desk.notify.channels import ChannelSender, send_channels, sign, verify
from desk.notify.health import email_trouble
from desk.store.db import connect
from desk.store.models import Outbox
from desk.team.users import actor_for_name
from tests.adversary import Db, discourse, hearken, wait_for, write_config
from tests.test_alerts_support import make_cfg, new_case

UTC = dt.timezone.utc
ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "docs" / "webhook-event.schema.json").read_text())
SECRET = "whsec-test-0123456789"


@dataclass
class Arrival:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


@dataclass
class Receiver:
    """A real HTTP server; `answers[path]` is a list of (status, body, headers) used in turn (the last repeats),
    or "hang" to answer nothing for `hang_seconds`."""

    answers: dict[str, object] = field(default_factory=dict)
    got: list[Arrival] = field(default_factory=list)
    hang_seconds: float = 20.0

    def __enter__(self) -> Receiver:
        recv = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                recv.got.append(Arrival(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                plan = recv.answers.get(self.path, [(200, b"ok", {})])
                if plan == "hang":
                    time.sleep(recv.hang_seconds)
                    return
                status, text, headers = plan[0] if len(plan) == 1 else plan.pop(0)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def at(self, path: str) -> list[Arrival]:
        return [a for a in self.got if a.path == path]


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


CHANNELS = {"ops-slack": {"type": "slack", "url_env": "T_SLACK_URL"},
            "ops-teams": {"type": "teams", "url_env": "T_TEAMS_URL"},
            "crm": {"type": "webhook", "url_env": "T_CRM_URL", "secret_env": "T_CRM_SECRET", "case_events": True}}


def _env(receiver: Receiver, **paths: str) -> dict[str, str]:
    env = {"T_SLACK_URL": receiver.url + "/slack", "T_TEAMS_URL": receiver.url + "/teams",
           "T_CRM_URL": receiver.url + "/crm", "T_CRM_SECRET": SECRET}
    env.update({k: receiver.url + v for k, v in paths.items()})
    return env


def _rows(store, **where) -> list[Outbox]:
    with store.session() as s:
        q = select(Outbox).order_by(Outbox.id)
        for k, v in where.items():
            q = q.where(getattr(Outbox, k) == v)
        return list(s.scalars(q))


def test_a_severe_complaint_reaches_slack_teams_and_a_signed_webhook_once(store, receiver):
    cfg = make_cfg(**{"alerts.channels": CHANNELS,
                      "alerts.routes.severe_complaint": ["email", "ops-slack", "ops-teams", "crm"]})
    posted = dt.datetime.now(UTC) - dt.timedelta(minutes=10)
    case_id = new_case(store, cfg, posted_at=posted, severity=4,
                       body="Northwind <!channel> billed me twice [Open the case](https://evil.example)")
    assert len(_rows(store, channel=None)) == 1  # the email, as before
    result = send_channels(store, cfg, env=_env(receiver))
    assert sorted(result.sent) == [r.id for r in _rows(store) if r.channel]
    assert send_channels(store, cfg, env=_env(receiver)).claimed == 0  # each goes once
    assert [a.path for a in sorted(receiver.got, key=lambda a: a.path)] == ["/crm", "/slack", "/teams"]
    link = f"https://desk.example.com/case?id={case_id}"

    slack = receiver.at("/slack")[0].json()  # Block Kit, as an incoming webhook takes it
    assert isinstance(slack["text"], str) and f"case #{case_id}" in slack["text"]
    header, section, *rest = slack["blocks"]
    assert header["type"] == "header" and header["text"]["type"] == "plain_text" and len(header["text"]["text"]) <= 150
    assert section["type"] == "section" and section["text"]["type"] == "mrkdwn"
    assert 0 < len(section["fields"]) <= 10 and all(f["type"] == "mrkdwn" for f in section["fields"])
    assert any(f["text"].startswith("*First reply due*\n") for f in section["fields"])  # its SLA
    quote = next(b for b in rest if b["type"] == "section")
    assert "&lt;!channel&gt;" in quote["text"]["text"] and "<!channel>" not in json.dumps(slack)  # pings nobody
    buttons = next(b for b in rest if b["type"] == "actions")["elements"]
    assert buttons[0] == {"type": "button", "text": {"type": "plain_text", "text": "Open the case"}, "url": link,
                          "action_id": "hearken-link-0", "style": "primary"}

    teams = receiver.at("/teams")[0].json()  # a message with one Adaptive Card attachment
    assert teams["type"] == "message" and len(teams["attachments"]) == 1
    att = teams["attachments"][0]
    assert att["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = att["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4" and card["$schema"].startswith("http://adaptivecards.io")
    facts = next(b for b in card["body"] if b["type"] == "FactSet")["facts"]
    assert {"title", "value"} == set(facts[0]) and any(f["title"] == "First reply due" for f in facts)
    assert card["actions"][0] == {"type": "Action.OpenUrl", "title": "Open the case", "url": link}
    assert "](https://evil" not in json.dumps(teams, ensure_ascii=False)  # the post's markdown link links nowhere

    hook = receiver.at("/crm")[0]
    assert verify(SECRET, hook.body, hook.headers["hearken-timestamp"], hook.headers["hearken-signature"])
    event = hook.json()
    jsonschema.validate(event, SCHEMA)
    assert event["type"] == "alert.severe_complaint" and event["case"]["id"] == case_id
    assert event["case"]["reference"] == f"#HK{case_id}" and event["case"]["url"] == link
    assert event["case"]["times"]["first_response_due"].endswith("Z")
    assert hook.headers["hearken-event-id"] == event["id"] == f"severe:case:{case_id}"


def test_a_signature_fails_on_a_tampered_body_an_old_timestamp_or_another_key():
    body = b'{"schema_version":1,"type":"case.opened"}'
    now = int(time.time())
    sig = sign(SECRET, now, body)
    assert sig.startswith("sha256=") and verify(SECRET, body, str(now), sig)
    assert not verify(SECRET, body.replace(b"opened", b"closed"), str(now), sig)
    assert not verify(SECRET, body, str(now - 301), sign(SECRET, now - 301, body))  # a replay past 5 minutes
    assert not verify(SECRET, body, str(now + 1), sig)  # the timestamp is signed too
    assert not verify("another-key", body, str(now), sig)
    assert not verify(SECRET, body, "yesterday", sig)


def test_a_4xx_is_final_and_shown_a_500_and_a_429_are_retried_and_a_hanging_receiver_delays_nobody(store, receiver):
    chans = {"gone": {"type": "slack", "url_env": "T_GONE"}, "flaky": {"type": "slack", "url_env": "T_FLAKY"},
             "limited": {"type": "teams", "url_env": "T_LIMITED"},
             "stuck": {"type": "webhook", "url_env": "T_STUCK", "secret_env": "T_CRM_SECRET", "timeout_seconds": 2},
             "fine": {"type": "slack", "url_env": "T_FINE"}}
    cfg = make_cfg(**{"alerts.channels": chans, "alerts.routes.severe_complaint": list(chans)})
    receiver.answers = {"/gone": [(404, b"channel_not_found", {})], "/flaky": [(500, b"oops", {}), (200, b"ok", {})],
                        "/limited": [(429, b"slow down", {"Retry-After": "120"}), (202, b"", {})], "/stuck": "hang"}
    env = _env(receiver, T_GONE="/gone", T_FLAKY="/flaky", T_LIMITED="/limited", T_STUCK="/stuck", T_FINE="/fine")
    new_case(store, cfg, posted_at=dt.datetime.now(UTC), severity=4)
    sender = ChannelSender(store, cfg, env=env)
    now = dt.datetime.now(UTC)
    began = time.monotonic()
    sender.send_due(now)
    wait_for(lambda: receiver.at("/fine"), 5, "the healthy channel's message")
    assert time.monotonic() - began < 1.5  # the receiver that never answers held it up not at all
    wait_for(lambda: all(r.status != "sending" for r in _rows(store) if r.channel), 10, "every try to end")
    by = {r.channel: r for r in _rows(store) if r.channel}
    assert by["fine"].status == "sent"
    assert by["gone"].status == "failed" and "HTTP 404: channel_not_found" in by["gone"].last_error
    assert by["flaky"].status == "pending" and by["flaky"].attempts == 1 and by["flaky"].next_attempt_at > now
    assert by["limited"].status == "pending"
    assert abs((by["limited"].next_attempt_at - now).total_seconds() - 120) < 1  # its Retry-After, honoured
    assert by["stuck"].status == "pending" and "no answer within 2s" in by["stuck"].last_error
    shown = {t.name: t for t in channel_trouble(store, cfg)}  # the banner on every page
    assert "1 failed for good" in shown["gone"].headline and "channel_not_found" in shown["gone"].detail
    assert "T_GONE" in shown["gone"].fix
    assert "being retried" in shown["flaky"].headline and "fine" not in shown
    assert email_trouble(store, cfg) is None or "channel" not in email_trouble(store, cfg).headline

    later = send_channels(store, cfg, env=env, now=now + dt.timedelta(minutes=3))
    assert {by["flaky"].id, by["limited"].id} <= set(later.sent)
    assert by["gone"].id not in later.sent + later.retrying  # final: never tried again by itself
    assert len(receiver.at("/gone")) == 1 and len(receiver.at("/flaky")) == 2 and len(receiver.at("/fine")) == 1
    sender.close()


def test_a_hanging_receiver_takes_at_most_its_share_of_the_sender_and_the_others_go_on(store, receiver):
    """With a receiver that never answers, the other channel's messages still all go out at once."""
    chans = {"stuck": {"type": "slack", "url_env": "T_STUCK", "timeout_seconds": 4},
             "fine": {"type": "slack", "url_env": "T_FINE"}}
    cfg = make_cfg(**{"alerts.channels": chans, "alerts.routes.severe_complaint": ["stuck", "fine"]})
    receiver.answers = {"/stuck": "hang"}
    receiver.hang_seconds = 6
    env = _env(receiver, T_STUCK="/stuck", T_FINE="/fine")
    for _ in range(4):
        new_case(store, cfg, posted_at=dt.datetime.now(UTC), severity=4)
    sender = ChannelSender(store, cfg, env=env, pool=4)  # two rows of one channel at its receiver at most
    began = time.monotonic()
    try:
        while len(receiver.at("/fine")) < 4 and time.monotonic() - began < 3:
            sender.send_due(dt.datetime.now(UTC))
            time.sleep(0.1)
        assert len(receiver.at("/fine")) == 4, "the healthy channel waited behind the stuck one"
        assert len(receiver.at("/stuck")) <= 2  # the stuck receiver never held more than its share
        stuck = [r for r in _rows(store) if r.channel == "stuck"]
        assert all(r.attempts <= 1 for r in stuck)  # rows put back for want of room were not counted as tries
    finally:
        sender.close()


def test_case_events_follow_a_case_with_a_documented_schema(store, receiver):
    cfg = make_cfg(**{"alerts.channels": {"crm": CHANNELS["crm"]}})
    case_events.attach(store, cfg)
    manager = actor_for_name(cfg, "Morgan Manager")
    case_id = new_case(store, cfg, posted_at=dt.datetime.now(UTC) - dt.timedelta(minutes=5), severity=2)
    actions.escalate(store, cfg, case_id, manager, manager="Dana Director", reason="billing error, VIP")
    actions.replied_elsewhere(store, case_id, manager, where="phone", text="Called them")
    actions.resolve(store, case_id, manager, note="refunded", root_cause="not_known")
    with pytest.raises(actions.CaseError):  # refused: its transaction rolls back, and no event is written
        actions.escalate(store, cfg, case_id, manager, manager="Dana Director", reason="again")
    actions.reopen(store, case_id, manager, reason="they wrote back")
    send_channels(store, cfg, env=_env(receiver))
    arrivals = sorted(receiver.at("/crm"), key=lambda a: a.json()["occurred_at"])  # posted in parallel: any order
    events = [a.json() for a in arrivals]
    assert [e["type"] for e in events] == ["case.opened", "case.escalated", "case.replied", "case.resolved",
                                           "case.reopened"]
    for arrival, e in zip(arrivals, events):
        jsonschema.validate(e, SCHEMA)
        assert verify(SECRET, arrival.body, arrival.headers["hearken-timestamp"], arrival.headers["hearken-signature"])
        assert e["schema_version"] == 1 and e["case"]["id"] == case_id and e["case"]["platform"] == "demo"
        dt.datetime.fromisoformat(e["occurred_at"])
    assert events[1]["detail"]["to"] == "Dana Director" and events[1]["case"]["escalated_to"] == "Dana Director"
    assert events[3]["case"]["status"] == "resolved" and events[3]["case"]["times"]["resolved_at"].endswith("Z")
    assert events[4]["case"]["status"] == "replied" and events[4]["case"]["times"]["resolved_at"] is None
    assert len({e["id"] for e in events}) == 5


def test_a_routed_alert_goes_only_where_its_rule_and_team_say(sqlite_store, receiver):
    """Routing per rule (no email for this one) and per team (a channel for one source's cases only)."""
    chans = {"demo-team": {"type": "slack", "url_env": "T_SLACK_URL", "sources": ["demo"]},
             "forum-team": {"type": "slack", "url_env": "T_TEAMS_URL", "sources": ["forum"]}}
    cfg = make_cfg(**{"alerts.channels": chans, "alerts.routes.severe_complaint": ["demo-team", "forum-team"]})
    new_case(sqlite_store, cfg, posted_at=dt.datetime.now(UTC), severity=4)
    rows = _rows(sqlite_store)
    assert [r.channel for r in rows] == ["demo-team"]  # no email, and not the other team's channel


def test_a_route_naming_an_unknown_channel_is_refused_with_the_key():
    with pytest.raises(Exception) as err:
        make_cfg(**{"alerts.routes.sla_breach": ["email", "ops-slak"]})
    assert "alerts.routes.sla_breach" in str(err.value) and "ops-slak" in str(err.value)


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
def test_kill_9_between_writing_and_sending_delivers_once_after_restart(tmp_path, receiver, db, request):
    db_url = f"sqlite:///{tmp_path / 'hearken.db'}" if db == "sqlite" else request.getfixturevalue("pg_url")
    alerts = ("{enabled: true, smtp: {host: 127.0.0.1, port: 9, timeout_seconds: 1}, "
              "channels: {crm: {type: webhook, url_env: T_CRM_URL, secret_env: T_CRM_SECRET, timeout_seconds: 1}}, "
              "routes: {severe_complaint: [crm]}}")
    path = write_config(tmp_path, [discourse("forum", "http://127.0.0.1:9", interval=30)], db_url=db_url, alerts=alerts)
    store = connect(db_url)
    from desk.config.schema import load_config

    cfg = load_config(path)
    with store.session() as s:
        routing.alert(s, cfg, kind="severe_complaint", dedupe_key="kill-test", recipients=[], subject="kill test",
                      body_text="kill test", card=Card("Kill test", "written before the runner starts"))
    store.close()
    env = _env(receiver)
    touched = tmp_path / "at-send"
    first = hearken("run", "--config", str(path), env={**env, "HEARKEN_FAILPOINT": f"channel_before_send:{touched}"},
                    log=tmp_path / "run1.log")
    try:
        wait_for(touched.exists, 120, "the runner to claim the row and reach the send")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    assert receiver.got == []
    second = hearken("run", "--config", str(path), env=env, log=tmp_path / "run2.log")
    try:
        wait_for(lambda: receiver.at("/crm"), 120, "the row to be sent after the restart")
        time.sleep(3)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(30)
    assert len(receiver.at("/crm")) == 1
    arrival = receiver.at("/crm")[0]
    assert arrival.json()["id"] == "kill-test"
    assert verify(SECRET, arrival.body, arrival.headers["hearken-timestamp"], arrival.headers["hearken-signature"])
    rows = Db(db_url).rows("SELECT status, attempts FROM outbox WHERE channel = 'crm'")
    assert rows == [{"status": "sent", "attempts": 1}]


def test_the_dashboard_shows_a_channel_that_refused_and_retries_it(tmp_path, monkeypatch, receiver):
    """What a manager sees after Slack answered 404 channel_not_found: the banner on every page, the channel's
    state on the Sources page, and a Retry that puts it back in the queue."""
    from desk.config.schema import load_config
    from tests.conftest import MINIMAL_CONFIG
    from tests.test_dashboard import app, shown

    path = tmp_path / "hearken.yaml"
    path.write_text(MINIMAL_CONFIG + "alerts:\n  channels:\n    ops-slack: {type: slack, url_env: T_SLACK_URL}\n"
                    "  routes:\n    severe_complaint: [ops-slack]\n")
    url = f"sqlite:///{tmp_path / 'hearken.db'}"
    monkeypatch.setenv("HEARKEN_CONFIG", str(path))
    monkeypatch.setenv("HEARKEN_DATABASE_URL", url)
    cfg = load_config(path)
    store = connect(url)
    new_case(store, cfg, posted_at=dt.datetime.now(UTC), severity=4)
    receiver.answers = {"/slack": [(404, b"channel_not_found", {})]}
    send_channels(store, cfg, env=_env(receiver))
    at = app()
    assert not at.exception
    [banner] = [e for e in shown(at.error) if e.startswith("ALERT CHANNEL NOT DELIVERING")]
    assert "Slack channel ops-slack: 1 failed for good this week" in banner
    assert "HTTP 404: channel_not_found" in banner and "$T_SLACK_URL" in banner
    at = app("views/sources.py")
    assert not at.exception
    assert "ALERT CHANNEL NOT DELIVERING: ops-slack (see the channels below)." in shown(at.error)
    assert any(e.startswith("NOT DELIVERING: Slack channel ops-slack") for e in shown(at.error))
    at.button(key="channels-retry").click().run()
    assert "1 failed message(s) queued again" in shown(at.success)[0]
    assert [r.status for r in _rows(store) if r.channel] == ["pending"]
    store.close()


def test_a_channel_without_its_url_waits_and_says_which_variable_and_never_shows_a_url(sqlite_store, receiver, tmp_path):
    from desk.config.preflight import channel_problems

    cfg = make_cfg(**{"alerts.channels": CHANNELS, "alerts.routes.severe_complaint": ["ops-slack", "ops-teams", "crm"]})
    new_case(sqlite_store, cfg, posted_at=dt.datetime.now(UTC), severity=4)
    env = {"T_SLACK_URL": "ftp://T0000/B0000/xoxb-secret-token", "T_CRM_URL": receiver.url + "/crm"}  # no secret
    send_channels(sqlite_store, cfg, env=env)
    by = {r.channel: r for r in _rows(sqlite_store) if r.channel}
    assert all(r.status == "pending" for r in by.values()) and receiver.got == []
    assert "T_TEAMS_URL (its webhook URL) is not set" in by["ops-teams"].last_error
    assert "T_CRM_SECRET (its signing key) is not set" in by["crm"].last_error
    assert "$T_SLACK_URL" in by["ops-slack"].last_error and "xoxb-secret-token" not in by["ops-slack"].last_error
    told = {p.key: p.message for p in channel_problems(cfg, env)}
    assert "$T_TEAMS_URL (its webhook URL) not set" in told["alerts.channels.ops-teams"]
    assert "$T_CRM_SECRET (its signing key) not set" in told["alerts.channels.crm"]


def test_a_public_reply_posted_through_hearken_is_a_case_replied_event(store, receiver, tmp_path):
    from desk.cases.replies import new_key, post_reply
    from desk.config.schema import load_config
    from tests.conftest import MINIMAL_CONFIG
    from tests.e2e_helpers import seed_case

    path = tmp_path / "hearken.yaml"
    path.write_text(MINIMAL_CONFIG + "alerts:\n  channels:\n    crm: {type: webhook, url_env: T_CRM_URL, "
                    "secret_env: T_CRM_SECRET, case_events: true}\n")
    cfg = load_config(path)
    case_events.attach(store, cfg)
    cid = seed_case(store, cfg, external_id="r1", body="Northwind down")
    out = post_reply(store, cfg, cid, actor_for_name(cfg, "Sam Agent"), "Sorry, looking now", key=new_key(),
                     seen_replies=0)
    assert out.status == "posted"
    send_channels(store, cfg, env=_env(receiver))
    events = sorted((a.json() for a in receiver.at("/crm")), key=lambda e: e["occurred_at"])
    assert [e["type"] for e in events] == ["case.opened", "case.replied"]
    replied = events[1]
    jsonschema.validate(replied, SCHEMA)
    assert replied["actor"] == "Sam Agent" and replied["case"]["status"] == "replied"
    assert replied["case"]["times"]["first_response_at"].endswith("Z")
