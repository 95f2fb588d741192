"""The Discourse collector against a real HTTP server on 127.0.0.1 serving recorded and self-written JSON."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from collectors import AuthFailed, BadPayload, NotConfigured, RateLimited, TermMatcher, build
from collectors.discourse.settings import DiscourseSource
from tests.collector_helpers import LocalServer, Reply, fixture


@pytest.fixture
def server():
    with LocalServer() as s:
        yield s


def make(server, terms=("acme",), own=("acme_support",), env=None, **kw):
    settings = DiscourseSource(type="discourse", name="community", base_url=server.url, **kw)
    return build(settings, matcher=TermMatcher(terms), own_accounts=list(own), env=env or {})


def post(pid, *, topic=5, number=None, user="customer", raw="my acme router is down", when=None, **kw):
    when = when or datetime(2026, 11, 1, tzinfo=timezone.utc) + timedelta(minutes=pid)
    return {"id": pid, "username": user, "user_id": 100 + pid, "topic_id": topic, "post_number": number or pid,
            "topic_slug": "router-down", "topic_title": "Router down", "created_at": when.isoformat().replace("+00:00", "Z"),
            "raw": raw, "cooked": f"<p>{raw}</p>", "post_type": 1, "reply_to_post_number": None, **kw}


def paged_posts(posts, per_page=10):
    """A /posts.json handler that pages like Discourse: newest first, `before` = a post id."""
    def handler(req):
        before = req.arg("before")
        rows = sorted((p for p in posts if before is None or p["id"] < int(before)), key=lambda p: -p["id"])
        return Reply(200, {"latest_posts": rows[:per_page]})
    return handler


def test_recorded_latest_posts_give_the_post_that_names_the_term(server):
    server.route("/posts.json", Reply(200, fixture("discourse", "posts_latest.json").read_bytes(),
                                      {"Content-Type": "application/json"}))
    host = server.url.removeprefix("http://")
    result = make(server, terms=["bullhonky"]).poll(None)
    assert result.reads == 4
    [m] = result.mentions
    assert m.external_id == f"{host}/t/11/2"
    assert m.author == "johndoe"
    assert m.title == "This is an uncategorized title"
    assert m.body == "holla bullhonky."
    assert m.posted_at == datetime(2020, 1, 25, 2, 10, 7, 971000, tzinfo=timezone.utc)
    assert m.url == f"{server.url}/t/this-is-an-uncategorized-title/11/2"
    assert m.thread_id == f"{host}/t/11"
    assert m.extra["topic_id"] == 11 and m.extra["post_number"] == 2 and m.extra["post_id"] == 15
    assert m.matched_terms == ("bullhonky",)
    assert result.cursor["latest"]["last_id"] == 15


def test_posts_by_our_own_account_are_never_mentions(server):
    # In the recording, user "system" writes "Discussion about this site ..." (post 2) and a welcome post.
    server.route("/posts.json", Reply(200, fixture("discourse", "posts_latest.json").read_bytes()))
    assert [m.author for m in make(server, terms=["site"], own=[]).poll(None).mentions] == ["system"]
    assert make(server, terms=["site"], own=["System"]).poll(None).mentions == []


def test_recorded_search_response(server):
    server.route("/search.json", Reply(200, fixture("discourse", "query_response.json").read_bytes()))
    host = server.url.removeprefix("http://")
    result = make(server, terms=["ecf65fcd"], read=["search"]).poll(None)
    [m] = result.mentions
    assert m.external_id == f"{host}/t/13/1"
    assert m.author == "discourse1"
    assert m.title == "2a6aa74e-e341-5e3c-1eaa-78c6331f305f"
    assert m.posted_at == datetime(2016, 10, 29, 14, 14, 20, 516000, tzinfo=timezone.utc)
    assert server.requests[0].arg("q") == "ecf65fcd order:latest"
    assert result.cursor["search"]["ecf65fcd"]["last_id"] == 16


def test_a_burst_bigger_than_a_page_is_read_back_to_the_cursor(server):
    posts = [post(i) for i in range(1, 26)]
    server.route("/posts.json", paged_posts(posts))
    collector = make(server)
    first = collector.poll(None)  # first poll: one page, no backfill
    assert [m.extra["post_id"] for m in first.mentions] == list(range(16, 26))
    assert first.cursor["latest"]["last_id"] == 25

    result = collector.poll({"latest": {"last_id": 3}})
    assert [m.extra["post_id"] for m in result.mentions] == list(range(4, 26))  # oldest first, nothing lost
    assert [r.arg("before") for r in server.requests[1:]] == [None, "16", "6"]
    assert result.cursor["latest"]["last_id"] == 25
    assert result.reads == 25


def test_paging_stops_at_max_pages_and_says_so(server):
    server.route("/posts.json", paged_posts([post(i) for i in range(1, 60)]))
    result = make(server, max_pages=2).poll({"latest": {"last_id": 1}})
    assert len(result.mentions) == 20
    assert "stopped after 2 pages" in result.notes[0]


def test_nothing_new_returns_nothing_and_keeps_the_cursor(server):
    server.route("/posts.json", paged_posts([post(i) for i in range(1, 6)]))
    result = make(server).poll({"latest": {"last_id": 5}})
    assert result.mentions == [] and result.cursor["latest"]["last_id"] == 5


def test_conditional_get_sends_the_etag_back_and_a_304_is_nothing_new(server):
    def handler(req):
        if req.headers.get("if-none-match") == '"v1"':
            return Reply(304)
        return Reply(200, {"latest_posts": [post(1)]}, {"ETag": '"v1"', "Last-Modified": "Sun, 01 Nov 2026 00:00:00 GMT"})
    server.route("/posts.json", handler)
    collector = make(server)
    first = collector.poll(None)
    assert len(first.mentions) == 1
    assert first.cursor["latest"]["etag"] == '"v1"'
    second = collector.poll(first.cursor)
    assert second.mentions == []
    assert server.requests[1].headers["if-modified-since"] == "Sun, 01 Nov 2026 00:00:00 GMT"
    assert second.cursor["latest"]["last_id"] == 1


def test_an_answer_to_our_own_post_is_kept_without_a_brand_term(server):
    ours = post(1, user="acme_support", raw="Sorry about that, acme is on it")
    answer = post(2, raw="still broken, thanks", reply_to_post_number=1, reply_to_user={"username": "acme_support"})
    other = post(3, raw="unrelated chatter", reply_to_post_number=2, reply_to_user={"username": "someone"})
    server.route("/posts.json", Reply(200, {"latest_posts": [other, answer, ours]}))
    host = server.url.removeprefix("http://")
    [m] = make(server).poll(None).mentions
    assert m.external_id == f"{host}/t/5/2"
    assert m.parent_id == f"{host}/t/5/1" and m.thread_id == f"{host}/t/5"
    assert m.extra["reply_to_own"] is True and m.matched_terms == ()


def test_a_429_is_rate_limited_with_the_servers_wait(server):
    # Built from Discourse's documented rate-limit answer (no one recorded one): 429, Retry-After, error_type rate_limit.
    server.route("/posts.json", Reply(429, {"errors": ["You've performed this action too many times."],
                                            "error_type": "rate_limit", "extras": {"wait_seconds": 42}},
                                      {"Retry-After": "42"}))
    with pytest.raises(RateLimited) as info:
        make(server).poll({"latest": {"last_id": 1}})
    assert info.value.retry_after == 42
    assert "429" in info.value.reason
    assert info.value.url.startswith(server.url + "/posts.json")


@pytest.mark.parametrize("header, wait", [("1e12", 1e12), ("inf", None), ("nan", None), ("-5", 0.0),
                                          ("soon", None)])
def test_a_retry_after_that_is_no_length_of_time_is_not_taken_for_one(server, header, wait):
    """A proxy's or a broken CDN's Retry-After: a huge number is passed on (the runner caps it and says so),
    infinity or garbage is no wait at all (the runner's own backoff applies)."""
    server.route("/posts.json", Reply(429, {"errors": ["slow down"]}, {"Retry-After": header}))
    with pytest.raises(RateLimited) as info:
        make(server).poll({"latest": {"last_id": 1}})
    assert info.value.retry_after == wait
    assert "429" in info.value.reason and "\n" not in info.value.reason


@pytest.mark.parametrize("reply, problem", [
    (Reply(200, "<html>Maintenance</html>", {"Content-Type": "text/html"}), "not JSON"),
    (Reply(200, {"topic_list": []}), "no latest_posts"),
])
def test_a_malformed_payload_names_what_and_where(server, reply, problem):
    server.route("/posts.json", reply)
    with pytest.raises(BadPayload) as info:
        make(server).poll(None)
    assert problem in info.value.reason
    assert info.value.url.startswith(server.url + "/posts.json")


def test_an_unset_api_key_variable_reads_the_public_forum_anonymously(server):
    # example.yaml names DISCOURSE_API_KEY as optional for public forums: the source must not be skipped
    server.route("/posts.json", Reply(200, {"latest_posts": [post(1, raw="acme is down again")]}))
    collector = make(server, api_key_env="DISCOURSE_KEY", api_username_env="DISCOURSE_USER", env={})
    assert collector.anonymous
    [m] = collector.poll(None).mentions
    assert m.text.endswith("acme is down again")
    assert "api-key" not in server.requests[0].headers and "api-username" not in server.requests[0].headers


def test_api_key_comes_from_the_environment_and_a_refusal_needs_a_person(server):
    server.route("/posts.json", Reply(403, {"errors": ["You are not permitted to view the requested resource."]}))
    collector = make(server, api_key_env="DISCOURSE_KEY", api_username_env="DISCOURSE_USER",
                     env={"DISCOURSE_KEY": "k123", "DISCOURSE_USER": "acme_support"})
    with pytest.raises(AuthFailed):
        collector.poll(None)
    assert server.requests[0].headers["api-key"] == "k123"
    assert server.requests[0].headers["api-username"] == "acme_support"


def test_settings_reject_unknown_keys():
    with pytest.raises(ValueError, match="bogus"):
        DiscourseSource.model_validate({"type": "discourse", "name": "x", "base_url": "https://f.example", "bogus": 1})
    assert json.loads(DiscourseSource(type="discourse", name="x", base_url="https://f.example").model_dump_json())["read"] == ["latest"]


def test_quoting_is_not_mentioning_but_quoting_us_is_an_answer(server):
    quote_only = post(1, raw='[quote="ann, post:1, topic:5"]\nacme is down\n[/quote]\nsame here')
    quotes_us = post(2, raw='[quote="Acme_Support, post:3, topic:5, full:true"]\nWe are on it\n[/quote]\nstill broken')
    server.route("/posts.json", Reply(200, {"latest_posts": [quotes_us, quote_only]}))
    [m] = make(server).poll(None).mentions
    assert m.extra["post_id"] == 2 and m.extra["reply_to_own"] is True
    assert "We are on it" in m.body  # the stored text is the whole post


def test_a_post_found_by_latest_and_by_search_is_one_mention(server):
    server.route("/posts.json", Reply(200, {"latest_posts": [post(3), post(2)]}))
    server.route("/search.json", Reply(200, {"posts": [post(3)], "topics": [{"id": 5, "title": "Router down"}],
                                             "grouped_search_result": {"more_posts": None}}))
    result = make(server, read=["latest", "search"]).poll(None)
    assert [m.extra["post_id"] for m in result.mentions] == [2, 3]
    assert result.cursor["search"]["acme"]["last_id"] == 3 and result.cursor["latest"]["last_id"] == 3


# -- answers to us: Discourse leaves out reply_to_user when the reply quotes the post it answers ---------
# (site setting suppress_reply_when_quoting, on by default); these posts follow that documented shape.

def test_a_reply_quoting_our_post_without_reply_to_user_answers_that_post(server):
    ours = post(3, number=3, user="acme_support", raw="Sorry, we are on it")
    answer = post(4, number=4, raw='[quote="acme_support, post:3, topic:5"]\nSorry, we are on it\n[/quote]\nstill broken',
                  reply_to_post_number=3)
    server.route("/posts.json", Reply(200, {"latest_posts": [answer, ours]}))
    host = server.url.removeprefix("http://")
    [m] = make(server).poll(None).mentions
    assert m.external_id == f"{host}/t/5/4" and m.extra["reply_to_own"] is True and m.matched_terms == ()
    assert m.parent_id == f"{host}/t/5/3" and m.extra["quotes"] == [f"{host}/t/5/3"]


def test_a_quote_of_us_in_cooked_html_only_is_an_answer_to_the_quoted_post(server):
    cooked = ('<aside class="quote no-group" data-username="acme_support" data-post="3" data-topic="5">'
              '<blockquote><p>We are on it</p></blockquote></aside><p>still broken</p>')
    answer = {**post(4, number=4, cooked=cooked), "raw": None}
    server.route("/posts.json", Reply(200, {"latest_posts": [answer]}))
    host = server.url.removeprefix("http://")
    [m] = make(server).poll(None).mentions
    assert m.extra["reply_to_own"] is True and m.parent_id == f"{host}/t/5/3"
    assert m.body == "We are on it still broken"


def test_an_answer_to_our_earlier_post_is_recognised_without_reply_to_user_or_quote(server):
    posts = [post(3, number=3, user="acme_support", raw="Sorry, we are on it")]
    server.route("/posts.json", paged_posts(posts))
    collector = make(server)
    first = collector.poll(None)
    host = server.url.removeprefix("http://")
    assert first.mentions == [] and first.cursor["ours"] == [f"{host}/t/5/3"]
    posts.append(post(4, number=4, raw="thanks, still broken though", reply_to_post_number=3))
    [m] = collector.poll(first.cursor).mentions
    assert m.extra["reply_to_own"] is True and m.parent_id == f"{host}/t/5/3"


def test_a_hostile_topic_slug_never_reaches_the_link(server):
    server.route("/posts.json", Reply(200, {"latest_posts": [post(1, topic_slug='x"><script>/../../')]}))
    [m] = make(server).poll(None).mentions
    assert m.url == f"{server.url}/t/x-script-/5/1"


# -- a forum whose ids go backwards: restored from a backup, moved to a new server, or one absurd id ------

def test_a_forum_renumbered_lower_has_its_new_posts_read_and_says_so(server):
    """After a move the forum numbers from 300 again; the cursor had seen 5002. The posts written since are
    new by their time, the poll warns (kept on the Sources page), and the next poll reads from 302."""
    before = [post(5000 + i, topic=40 + i, number=1) for i in range(3)]  # written 5000..5002 minutes after T
    server.route("/posts.json", paged_posts(before))
    collector = make(server)
    first = collector.poll(None)
    assert first.cursor["latest"]["last_id"] == 5002 and not first.warnings
    moved = [post(300 + i, topic=70 + i, number=1, when=datetime(2026, 11, 10, tzinfo=timezone.utc) + timedelta(minutes=i))
             for i in range(3)]
    server.route("/posts.json", paged_posts(moved))
    second = collector.poll(first.cursor)
    host = server.url.removeprefix("http://")
    assert [m.external_id for m in second.mentions] == [f"{host}/t/{70 + i}/1" for i in range(3)]
    [warning] = second.warnings
    assert "went backwards" in warning and "302" in warning and "5002" in warning
    assert second.cursor["latest"]["last_id"] == 302
    third = collector.poll(second.cursor)
    assert third.mentions == [] and third.warnings == []


def test_the_newest_post_deleted_is_no_renumbering_and_nothing_is_read_twice(server):
    server.route("/posts.json", paged_posts([post(i) for i in range(1, 6)]))
    collector = make(server)
    first = collector.poll(None)
    server.route("/posts.json", paged_posts([post(i) for i in range(1, 5)]))  # moderators removed post 5
    second = collector.poll(first.cursor)
    assert second.mentions == [] and second.warnings == []
    server.route("/posts.json", paged_posts([post(i) for i in (1, 2, 3, 4, 6)]))
    assert [m.extra["post_id"] for m in collector.poll(second.cursor).mentions] == [6]


def test_one_absurd_id_does_not_hide_the_posts_after_it(server):
    """A post with id 10^12 (a bug, or a hostile entry) once set the cursor past every id the forum will give."""
    t = datetime(2026, 11, 1, tzinfo=timezone.utc)
    absurd = post(10**12, topic=6, number=1, when=t + timedelta(minutes=2))
    server.route("/posts.json", paged_posts([post(1), absurd]))
    collector = make(server)
    first = collector.poll(None)
    assert first.cursor["latest"]["last_id"] == 10**12
    server.route("/posts.json", paged_posts([post(1), absurd, post(2, topic=7, number=1, when=t + timedelta(hours=1))]))
    assert [m.extra["post_id"] for m in collector.poll(first.cursor).mentions] == [2]
