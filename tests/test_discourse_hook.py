"""The Discourse webhook (desk/api/discourse_hook.py) served by a real uvicorn on 127.0.0.1, called over HTTP.

Each test serves desk/api's create_app, as `hearken api` does, with a real database (SQLite, and PostgreSQL where HEARKEN_TEST_PG_URL is set) and a Discourse
stand-in on 127.0.0.1 for the polls. Deliveries are built as Discourse's EmitWebHookEvent job builds them:
the body `{"post": <WebHookPostSerializer>}` as JSON, signed `sha256=<hex HMAC-SHA256>` with the secret;
nobody recorded a real delivery, so the payloads are written here in that shape (the post fields are
those of the recorded /posts/{id}.json answer, which one test sends as it was recorded).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from datetime import datetime, timedelta, timezone

import httpx
import pytest
import uvicorn
from sqlalchemy import func, select

from desk.api import create_app
from desk.api.discourse_hook import MAX_BODY_BYTES
from desk.cases.queue import open_queue
from desk.config.schema import HearkenConfig
from desk.intake import source_state
from desk.intake.pipeline import classify_pending
from desk.intake.runner import Runner
from desk.store.models import MentionRow
from tests.collector_helpers import LocalServer, Reply, fixture
from tests.conftest import free_port

SECRET_VAR = "HEARKEN_TEST_DISCOURSE_WEBHOOK_SECRET"
SECRET = "a-long-random-secret-the-forum-admin-typed"
COMPLAINT = "Northwind charged me twice for my order and support has not answered in a week. Fix this!"


def config(base_url: str, *, secret_env: str | None = SECRET_VAR, **source) -> HearkenConfig:
    src = {"type": "discourse", "name": "community", "base_url": base_url, "interval_seconds": 60, **source}
    if secret_env:
        src["webhook_secret_env"] = secret_env
    return HearkenConfig.model_validate({
        "brand": {"terms": ["Northwind"], "exclusions": ["Northwind Traders"]},
        "accounts": {"discourse": ["northwind_team"]},
        "sources": [src], "alerts": {"enabled": False},
        "team": [{"name": "Morgan Manager", "email": "morgan@example.com", "role": "manager"}]})


def post(pid: int = 501, *, topic: int = 77, number: int = 1, user: str = "unhappy_customer", raw: str = COMPLAINT,
         **extra) -> dict:
    """A post as Discourse's WebHookPostSerializer sends it (the fields Hearken reads, and a few it does not)."""
    return {"id": pid, "name": "", "username": user, "user_id": 42, "created_at": _now_iso(),
            "cooked": f"<p>{raw}</p>", "raw": raw, "post_number": number, "post_type": 1,
            "reply_to_post_number": None, "topic_id": topic, "topic_slug": "double-charge",
            "topic_title": "Charged twice", "category_id": 4, "hidden": False, "deleted_at": None,
            "topic_posts_count": number, "topic_filtered_posts_count": number, "topic_archetype": "regular",
            "category_slug": "support", **extra}


def _now_iso() -> str:
    return (datetime.now(timezone.utc) - timedelta(seconds=5)).isoformat().replace("+00:00", "Z")


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Hook:
    """The API app (desk.api.create_app) served by uvicorn on 127.0.0.1, and a client that delivers as Discourse does."""

    def __init__(self, cfg: HearkenConfig, store) -> None:
        self.cfg = cfg
        app = create_app(cfg, store)  # what `hearken api` serves, the hook among its routes
        port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                                    lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        self.url = f"http://127.0.0.1:{port}"
        self.client = httpx.Client(base_url=self.url, timeout=20)

    def deliver(self, the_post: dict | None = None, *, event: str = "post_created", body: bytes | None = None,
                source: str = "community", signature: str | None = "sign", **headers: str) -> httpx.Response:
        body = body if body is not None else json.dumps({"post": the_post}).encode()
        sent = {"Content-Type": "application/json", "X-Discourse-Instance": "https://community.example.com",
                "X-Discourse-Event-Id": "9", "X-Discourse-Event-Type": event.split("_")[0], "X-Discourse-Event": event}
        if signature is not None:
            sent["X-Discourse-Event-Signature"] = sign(body) if signature == "sign" else signature
        sent.update({k.replace("_", "-"): v for k, v in headers.items()})
        return self.client.post(f"/hooks/discourse/{source}", content=body, headers=sent)

    def close(self) -> None:
        self.client.close()
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def forum():
    """A Discourse stand-in serving /posts.json (newest first) over `forum.posts`."""
    with LocalServer() as server:
        server.posts = []
        server.route("/posts.json", lambda req: Reply(200, {"latest_posts": list(reversed(server.posts))}))
        yield server


@pytest.fixture
def secret(monkeypatch):
    monkeypatch.setenv(SECRET_VAR, SECRET)
    return SECRET


@pytest.fixture
def hook(store, forum, secret):
    h = Hook(config(forum.url), store)
    yield h
    h.close()


def mentions(store) -> list[MentionRow]:
    with store.session() as s:
        return list(s.scalars(select(MentionRow).order_by(MentionRow.id)))


def count(store) -> int:
    with store.session() as s:
        return s.scalar(select(func.count()).select_from(MentionRow)) or 0


def queue_urls(store) -> list[str]:
    return [item.url for item in open_queue(store).items]


def test_a_signed_post_is_stored_once_and_its_case_reaches_the_queue_without_moving_the_cursor(hook, store, model,
                                                                                            forum):
    r = hook.deliver(post())
    assert r.status_code == 200, r.text
    assert r.json()["stored"] == 1
    [m] = mentions(store)
    host = forum.url.split("//")[1]
    assert m.external_id == f"{host}/t/77/1"  # the id a poll gives the same post
    assert m.body == COMPLAINT and m.matched_terms == ["Northwind"] and not m.classified
    assert source_state.cursor(store, "community", "discourse") is None  # polling reads on from where it was

    classify_pending(store, hook.cfg, model)
    assert queue_urls(store) == [f"{forum.url}/t/double-charge/77/1"]


def test_a_replayed_delivery_stores_nothing_new(hook, store, model):
    body = json.dumps({"post": post()}).encode()
    assert hook.deliver(body=body).json()["stored"] == 1
    classify_pending(store, hook.cfg, model)
    again = hook.deliver(body=body)  # the same bytes and signature, sent again by anyone who recorded them
    assert again.status_code == 200 and again.json()["stored"] == 0
    assert count(store) == 1
    assert len(queue_urls(store)) == 1


@pytest.mark.parametrize("how, status", [
    ("no signature", 401), ("wrong secret", 401), ("tampered body", 401), ("signature of another body", 401),
    ("form content type", 415), ("too big", 413), ("unknown source", 404),
])
def test_a_delivery_that_fails_a_check_is_refused_and_stores_nothing(hook, store, how, status):
    body = json.dumps({"post": post()}).encode()
    if how == "no signature":
        r = hook.deliver(body=body, signature=None)
    elif how == "wrong secret":
        r = hook.deliver(body=body, signature=sign(body, "not-the-secret"))
    elif how == "tampered body":
        r = hook.deliver(body=body.replace(b"unhappy_customer", b"northwind_fan"), signature=sign(body))
    elif how == "signature of another body":
        r = hook.deliver(body=body, signature=sign(json.dumps({"post": post(502)}).encode()))
    elif how == "form content type":
        r = hook.deliver(body=body, Content_Type="application/x-www-form-urlencoded")
    elif how == "too big":
        big = json.dumps({"post": post(raw=COMPLAINT + " x" * MAX_BODY_BYTES)}).encode()
        r = hook.deliver(body=big)
    else:
        r = hook.deliver(body=body, source="nowhere")
    assert r.status_code == status, r.text
    assert count(store) == 0


def test_a_body_sent_in_chunks_past_the_cap_is_refused_without_a_content_length(hook, store):
    def chunks():
        yield b'{"post": {"raw": "'
        for _ in range(MAX_BODY_BYTES // 65536 + 2):
            yield b"x" * 65536
        yield b'"}}'

    r = hook.client.post("/hooks/discourse/community", content=chunks(), headers={
        "Content-Type": "application/json", "X-Discourse-Event": "post_created", "X-Discourse-Event-Signature": "x"})
    assert r.status_code == 413
    assert count(store) == 0


@pytest.mark.parametrize("secret_env", [None, "HEARKEN_TEST_UNSET_WEBHOOK_SECRET"])
def test_a_source_without_a_webhook_secret_refuses_every_delivery(store, forum, secret, secret_env):
    h = Hook(config(forum.url, secret_env=secret_env), store)
    try:
        body = json.dumps({"post": post()}).encode()
        r = h.deliver(body=body)
        assert r.status_code == 404
        assert r.json() == h.deliver(body=body, source="nowhere").json()  # says nothing of which sources exist
    finally:
        h.close()
    assert count(store) == 0


def test_webhook_first_then_the_poll_stores_the_post_once(hook, store, model, forum):
    p = post()
    assert hook.deliver(p).json()["stored"] == 1
    forum.posts.append(p)
    Runner(hook.cfg, store, model_loader=lambda: model).run_once()
    assert count(store) == 1
    assert len(queue_urls(store)) == 1
    assert source_state.cursor(store, "community", "discourse")["latest"]["last_id"] == p["id"]  # the poll's


def test_the_poll_first_then_the_webhook_stores_the_post_once(hook, store, model, forum):
    p = post()
    forum.posts.append(p)
    Runner(hook.cfg, store, model_loader=lambda: model).run_once()
    assert count(store) == 1
    r = hook.deliver(p)
    assert r.status_code == 200 and r.json()["stored"] == 0
    assert count(store) == 1
    assert len(queue_urls(store)) == 1


def test_an_edit_replaces_the_text_until_the_post_is_classified_and_after_that_records_nothing(hook, store, model):
    assert hook.deliver(post(raw="Northwind, my order is late")).json()["stored"] == 1
    r = hook.deliver(post(), event="post_edited")
    assert r.json() == {"event": "post_edited", "stored": 0, "updated": 1, "set_aside": 0}
    assert [m.body for m in mentions(store)] == [COMPLAINT]

    classify_pending(store, hook.cfg, model)
    r = hook.deliver(post(raw="Northwind sorted it out, thanks"), event="post_edited")
    assert r.json()["updated"] == 0 and r.json()["stored"] == 0
    assert [m.body for m in mentions(store)] == [COMPLAINT]  # what the team read and the model scored
    assert len(queue_urls(store)) == 1


def test_an_edit_that_adds_the_brand_stores_a_post_not_stored_before(hook, store):
    assert hook.deliver(post(raw="my order is late")).json()["stored"] == 0  # no term: not a mention
    assert hook.deliver(post(), event="post_edited").json()["stored"] == 1
    assert [m.body for m in mentions(store)] == [COMPLAINT]


def test_our_own_posts_private_messages_and_whispers_are_not_mentions(hook, store):
    assert hook.deliver(post(user="northwind_team")).json()["stored"] == 0
    assert hook.deliver(post(502, topic_archetype="private_message")).json()["stored"] == 0
    assert hook.deliver(post(503, post_type=4)).json()["stored"] == 0
    assert count(store) == 0


def test_the_ping_and_other_events_are_answered_and_store_nothing(hook, store):
    ping = json.dumps({"ping": "OK"}).encode()
    assert hook.deliver(body=ping, event="ping").status_code == 200
    r = hook.deliver(body=json.dumps({"topic": {"id": 77, "title": "Northwind"}}).encode(), event="topic_created")
    assert r.status_code == 200 and r.json()["stored"] == 0
    assert count(store) == 0


def test_a_signed_post_that_cannot_be_read_is_set_aside_not_lost(hook, store):
    r = hook.deliver(post(created_at="yesterday-ish"))
    assert r.status_code == 200 and r.json()["set_aside"] == 1
    assert count(store) == 0


def test_a_recorded_discourse_post_is_taken_as_discourse_serialises_it(store, forum, secret):
    recorded = json.loads(fixture("discourse", "get_post_response.json").read_text())
    h = Hook(config(forum.url, terms=["b15bd65a"]), store)
    try:
        assert h.deliver(recorded).json()["stored"] == 1
    finally:
        h.close()
    [m] = mentions(store)
    assert m.external_id.endswith("/t/8/4") and m.author == "blake" and m.body.startswith("b15bd65a")
