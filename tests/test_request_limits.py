"""Every request to a platform is bounded and stays where it was sent, whichever client makes it.

The four collectors (Discourse and forums over httpx, Reddit and X over requests through PRAW and
Tweepy) are polled against tests/hostile.py on 127.0.0.1: a server that drips one byte at a time
(where a per-read timeout never fires), stalls, floods, or redirects elsewhere. Each poll must end
by its deadline with a reason a person can act on, and a redirect must never carry credentials or
fetch content from another origin: the other origin's server counts what reached it.
"""

from __future__ import annotations

import gzip
import time
import tracemalloc
import zlib

import pytest

from collectors import CollectorError, TermMatcher, build
from collectors.net import http
from collectors.net import inflate
from tests.adversary import gzip_bomb
from collectors.discourse.settings import DiscourseSource
from collectors.forum.settings import ForumSource
from collectors.reddit.settings import RedditSource
from collectors.x.settings import XSource
from tests.hostile import Body, Drip, Flood, HostileServer, Json, Redirect, Stall, discourse_post

DEADLINE = 1.0  # seconds per request in these tests; the drip sends a byte every 0.3 s, so no read ever times out
TOKEN = {"access_token": "t0ken", "token_type": "bearer", "expires_in": 3600, "scope": "*"}
ENV = {"REDDIT_CLIENT_ID": "id", "REDDIT_CLIENT_SECRET": "secret", "X_BEARER_TOKEN": "x-bearer-secret",
       "DISCOURSE_KEY": "discourse-api-key", "DISCOURSE_USER": "northwind_team"}
# the path each collector reads first, under a server's root
FIRST_PATH = {"discourse": "/posts.json", "forum": "/thread", "reddit": "/r/acme/new", "x": "/2/tweets/search/recent"}


@pytest.fixture
def srv():
    with HostileServer() as s:
        yield s


@pytest.fixture
def other():
    """A second origin: whatever reaches it left the configured platform."""
    with HostileServer() as s:
        yield s


def collector(kind: str, url: str, **kw):
    common = {"name": kind, "request_deadline_seconds": DEADLINE, "max_response_bytes": 1_000_000, **kw}
    if kind == "discourse":
        settings = DiscourseSource(type="discourse", base_url=url, api_key_env="DISCOURSE_KEY",
                                   api_username_env="DISCOURSE_USER", **common)
    elif kind == "forum":
        settings = ForumSource(type="forum", pages=[url + "/thread"], preset="custom", respect_robots=False,
                               selectors={"post": "div.post", "body": ".body", "author": ".author",
                                          "time": "time@datetime", "next_page": "a.next@href"}, **common)
    elif kind == "reddit":
        settings = RedditSource(type="reddit", base_url=url, subreddits=["acme/new"], **common)
    else:
        settings = XSource(type="x", base_url=url, **common)
    return build(settings, matcher=TermMatcher(["Northwind"]), own_accounts=[], env=ENV)


def serve(srv: HostileServer, kind: str, behaviour) -> None:
    srv.serve(FIRST_PATH[kind], behaviour)
    srv.serve("/api/v1/access_token", Json(TOKEN))  # PRAW signs in first


def poll_failure(c) -> tuple[str, float]:
    start = time.monotonic()
    with pytest.raises(CollectorError) as caught:
        c.poll(None)
    return str(caught.value), time.monotonic() - start


KINDS = ["discourse", "forum", "reddit", "x"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_server_dripping_its_body_is_cut_off_at_the_request_deadline(srv, kind):
    serve(srv, kind, Drip(every=0.3))
    reason, took = poll_failure(collector(kind, srv.url))
    assert took < DEADLINE + 1.5, f"the poll took {took:.1f}s"
    assert "took longer than 1s for one request" in reason and "request_deadline_seconds" in reason, reason


@pytest.mark.parametrize("kind", ["discourse", "x"])  # one httpx and one requests client
@pytest.mark.parametrize("behaviour", [Drip(every=0.3, in_headers=True), Stall(), Stall(after_headers=True)],
                         ids=["dripped-headers", "stall", "stall-after-headers"])
def test_a_server_that_never_finishes_its_headers_or_never_answers_is_cut_off_too(srv, kind, behaviour):
    serve(srv, kind, behaviour)
    reason, took = poll_failure(collector(kind, srv.url))
    assert took < DEADLINE + 1.5, f"the poll took {took:.1f}s"
    assert "took longer than 1s" in reason, reason


@pytest.mark.parametrize("kind", KINDS)
def test_an_endless_answer_is_read_up_to_the_cap_and_no_further(srv, kind):
    serve(srv, kind, Flood())
    reason, took = poll_failure(collector(kind, srv.url))
    assert "more than 1,000,000 bytes" in reason and "max_response_bytes" in reason, reason
    assert took < 5


@pytest.mark.parametrize("kind", ["discourse", "reddit"])
def test_no_request_outlives_the_poll_deadline_the_runner_sets(srv, kind):
    serve(srv, kind, Drip(every=0.3))
    c = collector(kind, srv.url, request_deadline_seconds=30)
    with http.poll_deadline(1.0):
        reason, took = poll_failure(c)
    assert took < 2.5 and "the poll ran out of time" in reason, (took, reason)


# --- redirects (issue 14: requests stay on the configured origin) ---------------------------------


def test_a_discourse_redirect_to_another_origin_never_receives_the_api_key(srv, other):
    srv.serve("/posts.json", Redirect(f"{other.url}/posts.json"))
    other.serve("/posts.json", Json({"latest_posts": [discourse_post(9, "Northwind stole my data")]}))
    reason, _ = poll_failure(collector("discourse", srv.url))
    assert other.requests == [], "nothing, so no Api-Key or Api-Username, reached the other origin"
    assert srv.seen("/posts.json")[0].headers["api-key"] == "discourse-api-key"
    assert f"redirected to {other.url}/posts.json, which was not followed" in reason
    assert "another site" in reason and srv.url in reason, reason


def test_a_redirect_on_the_same_origin_is_followed_with_the_credentials(srv):
    srv.serve("/posts.json", Redirect("/v2/posts.json", status=301))
    srv.serve("/v2/posts.json", Json({"latest_posts": [discourse_post(9, "Northwind is down again")]}))
    result = collector("discourse", srv.url).poll(None)
    assert [m.body for m in result.mentions] == ["Northwind is down again"]
    assert srv.seen("/v2/posts.json")[0].headers["api-key"] == "discourse-api-key"


@pytest.mark.parametrize("kind", ["reddit", "x"])
def test_a_requests_client_refuses_a_redirect_to_another_origin(srv, other, kind):
    serve(srv, kind, Redirect(f"{other.url}/steal"))
    other.serve("/steal", Json({"data": []}))
    reason, _ = poll_failure(collector(kind, srv.url))
    assert other.requests == [], "no request, so no bearer token, reached the other origin"
    assert "which was not followed" in reason and "another site" in reason, reason


@pytest.mark.parametrize("location, why", [
    ("http://10.255.255.1/posts.json", "it is another site"),  # unroutable: following it would hang on connect
    ("http://169.254.169.254/latest/meta-data/", "it is another site"),
    ("file:///etc/passwd", "a file: address is never followed"),
    ("gopher://127.0.0.1/x", "a gopher: address is never followed"),
])
def test_redirects_to_private_addresses_and_other_schemes_are_refused_at_once(srv, location, why):
    srv.serve("/posts.json", Redirect(location))
    reason, took = poll_failure(collector("discourse", srv.url))
    assert took < 1, "refused without trying to connect"
    assert f"redirected to {location}, which was not followed: {why}" in reason, reason


def test_the_origin_rule():
    public = "https://forum.example.com/t/1"
    assert http.off_origin(public, "https://forum.example.com/t/2") is None
    assert http.off_origin("http://forum.example.com/", "https://forum.example.com/") is None, "an upgrade to https"
    assert http.off_origin("https://forum.example.com/", "http://forum.example.com/"), "never a downgrade"
    assert "private or loopback" in http.off_origin(public, "http://127.0.0.1:8080/")
    assert "private or loopback" in http.off_origin(public, "http://192.168.1.1/")
    assert "private or loopback" in http.off_origin(public, "http://localhost/")
    assert "another site" in http.off_origin(public, "https://www.forum.example.com/")
    # a forum configured on a private address may redirect within itself, never to another port or host
    assert http.off_origin("http://127.0.0.1:8000/a", "http://127.0.0.1:8000/b") is None
    assert "another site" in http.off_origin("http://127.0.0.1:8000/a", "http://127.0.0.1:8001/b")


FORUM_PAGE = """<html><body>
<div class="post" id="p{n}"><span class="author">pat</span><time datetime="2026-11-20T10:0{n}:00Z"></time>
<div class="body">Northwind outage, page {n}</div></div>
<a class="next" href="{next}">next</a></body></html>"""


def test_a_forum_page_redirecting_to_another_host_is_not_read(srv, other):
    srv.serve("/thread", Redirect(f"{other.url}/thread"))
    other.serve("/thread", Body(FORUM_PAGE.format(n=1, next="#")))
    reason, _ = poll_failure(collector("forum", srv.url))
    assert other.requests == [] and "which was not followed" in reason, reason


def test_a_next_page_link_to_another_origin_ends_the_thread_with_a_note(srv, other):
    srv.serve("/thread", Body(FORUM_PAGE.format(n=1, next=f"{other.url}/thread?page=2")))
    other.serve("/thread", Body(FORUM_PAGE.format(n=2, next="#")))
    result = collector("forum", srv.url).poll(None)
    assert other.requests == [], "the other origin was never fetched"
    assert [m.body for m in result.mentions] == ["Northwind outage, page 1"], "this page's posts are kept"
    assert any(f"the next-page link to {other.url}/thread?page=2 was not followed" in n for n in result.notes), \
        result.notes


# --- compressed answers (issue 13: the byte cap counts what the body inflates to) -------------------


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("kind", KINDS)
def test_a_gzip_bomb_is_cut_at_the_cap_without_being_inflated_whole(srv, kind, layers):
    """A few kB on the wire that inflate to 256 MiB (gzip, or gzip inside gzip): the poll fails with the cap's
    reason, and the process never held more than a few pieces of it (tracemalloc sees every bytes object
    zlib hands back, in httpx's path and in urllib3's)."""
    encoding = ", ".join(["gzip"] * layers)
    serve(srv, kind, Body(gzip_bomb(256, layers=layers), content_type="application/json",
                          headers={"Content-Encoding": encoding}))
    c = collector(kind, srv.url)
    tracemalloc.start()
    try:
        reason, took = poll_failure(c)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "more than 1,000,000 bytes" in reason, reason
    assert peak < 24 * 2**20, f"reading a 1 MB-capped answer held {peak / 2**20:.0f} MiB at its peak"


def test_an_encoding_hearken_did_not_ask_for_is_refused_by_name(srv):
    serve(srv, "discourse", Body(b"\x1b\x00\x00", content_type="application/json", headers={"Content-Encoding": "br"}))
    reason, _ = poll_failure(collector("discourse", srv.url))
    assert "Content-Encoding 'br'" in reason and "gzip, deflate" in reason, reason
    assert srv.requests[-1].headers.get("accept-encoding") == "gzip, deflate"


@pytest.mark.parametrize("encodings, pack", [
    (["gzip"], gzip.compress), (["deflate"], zlib.compress), (["deflate"], lambda b: zlib.compress(b)[2:-4]),
    (["gzip", "gzip"], lambda b: gzip.compress(gzip.compress(b))), (["identity"], lambda b: b),
    (["gzip"], lambda b: gzip.compress(b[:50_000]) + gzip.compress(b[50_000:])),  # two gzip members
])
def test_the_inflater_gives_back_the_body_in_bounded_pieces(encodings, pack):
    body = bytes(range(256)) * 1000 + b"Northwind " * 100_000
    inflater = inflate.Inflater(encodings, None)
    wire = pack(body)
    pieces = [p for i in range(0, len(wire), 4096) for p in inflater.feed(wire[i:i + 4096])]
    pieces += list(inflater.finish())
    assert b"".join(pieces) == body and max(map(len, pieces)) <= inflate.PIECE
