"""The HTTP API (issue 18), served by real uvicorn on 127.0.0.1 and called with a real httpx client, on
SQLite and PostgreSQL: replies go out once per Idempotency-Key, roles hold, tokens are refused once revoked or
their owner leaves the team, bad input names the field, every call is audited, and the rate limit answers 429."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest
import uvicorn
from sqlalchemy import select

from desk.api import create_app
from desk.api.tokens import create_token, hash_token, revoke_token
from collectors.demo.publish import read_posts
from tests.e2e_helpers import platform_file
from desk.config.schema import load_config
from desk.store.models import ApiCall, ApiToken, Event
from desk.team.users import actor_for_name
from tests.conftest import MINIMAL_CONFIG, ROOT, free_port
from tests.e2e_helpers import seed_case
from tests.test_dashboard import env  # noqa: F401 - the dashboard's fixture: a config and database for AppTest


class Served:
    """create_app(cfg, store) under uvicorn in a thread, on a free port of 127.0.0.1."""

    def __init__(self, cfg, store) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(create_app(cfg, store), host="127.0.0.1", port=self.port,
                                                    log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "uvicorn did not start"
            time.sleep(0.05)

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


@pytest.fixture
def serve(store):
    started = []

    def start(cfg):
        started.append(Served(cfg, store))
        return started[-1]

    yield start
    for s in started:
        s.stop()


def token_for(store, cfg, name: str) -> str:
    return create_token(store, actor_for_name(cfg, name), "tests")[1]


def posts(cfg) -> list[dict]:
    return read_posts(platform_file(cfg, dict(os.environ)))


def test_a_reply_goes_out_once_when_the_same_key_is_sent_twice_and_when_two_requests_race(store, cfg, serve):
    api = serve(cfg)
    sam = api.client(token_for(store, cfg, "Sam Agent"))
    first = seed_case(store, cfg, external_id="a1", author="maria_t", body="Northwind broadband down all day")
    body = {"text": "Hi {name}, sorry about this; engineers are on it. Ref {case}"}
    one = sam.post(f"/api/v1/cases/{first}/replies", json=body, headers={"Idempotency-Key": "draft-1"})
    assert one.status_code == 201, one.text
    assert one.json()["status"] == "posted"
    again = sam.post(f"/api/v1/cases/{first}/replies", json=body, headers={"Idempotency-Key": "draft-1"})
    assert again.status_code == 200 and again.json()["earlier"] is True
    assert again.json()["reply_id"] == one.json()["reply_id"]
    sent = posts(cfg)
    assert [p["text"] for p in sent] == [f"Hi maria_t, sorry about this; engineers are on it. Ref #HK{first}"]
    other = sam.post(f"/api/v1/cases/{first}/replies", json={"text": "Another text"}, headers={"Idempotency-Key": "draft-1"})
    assert other.status_code == 409 and "already used for reply" in other.json()["detail"]  # not silently dropped
    assert len(posts(cfg)) == 1

    second = seed_case(store, cfg, external_id="a2", body="Northwind billed me twice")
    barrier = threading.Barrier(2)
    answers: list[httpx.Response] = []

    def race() -> None:
        with api.client(token_for(store, cfg, "Sam Agent")) as c:
            barrier.wait()
            answers.append(c.post(f"/api/v1/cases/{second}/replies", json={"text": "We will refund you."},
                                  headers={"Idempotency-Key": "draft-2"}))

    threads = [threading.Thread(target=race) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(a.status_code for a in answers)[0] in (200, 201) and len(answers) == 2
    assert len({a.json()["reply_id"] for a in answers}) == 1
    assert [p["text"] for p in posts(cfg)].count("We will refund you.") == 1
    case = sam.get(f"/api/v1/cases/{second}").json()
    assert case["status"] == "replied" and [r["status"] for r in case["replies"]] == ["posted"]


def test_one_persons_key_is_not_anothers(store, cfg, serve):
    api = serve(cfg)
    cid = seed_case(store, cfg, external_id="k1", body="Northwind cut me off")
    for name in ("Sam Agent", "Morgan Manager"):
        r = api.client(token_for(store, cfg, name)).post(f"/api/v1/cases/{cid}/replies", json={"text": f"From {name}"},
                                                         headers={"Idempotency-Key": "same-key"})
        assert r.status_code == 201, r.text
    assert [p["text"] for p in posts(cfg)] == ["From Sam Agent", "From Morgan Manager"]


def test_an_agents_token_cannot_do_a_managers_action_and_is_told_why(store, cfg, serve):
    api = serve(cfg)
    cid = seed_case(store, cfg, external_id="r1", body="Northwind router broken")
    sam = api.client(token_for(store, cfg, "Sam Agent"))
    refused = sam.post(f"/api/v1/cases/{cid}/assign", json={"assignee": "Alex Admin"})
    assert refused.status_code == 403
    assert refused.json()["detail"] == f"case #{cid}: Assigning a case needs a manager or admin (Sam Agent is an agent)"
    morgan = api.client(token_for(store, cfg, "Morgan Manager"))
    done = morgan.post(f"/api/v1/cases/{cid}/assign", json={"assignee": "Alex Admin"})
    assert done.status_code == 200 and done.json()["assignee"] == "Alex Admin"
    # the case is Alex's now: Sam may escalate it but not resolve it
    assert sam.post(f"/api/v1/cases/{cid}/resolve", json={"note": "fixed", "root_cause": "outage"}).status_code == 403
    esc = sam.post(f"/api/v1/cases/{cid}/escalate", json={"manager": "Morgan Manager", "reason": "VIP customer"})
    assert esc.status_code == 200 and esc.json()["escalated_to"] == "Morgan Manager"
    history = [(h["actor"], h["action"]) for h in esc.json()["history"]]
    assert ("Morgan Manager", "assigned") in history and ("Sam Agent", "escalated") in history


def test_claim_resolve_reopen_and_not_a_complaint_act_as_on_the_dashboard(store, cfg, serve):
    api = serve(cfg)
    sam = api.client(token_for(store, cfg, "Sam Agent"))
    cid = seed_case(store, cfg, external_id="c1", body="Northwind engineer never came")
    assert sam.post(f"/api/v1/cases/{cid}/claim").json()["assignee"] == "Sam Agent"
    missing_cause = sam.post(f"/api/v1/cases/{cid}/resolve", json={"note": "visit booked", "root_cause": ""})
    assert missing_cause.status_code == 409 and "root cause" in missing_cause.json()["detail"]
    done = sam.post(f"/api/v1/cases/{cid}/resolve", json={"note": "visit booked", "root_cause": "delivery"})
    assert done.status_code == 200 and done.json()["status"] == "resolved"
    again = sam.post(f"/api/v1/cases/{cid}/resolve", json={"note": "again", "root_cause": "delivery"})
    assert again.status_code == 409 and again.json()["detail"] == f"cannot resolve case #{cid}: it is resolved"
    assert sam.post(f"/api/v1/cases/{cid}/reopen", json={"reason": "came back"}).json()["status"] == "open"
    dismissed = sam.post(f"/api/v1/cases/{cid}/not-a-complaint", json={"note": "a joke"})
    assert dismissed.status_code == 200 and dismissed.json()["status"] == "dismissed"
    assert "not a complaint (Sam Agent)" in dismissed.json()["labels"]
    assert sam.get("/api/v1/cases/99999").status_code == 404
    assert sam.post("/api/v1/cases/99999/claim").json() == {"detail": "there is no case #99999"}


def test_the_queue_filters_and_a_case_reads_with_its_thread(store, cfg, serve):
    api = serve(cfg)
    sam = api.client(token_for(store, cfg, "Sam Agent"))
    mild = seed_case(store, cfg, external_id="q1", body="Northwind a bit slow", severity=1, minutes_ago=10)
    severe = seed_case(store, cfg, external_id="q2", body="Northwind down for a week", severity=4, minutes_ago=90)
    q = sam.get("/api/v1/queue").json()
    assert [i["case_id"] for i in q["items"]] == [severe, mild] and q["total_active"] == 2
    assert q["items"][0]["excerpt"] == "Northwind down for a week"
    assert q["items"][0]["overdue"] is True and q["items"][0]["time_left_seconds"] < 0  # 60 minutes at severity 4
    assert q["items"][1]["overdue"] is False and q["overdue_active"] == 1
    assert [i["case_id"] for i in sam.get("/api/v1/queue", params={"severity": 1}).json()["items"]] == [mild]
    sam.post(f"/api/v1/cases/{mild}/claim")
    mine = sam.get("/api/v1/queue", params={"assignee": "Sam Agent"}).json()["items"]
    assert [i["case_id"] for i in mine] == [mild]
    case = sam.get(f"/api/v1/cases/{severe}").json()
    assert case["post"]["body"] == "Northwind down for a week" and case["customer"] == "maria_t"
    assert [p["relation"] for p in case["thread"]] == ["this post"]
    assert [h["action"] for h in case["history"]][0] == "opened"
    bad = sam.get("/api/v1/queue", params={"severity": 7})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "severity", 0]


def test_bad_input_gets_a_422_naming_the_field(store, cfg, serve):
    api = serve(cfg)
    sam = api.client(token_for(store, cfg, "Sam Agent"))
    cid = seed_case(store, cfg, external_id="v1", body="Northwind lost my order")
    r = sam.post(f"/api/v1/cases/{cid}/resolve", json={"note": "done", "rootcause": "billing"})
    assert r.status_code == 422
    assert {tuple(e["loc"]) for e in r.json()["detail"]} == {("body", "root_cause"), ("body", "rootcause")}
    r = sam.post(f"/api/v1/cases/{cid}/replies", json={"text": "Sorry"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]
    r = sam.post(f"/api/v1/cases/{cid}/replies", json={"text": ""}, headers={"Idempotency-Key": "k"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "text"]
    r = sam.post(f"/api/v1/cases/{cid}/replies", json={"text": "Hi {firstname}"}, headers={"Idempotency-Key": "k"})
    assert r.status_code == 409 and "{firstname}" in r.json()["detail"]
    assert posts(cfg) == []  # nothing went out for any of them
    r = sam.get("/api/v1/reports/weekly", params={"week": "2026-W99"})
    assert r.status_code == 400 and "2026-W99" in r.json()["detail"]
    for huge in ("9223372036854775808", "99999999999999999999999"):  # past what a database id can hold
        r = sam.get(f"/api/v1/cases/{huge}")
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["path", "case_id"]
    r = sam.post(f"/api/v1/cases/{cid}/replies", json={"text": "Sorry", "in_reply_to": 10**20},
                 headers={"Idempotency-Key": "k2"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "in_reply_to"]


def test_a_body_over_the_cap_is_refused_before_it_is_read_even_without_a_token(store, cfg, serve):
    """An upload cannot fill the API's memory: refused by its length, or as the bytes arrive when chunked."""
    from desk.api.app import MAX_BODY_BYTES

    api = serve(cfg)
    cid = seed_case(store, cfg, external_id="big", body="Northwind lost my order")
    big = b'{"text": "' + b"x" * (MAX_BODY_BYTES + 1) + b'"}'
    r = api.client().post(f"/api/v1/cases/{cid}/replies", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and str(MAX_BODY_BYTES) in r.json()["detail"]

    def chunks():
        for _ in range(MAX_BODY_BYTES // 65536 + 2):
            yield b"x" * 65536

    r = api.client(token_for(store, cfg, "Sam Agent")).post(
        f"/api/v1/cases/{cid}/replies", content=chunks(),
        headers={"Content-Type": "application/json", "Idempotency-Key": "big"})
    assert r.status_code == 413
    assert posts(cfg) == []


def test_revoked_tokens_and_members_who_left_the_team_get_401(store, cfg, serve):
    api = serve(cfg)
    sam = actor_for_name(cfg, "Sam Agent")
    info, token = create_token(store, sam, "CRM")
    with api.client(token) as c:
        assert c.get("/api/v1/me").json() == {"name": "Sam Agent", "email": "sam@example.com", "role": "agent",
                                              "token_id": info.token_id}
        revoke_token(store, sam, info.token_id)
        refused = c.get("/api/v1/me")
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
        assert refused.json()["detail"] == f"API token {info.shown_prefix}… was revoked by Sam Agent"
    assert api.client().get("/api/v1/queue").status_code == 401
    assert api.client("hk_not-a-real-one").get("/api/v1/queue").json()["detail"].startswith("unknown API token")

    morgan = token_for(store, cfg, "Morgan Manager")
    assert api.client(morgan).get("/api/v1/me").status_code == 200
    cfg.path.write_text(MINIMAL_CONFIG.replace("  - {name: Morgan Manager, email: morgan@example.com, role: manager}\n",
                                               ""))
    os.utime(cfg.path, ns=(time.time_ns(), time.time_ns() + 1_000_000_000))  # a new mtime even on a coarse clock
    gone = api.client(morgan).get("/api/v1/me")
    assert gone.status_code == 401 and "no longer on the team" in gone.json()["detail"]


def test_a_role_changed_in_the_config_applies_to_the_token_at_once(store, cfg, serve):
    api = serve(cfg)
    sam = api.client(token_for(store, cfg, "Sam Agent"))
    cid = seed_case(store, cfg, external_id="p1", body="Northwind no signal")
    assert sam.post(f"/api/v1/cases/{cid}/assign", json={"assignee": "Alex Admin"}).status_code == 403
    cfg.path.write_text(MINIMAL_CONFIG.replace("email: sam@example.com, role: agent", "email: sam@example.com, role: manager"))
    os.utime(cfg.path, ns=(time.time_ns(), time.time_ns() + 1_000_000_000))
    assert sam.get("/api/v1/me").json()["role"] == "manager"
    assert sam.post(f"/api/v1/cases/{cid}/assign", json={"assignee": "Alex Admin"}).status_code == 200


def test_every_call_is_audited_with_its_token_and_owner(store, cfg, serve):
    api = serve(cfg)
    token = token_for(store, cfg, "Sam Agent")
    cid = seed_case(store, cfg, external_id="au1", body="Northwind charged me")
    with api.client(token) as c:
        c.get("/api/v1/queue", params={"severity": 2})
        c.post(f"/api/v1/cases/{cid}/assign", json={"assignee": "Alex Admin"})
    api.client().get("/api/v1/queue")
    with store.session() as s:
        calls = [(c.actor, c.method, c.path, c.status) for c in s.scalars(select(ApiCall).order_by(ApiCall.id))]
        row = s.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
        assert row.last_used_at is not None
        events = [(e.actor, e.action) for e in s.scalars(select(Event).where(Event.case_id.is_(None)))]
    assert calls == [("Sam Agent", "GET", "/api/v1/queue?severity=2", 200),
                     ("Sam Agent", "POST", f"/api/v1/cases/{cid}/assign", 403),
                     (None, "GET", "/api/v1/queue", 401)]
    assert ("Sam Agent", "api_token_created") in events


def test_past_the_rate_limit_a_token_gets_429_with_retry_after(store, tmp_path, serve):
    path = tmp_path / "limited.yaml"
    path.write_text(MINIMAL_CONFIG + "api: {rate_limit_per_minute: 3}\n")
    cfg = load_config(path)
    api = serve(cfg)
    with api.client(token_for(store, cfg, "Sam Agent")) as sam:
        assert [sam.get("/api/v1/me").status_code for _ in range(3)] == [200, 200, 200]
        over = sam.get("/api/v1/me")
        assert over.status_code == 429 and 1 <= int(over.headers["retry-after"]) <= 20
        assert "more than 3 requests in a minute" in over.json()["detail"]
    assert api.client(token_for(store, cfg, "Alex Admin")).get("/api/v1/me").status_code == 200  # per token


def test_the_weekly_report_and_the_openapi_docs(store, cfg, serve):
    api = serve(cfg)
    seed_case(store, cfg, external_id="w1", body="Northwind outage again")
    rep = api.client(token_for(store, cfg, "Sam Agent")).get("/api/v1/reports/weekly", params={"week": "2026-W47"})
    assert rep.status_code == 200 and rep.json()["week"] == "2026-W47"
    assert "overall" in rep.json()
    docs = httpx.get(f"{api.url}/docs")
    assert docs.status_code == 200
    # the page's script and style come from the API itself, so /docs works on a machine with no internet
    assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', docs.text)
    assert assets and all(a.startswith("/") for a in assets), assets
    for asset in assets:
        got = httpx.get(f"{api.url}{asset}")
        assert got.status_code == 200 and len(got.content) > 10_000, asset
    spec = httpx.get(f"{api.url}/openapi.json").json()
    assert {"/api/v1/queue", "/api/v1/cases/{case_id}/replies", "/api/v1/reports/weekly"} <= set(spec["paths"])
    assert "HTTPBearer" in spec["components"]["securitySchemes"]


def _hearken(*args: str, config) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "desk.cli", *args, "--config", str(config)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "HOME": str(config.parent)})


def test_hearken_api_serves_alone_and_stops_on_sigterm(tmp_path):
    config = tmp_path / "hearken.yaml"
    config.write_text(MINIMAL_CONFIG + f"database: {{url: 'sqlite:///{tmp_path / 'h.db'}'}}\n")
    proc = _hearken("api", "--port", "0", config=config)
    try:
        line = proc.stdout.readline()
        assert line.startswith("Hearken API: http://127.0.0.1:"), line
        base = line.split()[2].removesuffix("/api/v1")
        deadline = time.monotonic() + 30
        while True:
            try:
                assert httpx.get(f"{base}/api/v1/queue").status_code == 401
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and proc.poll() is None, proc.stdout.read()
                time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_hearken_api_refuses_a_network_address_without_tls_in_front(tmp_path):
    config = tmp_path / "hearken.yaml"
    config.write_text(MINIMAL_CONFIG + f"database: {{url: 'sqlite:///{tmp_path / 'h.db'}'}}\n")
    proc = _hearken("api", "--host", "0.0.0.0", config=config)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "refusing to serve the API: api.host 0.0.0.0 would carry API tokens across the network" in out
    assert "api.behind_tls_proxy: true" in out


def test_the_team_page_names_the_api_where_hearken_up_serves_it(env, monkeypatch):
    """`hearken up --api-port 0` serves the API on a port of its choosing: the page names that one."""
    from tests.test_dashboard import app, plain

    env(MINIMAL_CONFIG + "dashboard: {auth: local, local_user: Sam Agent}\n")
    at = app("views/team.py")
    assert any("127.0.0.1:8600/api/v1 when `hearken api`" in plain(c.value) for c in at.caption)
    monkeypatch.setenv("HEARKEN_API_URL", "http://127.0.0.1:38727")
    at = app("views/team.py")
    captions = [plain(c.value) for c in at.caption]
    assert any("http://127.0.0.1:38727/api/v1" in c for c in captions) and not any(":8600" in c for c in captions)


def test_the_team_page_makes_a_token_shown_once_and_stores_only_its_hash(env):
    from tests.test_dashboard import app

    cfg, store = env(MINIMAL_CONFIG + "dashboard: {auth: local, local_user: Sam Agent}\n")
    at = app("views/team.py")  # an agent: no team overview, but their own tokens
    assert not at.exception and not at.dataframe and "You have no API tokens." in [c.value for c in at.caption]
    at.text_input(key="api-token-name").input("CRM sync")
    at = next(b for b in at.button if b.label == "Create token").click().run()
    assert not at.exception
    [shown] = [c.value for c in at.code]
    assert shown.startswith("hk_") and len(shown) == 46
    assert "it is shown only this once" in at.warning[0].value
    with store.session() as s:
        [row] = s.scalars(select(ApiToken))
        stored = [str(getattr(row, c.name)) for c in ApiToken.__table__.columns]
        stored += [str(e.detail) for e in s.scalars(select(Event))]
    assert row.token_hash == hash_token(shown) and row.shown_prefix == shown[:8]
    assert not any(shown[8:] in value for value in stored)  # the secret itself is nowhere in the database

    at.run()  # the next run: never shown again, listed by name and prefix
    assert not at.code
    table = at.dataframe[0].value
    assert list(table["name"]) == ["CRM sync"] and list(table["token"]) == [f"{shown[:8]}…"]
    assert list(table["state"]) == ["active"]

    api = Served(cfg, store)  # on the dashboard's own database
    try:
        assert api.client(shown).get("/api/v1/me").json()["name"] == "Sam Agent"
        at = at.button(key="api-token-revoke").click().run()
        assert not at.exception and at.dataframe[0].value["state"].iloc[0].startswith("revoked")
        assert api.client(shown).get("/api/v1/me").status_code == 401
    finally:
        api.stop()
