"""Publishers against recorded platform traffic (vcrpy replay of PRAW's and Tweepy's own cassettes) and,
where nobody recorded the call (finding our reply again), a stand-in on 127.0.0.1 answering in the
platform's documented shape."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import pytest
import vcr

from desk.config.schema import load_config
from desk.cases.publishing import CannotPost, ReadOnly, NotPosted, Target, can_post, publisher_for
from desk.cases.replies import new_key, post_reply
from desk.team.users import actor_for_name
from tests.conftest import need_fixtures
from tests.e2e_helpers import StandIn, seed_case

CONFIG = """\
brand: {{terms: [Northwind]}}
accounts: {{reddit: [northwind_support], x: [NorthwindHelp]}}
sources:
  - {{type: reddit, name: reddit, subreddits: [northwind]{reddit_base}}}
  - {{type: x, name: x{x_base}}}
  - {{type: reddit, name: reddit-ro, subreddits: [northwind], read_only: true}}
team:
  - {{name: Sam Agent, email: sam@example.com, role: agent}}
"""

ENV = {"REDDIT_CLIENT_ID": "id", "REDDIT_CLIENT_SECRET": "secret", "REDDIT_USERNAME": "northwind_support",
       "REDDIT_PASSWORD": "pw", "X_BEARER_TOKEN": "b", "X_API_KEY": "k", "X_API_SECRET": "s",
       "X_ACCESS_TOKEN": "t", "X_ACCESS_SECRET": "ts"}


def make_cfg(tmp_path, reddit_base: str = "", x_base: str = ""):
    p = tmp_path / "pub.yaml"
    p.write_text(CONFIG.format(reddit_base=f", base_url: '{reddit_base}'" if reddit_base else "",
                               x_base=f", base_url: '{x_base}'" if x_base else ""))
    return load_config(p)


def replay(cassette, sent: list, **kw):
    def keep(request):
        sent.append(request)
        return request

    return vcr.VCR(record_mode="none", match_on=["method", "scheme", "host", "port", "path"],
                   before_record_request=keep, **kw).use_cassette(str(cassette))


def test_reddit_reply_to_submission_replays_recorded_comment(tmp_path, sqlite_store):
    cassette = need_fixtures("reddit", "TestSubmission.test_reply.json")
    cfg = make_cfg(tmp_path)
    cid = seed_case(sqlite_store, cfg, platform="reddit", source="reddit", external_id="t3_4b1tfm",
                    body="Northwind is down", extra={"fullname": "t3_4b1tfm", "subreddit": "northwind"},
                    url="https://www.reddit.com/r/northwind/comments/4b1tfm/")
    sent: list = []
    with replay(cassette, sent, serializer="json") as cass:
        del sent[:]  # loading the cassette ran the hook on the recorded requests
        out = post_reply(sqlite_store, cfg, cid, actor_for_name(cfg, "Sam Agent"), "Sorry! We're on it.",
                         key=new_key(), seen_replies=0, env=ENV)
    assert out.status == "posted" and out.external_id == "t1_d162ara"
    assert out.url.startswith("https://www.reddit.com/") and "d162ara" in out.url
    assert cass.play_count == 2  # the token, then one comment
    comments = [r for r in sent if r.path == "/api/comment/"]
    body = comments[0].body.decode()
    assert "thing_id=t3_4b1tfm" in body and "text=Sorry%21+We%27re+on+it." in body


def test_reddit_reply_to_comment_replays_recorded_comment(tmp_path):
    cassette = need_fixtures("reddit", "TestComment.test_reply.json")
    recorded = json.loads(cassette.read_text())["interactions"][1]["request"]["body"]
    parent = recorded.split("thing_id=")[1].split("&")[0]
    cfg = make_cfg(tmp_path)
    pub = publisher_for(cfg, "reddit", ENV)
    sent: list = []
    with replay(cassette, sent, serializer="json"):
        del sent[:]
        posted = pub.publish(Target("reddit", "reddit", parent, "t3_x", "", "u", {"fullname": parent}), "Thanks")
    assert posted.external_id.startswith("t1_")
    assert f"thing_id={parent}" in [r for r in sent if r.path == "/api/comment/"][0].body.decode()


def test_x_reply_sends_in_reply_to_tweet_id(tmp_path, sqlite_store):
    cassette = need_fixtures("x", "test_client_create_and_delete_tweet.yaml")
    cfg = make_cfg(tmp_path)
    cid = seed_case(sqlite_store, cfg, platform="x", source="x", external_id="1456000000000000001",
                    thread_id="1456000000000000001", body="@NorthwindHelp down again", author="@maria_t",
                    extra={"username": "maria_t"})
    sent: list = []
    with replay(cassette, sent, decode_compressed_response=True) as cass:
        del sent[:]  # loading the cassette ran the hook on the recorded requests
        out = post_reply(sqlite_store, cfg, cid, actor_for_name(cfg, "Sam Agent"), "Sorry Maria, on it. #HK1",
                         key=new_key(), seen_replies=0, env=ENV)
    assert out.status == "posted" and out.external_id == "1456012973835788293"
    assert out.url == "https://x.com/NorthwindHelp/status/1456012973835788293"
    assert cass.play_count == 1  # one create_tweet, nothing else
    posts = [r for r in sent if r.method == "POST" and r.path == "/2/tweets"]
    assert json.loads(posts[0].body) == {"text": "Sorry Maria, on it. #HK1",
                                         "reply": {"in_reply_to_tweet_id": "1456000000000000001"}}
    assert posts[0].headers["Authorization"].startswith("OAuth ")  # user context, not the bearer token


def test_x_reply_over_280_is_refused_before_any_call(tmp_path, sqlite_store):
    cfg = make_cfg(tmp_path)
    cid = seed_case(sqlite_store, cfg, platform="x", source="x", external_id="1", body="Northwind", extra={})
    from desk.cases.actions import CaseError

    with pytest.raises(CaseError, match="x allows 280"):
        post_reply(sqlite_store, cfg, cid, actor_for_name(cfg, "Sam Agent"), "y" * 281, key=new_key(), env=ENV)


def test_x_find_ours_reads_our_timeline(tmp_path):
    # Nobody recorded GET /2/users/me or /2/users/:id/tweets; these answers follow X's documented v2 shapes.
    now = datetime.now(timezone.utc)
    stand = StandIn()
    stand.routes[("GET", "/2/users/me")] = lambda r: (200, {"data": {"id": "42", "username": "NorthwindHelp",
                                                                       "name": "Northwind"}}, {})
    stand.routes[("GET", "/2/users/42/tweets")] = lambda r: (200, {"data": [
        {"id": "900", "text": "unrelated", "created_at": now.isoformat(), "referenced_tweets": []},
        {"id": "901", "text": "Sorry Maria", "created_at": now.isoformat(),
         "referenced_tweets": [{"type": "replied_to", "id": "555"}]}], "meta": {"result_count": 2}}, {})
    stand.start()
    try:
        cfg = make_cfg(tmp_path, x_base=stand.base_url)
        pub = publisher_for(cfg, "x", ENV)
        target = Target("x", "x", "555", "555", "", "@maria_t", {})
        found = pub.find_ours(target, "Sorry Maria", now - timedelta(minutes=1), timedelta(minutes=10))
        assert found is not None and found.external_id == "901"
        assert pub.find_ours(target, "Another text", now - timedelta(minutes=1), timedelta(minutes=10)) is None
        assert pub.find_ours(Target("x", "x", "556", "556", "", "@bob", {}), "x", now, timedelta(0)) is None
        timeline = [r for r in stand.requests if r.path.startswith("/2/users/42/tweets")][0]
        assert "start_time=" in timeline.path and "max_results=100" in timeline.path
    finally:
        stand.stop()


def test_reddit_find_ours_reads_our_comments(tmp_path):
    cassette = need_fixtures("reddit", "TestSubmission.test_reply.json")
    recorded = json.loads(json.loads(cassette.read_text())["interactions"][1]["response"]["body"]["string"])
    comment = recorded["json"]["data"]["things"][0]  # the recorded t1, now listed on our profile
    comment["data"].update(created_utc=time.time(), permalink="/r/test/comments/4b1tfm/_/d162ara/")
    stand = StandIn()
    stand.routes[("POST", "/api/v1/access_token")] = lambda r: (200, {"access_token": "tok", "token_type": "bearer",
                                                                     "expires_in": 3600, "scope": "*"}, {})
    stand.routes[("GET", "/user/northwind_support/comments")] = lambda r: (200, {
        "kind": "Listing", "data": {"after": None, "before": None, "children": [comment]}}, {})
    stand.start()
    try:
        cfg = make_cfg(tmp_path, reddit_base=stand.base_url)
        pub = publisher_for(cfg, "reddit", ENV)
        since = datetime.now(timezone.utc) - timedelta(minutes=1)
        skew = timedelta(minutes=10)
        found = pub.find_ours(Target("reddit", "reddit", "t3_4b1tfm", "t3_4b1tfm", "", "u", {}), "Test reply",
                              since, skew)
        assert found is not None and found.external_id == "t1_d162ara"
        assert pub.find_ours(Target("reddit", "reddit", "t3_other", "t3_other", "", "u", {}), "x", since, skew) is None
    finally:
        stand.stop()


def test_read_only_and_missing_credentials_never_post(tmp_path):
    cfg = make_cfg(tmp_path)
    with pytest.raises(ReadOnly):
        publisher_for(cfg, "reddit-ro", ENV)
    without_user = {k: v for k, v in ENV.items() if k != "REDDIT_PASSWORD"}
    with pytest.raises(CannotPost, match="no Reddit user credentials"):
        publisher_for(cfg, "reddit", without_user)
    ok, why = can_post(cfg, "x", {k: v for k, v in ENV.items() if not k.startswith("X_ACCESS")})
    assert not ok and "X_ACCESS_TOKEN" in why
    with pytest.raises(CannotPost, match="no longer in the configuration"):
        publisher_for(cfg, "gone", ENV)


def test_reddit_target_must_be_a_thing(tmp_path):
    pub = publisher_for(make_cfg(tmp_path), "reddit", ENV)
    with pytest.raises(NotPosted, match="not a Reddit"):
        pub.publish(Target("reddit", "reddit", "abc", None, "", "u", {}), "hi")


# --- refusals and lost answers, in the platforms' documented error shapes (nobody recorded these) ----------


def _reddit_stand_in(comment_answer):
    stand = StandIn()
    stand.routes[("POST", "/api/v1/access_token")] = lambda r: (200, {"access_token": "tok", "token_type": "bearer",
                                                                     "expires_in": 3600, "scope": "*"}, {})
    stand.routes[("POST", "/api/comment/")] = comment_answer
    return stand.start()


def test_reddit_ratelimit_is_a_clean_refusal(tmp_path):
    # Reddit's documented api_type=json error list: [code, message, field]
    stand = _reddit_stand_in(lambda r: (200, {"json": {"errors": [
        ["RATELIMIT", "Looks like you've been doing that a lot. Take a break for 9 minutes before trying again.",
         "ratelimit"]]}}, {}))
    try:
        pub = publisher_for(make_cfg(tmp_path, reddit_base=stand.base_url), "reddit", ENV)
        with pytest.raises(NotPosted, match="RATELIMIT"):
            pub.publish(Target("reddit", "reddit", "t3_abc", "t3_abc", "", "u", {"fullname": "t3_abc"}), "Hi")
        assert len(stand.posts("/api/comment/")) == 1
    finally:
        stand.stop()


def test_reddit_server_error_is_unknown(tmp_path):
    from desk.cases.publishing import MaybePosted

    stand = _reddit_stand_in(lambda r: (500, b"<html>oops</html>", {}))
    try:
        pub = publisher_for(make_cfg(tmp_path, reddit_base=stand.base_url), "reddit", ENV)
        with pytest.raises(MaybePosted):
            pub.publish(Target("reddit", "reddit", "t1_abc", "t3_x", "", "u", {"fullname": "t1_abc"}), "Hi")
        assert len(stand.posts("/api/comment/")) == 1  # prawcore would have sent it three times
    finally:
        stand.stop()


@pytest.mark.parametrize("status,body,expected", [
    (429, {"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank", "status": 429},
     "NotPosted"),
    (403, {"detail": "You are not allowed to create a Tweet with duplicate content.", "type": "about:blank",
           "title": "Forbidden", "status": 403}, "NotPosted"),
    (503, {"title": "Service Unavailable", "detail": "Service Unavailable", "type": "about:blank", "status": 503},
     "MaybePosted"),
])
def test_x_errors_map_to_refused_or_unknown(tmp_path, status, body, expected):
    import desk.cases.publishing as pubs

    stand = StandIn()
    stand.routes[("POST", "/2/tweets")] = lambda r: (status, body, {})
    stand.start()
    try:
        pub = publisher_for(make_cfg(tmp_path, x_base=stand.base_url), "x", ENV)
        with pytest.raises(getattr(pubs, expected)):
            pub.publish(Target("x", "x", "555", "555", "", "@maria_t", {}), "Sorry Maria")
        assert len(stand.posts("/2/tweets")) == 1
        assert json.loads(stand.posts("/2/tweets")[0].body) == {"text": "Sorry Maria",
                                                                "reply": {"in_reply_to_tweet_id": "555"}}
    finally:
        stand.stop()


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_x_never_follows_a_redirect_on_a_post_and_takes_it_as_unknown(tmp_path, status):
    """requests would send the POST again on a 307/308 (and a GET on the others, whose answer would be read as
    the post's): a platform that stored the reply before redirecting would hold two."""
    import desk.cases.publishing as pubs

    stand = StandIn()
    stand.routes[("POST", "/2/tweets")] = lambda r: (status, {"title": "moved"}, {"Location": "/2/tweets"})
    stand.routes[("GET", "/2/tweets")] = lambda r: (200, {"data": {"id": "1", "text": "Sorry Maria"}}, {})
    stand.start()
    try:
        pub = publisher_for(make_cfg(tmp_path, x_base=stand.base_url), "x", ENV)
        with pytest.raises(pubs.MaybePosted, match=f"HTTP {status}"):
            pub.publish(Target("x", "x", "555", "555", "", "@maria_t", {}), "Sorry Maria")
        assert [r.method for r in stand.requests] == ["POST"]
    finally:
        stand.stop()


def test_discourse_validation_error_is_refused_with_its_message(tmp_path):
    from tests.e2e_helpers import DISCOURSE_ENV, discourse_config

    stand = StandIn()
    stand.routes[("POST", "/posts.json")] = lambda r: (422, {"action": "create_post", "errors": [
        "Body is too similar to what you recently posted"]}, {})
    stand.start()
    try:
        p = tmp_path / "d.yaml"
        p.write_text(discourse_config(stand.base_url))
        pub = publisher_for(load_config(p), "community", DISCOURSE_ENV)
        with pytest.raises(NotPosted, match="too similar"):
            pub.publish(Target("discourse", "community", "h/t/5/2", "h/t/5", "", "k", {"topic_id": 5,
                                                                                   "post_number": 2}), "Hi")
    finally:
        stand.stop()


# Discourse's documented refusals (its errors list, one of 400/403/404/422/429), and answers that prove nothing:
# a proxy's redirect, timeout or page, a conflict, an empty 429. Built from Discourse's error format (nobody
# recorded one); what matters is which side of "nothing was posted" each lands on.
_SAYS = {"errors": ["You are not permitted to view the requested resource."], "error_type": "invalid_access"}


@pytest.mark.parametrize("status, body, outcome", [
    (400, {"errors": ["param is missing or the value is empty: raw"]}, "NotPosted"),
    (403, _SAYS, "NotPosted"),
    (404, {"errors": ["The requested URL or resource could not be found."], "error_type": "not_found"}, "NotPosted"),
    (422, {"action": "create_post", "errors": ["Body is too similar to what you recently posted"]}, "NotPosted"),
    (429, {"errors": ["You've performed this action too many times."], "error_type": "rate_limit"}, "NotPosted"),
    (301, b"", "MaybePosted"), (307, b"", "MaybePosted"), (308, b"", "MaybePosted"),
    (408, b"<html>Request Timeout</html>", "MaybePosted"), (409, {"errors": ["conflict"]}, "MaybePosted"),
    (403, b"<html>Forbidden by the firewall</html>", "MaybePosted"), (422, {"error": "odd"}, "MaybePosted"),
    (429, b"", "MaybePosted"), (502, b"<html>Bad Gateway</html>", "MaybePosted"),
])
def test_only_discourses_own_refusals_say_nothing_was_posted(tmp_path, status, body, outcome):
    import desk.cases.publishing as pubs
    from tests.e2e_helpers import DISCOURSE_ENV, discourse_config

    stand = StandIn()
    stand.routes[("POST", "/posts.json")] = lambda r: (status, body, {"Location": "/posts.json"} if status < 400 else {})
    stand.start()
    try:
        p = tmp_path / "d.yaml"
        p.write_text(discourse_config(stand.base_url))
        pub = publisher_for(load_config(p), "community", DISCOURSE_ENV)
        with pytest.raises(getattr(pubs, outcome)) as caught:
            pub.publish(Target("discourse", "community", "h/t/5/2", "h/t/5", "", "k", {"topic_id": 5,
                                                                                   "post_number": 2}), "Hi")
        assert len(stand.posts("/posts.json")) == 1, "a redirect on a post is never followed"
        assert str(status) in str(caught.value)
    finally:
        stand.stop()


# --- against hostile stand-ins (tests/hostile_publish.py): deadlines, byte caps, reply ids, text ---------


@pytest.fixture
def full_backlog():
    """An address whose listen queue is full: a connection to it never completes (an unreachable platform)."""
    import socket

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(0)
    fillers = []
    for _ in range(3):
        c = socket.socket()
        c.setblocking(False)
        try:
            c.connect(srv.getsockname())
        except BlockingIOError:
            pass
        fillers.append(c)
    yield f"http://127.0.0.1:{srv.getsockname()[1]}"
    for c in fillers:
        c.close()
    srv.close()


@pytest.mark.parametrize("kind", ["discourse", "x", "reddit"])
def test_an_unreachable_platform_fails_within_the_deadline_and_nothing_is_sent(tmp_path, sqlite_store, full_backlog,
                                                                               kind):
    from tests.hostile_publish import ENVS, FAST, config_text, seed_target

    path = tmp_path / "c.yaml"
    path.write_text(config_text(kind, full_backlog, FAST))
    cfg = load_config(path)
    cid = seed_target(kind, sqlite_store, cfg, full_backlog)
    started = time.monotonic()
    out = post_reply(sqlite_store, cfg, cid, actor_for_name(cfg, "Sam Agent"), "Sorry!", key=new_key(),
                     env=ENVS[kind])
    assert time.monotonic() - started < FAST["publish_deadline_seconds"] + 2
    assert out.status == "failed", out.message  # never sent: safe to try again
    assert "nothing was sent" in out.error or "could not reach" in out.error


@pytest.mark.parametrize("kind", ["discourse", "x", "reddit"])
def test_an_endless_answer_is_cut_by_the_byte_cap_long_before_the_deadline(tmp_path, sqlite_store, kind):
    from tests.hostile_publish import stage

    st = stage(kind, sqlite_store, tmp_path, publish_deadline_seconds=60, check_deadline_seconds=60,
               stale_after_seconds=120)
    try:
        st.platform.bad.flood = True
        started = time.monotonic()
        out = post_reply(st.store, st.cfg, st.case_id, actor_for_name(st.cfg, "Sam Agent"), "Sorry!", key=new_key(),
                         env=st.env)
        assert out.status == "unknown" and time.monotonic() - started < 30  # the cap ended it, not the deadline
        assert st.held("Sorry!") == 1
    finally:
        st.platform.stop()


def test_discourse_reply_id_is_the_collectors_mention_id_so_answers_join_their_case(tmp_path, sqlite_store):
    """Posted.external_id must be what the collector gives as the parent of a customer's answer to us."""
    from collectors import TermMatcher, build
    from collectors.discourse.settings import DiscourseSource
    from tests.hostile_publish import stage

    st = stage("discourse", sqlite_store, tmp_path)
    try:
        out = post_reply(st.store, st.cfg, st.case_id, actor_for_name(st.cfg, "Sam Agent"), "Sorry Kevin!",
                         key=new_key(), env=st.env)
        assert out.status == "posted" and out.external_id == f"{st.platform.base_url[len('http://'):]}/t/17/2"
        st.platform.add_posts(1, username="kevin.r", reply_to=2, text="Still broken, Northwind")
        collector = build(DiscourseSource(type="discourse", name="community", base_url=st.platform.base_url),
                          matcher=TermMatcher(["Northwind"]), own_accounts=["northwind_team"], env={})
        [answer] = [m for m in collector.poll(None).mentions if m.body == "Still broken, Northwind"]
        assert answer.parent_id == out.external_id
    finally:
        st.platform.stop()


@pytest.mark.parametrize("sent,shown", [
    ("Sorry Maria, we're on it & will update you", "@maria_t Sorry Maria, we're on it &amp; will update you"),
    ("See https://status.example.com/north for updates", "See https://t.co/AbC123 for updates"),
    ("Line one\n\nLine two  ", "Line one Line two"),
])
def test_our_text_is_recognised_as_platforms_give_it_back(sent, shown):
    from collectors.posting import same_text

    assert same_text(sent, shown)


def test_a_different_text_is_not_ours():
    from collectors.posting import same_text

    assert not same_text("Sorry Maria, we're on it", "Sorry Maria, we're on it. Update: fixed")
    assert not same_text("Sorry Maria", "@maria_t Sorry Mario")
