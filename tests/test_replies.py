"""Exactly once: double clicks, two staff, concurrent clicks and dashboards, a publisher killed mid-post,
and answers lost every way a platform can lose them.

The platforms here are real enough to count on: the demo platform's JSON-lines file (written under a
file lock by a separate code path from our database), and hostile stand-ins of Discourse, X and Reddit
on 127.0.0.1 (tests/hostile_publish.py) reached through the real httpx, tweepy and praw clients. Every
test asserts how many replies the platform holds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from desk.cases import actions as cases
from desk.store.models import Event, Reply
from desk.cases.publishing import ReadOnly
from collectors.demo.publish import read_posts
from tests.e2e_helpers import platform_file
from desk.cases.queue import case_detail, open_queue
from desk.cases.replies import ReplyConflict, check_reply, new_key, post_anyway, post_reply
from desk.cases.reply_status import seen_replies, unsettled
from desk.cases.templates import TEMPLATES, fill_template
from desk.team.users import actor_for_name
from tests.conftest import ROOT
from tests.e2e_helpers import seed_case
from tests.hostile_publish import stage

TEXT = "Hi maria_t, sorry about the outage. Engineers are on it; update here by 6pm. Ref #HK1"
PLATFORMS = ["discourse", "x", "reddit"]


@pytest.fixture
def sam(cfg):
    return actor_for_name(cfg, "Sam Agent")


@pytest.fixture
def morgan(cfg):
    return actor_for_name(cfg, "Morgan Manager")


def platform_posts(cfg):
    return read_posts(platform_file(cfg, dict(os.environ)))


def tuned(cfg, **replies):
    """The same configuration with other `replies:` settings."""
    return cfg.model_copy(update={"replies": cfg.replies.model_copy(update=replies)})


def wait_for(condition, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _stages(store, tmp_path):
    """stage(kind, **replies) on `store`: a hostile platform of that kind with a case on it; stopped afterwards."""
    made = []

    def make(kind: str, **replies):
        made.append(stage(kind, store, tmp_path, **replies))
        return made[-1]

    yield make
    for st in made:
        st.platform.stop()


@pytest.fixture
def hostile(tmp_path, sqlite_store):
    yield from _stages(sqlite_store, tmp_path)


def actor(st):
    return actor_for_name(st.cfg, "Sam Agent")


# --- the demo platform: clicks, staff, threads ----------------------------------------------------


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


POSTER = """\
import json, os, sys, time
from pathlib import Path
from desk.config.schema import load_config
from desk.store.db import connect
from desk.cases.replies import ReplyConflict, post_reply
from desk.team.users import actor_for_name
cfg_path, db_url, case_id, key, text, go = sys.argv[1:7]
cfg = load_config(cfg_path)
store = connect(db_url)
if go != "-":
    Path(f"{go}.ready-{os.getpid()}").touch()
while go != "-" and not Path(go).exists():
    time.sleep(0.005)
try:
    out = post_reply(store, cfg, int(case_id), actor_for_name(cfg, "Sam Agent"), text, key=key, seen_replies=0)
    print(json.dumps({"status": out.status, "earlier": out.earlier}))
except ReplyConflict as exc:
    print(json.dumps({"status": "conflict", "error": str(exc)}))
"""


def _poster(cfg_path, db_url, case_id, key, text, *, env=None, go="-", failpoint=None):
    """A separate process posting one reply, as a dashboard would; waits for the file `go` first."""
    full_env = dict(os.environ, **(env or {}))
    if failpoint:
        full_env["HEARKEN_FAILPOINT"] = failpoint
    return subprocess.Popen([sys.executable, "-c", POSTER, str(cfg_path), db_url, str(case_id), key, text, str(go)],
                            cwd=ROOT, env=full_env, stdout=subprocess.PIPE, text=True)


def _kill_at(proc, marker) -> None:
    wait_for(lambda: marker.exists() or proc.poll() is not None, "the poster to reach its failpoint", 60)
    assert proc.poll() is None, "the poster exited before reaching the failpoint"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def test_killed_after_platform_call_is_found_not_reposted(store, cfg, db_url, sam, tmp_path, morgan):
    cfg = tuned(cfg, stale_after_seconds=4)
    cid = seed_case(store, cfg, external_id="r5", body="Northwind down")
    key = new_key()
    marker = tmp_path / "hung"
    _kill_at(_poster(cfg.path, db_url, cid, key, TEXT, failpoint=f"reply_after_call:{marker}"), marker)
    assert len(platform_posts(cfg)) == 1  # it went out, but the process died before recording that
    with store.session() as s:
        assert s.scalar(select(Reply.status).where(Reply.idempotency_key == key)) == "posting"
    # meanwhile nobody else can post: the attempt is still in flight
    with pytest.raises(ReplyConflict, match="posting a reply to this case right now"):
        post_reply(store, cfg, cid, morgan, "Other", key=new_key(), seen_replies=0)
    wait_for(lambda: unsettled(store, cfg, cid), "the orphaned attempt to go stale")
    with pytest.raises(ReplyConflict, match="may already be up"):
        post_reply(store, cfg, cid, morgan, "Other", key=new_key(), seen_replies=0)
    # the same draft again looks on the platform first, finds ours and does not post again
    out = post_reply(store, cfg, cid, sam, TEXT, key=key, seen_replies=0)
    assert out.status == "posted" and out.checked
    assert len(platform_posts(cfg)) == 1
    d = case_detail(store, cid)
    assert d.status == "replied" and [h.action for h in d.history][-2:] == ["reply_check", "reply_found"]


def test_killed_before_platform_call_is_not_resent_without_a_person(store, cfg, db_url, sam, tmp_path):
    """Died before or after sending: Hearken cannot tell, so it looks, and a person decides after the grace."""
    cfg = tuned(cfg, stale_after_seconds=4, check_grace_seconds=0)
    cid = seed_case(store, cfg, external_id="r6", body="Northwind down")
    key = new_key()
    marker = tmp_path / "hung"
    _kill_at(_poster(cfg.path, db_url, cid, key, TEXT, failpoint=f"reply_before_call:{marker}"), marker)
    assert platform_posts(cfg) == []
    wait_for(lambda: unsettled(store, cfg, cid), "the orphaned attempt to go stale")
    out = post_reply(store, cfg, cid, sam, TEXT, key=key, seen_replies=0)
    assert out.status == "not_found" and "Post anyway" in out.message and platform_posts(cfg) == []
    [pending] = unsettled(store, cfg, cid)
    out = post_anyway(store, cfg, pending.reply_id, sam, reason="the platform shows no reply from us")
    assert out.status == "posted" and len(platform_posts(cfg)) == 1


def test_read_only_source_never_posts(tmp_path, sqlite_store):
    from desk.config.schema import load_config

    path = tmp_path / "ro.yaml"
    path.write_text("brand: {terms: [Northwind]}\nsources:\n  - {type: demo, name: demo, read_only: true}\n"
                    "team:\n  - {name: Sam Agent, email: sam@example.com, role: agent}\n")
    cfg = load_config(path)
    cid = seed_case(sqlite_store, cfg, external_id="r7", body="Northwind down")
    with pytest.raises(ReadOnly, match="read-only"):
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


def test_typed_placeholders_are_filled_like_the_templates_and_unknown_ones_refused():
    from desk.cases.templates import PlaceholderError, fill_placeholders

    assert fill_placeholders("Hi {name}, about {case}: fixed.", customer="@maria_t", case_id=7) == \
        "Hi maria_t, about #HK7: fixed."
    assert fill_placeholders("Hi {name}", customer="{case}", case_id=7) == "Hi {case}"  # one pass: a name stays a name
    assert fill_placeholders("no braces {} here", customer="a", case_id=1) == "no braces {} here"
    with pytest.raises(PlaceholderError, match=r"holds \{order\}, which Hearken does not fill in \(it fills \{name\}"):
        fill_placeholders("Hi {name}, your order {order} ships today", customer="a", case_id=1)


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
        from desk.store.models import MentionRow

        stranger = s.scalar(select(MentionRow.id).where(MentionRow.external_id == "f3"))
    with pytest.raises(cases.CaseError, match="not part of case"):
        post_reply(store, cfg, cid, sam, "Hi", key=new_key(), mention_id=stranger)


def test_demo_platform_locked_by_another_writer_is_refused_within_the_deadline(store, cfg, sam):
    import fcntl

    cfg = tuned(cfg, publish_deadline_seconds=1)
    cid = seed_case(store, cfg, external_id="r9", body="Northwind down")
    path = platform_file(cfg, dict(os.environ))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        started = time.monotonic()
        out = post_reply(store, cfg, cid, sam, TEXT, key=new_key())
        took = time.monotonic() - started
    assert out.status == "failed" and "nothing was written" in out.error
    assert took < 5 and platform_posts(cfg) == []


# --- hostile platforms: every way an answer gets lost, on Discourse, X and Reddit -----------------


def test_late_commit_is_not_concluded_within_the_grace_period(hostile):
    """The forum stores the post 4 s after the request arrives; our deadline is 1 s."""
    st = hostile("discourse")
    st.platform.bad.commit_delay = 4
    sam = actor(st)
    started = time.monotonic()
    out = post_reply(st.store, st.cfg, st.case_id, sam, TEXT, key=(key := new_key()), env=st.env)
    assert out.status == "unknown" and time.monotonic() - started < 3
    assert st.held(TEXT) == 0  # not there yet
    checked = check_reply(st.store, st.cfg, out.reply_id, sam, env=st.env)
    assert checked.status == "unknown" and checked.checked
    assert checked.conclusive_at is not None and "not conclusive before" in checked.message
    again = post_reply(st.store, st.cfg, st.case_id, sam, TEXT, key=key, env=st.env)  # a retry looks
    assert again.status == "unknown" and again.reply_id == out.reply_id
    with pytest.raises(ReplyConflict, match="may already be up"):
        post_reply(st.store, st.cfg, st.case_id, sam, "A second answer", key=new_key(), env=st.env)
    with pytest.raises(cases.CaseError, match="may still appear on the platform until"):
        post_anyway(st.store, st.cfg, out.reply_id, sam, reason="impatient", env=st.env)
    wait_for(lambda: st.held(TEXT) == 1, "the forum to commit the post")
    found = check_reply(st.store, st.cfg, out.reply_id, sam, env=st.env)
    assert found.status == "posted" and found.external_id == f"{st.platform.base_url[7:]}/t/17/2"
    assert st.held(TEXT) == 1 and len(st.platform.creates("/posts.json")) == 1


@pytest.mark.parametrize("kind", PLATFORMS)
@pytest.mark.parametrize("skew", [-120, 120], ids=["platform-2min-behind", "platform-2min-ahead"])
def test_clock_skew_either_way_still_finds_the_reply(hostile, kind, skew):
    st = hostile(kind)
    st.platform.bad.clock_skew = skew
    st.platform.bad.drop_after_store = True
    out = post_reply(st.store, st.cfg, st.case_id, actor(st), TEXT, key=new_key(), env=st.env)
    assert out.status == "unknown" and st.held(TEXT) == 1
    found = check_reply(st.store, st.cfg, out.reply_id, actor(st), env=st.env)
    assert found.status == "posted", found.message
    assert st.held(TEXT) == 1


@pytest.mark.parametrize("kind", PLATFORMS)
def test_hundreds_of_our_posts_since_the_attempt_are_paged_through(hostile, kind):
    st = hostile(kind)
    if kind == "discourse":  # our reply becomes post 40 of 270: neither in the first page nor the last 50
        st.platform.add_posts(38, username="someone", at=st.platform.now() - timedelta(hours=1))
    st.platform.bad.drop_after_store = True
    out = post_reply(st.store, st.cfg, st.case_id, actor(st), TEXT, key=new_key(), env=st.env)
    assert out.status == "unknown"
    st.add_ours(230)
    found = check_reply(st.store, st.cfg, out.reply_id, actor(st), env=st.env)
    assert found.status == "posted", found.message
    assert st.held(TEXT) == 1
    pages = {"discourse": "/t/17/posts.json", "x": "/2/users/42/tweets", "reddit": "/user/northwind_support/comments"}
    reads = [r for r in st.platform.requests if r.method == "GET" and r.path.rstrip("/") == pages[kind]]
    assert len(reads) >= 3  # paged as the real API pages, not one big read
    if kind == "x":
        assert all(r.arg("start_time") for r in reads) and any(r.arg("pagination_token") for r in reads)
    if kind == "reddit":
        assert any(r.arg("after") for r in reads)


@pytest.mark.parametrize("kind", PLATFORMS)
def test_a_500_after_a_real_post_is_found_not_reposted(hostile, kind):
    st = hostile(kind)
    st.platform.bad.status_after_store = 500
    key = new_key()
    out = post_reply(st.store, st.cfg, st.case_id, actor(st), TEXT, key=key, env=st.env)
    assert out.status == "unknown" and st.held(TEXT) == 1
    st.platform.bad.status_after_store = None
    again = post_reply(st.store, st.cfg, st.case_id, actor(st), TEXT, key=key, env=st.env)  # the user clicks again
    assert again.status == "posted" and again.checked
    assert st.held(TEXT) == 1 and len(st.platform.stored) == 1


@pytest.mark.parametrize("kind", PLATFORMS)
def test_connection_dropped_after_the_request_was_sent(hostile, kind):
    st = hostile(kind)
    st.platform.bad.drop_after_store = True
    out = post_reply(st.store, st.cfg, st.case_id, actor(st), TEXT, key=new_key(), env=st.env)
    assert out.status == "unknown"
    st.platform.bad.drop_after_store = False
    with pytest.raises(ReplyConflict):
        post_reply(st.store, st.cfg, st.case_id, actor(st), TEXT, key=new_key(), env=st.env)
    assert check_reply(st.store, st.cfg, out.reply_id, actor(st), env=st.env).status == "posted"
    assert st.held(TEXT) == 1


@pytest.mark.parametrize("kind", PLATFORMS)
def test_an_answer_dripping_a_byte_at_a_time_is_cut_at_the_deadline(hostile, kind):
    """A per-read timeout never fires on a drip: only the wall-clock deadline ends the call."""
    st = hostile(kind, publish_deadline_seconds=1.5)
    st.platform.bad.drip = True
    st.platform.bad.drip_every = 0.2
    started = time.monotonic()
    out = post_reply(st.store, st.cfg, st.case_id, actor(st), TEXT, key=new_key(), env=st.env)
    took = time.monotonic() - started
    assert out.status == "unknown" and "1.5 s deadline" in out.error
    assert took < 1.5 + 1.5  # the deadline, its margin, and our own bookkeeping on a busy machine
    assert st.held(TEXT) == 1


@pytest.mark.parametrize("kind", PLATFORMS)
def test_not_found_after_the_grace_period_waits_for_a_person(hostile, kind):
    """The platform lost the request: nothing is up. Still nothing is re-sent until someone says so."""
    st = hostile(kind, check_grace_seconds=1.5)
    st.platform.bad.never_store = True
    sam = actor(st)
    key = new_key()
    out = post_reply(st.store, st.cfg, st.case_id, sam, TEXT, key=key, env=st.env)
    assert out.status == "unknown"
    wait_for(lambda: unsettled(st.store, st.cfg, st.case_id)[0].may_post_anyway(), "the grace period to pass")
    checked = check_reply(st.store, st.cfg, out.reply_id, sam, env=st.env)
    assert checked.status == "not_found" and "Post anyway" in checked.message
    assert post_reply(st.store, st.cfg, st.case_id, sam, TEXT, key=key, env=st.env).status == "not_found"
    with pytest.raises(ReplyConflict, match="may already be up"):
        post_reply(st.store, st.cfg, st.case_id, sam, TEXT, key=new_key(), env=st.env)
    with pytest.raises(cases.CaseError, match="say why"):
        post_anyway(st.store, st.cfg, out.reply_id, sam, reason="  ", env=st.env)
    assert st.held(TEXT) == 0
    st.platform.bad.never_store = False
    sent = post_anyway(st.store, st.cfg, out.reply_id, sam, reason="Checked the thread myself: nothing from us",
                       env=st.env)
    assert sent.status == "posted" and st.held(TEXT) == 1
    with st.store.session() as s:
        [ev] = s.scalars(select(Event).where(Event.action == "reply_post_anyway")).all()
        assert ev.actor == "Sam Agent" and ev.detail["reason"] == "Checked the thread myself: nothing from us"
        assert ev.detail["was"] == "not_found" and ev.detail["reply_id"] == out.reply_id


def test_a_refusal_fails_cleanly_and_the_same_draft_posts_once(hostile):
    st = hostile("discourse")
    st.platform.bad.refuse = 429  # Discourse's documented error shape; nobody recorded one
    st.platform.bad.refuse_body = {"errors": ["You've performed this action too many times."],
                                   "error_type": "rate_limit"}
    key = new_key()
    out = post_reply(st.store, st.cfg, st.case_id, actor(st), TEXT, key=key, env=st.env)
    assert out.status == "failed" and "too many times" in out.error and st.held(TEXT) == 0
    st.platform.bad.refuse = None
    again = post_reply(st.store, st.cfg, st.case_id, actor(st), TEXT, key=key, env=st.env)
    assert again.status == "posted" and st.held(TEXT) == 1
    assert "reply_to_post_number" not in st.platform.creates("/posts.json")[-1].json()  # the topic's first post


def test_edited_draft_after_a_lost_answer_still_looks_for_what_was_sent(hostile):
    st = hostile("discourse")
    st.platform.bad.drop_after_store = True
    key = new_key()
    assert post_reply(st.store, st.cfg, st.case_id, actor(st), "First text", key=key, env=st.env).status == "unknown"
    out = post_reply(st.store, st.cfg, st.case_id, actor(st), "Edited text", key=key, env=st.env)
    assert out.status == "posted" and st.platform.stored == ["First text"]
    assert [r.body for r in case_detail(st.store, st.case_id).replies] == ["First text"]  # what is really up


def test_a_failed_check_leaves_the_reply_unknown_and_posts_nothing(hostile):
    st = hostile("discourse")
    st.platform.bad.status_after_store = 502
    out = post_reply(st.store, st.cfg, st.case_id, actor(st), TEXT, key=new_key(), env=st.env)
    st.platform.routes = [r for r in st.platform.routes if "t/17" not in r[1].pattern]  # the topic cannot be read
    with pytest.raises(cases.CaseError, match="nothing was posted"):
        check_reply(st.store, st.cfg, out.reply_id, actor(st), env=st.env)
    assert [r.status for r in case_detail(st.store, st.case_id).replies] == ["unknown"]
    assert [u.reply_id for u in unsettled(st.store, st.cfg, st.case_id)] == [out.reply_id]
    assert st.held(TEXT) == 1 and len(st.platform.creates("/posts.json")) == 1


def test_only_a_reply_with_our_text_counts_as_ours(hostile):
    """Time alone proves nothing: another reply of ours to the same post since then is not this one."""
    st = hostile("discourse", check_grace_seconds=0)
    st.platform.bad.never_store = True
    out = post_reply(st.store, st.cfg, st.case_id, actor(st), TEXT, key=new_key(), env=st.env)
    st.platform.add_posts(3, text="A different answer of ours (#{i})")
    assert check_reply(st.store, st.cfg, out.reply_id, actor(st), env=st.env).status == "not_found"


# --- two processes, and kill -9 between the platform's answer and our commit ----------------------


@pytest.fixture
def hostile_db(tmp_path, db_url):
    """The same on the `db_url` database (SQLite, then PostgreSQL when configured)."""
    from desk.store.db import connect

    store = connect(db_url)
    yield from _stages(store, tmp_path)
    store.close()


def test_two_dashboards_posting_at_once_reach_the_platform_once(hostile_db, db_url, tmp_path):
    st = hostile_db("discourse", publish_deadline_seconds=8, check_deadline_seconds=8, stale_after_seconds=20)
    st.platform.bad.answer_delay = 1.5  # slow enough that both are in flight together
    go = tmp_path / "go"
    procs = [_poster(st.cfg.path, db_url, st.case_id, new_key(), f"{TEXT} ({who})", env=st.env, go=go)
             for who in ("Sam's dashboard", "Morgan's dashboard")]
    wait_for(lambda: len(list(tmp_path.glob("go.ready-*"))) == 2, "both dashboards to be ready", 60)
    go.touch()  # they click within milliseconds of each other
    results = [json.loads(p.communicate(timeout=60)[0].strip().splitlines()[-1]) for p in procs]
    assert sorted(r["status"] for r in results) == ["conflict", "posted"], results
    assert len(st.platform.stored) == 1


@pytest.mark.parametrize("kind", PLATFORMS)
def test_kill_9_between_the_platforms_answer_and_our_commit(hostile_db, db_url, tmp_path, kind):
    st = hostile_db(kind, stale_after_seconds=3, check_deadline_seconds=2)
    marker = tmp_path / "hung"
    key = new_key()
    _kill_at(_poster(st.cfg.path, db_url, st.case_id, key, TEXT, env=st.env,
                     failpoint=f"reply_after_call:{marker}"), marker)
    assert st.held(TEXT) == 1  # the platform has it; our database still says 'posting'
    with pytest.raises(ReplyConflict, match="right now"):
        post_reply(st.store, st.cfg, st.case_id, actor(st), "Another", key=new_key(), env=st.env)
    wait_for(lambda: unsettled(st.store, st.cfg, st.case_id), "the orphaned attempt to go stale")
    [pending] = unsettled(st.store, st.cfg, st.case_id)
    assert pending.status == "posting"
    found = check_reply(st.store, st.cfg, pending.reply_id, actor(st), env=st.env)
    assert found.status == "posted" and st.held(TEXT) == 1
    assert open_queue(st.store).items[0].status == "replied"


# --- the case page: unknown, check, not yet conclusive, not found, post anyway (Streamlit AppTest) --------


def test_case_page_flow_from_a_lost_answer_to_post_anyway(hostile, monkeypatch, tmp_path):
    from streamlit.testing.v1 import AppTest

    # the grace period outlasts the page's runs from the post to the first check even on a loaded machine
    st = hostile("discourse", check_grace_seconds=8)
    monkeypatch.setenv("HEARKEN_CONFIG", str(st.cfg.path))
    monkeypatch.setenv("HEARKEN_DATABASE_URL", str(st.store.engine.url))
    for k, v in st.env.items():
        monkeypatch.setenv(k, v)
    st.platform.bad.never_store = True  # the forum swallows the request: nothing is up
    cid = st.case_id
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=60)
    at.switch_page("views/case.py")
    at.query_params["id"] = str(cid)
    at.run()
    at.text_area(key=f"draft-{cid}").input(TEXT).run()
    at.button(key="post").click().run()
    assert not at.exception
    assert "did not confirm the reply" in at.warning[0].value
    [pending] = unsettled(st.store, st.cfg, cid)
    rid = pending.reply_id
    assert any("may or may not be on the platform (the answer was lost)" in w.value for w in at.warning)
    assert at.button(key="post").disabled  # held: one public reply, never two
    keys = {b.key for b in at.button}
    assert f"check-{rid}" in keys and f"anyway-{rid}" not in keys  # no second post inside the grace period

    at.button(key=f"check-{rid}").click().run()
    assert any("not on the platform yet" in w.value and "not conclusive before" in w.value for w in at.warning)
    assert any("Not finding it is conclusive from" in w.value for w in at.warning), [w.value for w in at.warning]
    assert f"anyway-{rid}" not in {b.key for b in at.button}

    wait_for(lambda: unsettled(st.store, st.cfg, cid)[0].may_post_anyway(), "the grace period to pass")
    at.button(key=f"check-{rid}").click().run()
    assert any("is not on the platform" in e.value for e in at.error)
    assert at.button(key=f"anyway-{rid}").disabled  # a reason first
    st.platform.bad.never_store = False
    at.text_area(key=f"anyway-reason-{rid}").input("Read the thread myself: no reply from us").run()
    at.button(key=f"anyway-{rid}").click().run()
    assert not at.exception
    assert at.success[0].value.startswith("Posted publicly")
    assert st.held(TEXT) == 1
    shown = [t.value for t in at.text]
    assert any(t.startswith("Posted anyway by Alex Admin") and t.endswith("no reply from us") for t in shown)
    detail = at.table[0].value.to_dict("records")
    assert any(r["action"] == "reply post anyway" and "no reply from us" in str(r["detail"]) for r in detail)
    assert f"anyway-{rid}" not in {b.key for b in at.button} and at.text_area(key=f"draft-{cid}").value == ""


def test_replies_settings_are_checked_with_file_line_and_key(tmp_path):
    from desk.config.schema import ConfigError, load_config

    path = tmp_path / "bad.yaml"
    path.write_text("brand: {terms: [Northwind]}\nreplies:\n  publish_deadline_seconds: 30\n  stale_after_seconds: 20\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    [problem] = err.value.problems
    assert problem.line == 2 and problem.key == "replies" and "must be longer than the publish" in problem.message
    path.write_text("brand: {terms: [Northwind]}\nreplies: {check_grace_seconds: -1}\n")
    with pytest.raises(ConfigError, match="replies.check_grace_seconds"):
        load_config(path)
