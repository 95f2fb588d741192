"""The X collector around a real tweepy client: recorded pages replayed with vcrpy, paging on a local server."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import pytest
import vcr

from collectors import AuthFailed, BadPayload, NotConfigured, RateLimited, TermMatcher, build
from collectors.x.settings import XSource
from collectors.x.collect import build_query
from tests.collector_helpers import LocalServer, Reply, fixture

ENV = {"X_BEARER_TOKEN": "test-bearer"}
UTC = timezone.utc


def make(terms=("obama",), own=(), exclusions=(), env=ENV, **kw):
    settings = XSource(type="x", name="x-brand", **kw)
    return build(settings, matcher=TermMatcher(terms, exclusions), own_accounts=list(own), env=env)


def twarc_cassette(tmp_path, name, *lines):
    """A vcrpy cassette replaying twarc's recorded search pages (the __twarc key holds the request URL)."""
    interactions = []
    for line in lines:
        page = json.loads(line)
        meta = page.pop("__twarc")
        interactions.append({
            "request": {"method": "GET", "uri": meta["url"], "body": None, "headers": {}},
            "response": {"status": {"code": 200, "message": "OK"},
                         "headers": {"content-type": ["application/json; charset=utf-8"]},
                         "body": {"string": json.dumps(page)}},
        })
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"interactions": interactions, "version": 1}))
    return path


def replay(sent=None):
    """vcrpy in playback only; `sent` collects the requests tweepy actually made."""
    return vcr.VCR(serializer="json", record_mode="none", decode_compressed_response=True,
                   match_on=["method", "scheme", "host", "port", "path"],
                   before_record_request=lambda r: (sent.append(r) if sent is not None else None) or r)


@pytest.fixture
def noflat(tmp_path):
    line = fixture("x", "noflat.jsonl").read_text().splitlines()[0]
    return twarc_cassette(tmp_path, "noflat", line)


def test_recorded_search_page_gives_the_fields_of_a_known_post(noflat):
    sent = []
    with replay(sent).use_cassette(str(noflat)):
        result = make().poll(None)
    assert result.reads == 100
    by_id = {m.external_id: m for m in result.mentions}
    m = by_id["1380242586288328707"]
    assert m.author == "@PDXPapaG"
    assert m.url == "https://x.com/PDXPapaG/status/1380242586288328707"
    assert m.posted_at == datetime(2021, 4, 8, 19, 34, 10, tzinfo=UTC)
    assert m.thread_id == "1380220754978086917"
    assert m.matched_terms == ("obama",)
    assert m.body.startswith("@TalkToTheFoot @JackPosobiec None of whom")
    # Retweets (47 of the 100) are never mentions.
    assert "1380242611781386245" not in by_id
    assert all(not m.body.startswith("RT @") for m in result.mentions)
    # The request went out through tweepy with our query, expansions and the page size.
    query = dict(sent[-1].query)  # vcrpy also passes the recorded request through the hook when loading
    assert query["query"] == '"obama" -is:retweet'
    assert query["max_results"] == "100" and "author_id" in query["expansions"].split(",")
    assert result.cursor == {"since_id": "1380242611781386245"}  # the newest post read, retweet or not


def test_recorded_reply_parent(noflat):
    line = json.loads(fixture("x", "noflat.jsonl").read_text().splitlines()[0])
    tweet = next(t for t in line["data"] if t["id"] == "1380242586288328707")
    parent = next(r["id"] for r in tweet["referenced_tweets"] if r["type"] == "replied_to")
    with replay().use_cassette(str(noflat)):
        result = make().poll(None)
    assert {m.external_id: m for m in result.mentions}["1380242586288328707"].parent_id == parent


def test_our_own_posts_are_skipped_and_answers_to_us_kept(noflat):
    # Recorded: _RickTheRuler_ answers @Its_Jus_Obama ("I hit you bro lmao"), which does not name the term.
    # The_Reaper2008 posts twice about Obama. Here both accounts play "ours".
    with replay().use_cassette(str(noflat)):
        result = make(own=["The_Reaper2008", "@Its_Jus_Obama"]).poll(None)
    authors = {m.author for m in result.mentions}
    assert "@The_Reaper2008" not in authors
    [answer] = [m for m in result.mentions if m.extra.get("reply_to_own")]
    assert answer.external_id == "1380242045265190917"
    assert answer.author == "@_RickTheRuler_" and answer.matched_terms == ()
    assert answer.thread_id == "1380205843564482561"


def test_a_recorded_page_without_the_fields_we_need_sets_each_post_aside_with_the_reason():
    # tweepy's own recording asked for no tweet.fields: posts have id and text only, no created_at or author.
    cassette = fixture("x", "test_client_search_recent_tweets.yaml")
    with vcr.VCR(record_mode="none", decode_compressed_response=True,
                 match_on=["method", "scheme", "host", "port", "path"]).use_cassette(str(cassette)):
        result = make(terms=["Tweepy"]).poll(None)
    assert result.mentions == [] and len(result.set_aside) == result.reads == 10
    first = result.set_aside[0]
    assert first.reason.startswith(f"x '{first.external_id}': no 'created_at' field (were tweet.fields")
    assert '"text":' in first.raw and first.external_id.isdigit()
    assert result.cursor == {"since_id": max(a.external_id for a in result.set_aside)}  # read past, not again


def test_query_from_terms_exclusions_and_own_accounts():
    q = build_query(["acme", "acme corp"], ["acme anvil"], ["acme_help"], "lang:en")
    assert q == '("acme" OR "acme corp" OR to:acme_help) -"acme anvil" -is:retweet -from:acme_help lang:en'


def test_no_bearer_token_disables_the_source():
    with pytest.raises(NotConfigured, match="X_BEARER_TOKEN"):
        make(env={})


# -- paging and the read cap, on a local server speaking X's search format ----------------------------------

class FakeSearch:
    """Newest-first search/recent over posts with ids 1001..1000+n, paging like X (since_id, until_id, next_token)."""

    def __init__(self, n, remaining=None):
        self.ids = list(range(1001, 1001 + n))
        self.remaining = remaining  # x-rate-limit-remaining to send with each page, counting down

    def __call__(self, req):
        since, until = req.arg("since_id"), req.arg("until_id")
        size = int(req.arg("max_results"))
        ids = [i for i in reversed(self.ids) if (since is None or i > int(since)) and (until is None or i < int(until))]
        start = int(req.arg("pagination_token") or req.arg("next_token") or 0)
        page = ids[start:start + size]
        base = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
        data = [{"id": str(i), "text": f"acme outage #{i}", "author_id": "7", "conversation_id": str(i),
                 "created_at": (base + timedelta(seconds=i - 1000)).isoformat().replace("+00:00", "Z")} for i in page]
        meta = {"result_count": len(page)}
        if page:
            meta.update(newest_id=str(page[0]), oldest_id=str(page[-1]))
        if start + size < len(ids):
            meta["next_token"] = str(start + size)
        headers = {}
        if self.remaining is not None:
            self.remaining -= 1
            headers = {"x-rate-limit-limit": "60", "x-rate-limit-remaining": str(self.remaining),
                       "x-rate-limit-reset": str(int(time.time()) + 900)}
        return Reply(200, {"data": data, "includes": {"users": [{"id": "7", "username": "cust", "name": "C"}]},
                           "meta": meta} if page else {"meta": meta}, headers)


@pytest.fixture
def server():
    with LocalServer() as s:
        yield s


def test_a_burst_is_paged_back_to_since_id(server):
    server.route("/2/tweets/search/recent", FakeSearch(35))
    collector = make(terms=["acme"], own=["acme_help"], base_url=server.url, page_size=10)
    result = collector.poll({"since_id": "1005"})
    assert [int(m.external_id) for m in result.mentions] == list(range(1006, 1036))
    assert result.reads == 30 and result.cursor == {"since_id": "1035"}
    assert [r.arg("since_id") for r in server.requests] == ["1005"] * 3
    assert server.requests[0].arg("query") == '("acme" OR to:acme_help) -is:retweet -from:acme_help'
    assert result.mentions[0].posted_at == datetime(2026, 11, 23, 9, 0, 6, tzinfo=UTC)


def test_the_first_poll_reads_one_page_only(server):
    server.route("/2/tweets/search/recent", FakeSearch(35))
    result = make(terms=["acme"], base_url=server.url, page_size=10).poll(None)
    assert len(server.requests) == 1 and result.reads == 10
    assert result.cursor == {"since_id": "1035"}


def test_the_read_cap_stops_reading_and_the_backlog_is_read_later(server):
    server.route("/2/tweets/search/recent", FakeSearch(35))
    collector = make(terms=["acme"], base_url=server.url, page_size=10, monthly_read_cap=1000)
    capped = collector.poll({"since_id": "1005"}, read_budget=25)
    assert capped.reads == 20  # two pages of 10; a third would pass the cap
    assert capped.capped and any("monthly read cap reached" in n for n in capped.notes)
    assert capped.cursor == {"since_id": "1005", "backlog": {"until_id": "1016", "newest": "1035"}}

    nothing = collector.poll(capped.cursor, read_budget=0)
    assert nothing.reads == 0 and nothing.cursor == capped.cursor and len(server.requests) == 2 and nothing.capped

    rest = collector.poll(capped.cursor, read_budget=100)
    assert [int(m.external_id) for m in rest.mentions] == list(range(1006, 1016))
    assert server.requests[-1].arg("until_id") == "1016"
    assert rest.cursor == {"since_id": "1035"} and not rest.capped


def test_max_pages_keeps_a_backlog(server):
    server.route("/2/tweets/search/recent", FakeSearch(50))
    collector = make(terms=["acme"], base_url=server.url, page_size=10, max_pages=2)
    first = collector.poll({"since_id": "1000"})
    assert first.reads == 20 and "stopped after 2 pages" in first.notes[0]
    second = collector.poll(first.cursor)
    third = collector.poll(second.cursor)
    seen = [int(m.external_id) for r in (first, second, third) for m in r.mentions]
    assert sorted(seen) == list(range(1001, 1051)) and len(seen) == 50
    assert third.cursor == {"since_id": "1050"}


def test_a_used_up_rate_window_stops_paging_before_a_429(server):
    server.route("/2/tweets/search/recent", FakeSearch(50, remaining=2))
    collector = make(terms=["acme"], base_url=server.url, page_size=10)
    result = collector.poll({"since_id": "1000"})
    assert result.reads == 20 and len(server.requests) == 2
    assert "rate-limit window used up" in result.notes[0]
    assert result.cursor == {"since_id": "1000", "backlog": {"until_id": "1031", "newest": "1050"}}


def test_a_429_reports_when_the_limit_resets(server):
    # No X 429 was ever recorded; this follows X's documented answer: status 429, x-rate-limit-* headers, problem JSON.
    reset = int(time.time()) + 600
    server.route("/2/tweets/search/recent", Reply(429, {"title": "Too Many Requests", "detail": "Too Many Requests",
                                                        "type": "about:blank", "status": 429},
                                                  {"x-rate-limit-limit": "450", "x-rate-limit-remaining": "0",
                                                   "x-rate-limit-reset": str(reset)}))
    with pytest.raises(RateLimited) as info:
        make(terms=["acme"], base_url=server.url).poll({"since_id": "1"})
    assert 590 <= info.value.retry_after <= 601
    assert "429" in info.value.reason and "resets in" in info.value.reason
    assert "/2/tweets/search/recent" in info.value.url


def test_a_refused_token_needs_a_person(server):
    server.route("/2/tweets/search/recent", Reply(401, {"title": "Unauthorized", "type": "about:blank",
                                                        "status": 401, "detail": "Unauthorized"}))
    with pytest.raises(AuthFailed, match="401"):
        make(terms=["acme"], base_url=server.url).poll(None)


def test_a_body_that_is_not_json(server):
    server.route("/2/tweets/search/recent", Reply(200, "<html>upstream error</html>", {"Content-Type": "text/html"}))
    with pytest.raises(BadPayload, match="not JSON"):
        make(terms=["acme"], base_url=server.url).poll(None)
