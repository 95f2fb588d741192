"""Exactly once: double clicks, two staff, concurrent threads, a publisher killed mid-post, lost answers.

The platform here is real enough to count on: the demo platform's JSON-lines
file (written under a file lock by a separate code path from our database),
and a Discourse stand-in on 127.0.0.1 answering with the recorded
create-post response. Each test asserts how many replies the platform holds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from desk import cases
from desk.models import Reply
from desk.publishers import ReadOnlySource
from desk.publishers.demo import platform_file, read_posts
from desk.queue import case_detail, open_queue
from desk.replies import (ReplyConflict, TEMPLATES, check_reply, fill_template, new_key, pending_checks,
                          post_reply, seen_replies)
from desk.users import actor_for_name
from tests.conftest import ROOT
from tests.e2e_helpers import DISCOURSE_ENV, DiscourseForum, discourse_config, seed_case, seed_discourse_case

TEXT = "Hi maria_t, sorry about the outage. Engineers are on it; update here by 6pm. Ref #HK1"


@pytest.fixture
def sam(cfg):
    return actor_for_name(cfg, "Sam Agent")


@pytest.fixture
def morgan(cfg):
    return actor_for_name(cfg, "Morgan Manager")


def platform_posts(cfg):
    return read_posts(platform_file(cfg, dict(os.environ)))


def test_post_sets_first_response_and_replied(store, cfg, sam):
    cid = seed_case(store, cfg, external_id="r1", body="Northwind down")
    out = post_reply(store, cfg, cid, sam, TEXT, key=new_key(), seen_replies=0)
    assert out.status == "posted" and out.url.startswith("https://demo.hearken.invalid/x/r1#")
    assert [p["text"] for p in platform_posts(cfg)] == [TEXT]
    d = case_detail(store, cid)
    assert d.status == "replied" and d.first_response_at is not None
    assert [h.action for h in d.history][-2:] == ["reply_attempt", "replied"]
    assert d.history[-1].actor == "Sam Agent"
    assert any(p.ours and p.body == TEXT for p in d.thread)


def test_double_click_same_draft_posts_once(store, cfg, sam):
    cid = seed_case(store, cfg, external_id="r2", body="Northwind down")
    key = new_key()
    first = post_reply(store, cfg, cid, sam, TEXT, key=key, seen_replies=0)
    second = post_reply(store, cfg, cid, sam, TEXT, key=key, seen_replies=0)
    assert second.earlier and second.reply_id == first.reply_id and second.status == "posted"
    assert len(platform_posts(cfg)) == 1


def test_two_staff_second_is_told_someone_replied(store, cfg, sam, morgan):
    cid = seed_case(store, cfg, external_id="r3", body="Northwind down")
    seen = seen_replies(store, cid)  # both open the composer and see no reply
    post_reply(store, cfg, cid, sam, TEXT, key=new_key(), seen_replies=seen)
    with pytest.raises(ReplyConflict, match="added to this case while you were writing"):
        post_reply(store, cfg, cid, morgan, "Another answer", key=new_key(), seen_replies=seen)
    assert len(platform_posts(cfg)) == 1
    # having read it, a deliberate follow-up is allowed
    post_reply(store, cfg, cid, morgan, "Update: fixed now", key=new_key(), seen_replies=seen_replies(store, cid))
    assert len(platform_posts(cfg)) == 2


@pytest.mark.parametrize("same_key", [True, False], ids=["one-draft-many-clicks", "many-tabs"])
def test_concurrent_clicks_post_at_most_once(store, cfg, sam, same_key):
    cid = seed_case(store, cfg, external_id="r4", body="Northwind down")
    key = new_key()
    results, errors = [], []
    barrier = threading.Barrier(6)

    def click():
        barrier.wait()
        try:
            results.append(post_reply(store, cfg, cid, sam, TEXT, key=key if same_key else new_key(), seen_replies=0))
        except ReplyConflict as exc:
            errors.append(exc)

    threads = [threading.Thread(target=click) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(platform_posts(cfg)) == 1
    assert sum(1 for r in results if r.status == "posted" and not r.earlier) == 1
    assert len(results) + len(errors) == 6
    with store.session() as s:
        assert [r.status for r in s.scalars(select(Reply).where(Reply.case_id == cid))] == ["posted"]


def _post_in_subprocess(cfg, db_url, case_id, key, failpoint, marker):
    code = ("import sys; from desk.config import load_config; from desk.db import connect; "
            "from desk.replies import post_reply; from desk.users import actor_for_name; "
            "cfg = load_config(sys.argv[1]); store = connect(sys.argv[2]); "
            "post_reply(store, cfg, int(sys.argv[3]), actor_for_name(cfg, 'Sam Agent'), sys.argv[5], key=sys.argv[4], "
            "seen_replies=0)")
    env = dict(os.environ, HEARKEN_FAILPOINT=f"{failpoint}:{marker}")
    proc = subprocess.Popen([sys.executable, "-c", code, str(cfg.path), db_url, str(case_id), key, TEXT],
                            cwd=ROOT, env=env)
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert proc.poll() is None, "the publisher exited before reaching the failpoint"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def test_killed_after_platform_call_is_found_not_reposted(store, cfg, db_url, sam, tmp_path, morgan):
    cid = seed_case(store, cfg, external_id="r5", body="Northwind down")
    key = new_key()
    _post_in_subprocess(cfg, db_url, cid, key, "reply_after_call", tmp_path / "hung")
    assert len(platform_posts(cfg)) == 1  # it went out, but the process died before recording that
    with store.session() as s:
        assert s.scalar(select(Reply.status).where(Reply.idempotency_key == key)) == "posting"
    # meanwhile nobody else can post: the attempt is still in flight
    with pytest.raises(ReplyConflict, match="posting a reply to this case right now"):
        post_reply(store, cfg, cid, morgan, "Other", key=new_key(), seen_replies=0)
    # once stale, the retry looks on the platform first, finds ours and does not post again
    out = post_reply(store, cfg, cid, sam, TEXT, key=key, seen_replies=0, stale_after=timedelta(0))
    assert out.status == "posted"
    assert len(platform_posts(cfg)) == 1
    d = case_detail(store, cid)
    assert d.status == "replied" and [h.action for h in d.history][-2:] == ["reply_check", "reply_found"]


def test_killed_before_platform_call_is_posted_once_on_retry(store, cfg, db_url, sam, tmp_path):
    cid = seed_case(store, cfg, external_id="r6", body="Northwind down")
    key = new_key()
    _post_in_subprocess(cfg, db_url, cid, key, "reply_before_call", tmp_path / "hung")
    assert platform_posts(cfg) == []
    assert pending_checks(store, cid, stale_after=timedelta(0))
    out = post_reply(store, cfg, cid, sam, TEXT, key=key, seen_replies=0, stale_after=timedelta(0))
    assert out.status == "posted" and len(platform_posts(cfg)) == 1


def test_read_only_source_never_posts(tmp_path, sqlite_store):
    from desk.config import load_config

    path = tmp_path / "ro.yaml"
    path.write_text("brand: {terms: [Northwind]}\nsources:\n  - {type: demo, name: demo, read_only: true}\n"
                    "team:\n  - {name: Sam Agent, email: sam@example.com, role: agent}\n")
    cfg = load_config(path)
    cid = seed_case(sqlite_store, cfg, external_id="r7", body="Northwind down")
    with pytest.raises(ReadOnlySource, match="read-only"):
        post_reply(sqlite_store, cfg, cid, actor_for_name(cfg, "Sam Agent"), TEXT, key=new_key())
    assert platform_posts(cfg) == []
    with sqlite_store.session() as s:
        assert s.scalars(select(Reply)).all() == []


def test_too_long_for_x_is_refused_before_anything_is_recorded(store, cfg, sam):
    cid = seed_case(store, cfg, external_id="r8", body="Northwind down", extra={"style": "x"})
    with pytest.raises(cases.CaseError, match="allows 280"):
        post_reply(store, cfg, cid, sam, "x" * 281, key=new_key())
    assert platform_posts(cfg) == [] and case_detail(store, cid).replies == []


def test_templates_fill_name_and_reference():
    text = fill_template(TEMPLATES["Acknowledge and investigate"], customer="@maria_t", case_id=42)
    assert text.startswith("Hi maria_t,") and "#HK42" in text and len(text) <= 280
    assert all(len(fill_template(t, customer="a_long_username_x", case_id=99999)) <= 280 for t in TEMPLATES.values())


# --- against the Discourse stand-in: lost answers and refusals ------------------------------


@pytest.fixture
def forum():
    from tests.conftest import need_fixtures

    f = DiscourseForum(need_fixtures("discourse", "new_topic_response.json")).start()
    yield f
    f.stop()


@pytest.fixture
def dcfg(tmp_path, forum):
    from desk.config import load_config

    p = tmp_path / "d.yaml"
    p.write_text(discourse_config(forum.base_url))
    return load_config(p)


def test_discourse_timeout_is_unknown_then_check_finds_it(sqlite_store, dcfg, forum):
    sam = actor_for_name(dcfg, "Sam Agent")
    cid = seed_discourse_case(sqlite_store, dcfg, forum.base_url, post_number=3)
    forum.answer_delay = 2.5  # posted, but our 1 s timeout fires first
    out = post_reply(sqlite_store, dcfg, cid, sam, "Sorry Kevin, we're on it. Ref #HK1", key=new_key(),
                     seen_replies=0, env=DISCOURSE_ENV)
    assert out.status == "unknown" and "check the platform" in out.message.lower()
    assert len(forum.posts) == 1
    with pytest.raises(ReplyConflict, match="outcome is unknown"):
        post_reply(sqlite_store, dcfg, cid, sam, "Again", key=new_key(), seen_replies=0, env=DISCOURSE_ENV)
    forum.answer_delay = 0
    checked = check_reply(sqlite_store, dcfg, out.reply_id, sam, env=DISCOURSE_ENV)
    assert checked.status == "posted" and checked.url.endswith(f"/{forum.topic_id}/2")
    assert len(forum.posts) == 1
    sent = forum.http.posts()[0]
    assert sent.json() == {"topic_id": 17, "raw": "Sorry Kevin, we're on it. Ref #HK1", "reply_to_post_number": 3}
    assert sent.headers["api-key"] == "test-key"
    assert open_queue(sqlite_store).items[0].status == "replied"


def test_discourse_refusal_fails_cleanly_and_retry_posts_once(sqlite_store, dcfg, forum):
    sam = actor_for_name(dcfg, "Sam Agent")
    cid = seed_discourse_case(sqlite_store, dcfg, forum.base_url)
    key = new_key()
    forum.fail_status = 429  # built from Discourse's documented error shape; nobody recorded one
    out = post_reply(sqlite_store, dcfg, cid, sam, "Sorry Kevin", key=key, seen_replies=0, env=DISCOURSE_ENV)
    assert out.status == "failed" and "too many times" in out.error and forum.posts == []
    forum.fail_status = None
    again = post_reply(sqlite_store, dcfg, cid, sam, "Sorry Kevin", key=key, seen_replies=0, env=DISCOURSE_ENV)
    assert again.status == "posted" and len(forum.posts) == 1
    assert "reply_to_post_number" not in forum.http.posts()[-1].json()  # answering the topic's first post


def test_unknown_then_check_finds_nothing_allows_a_new_post(sqlite_store, dcfg, forum):
    sam = actor_for_name(dcfg, "Sam Agent")
    cid = seed_discourse_case(sqlite_store, dcfg, forum.base_url)
    forum.fail_status = 502
    out = post_reply(sqlite_store, dcfg, cid, sam, "Sorry Kevin", key=new_key(), seen_replies=0, env=DISCOURSE_ENV)
    assert out.status == "unknown"
    forum.fail_status = None
    checked = check_reply(sqlite_store, dcfg, out.reply_id, sam, env=DISCOURSE_ENV)
    assert checked.status == "failed" and "safe to post again" in checked.error
    post_reply(sqlite_store, dcfg, cid, sam, "Sorry Kevin", key=new_key(), seen_replies=0, env=DISCOURSE_ENV)
    assert len(forum.posts) == 1


def test_retry_after_timeout_with_same_draft_finds_the_reply_instead_of_posting_again(sqlite_store, dcfg, forum):
    sam = actor_for_name(dcfg, "Sam Agent")
    cid = seed_discourse_case(sqlite_store, dcfg, forum.base_url)
    key = new_key()
    forum.answer_delay = 2.5
    first = post_reply(sqlite_store, dcfg, cid, sam, "Sorry Kevin", key=key, seen_replies=0, env=DISCOURSE_ENV)
    assert first.status == "unknown"
    forum.answer_delay = 0
    again = post_reply(sqlite_store, dcfg, cid, sam, "Sorry Kevin", key=key, seen_replies=0, env=DISCOURSE_ENV)
    assert again.status == "posted" and again.reply_id == first.reply_id
    assert len(forum.posts) == 1 and len(forum.http.posts()) == 1


def test_reply_to_a_followup_answers_that_post(store, cfg, sam):
    from tests.e2e_helpers import add_followup

    cid = seed_case(store, cfg, external_id="f1", thread_id="f1", body="Northwind down")
    add_followup(store, platform="demo", source="demo", external_id="f2", thread_id="f1", parent_id="f1",
                 author="maria_t", body="Still down, Northwind", case_id=cid)
    add_followup(store, platform="demo", source="demo", external_id="f3", thread_id="other", author="bob",
                 body="Northwind elsewhere")
    other = seed_case(store, cfg, external_id="f4", thread_id="f1", author="carol", body="Me too, Northwind")
    assert other != cid  # another customer's case in the same thread: shown in the thread, not answerable here
    posts = case_detail(store, cid).answerable
    assert [p.external_id for p in posts] == ["f2", "f1"]  # newest first
    post_reply(store, cfg, cid, sam, "Sorry, still on it", key=new_key(), mention_id=posts[0].mention_id)
    assert [p["in_reply_to"] for p in platform_posts(cfg)] == ["f2"]
    with store.session() as s:
        from desk.models import Mention

        stranger = s.scalar(select(Mention.id).where(Mention.external_id == "f3"))
    with pytest.raises(cases.CaseError, match="not part of case"):
        post_reply(store, cfg, cid, sam, "Hi", key=new_key(), mention_id=stranger)


def test_edited_draft_after_lost_answer_still_finds_the_first_text(sqlite_store, dcfg, forum):
    sam = actor_for_name(dcfg, "Sam Agent")
    cid = seed_discourse_case(sqlite_store, dcfg, forum.base_url)
    key = new_key()
    forum.answer_delay = 2.5
    assert post_reply(sqlite_store, dcfg, cid, sam, "First text", key=key, env=DISCOURSE_ENV).status == "unknown"
    forum.answer_delay = 0
    out = post_reply(sqlite_store, dcfg, cid, sam, "Edited text", key=key, env=DISCOURSE_ENV)
    assert out.status == "posted" and len(forum.posts) == 1
    assert [r.body for r in case_detail(sqlite_store, cid).replies] == ["First text"]  # what is really up


def test_failed_check_leaves_the_reply_unknown_and_posts_nothing(sqlite_store, dcfg, forum):
    sam = actor_for_name(dcfg, "Sam Agent")
    cid = seed_discourse_case(sqlite_store, dcfg, forum.base_url)
    forum.fail_status = 502
    out = post_reply(sqlite_store, dcfg, cid, sam, "Sorry Kevin", key=new_key(), env=DISCOURSE_ENV)
    forum.fail_status = None
    del forum.http.routes[("GET", f"/t/{forum.topic_id}.json")]  # the forum cannot show the topic now
    with pytest.raises(cases.CaseError, match="nothing was posted"):
        check_reply(sqlite_store, dcfg, out.reply_id, sam, env=DISCOURSE_ENV)
    assert [r.status for r in case_detail(sqlite_store, cid).replies] == ["unknown"]
    assert pending_checks(sqlite_store, cid) == [out.reply_id] and forum.posts == []
