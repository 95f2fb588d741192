"""Fuzzing the collectors' parsers with hypothesis: whatever a platform sends, a poll either returns
storable `Mention`s (and set-aside items with their reasons) with a JSON-serialisable cursor, or raises
a `CollectorError` that says what was wrong.
No other exception may escape the collector boundary (the runner would record it as a bug, not as a
platform problem a person can act on).

Each collector reads from a real HTTP server on 127.0.0.1 that answers with the generated payload:
Discourse posts.json/search.json, the HTML forum presets (saved pages from ../shared/fixtures, cut,
spliced and sprinkled with junk; skipped when the fixtures are absent), X recent-search pages
(tweepy) and Reddit listings (PRAW, behind its OAuth token request; no 5xx/429 there: prawcore
retries those with real sleeps, and test_collector_reddit.py covers them). Runs are derandomized so a
failure is reproducible; HEARKEN_FUZZ_EXAMPLES raises the number of examples per target.
"""

from __future__ import annotations

import json
import os
import re
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors import build, clean, times
from collectors.base import CollectorError, Mention, PollResult
from collectors.match import TermMatcher
from collectors.discourse.settings import DiscourseSource
from collectors.forum.settings import ForumSource
from collectors.reddit.settings import RedditSource
from collectors.x.settings import XSource
from tests.conftest import FIXTURES

FUZZ = settings(max_examples=int(os.environ.get("HEARKEN_FUZZ_EXAMPLES", "50")), deadline=None, derandomize=True,
                report_multiple_bugs=False,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])
MISSING = object()


class Answers:
    """What the server sends, per (method, path prefix): (status, content type, body bytes)."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], tuple[int, str, bytes]] = {}
        self.default = (404, "application/json", b'{"errors": ["not found"]}')

    def set(self, method: str, prefix: str, body: bytes, status: int = 200, ctype: str = "application/json") -> None:
        self.routes[(method, prefix)] = (status, ctype, body)

    def answer(self, method: str, path: str) -> tuple[int, str, bytes]:
        best = None
        for (m, prefix), reply in self.routes.items():
            if m == method and path.startswith(prefix) and (best is None or len(prefix) > len(best[0])):
                best = (prefix, reply)
        return best[1] if best else self.default


@pytest.fixture(scope="module")
def server():
    answers = Answers()

    class Handler(BaseHTTPRequestHandler):
        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            status, ctype, body = answers.answer(self.command, urlsplit(self.path).path)
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _any

        def log_message(self, *args) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    httpd.answers = answers  # type: ignore[attr-defined]
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"  # type: ignore[attr-defined]
    yield httpd
    httpd.shutdown()
    httpd.server_close()


STORABLE = re.compile("[^\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]*")


def poll_survives(collector, cursor=None) -> PollResult | None:
    """The property: a PollResult of storable mentions and a JSON-able cursor, or a CollectorError.

    Storable: what the boundary's normaliser promises (collectors/clean.py), so the database can never
    refuse a mention a collector returned. Every item that did not become a mention was either skipped
    on purpose (not ours to store) or set aside with a one-line reason and its raw payload.
    """
    try:
        result = collector.poll(cursor)
    except CollectorError as exc:
        assert str(exc).strip(), "a collector error says what went wrong"
        return None
    assert isinstance(result, PollResult)
    json.dumps(result.cursor)
    now = datetime.now(timezone.utc)
    for m in result.mentions:
        assert isinstance(m, Mention) and m.external_id and m.posted_at.tzinfo is not None
        assert isinstance(m.body, str) and isinstance(m.author, str) and isinstance(m.url, str)
        assert STORABLE.fullmatch(m.body) and STORABLE.fullmatch(m.title) and STORABLE.fullmatch(m.author)
        assert len(m.author) <= clean.AUTHOR_LIMIT and len(m.external_id) <= clean.ID_LIMIT
        assert m.url == "" or m.url.lower().startswith(("http://", "https://"))
        assert times.EARLIEST <= m.posted_at <= now + times.FUTURE_SLACK
        json.dumps(m.extra, allow_nan=False)
    for item in result.set_aside:
        assert item.reason.strip() and "\n" not in item.reason and len(item.reason) <= clean.REASON_LIMIT
        item.raw.encode("utf-8")  # a lone surrogate would raise here, as the database driver would
        item.reason.encode("utf-8")
        assert "\x00" not in item.raw and len(item.raw) <= clean.RAW_LIMIT + 60
    return result


# --- payload strategies --------------------------------------------------------------------------

# hypothesis never draws surrogates or rarely NUL on its own: mix in what hostile posts carry
hostile_text = st.lists(st.one_of(st.characters(), st.sampled_from(
    ["\x00", "\ud800", "\udfff", "\r\n", "\x1b", "\x85", "&amp;", "javascript:alert(1)", "acme", "Acme"])),
    max_size=12).map("".join)
scalars = (st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=30) | hostile_text)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=10)


def fuzzed(valid: dict) -> st.SearchStrategy[dict]:
    """A dict shaped like `valid` whose every field may be kept, dropped or replaced by any JSON value."""
    fields = {k: st.one_of(st.just(v), st.just(MISSING), json_values) for k, v in valid.items()}
    return st.fixed_dictionaries(fields).map(lambda d: {k: v for k, v in d.items() if v is not MISSING})


def dumps(value) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


raw_bytes = st.binary(max_size=300)


# --- Discourse ----------------------------------------------------------------------------------

DISCOURSE_POST = {
    "id": 501, "username": "pat_w", "user_id": 7, "created_at": "2026-11-20T10:00:00.000Z", "post_number": 2,
    "reply_to_post_number": 1, "reply_to_user": {"username": "acme_team"}, "topic_id": 77, "topic_slug": "debit",
    "topic_title": "Acme took a payment", "post_type": 1, "cooked": "<p>Acme took a payment. Refund please.</p>",
    "raw": "Acme took a payment after I cancelled.", "hidden": False, "deleted_at": None, "category_id": 3,
    "blurb": "Acme took a payment",
}

discourse_latest = st.one_of(
    st.lists(fuzzed(DISCOURSE_POST), max_size=4).map(lambda ps: dumps({"latest_posts": ps})),
    json_values.map(lambda v: dumps({"latest_posts": v})),
    json_values.map(dumps),
    raw_bytes,
    st.lists(fuzzed(DISCOURSE_POST), min_size=1, max_size=3).flatmap(
        lambda ps: st.integers(0, len(dumps({"latest_posts": ps}))).map(lambda k, ps=ps: dumps({"latest_posts": ps})[:k])),
)
discourse_search = st.one_of(
    st.tuples(st.lists(fuzzed(DISCOURSE_POST), max_size=3), st.lists(fuzzed({"id": 77, "title": "Acme", "slug": "x"}),
                                                                        max_size=2), json_values)
    .map(lambda t: dumps({"posts": t[0], "topics": t[1], "grouped_search_result": t[2]})),
    json_values.map(dumps),
)


@FUZZ
@given(latest=discourse_latest, search=discourse_search,
       cursor=st.sampled_from([None, {"latest": {"last_id": 100}, "search": {"acme": {"last_id": 100}}}]))
def test_discourse_parser_survives_anything(server, latest, search, cursor):
    server.answers.set("GET", "/posts.json", latest)
    server.answers.set("GET", "/search.json", search)
    settings_ = DiscourseSource(type="discourse", name="community", base_url=server.url, read=["latest", "search"],
                                max_pages=2)
    collector = build(settings_, matcher=TermMatcher(["Acme"]), own_accounts=["acme_team"], env={})
    try:
        poll_survives(collector, cursor)
    finally:
        collector.close()


# --- HTML forums ------------------------------------------------------------------------------------

FORUM_PAGES = [("phpBB.html", "phpbb", "lecture"), ("vBulletin3.html", "vbulletin3", "loose interpretation"),
               ("vBulletin4.html", "vbulletin4", "seas"), ("Xenforo1.html", "xenforo1", "pinky"),
               ("Xenforo2.html", "xenforo2", "dark theme shipped"), ("discourse_topic.response", "discourse_crawler",
                                                                     "GitHub changed")]
junk = st.sampled_from([b"<", b">", b"</div>", b"<div class=\"post\" id=\"p", b"\x00", b"\xff\xfe", b"&#xD800;",
                        b"<meta charset=\"x-unknown\">", b"<time datetime=\"9999-99-99\">", b"<a rel=next href=\"::\">",
                        b"<a rel=\"next\" href=\"http://[::1\">", b"\xe2\x80", b"data-time=\"-1e309\""]) | st.binary(max_size=40)


@st.composite
def mangled(draw, page: bytes) -> bytes:
    """The page cut at some point, with slices deleted and junk spliced in."""
    out = page
    for _ in range(draw(st.integers(0, 4))):
        i = draw(st.integers(0, len(out)))
        kind = draw(st.sampled_from(["cut", "delete", "insert"]))
        if kind == "cut":
            out = out[:i]
        elif kind == "delete":
            j = draw(st.integers(i, min(len(out), i + 2000)))
            out = out[:i] + out[j:]
        else:
            out = out[:i] + draw(junk) + out[i:]
    return out


@pytest.mark.parametrize("name,preset,term", FORUM_PAGES, ids=[p for _, p, _ in FORUM_PAGES])
def test_forum_presets_survive_mangled_pages(server, name, preset, term):
    path = FIXTURES / "html_forums" / name
    if not path.exists():
        pytest.skip(f"{path} is absent (recorded traffic lives in ../shared beside the checkout)")
    page = path.read_bytes()
    robots = b"User-agent: *\nAllow: /\n"

    @settings(FUZZ, max_examples=min(FUZZ.max_examples, 30))
    @given(body=mangled(page), ctype=st.sampled_from(["text/html", "text/html; charset=utf-8",
                                                      "text/html; charset=bogus", "application/octet-stream"]),
           seen=st.booleans())
    def check(body, ctype, seen):
        server.answers.set("GET", "/robots.txt", robots, ctype="text/plain")
        server.answers.set("GET", f"/{preset}/thread", body, ctype=ctype)
        url = f"{server.url}/{preset}/thread"
        settings_ = ForumSource(type="forum", name="board", pages=[url], preset=preset, max_pages=2)
        collector = build(settings_, matcher=TermMatcher([term]), own_accounts=[], env={})
        try:
            cursor = {"pages": {url: {"resume": url, "seen": ["x"]}}} if seen else None
            poll_survives(collector, cursor)
        finally:
            collector.close()

    check()


# --- X (tweepy) -----------------------------------------------------------------------------------

TWEET = {"id": "1380242611781386245", "text": "Acme cut my line again", "author_id": "42",
         "created_at": "2021-04-08T19:34:16.000Z", "conversation_id": "1380242611781386245", "lang": "en",
         "in_reply_to_user_id": "7", "referenced_tweets": [{"type": "replied_to", "id": "1380242611781386000"}],
         "note_tweet": {"text": "Acme cut my line again, third time"}}
USER = {"id": "42", "username": "pat", "name": "Pat"}


def x_page(tweets, users, meta, extra):
    body = {"data": tweets, "includes": {"users": users, "tweets": extra}, "meta": meta}
    return dumps(body)


x_bodies = st.one_of(
    st.builds(x_page, st.lists(fuzzed(TWEET), max_size=3), st.lists(fuzzed(USER), max_size=2),
              fuzzed({"result_count": 2, "newest_id": "1380242611781386245", "oldest_id": "1", "next_token": "abc"}),
              st.lists(fuzzed(TWEET), max_size=1)),
    json_values.map(dumps),
    raw_bytes,
)


def twarc_page() -> bytes | None:
    path = FIXTURES / "x" / "noflat.jsonl"
    if not path.exists():
        return None
    page = json.loads(path.read_text().splitlines()[0])
    page.pop("__twarc", None)
    return json.dumps(page).encode()


@FUZZ
@given(body=x_bodies, status=st.sampled_from([200, 200, 200, 400, 401, 429, 500, 503]),
       cursor=st.sampled_from([None, {"since_id": "1"}]))
def test_x_parser_survives_anything(server, body, status, cursor):
    server.answers.set("GET", "/2/tweets/search/recent", body, status=status)
    settings_ = XSource(type="x", name="x", base_url=server.url, page_size=10, max_pages=2)
    collector = build(settings_, matcher=TermMatcher(["Acme"]), own_accounts=["acme_help"],
                      env={"X_BEARER_TOKEN": "t"})
    try:
        poll_survives(collector, cursor)
    finally:
        collector.close()


def test_x_parser_survives_a_recorded_page_cut_anywhere(server):
    page = twarc_page()
    if page is None:
        pytest.skip("../shared/fixtures/x/noflat.jsonl is absent")

    @FUZZ
    @given(k=st.integers(0, len(page)))
    def check(k):
        server.answers.set("GET", "/2/tweets/search/recent", page[:k])
        settings_ = XSource(type="x", name="x", base_url=server.url, page_size=10, max_pages=1)
        collector = build(settings_, matcher=TermMatcher(["Rusia", "NASA"]), own_accounts=[],
                          env={"X_BEARER_TOKEN": "t"})
        try:
            poll_survives(collector)
        finally:
            collector.close()

    check()


# --- Reddit (PRAW) ---------------------------------------------------------------------------------

SUBMISSION = {"id": "abc123", "name": "t3_abc123", "title": "Acme outage again", "selftext": "Acme is down",
              "author": "pat", "author_fullname": "t2_x", "created_utc": 1763640000.0, "permalink": "/r/acme/comments/abc123/x/",
              "subreddit": "acme", "num_comments": 0, "url": "https://www.reddit.com/r/acme/comments/abc123/x/"}
COMMENT = {"id": "c1", "name": "t1_c1", "body": "Acme never answers", "author": "sam", "created_utc": 1763640100.0,
           "link_id": "t3_abc123", "parent_id": "t3_abc123", "permalink": "/r/acme/comments/abc123/x/c1/",
           "subreddit": "acme", "link_title": "Acme outage again"}


def listing(children, after):
    return dumps({"kind": "Listing", "data": {"children": children, "after": after, "before": None}})


reddit_bodies = st.one_of(
    st.builds(listing, st.lists(st.one_of(fuzzed(SUBMISSION).map(lambda d: {"kind": "t3", "data": d}),
                                          fuzzed(COMMENT).map(lambda d: {"kind": "t1", "data": d}),
                                          json_values), max_size=3), json_values),
    json_values.map(dumps),
    raw_bytes,
)


@FUZZ
@given(new=reddit_bodies, comments=reddit_bodies, status=st.sampled_from([200, 200, 200, 403]),
       cursor=st.sampled_from([None, {"listings": {}}]))
def test_reddit_parser_survives_anything(server, new, comments, status, cursor):
    server.answers.set("POST", "/api/v1/access_token", dumps({"access_token": "tok", "token_type": "bearer",
                                                              "expires_in": 3600, "scope": "*"}))
    server.answers.set("GET", "/r/acme/new", new, status=status)
    server.answers.set("GET", "/r/acme/comments", comments)
    server.answers.set("GET", "/api/info", dumps({"kind": "Listing", "data": {"children": [], "after": None}}))
    settings_ = RedditSource(type="reddit", name="reddit", subreddits=["acme"], base_url=server.url, max_pages=2)
    collector = build(settings_, matcher=TermMatcher(["Acme"]), own_accounts=["acme_support"],
                      env={"REDDIT_CLIENT_ID": "id", "REDDIT_CLIENT_SECRET": "secret"})
    try:
        poll_survives(collector, cursor)
    finally:
        collector.close()
