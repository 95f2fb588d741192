"""The Reddit collector around a real PRAW client: PRAW's own cassettes replayed with vcrpy, paging on a local server."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone

import pytest
import vcr

from collectors import AuthFailed, BadPayload, NotConfigured, RateLimited, TermMatcher, build
from collectors.reddit.client import ratelimit_wait
from collectors.reddit.settings import RedditSource
from tests.collector_helpers import LocalServer, Reply, fixture

ENV = {"REDDIT_CLIENT_ID": "id", "REDDIT_CLIENT_SECRET": "secret"}
UTC = timezone.utc


def make(terms=("acme",), own=(), env=ENV, **kw):
    settings = RedditSource(type="reddit", name="reddit-brand", **kw)
    return build(settings, matcher=TermMatcher(terms), own_accounts=list(own), env=env)


def replay(name, match_on=("method", "scheme", "host", "port", "path", "query")):
    return vcr.VCR(serializer="json", record_mode="none", match_on=list(match_on)).use_cassette(
        str(fixture("reddit", name)))


def test_recorded_new_submissions_of_a_subreddit():
    with replay("TestSubredditListings.test_new.json"):
        result = make(terms=["doctor"], subreddits=["AskReddit/new"]).poll(None)
    assert result.reads == 100
    m = {x.external_id: x for x in result.mentions}["t3_48fbig"]
    assert m.author == "LUXURY_COCK_RINGS"
    assert m.title.startswith("How would you react if you found out that your doctor had been wearing")
    assert m.url == "https://www.reddit.com/r/AskReddit/comments/48fbig/how_would_you_react_if_you_found_out_that_your/"
    assert m.posted_at == datetime.fromtimestamp(1456821384, UTC)
    assert m.thread_id == "t3_48fbig" and m.parent_id is None
    assert m.extra["subreddit"] == "AskReddit" and m.extra["kind"] == "submission"
    assert result.cursor["listings"]["r/askreddit/new"] == {"newest": "t3_48fbm9", "newest_utc": 1456821458.0}


def test_recorded_stream_pages_forward_from_the_cursor():
    # PRAW recorded r/all/new?limit=100, then r/all/new?limit=100&before=t3_5jo13y (4 newer posts).
    with replay("TestSubredditStreams.test_submissions.json"):
        collector = make(terms=["Alzheimer's", "Rush"], subreddits=["all/new"])
        first = collector.poll(None)
        assert first.reads == 100
        assert first.cursor["listings"]["r/all/new"]["newest"] == "t3_5jo13y"
        assert [m.external_id for m in first.mentions] == ["t3_5jo13y"]  # "Farewell Rush - ..."
        second = collector.poll(first.cursor)
    assert second.reads == 4
    [m] = second.mentions
    assert m.external_id == "t3_5jo144" and m.author == "3joan" and m.extra["subreddit"] == "UpliftingNews"
    assert m.matched_terms == ("Alzheimer's",)
    assert second.cursor["listings"]["r/all/new"] == {"newest": "t3_5jo144", "newest_utc": 1482373052.0}


def test_recorded_search_results():
    # Recorded with sort=relevance; we ask for sort=new, so this replay matches on the path only.
    sent = []
    with vcr.VCR(serializer="json", record_mode="none", match_on=["method", "host", "path"],
                 before_record_request=lambda r: sent.append(r) or r).use_cassette(
            str(fixture("reddit", "TestSubreddit.test_search.json"))):
        result = make(terms=["PRAW"], search=["praw oauth search"]).poll(None)
    assert result.reads == 6
    ids = {m.external_id: m for m in result.mentions}
    assert len(ids) == 6  # each names PRAW in its title or text, one of them in Japanese
    assert ids["t3_3gpbiu"].author == "dClauzel"
    assert ids["t3_3gpbiu"].posted_at == datetime.fromtimestamp(1439370514, UTC)
    assert ids["t3_4at068"].title == "たびたび話題になるサイドバーの閲覧中ユーザ数について（また）調べた"
    assert ids["t3_4at068"].extra["subreddit"] == "p18s"
    query = dict(sent[-1].query)
    assert query["q"] == "praw oauth search" and query["sort"] == "new"
    state = result.cursor["listings"]["search:praw oauth search"]
    assert len(state["seen"]) == 6 and state["newest_utc"] == max(m.posted_at.timestamp() for m in result.mentions)


def test_recorded_429_with_retry_after():
    # prawcore's recording of a 429 (Retry-After: 4) answered GET /api/v1/me; replayed here for our listing request.
    with replay("TestSession.test_request__too__many_requests__with_retry_headers.json", ("method", "host")):
        with pytest.raises(RateLimited) as info:
            make(subreddits=["acme/new"]).poll(None)
    assert info.value.retry_after == 4
    assert "429" in info.value.reason


def test_recorded_429_on_the_token_request():
    with replay("TestSession.test_request__too__many_requests__without_retry_headers.json", ("method", "host")):
        with pytest.raises(RateLimited) as info:
            make(subreddits=["acme/new"]).poll(None)
    assert info.value.retry_after is None


def test_missing_credentials_disable_the_source():
    with pytest.raises(NotConfigured, match="REDDIT_CLIENT_SECRET"):
        make(env={"REDDIT_CLIENT_ID": "x"}, subreddits=["acme"])
    with pytest.raises(NotConfigured, match="no subreddits"):
        make()


def test_ratelimit_message_from_reddits_documented_wording():
    # Reddit's RATELIMIT error text (not recorded anywhere): "Looks like you've been doing that a lot. Take a break for 9 minutes before trying again."
    assert ratelimit_wait("Take a break for 9 minutes before trying again.") == 540
    assert ratelimit_wait("Take a break for 30 seconds before trying again.") == 30


# -- a local server speaking Reddit's listing format -----------------------------------------------------

def thing(kind, n, *, author="customer", body="acme broke", parent=None, created=1_763_000_000):
    base = {"id": f"{n:x}", "name": f"{kind}_{n:x}", "author": author, "subreddit": "acme",
            "subreddit_name_prefixed": "r/acme", "created_utc": float(created + n), "author_fullname": f"t2_{author}"}
    if kind == "t3":
        base.update(title=f"post {n}: {body}", selftext="", is_self=True, url=f"https://www.reddit.com/r/acme/comments/{n:x}/",
                    permalink=f"/r/acme/comments/{n:x}/post/")
    else:
        base.update(body=body, link_id="t3_1", parent_id=parent or "t3_1", link_title="post 1",
                    permalink=f"/r/acme/comments/1/post/{n:x}/")
    return {"kind": kind, "data": base}


class FakeListing:
    """/r/acme/<kind> newest first, paged with before/after like Reddit."""

    def __init__(self, kind, things):
        self.things = things  # oldest first
        self.kind = kind

    def __call__(self, req):
        limit = int(req.arg("limit", "25"))
        names = [t["data"]["name"] for t in self.things]
        if req.arg("before"):
            if req.arg("before") not in names:
                page = []
            else:
                i = names.index(req.arg("before"))
                page = list(reversed(self.things[i + 1:i + 1 + limit]))
        else:
            page = list(reversed(self.things))[:limit]
        return Reply(200, {"kind": "Listing", "data": {"children": page, "after": None, "before": None}},
                     {"x-ratelimit-remaining": "590", "x-ratelimit-used": "10", "x-ratelimit-reset": "300"})


@pytest.fixture
def reddit_server():
    with LocalServer() as s:
        s.route("/api/v1/access_token", Reply(200, {"access_token": "tok", "token_type": "bearer",
                                                    "expires_in": 3600, "scope": "*"}), method="POST")
        yield s


def test_a_burst_bigger_than_a_page_is_read_to_the_end(reddit_server):
    posts = [thing("t3", n) for n in range(1, 12)]
    reddit_server.route("/r/acme/new", FakeListing("t3", posts))
    collector = make(subreddits=["r/acme/new"], page_limit=3, base_url=reddit_server.url)
    first = collector.poll(None)
    assert [m.external_id for m in first.mentions] == ["t3_9", "t3_a", "t3_b"]  # newest page only
    posts.extend(thing("t3", n) for n in range(12, 20))  # 8 new posts, almost three pages
    second = collector.poll(first.cursor)
    assert [m.external_id for m in second.mentions] == [f"t3_{n:x}" for n in range(12, 20)]
    befores = [r.arg("before") for r in reddit_server.requests if r.path == "/r/acme/new"][1:]
    assert befores == ["t3_b", "t3_e", "t3_11"]
    assert second.cursor["listings"]["r/acme/new"]["newest"] == "t3_13"


def test_a_deleted_cursor_post_falls_back_to_the_newest_page(reddit_server):
    posts = [thing("t3", n) for n in range(1, 6)]
    reddit_server.route("/r/acme/new", FakeListing("t3", posts))
    collector = make(subreddits=["acme/new"], base_url=reddit_server.url)
    result = collector.poll({"listings": {"r/acme/new": {"newest": "t3_ff", "newest_utc": 1_763_000_003.0}}})
    assert [m.external_id for m in result.mentions] == ["t3_4", "t3_5"]
    assert "gone" in result.notes[0]


def test_own_comments_skipped_and_answers_to_them_kept(reddit_server):
    ours = thing("t1", 1, author="Acme_Support", body="Sorry, acme is fixing it")
    answer = thing("t1", 2, body="thanks, still down", parent="t1_1")
    other = thing("t1", 3, body="lunch?", parent="t1_2")
    reddit_server.route("/r/acme/comments", FakeListing("t1", [ours, answer, other]))
    reddit_server.route("/r/acme/new", FakeListing("t3", []))
    reddit_server.route("/api/info", lambda req: Reply(200, {"kind": "Listing", "data": {
        "children": [t for t in (ours, answer) if t["data"]["name"] in req.arg("id").split(",")],
        "after": None, "before": None}}))
    result = make(subreddits=["acme"], own=["u/acme_support"], base_url=reddit_server.url).poll(None)
    [m] = result.mentions
    assert m.external_id == "t1_2" and m.extra["reply_to_own"] is True and m.matched_terms == ()
    assert m.parent_id == "t1_1" and m.thread_id == "t3_1"
    assert m.url == "https://www.reddit.com/r/acme/comments/1/post/2/"
    info = [r for r in reddit_server.requests if r.path == "/api/info"]
    assert sorted(info[0].arg("id").split(",")) == ["t1_1", "t1_2"]


def test_a_body_that_is_not_json(reddit_server):
    reddit_server.route("/r/acme/new", Reply(200, "<html>we took reddit down to fix it</html>", {"Content-Type": "text/html"}))
    with pytest.raises(BadPayload) as info:
        make(subreddits=["acme/new"], base_url=reddit_server.url).poll(None)
    assert "r/acme/new" in info.value.reason or "r/acme/new" in (info.value.url or "")


def test_refused_app_credentials_need_a_person(reddit_server):
    reddit_server.route("/api/v1/access_token", Reply(401, {"message": "Unauthorized", "error": 401}), method="POST")
    with pytest.raises(AuthFailed, match="401"):
        make(subreddits=["acme"], base_url=reddit_server.url).poll(None)


def test_an_exhausted_window_is_rate_limited_without_sleeping(reddit_server):
    # Reddit's documented headers: x-ratelimit-remaining 0 and x-ratelimit-reset seconds; prawcore would sleep 300s.
    def handler(req):
        return Reply(200, {"kind": "Listing", "data": {"children": [], "after": None, "before": None}},
                     {"x-ratelimit-remaining": "0", "x-ratelimit-used": "600", "x-ratelimit-reset": "300"})
    reddit_server.route("/r/acme/new", handler)
    reddit_server.route("/r/acme/comments", handler)
    with pytest.raises(RateLimited) as info:
        make(subreddits=["acme"], base_url=reddit_server.url).poll(None)
    assert 290 < info.value.retry_after <= 300
    assert info.value.url.endswith("/r/acme/comments")
    assert json.dumps(info.value.reason)


def test_search_pages_back_only_to_the_newest_time_seen(reddit_server):
    posts = [thing("t3", n, body="acme down") for n in range(1, 8)]

    def search(req):  # sort=new, paged with after like Reddit
        rows = list(reversed(posts))
        start = [p["data"]["name"] for p in rows].index(req.arg("after")) + 1 if req.arg("after") else 0
        page = rows[start:start + 2]
        after = page[-1]["data"]["name"] if start + 2 < len(rows) else None
        return Reply(200, {"kind": "Listing", "data": {"children": page, "after": after, "before": None}})
    reddit_server.route("/r/all/search/", search)
    collector = make(search=["acme"], page_limit=2, base_url=reddit_server.url)
    first = collector.poll(None)
    assert [m.external_id for m in first.mentions] == ["t3_6", "t3_7"]
    posts.extend(thing("t3", n, body="acme down") for n in range(8, 12))
    second = collector.poll(first.cursor)
    assert [m.external_id for m in second.mentions] == ["t3_8", "t3_9", "t3_a", "t3_b"]
    assert [r.arg("after") for r in reddit_server.requests if r.path == "/r/all/search/"][1:] == [None, "t3_a", "t3_8"]


def test_an_empty_first_search_starts_from_now(reddit_server):
    reddit_server.route("/r/all/search/", Reply(200, {"kind": "Listing", "data": {"children": [], "after": None,
                                                                                 "before": None}}))
    before = time.time()
    result = make(search=["acme"], base_url=reddit_server.url).poll(None)
    assert result.cursor["listings"]["search:acme"]["newest_utc"] >= before


def test_a_post_in_a_subreddit_and_in_search_is_one_mention(reddit_server):
    posts = [thing("t3", n) for n in range(1, 4)]
    reddit_server.route("/r/acme/new", FakeListing("t3", posts))
    reddit_server.route("/r/all/search/", Reply(200, {"kind": "Listing", "data": {
        "children": list(reversed(posts)), "after": None, "before": None}}))
    result = make(subreddits=["acme/new"], search=["acme"], base_url=reddit_server.url).poll(None)
    assert [m.external_id for m in result.mentions] == ["t3_1", "t3_2", "t3_3"]
    assert result.reads == 6
