"""One hostile post never loses the rest: each platform's page mixes hostile items among good ones.

A real HTTP server on 127.0.0.1 plays the platform (Discourse JSON, X recent search through tweepy,
Reddit listings through PRAW, an HTML forum); a real `Runner` polls it and stores into a real
database (SQLite, and PostgreSQL when HEARKEN_TEST_PG_URL is set). Each test checks what a person
would: the good posts are in the database (cleaned), the source's cursor moved past the page, the
hostile item is set aside with a reason that names it, the source is not failing, and no SQL or post
text is in last_error or the log. The hostile payloads follow the platforms' documented formats;
nobody recorded a hostile page.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, text

from desk.intake import set_aside
from desk.config.schema import parse_config
from desk.store.models import Event, MentionRow, SetAsideItem, SourceState
from desk.intake.storing import store_poll
from desk.intake.runner import Runner
from collectors.base import Mention as Found, PollResult
from tests.collector_helpers import LocalServer, Reply
from tests.conftest import ROOT

UTC = timezone.utc
ACCOUNTS = "accounts: {reddit: [acme_support], x: [acme_help], discourse: [acme_support], forum: [AcmeStaff]}"


@pytest.fixture
def server():
    with LocalServer() as s:
        yield s


def runner_for(store, source_yaml: str, terms=("acme",)) -> tuple[Runner, object]:
    cfg = parse_config(f"""\
brand: {{terms: {json.dumps(list(terms))}}}
{ACCOUNTS}
sources:
  - {source_yaml}
team:
  - {{name: Morgan Manager, email: morgan@example.com, role: manager}}
""", "hearken.yaml")
    runner = Runner(cfg, store)
    return runner, cfg.sources[0]


def stored(store, source: str) -> dict[str, MentionRow]:
    with store.session() as s:
        rows = list(s.scalars(select(MentionRow).where(MentionRow.source == source)))
        s.expunge_all()
    return {m.external_id: m for m in rows}


def state(store, source: str) -> SourceState:
    with store.session() as s:
        st = s.get(SourceState, source)
        s.expunge(st)
        return st


def assert_healthy_with_note(st: SourceState, aside: int) -> None:
    """The source is ok, its note says how many items were set aside, and nothing leaked SQL or post text."""
    assert st.status == "ok" and st.last_error is None and st.consecutive_failures == 0
    noun = "item" if aside == 1 else "items"
    assert st.status_reason.startswith(f"set aside {aside} {noun} that could not be read or stored")
    assert "INSERT" not in st.status_reason and "[SQL" not in st.status_reason


def no_sql_logged(caplog) -> None:
    for record in caplog.records:
        message = record.getMessage()
        assert "INSERT INTO" not in message and "[SQL" not in message and "\n" not in message, message


# -- Discourse ---------------------------------------------------------------------------------------

def dpost(pid, raw="my acme router is down", **kw):
    post = {"id": pid, "username": "customer", "user_id": 100 + pid, "topic_id": 5, "post_number": pid - 100,
            "topic_slug": "router-down", "topic_title": "Router down",
            "created_at": f"2026-11-01T10:{pid % 60:02d}:00.000Z", "raw": raw, "cooked": f"<p>{raw}</p>",
            "post_type": 1, "reply_to_post_number": None}
    post.update(kw)
    return post


def test_discourse_page_with_hostile_posts(store, server, caplog):
    caplog.set_level(logging.DEBUG)
    posts = [
        dpost(108, raw="acme is fine again"),
        dpost(107, raw="acme\x00 billing is broken", username="p" * 300, topic_title="Bill \ud800 shock"),
        dpost(106, created_at="1999-12-31T23:00:00Z"),                       # implausible: set aside
        dpost(105, created_at="1763000000123"),                                # ms epoch: 2025-11-13, kept
        dpost(104, raw="acme BAD_BYTES here"),                                 # invalid UTF-8 in the body
        dpost(103, raw="acme poll", polls="DEEP"),                             # nested 100,000 deep
        {**dpost(102), "id": "x102"},                                          # id not a number: set aside
        dpost(101, raw="acme router is down"),
    ]
    body = json.dumps({"latest_posts": posts}).encode()
    body = body.replace(b"BAD_BYTES", b"\xff\xfe\xc3").replace(b'"DEEP"', b"[" * 100_000 + b"]" * 100_000)
    server.route("/posts.json", Reply(200, body, {"Content-Type": "application/json; charset=utf-8"}))
    runner, src = runner_for(store, f"{{type: discourse, name: community, base_url: '{server.url}'}}")
    assert runner.poll_source(src) == 6

    host = server.url.removeprefix("http://")
    rows = stored(store, "community")
    assert sorted(rows) == [f"{host}/t/5/{n}" for n in (1, 3, 4, 5, 7, 8)]
    nul = rows[f"{host}/t/5/7"]
    assert nul.body == "acme billing is broken"
    assert nul.title == "Bill \ufffd shock"
    assert len(nul.author) == 200 and nul.author.endswith("…") and nul.extra["author_full"] == "p" * 300
    assert rows[f"{host}/t/5/4"].body == "acme \ufffd\ufffd\ufffd here"
    assert rows[f"{host}/t/5/5"].posted_at == datetime(2025, 11, 13, 2, 13, 20, 123000, tzinfo=UTC)
    st = state(store, "community")
    assert st.cursor["latest"]["last_id"] == 108  # the cursor moved past the page
    assert_healthy_with_note(st, 2)
    aside = {a.external_id or a.reason: a for a in set_aside.items(store, "community")}
    assert "before 2000" in aside[f"{host}/t/5/6"].reason and f"{host}/t/5/6" in aside[f"{host}/t/5/6"].reason
    [no_id] = [a for a in aside.values() if "not a number" in a.reason]
    assert "'x102'" in no_id.reason and '"id": "x102"' in no_id.raw
    assert set_aside.summary(store)["community"].count == 2
    no_sql_logged(caplog)

    # The same page again: nothing stored twice, nothing set aside twice.
    assert runner.poll_source(src) == 0
    assert len(stored(store, "community")) == 6 and set_aside.summary(store)["community"].count == 2


# -- X ----------------------------------------------------------------------------------------------

def tweet(tid, text, **kw):
    t = {"id": tid, "text": text, "author_id": "7", "conversation_id": tid, "created_at": "2026-11-20T10:00:00.000Z"}
    t.update(kw)
    return t


def test_x_page_with_hostile_posts_and_escaped_brand_names(store, server, monkeypatch):
    monkeypatch.setenv("X_BEARER_TOKEN", "test-bearer")
    data = [
        tweet("1006", "my AT&amp;T bill doubled &lt;again&gt;", author_id="8"),
        tweet("1005", "M&amp;S lost my order\x00 \ud800", author_id="9"),
        {k: v for k, v in tweet("1004", "AT&amp;T down").items() if k != "created_at"},  # no time: set aside
        tweet("1003", "AT&amp;T is down", created_at="2099-01-01T00:00:00Z"),            # future: set aside
        tweet("abc", "AT&amp;T"),                                                         # id not a number
        tweet("1001", "AT&amp;T outage", geo="DEEP"),                                     # nested 100,000 deep
    ]
    users = [{"id": "7", "username": "cust", "name": "C"}, {"id": "8", "username": "u" * 300, "name": "U"},
             {"id": "9", "username": "ms_fan", "name": "M"}]
    page = json.dumps({"data": data, "includes": {"users": users}, "meta": {"result_count": 6, "newest_id": "1006"}})
    server.route("/2/tweets/search/recent", Reply(200, page.encode().replace(b'"DEEP"', b"[" * 100_000 + b"]" * 100_000),
                                                  {"Content-Type": "application/json; charset=utf-8"}))
    runner, src = runner_for(store, f"{{type: x, name: x-brand, base_url: '{server.url}'}}", terms=["AT&T", "M&S"])
    assert runner.poll_source(src) == 3

    rows = stored(store, "x-brand")
    assert sorted(rows) == ["1001", "1005", "1006"]
    assert rows["1006"].body == "my AT&T bill doubled <again>" and rows["1006"].matched_terms == ["AT&T"]
    assert rows["1005"].body == "M&S lost my order \ufffd" and rows["1005"].matched_terms == ["M&S"]
    assert len(rows["1006"].author) == 200 and rows["1006"].url == "https://x.com/i/web/status/1006"
    st = state(store, "x-brand")
    assert st.cursor == {"since_id": "1006"} and st.reads_count == 6
    assert_healthy_with_note(st, 3)
    reasons = sorted(a.reason for a in set_aside.items(store, "x-brand"))
    assert any(r.startswith("x '1004': no 'created_at' field") for r in reasons)
    assert any(r.startswith("x '1003': ") and "more than a day in the future" in r for r in reasons)
    assert any(r.startswith("x 'abc': its id 'abc' is not a number") for r in reasons)


# -- Reddit -----------------------------------------------------------------------------------------

def rthing(kind, n, body="acme broke", created=1_763_000_000.0, **kw):
    data = {"id": f"{n:x}", "name": f"{kind}_{n:x}", "author": "customer", "subreddit": "acme",
            "created_utc": created + n, "author_fullname": "t2_c"}
    if kind == "t3":
        data.update(title=f"post {n}: {body}", selftext="", is_self=True, permalink=f"/r/acme/comments/{n:x}/post/")
    else:
        data.update(body=body, link_id="t3_1", parent_id="t3_1", link_title="post 1",
                    permalink=f"/r/acme/comments/1/post/{n:x}/")
    data.update(kw)
    return {"kind": kind, "data": {k: v for k, v in data.items() if v is not None}}


def listing(children):
    return Reply(200, {"kind": "Listing", "data": {"children": children, "after": None, "before": None}},
                 {"x-ratelimit-remaining": "590", "x-ratelimit-used": "10", "x-ratelimit-reset": "300"})


def test_reddit_listing_with_hostile_comments(store, server, monkeypatch):
    monkeypatch.setenv("REDDIT_CLIENT_ID", "id")
    monkeypatch.setenv("REDDIT_CLIENT_SECRET", "secret")
    server.route("/api/v1/access_token", Reply(200, {"access_token": "tok", "token_type": "bearer",
                                                     "expires_in": 3600, "scope": "*"}), method="POST")
    server.route("/r/acme/new", listing([rthing("t3", 1, body="acme is down")]))
    comments = [
        rthing("t1", 0x17, body="acme still down", author="a" * 300),
        rthing("t1", 0x16, body="acme charged me twice", permalink=None),           # no permalink: address built
        "garbage",                                                                  # not a Reddit object
        rthing("t1", 0x14, body="acme?", created=0.0),                              # 1970: set aside
        rthing("t1", 0x13, body="acme, in ms", created=1_763_000_000_000.0),        # milliseconds: kept
        {"kind": "t1", "data": {"body": "acme no id", "created_utc": 1_763_000_000.0}},  # no id: set aside
        rthing("t1", 0x11, body="acme \x00 support never answers", all_awardings="DEEP"),  # nested 100,000 deep
    ]
    deep = json.dumps({"kind": "Listing", "data": {"children": comments, "after": None, "before": None}}).encode()
    server.route("/r/acme/comments", Reply(200, deep.replace(b'"DEEP"', b"[" * 100_000 + b"]" * 100_000),
                                           {"Content-Type": "application/json; charset=UTF-8"}))
    runner, src = runner_for(store, f"{{type: reddit, name: reddit-brand, subreddits: [acme], base_url: '{server.url}'}}")
    assert runner.poll_source(src) == 5

    rows = stored(store, "reddit-brand")
    assert sorted(rows) == ["t1_11", "t1_13", "t1_16", "t1_17", "t3_1"]
    assert rows["t1_16"].url == "https://www.reddit.com/comments/1/_/16/"
    assert rows["t1_13"].posted_at == datetime.fromtimestamp(1_763_000_000.019, UTC)
    assert rows["t1_11"].body == "acme  support never answers"
    assert rows["t1_17"].author.endswith("…") and len(rows["t1_17"].author) == 200
    st = state(store, "reddit-brand")
    assert st.cursor["listings"]["r/acme/comments"]["newest"] == "t1_17"
    assert_healthy_with_note(st, 3)
    assert "t1_16 came without a permalink" in st.status_reason
    reasons = [a.reason for a in set_aside.items(store, "reddit-brand")]
    assert any(r.startswith("reddit 't1_14': ") and "before 2000" in r for r in reasons)
    assert any("without a readable id: it is not a Reddit object" in r for r in reasons)
    assert any("without a readable id: no usable 'name' or 'id' field" in r for r in reasons)


# -- HTML forum -------------------------------------------------------------------------------------

SELECTORS = ('{post: "div.msg", id_attr: data-id, body: ".text", author: ".who", time: "time@datetime", '
             'permalink: "a.link@href"}')


def fpost(pid, text_="acme is down", who="ann", when="2026-11-01T10:00:00Z", link=None, body=True):
    link = link if link is not None else f"/p/{pid}"
    inner = f'<div class="text">{text_}</div>' if body else ""
    return (f'<div class="msg" data-id="{pid}"><span class="who">{who}</span><time datetime="{when}">x</time>'
            f'<a class="link" href="{link}">#</a>{inner}</div>')


def test_forum_page_with_hostile_posts(store, server):
    page = "".join([
        fpost(1),
        fpost(2, link="javascript:alert(document.cookie)"),   # never stored as a link
        fpost(3, when="1795162500000"),                        # ms epoch: 2026-11-20 08:15
        fpost(4, when="1998-01-01T00:00:00Z"),                 # implausible: set aside
        fpost(5, body=False),                                  # no body: set aside
        fpost(6, text_="acme BAD_BYTES &#xD800;NUL end"),
        fpost(7, who="w" * 300),
    ])
    html = f"<html><head><title>T</title></head><body>{page}</body></html>".encode()
    html = html.replace(b"BAD_BYTES", b"\xff\xfe").replace(b"NUL", b"\x00")
    server.route("/t", Reply(200, html, {"Content-Type": "text/html; charset=utf-8"}))
    runner, src = runner_for(store, f"{{type: forum, name: board, pages: ['{server.url}/t'], preset: custom, "
                                    f"respect_robots: false, selectors: {SELECTORS}}}")
    assert runner.poll_source(src) == 5

    host = server.url.removeprefix("http://")
    rows = stored(store, "board")
    assert sorted(rows) == [f"{host}#{n}" for n in (1, 2, 3, 6, 7)]
    assert rows[f"{host}#2"].url == f"{server.url}/t#2"
    assert rows[f"{host}#3"].posted_at == datetime(2026, 11, 20, 8, 15, tzinfo=UTC)
    assert rows[f"{host}#6"].body == "acme \ufffd\ufffd \ufffd end"
    assert len(rows[f"{host}#7"].author) == 200
    st = state(store, "board")
    assert len(st.cursor["pages"][f"{server.url}/t"]["seen"]) == 7
    assert_healthy_with_note(st, 2)
    assert "post 2's permalink 'javascript:alert(document.cookie)' is not an http(s) link" in st.status_reason
    aside = {a.external_id: a for a in set_aside.items(store, "board")}
    assert "before 2000" in aside[f"{host}#4"].reason and 'data-id="4"' in aside[f"{host}#4"].raw
    assert "board: post 5: no body" in aside[f"{host}#5"].reason

    assert runner.poll_source(src) == 0  # re-reading the page stores nothing twice and sets nothing aside again
    with store.session() as s:
        assert [r.times_seen for r in s.scalars(select(SetAsideItem))] == [1, 1]


# -- the database's own refusals ----------------------------------------------------------------------

def raw_mention(i: int, **kw) -> Found:
    """A mention as a collector that skipped the normaliser would hand it over."""
    base = dict(platform="demo", source="demo", external_id=f"m{i}", url=f"https://demo.invalid/{i}",
                author=f"user{i}", body="Northwind is down", posted_at=datetime(2026, 11, 20, 9, i, tzinfo=UTC))
    base.update(kw)
    return Found(**base)


def test_a_row_the_database_refuses_is_set_aside_alone(store):
    poll = PollResult([raw_mention(1), raw_mention(2, body="a lone \ud800 surrogate"), raw_mention(3),
                       raw_mention(4, body="a NUL \x00 byte"), raw_mention(5, author="a" * 300), raw_mention(6)],
                      cursor={"next": 6})
    new = store_poll(store, "demo", "demo", poll)
    on_pg = store.dialect == "postgresql"
    # SQLite keeps NUL bytes and long strings; PostgreSQL refuses both. Neither takes a lone surrogate.
    refused = {"m2", "m4", "m5"} if on_pg else {"m2"}
    kept = {f"m{i}" for i in range(1, 7)} - refused
    assert set(stored(store, "demo")) == kept and new == len(kept)
    aside = {a.external_id: a.reason for a in set_aside.items(store, "demo")}
    assert set(aside) == refused
    assert aside["m2"].startswith("demo 'm2': the database refused it (UnicodeEncodeError: ")
    if on_pg:
        assert "NUL" in aside["m4"] and "value too long for type character varying(200)" in aside["m5"]
    for reason in aside.values():
        assert "INSERT" not in reason and "Northwind" not in reason and "\n" not in reason
    st = state(store, "demo")
    assert st.cursor == {"next": 6} and st.status == "ok" and st.status_reason.startswith(f"set aside {len(refused)}")


def test_a_poll_the_database_refuses_as_a_whole_fails_in_one_line(store, server, caplog):
    """A real refusal of the transaction (a trigger stands in for a full disk): one line, no SQL, no post text."""
    caplog.set_level(logging.DEBUG)
    with store.engine.begin() as c:
        if store.dialect == "postgresql":
            c.execute(text("CREATE FUNCTION refuse_cursor() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                           "RAISE EXCEPTION 'the disk is full'; END $$"))
            c.execute(text("CREATE TRIGGER refuse BEFORE UPDATE OF cursor ON source_state FOR EACH ROW "
                           "WHEN (NEW.cursor::text IS DISTINCT FROM OLD.cursor::text) EXECUTE FUNCTION refuse_cursor()"))
        else:
            c.execute(text("CREATE TRIGGER refuse BEFORE UPDATE OF cursor ON source_state "
                           "WHEN NEW.cursor IS NOT OLD.cursor BEGIN SELECT RAISE(ABORT, 'the disk is full'); END"))
    server.route("/posts.json", Reply(200, {"latest_posts": [dpost(101, raw="acme secret-post-text")]}))
    runner, src = runner_for(store, f"{{type: discourse, name: community, base_url: '{server.url}'}}")
    runner.poll_source(src)
    st = state(store, "community")
    assert st.status == "failing"
    assert st.last_error.startswith("StoreFailed: could not store the poll of community: ")
    assert "the disk is full" in st.last_error
    assert "secret-post-text" not in st.last_error and "UPDATE" not in st.last_error and "\n" not in st.last_error
    assert stored(store, "community") == {}
    for record in caplog.records:
        assert "secret-post-text" not in record.getMessage() and "[SQL" not in record.getMessage()
        assert record.exc_info is None or "secret-post-text" not in logging.Formatter().formatException(record.exc_info)


def read(element) -> str:
    """Markdown as a person reads it."""
    return re.sub(r"\\(.)", r"\1", element.value)


def dashboard_store(tmp_path, monkeypatch):
    """The minimal config's database, which the dashboard under AppTest reads too."""
    from desk.store.db import connect
    from tests.conftest import MINIMAL_CONFIG

    (tmp_path / "hearken.yaml").write_text(MINIMAL_CONFIG)
    url = f"sqlite:///{tmp_path / 'hearken.db'}"
    monkeypatch.setenv("HEARKEN_CONFIG", str(tmp_path / "hearken.yaml"))
    monkeypatch.setenv("HEARKEN_DATABASE_URL", url)
    return connect(url)


def test_every_page_says_items_were_set_aside_and_the_sources_page_lists_them(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from collectors.base import SetAside

    store = dashboard_store(tmp_path, monkeypatch)
    odd = [SetAside(platform="demo", source="demo", reason=f"demo 'd{i}': its time 1557-05-04 is before 2000",
                    raw=f'{{"id": "d{i}"}}', external_id=f"d{i}") for i in (1, 2)]
    store_poll(store, "demo", "demo", PollResult([raw_mention(1)], {"next": 1}, set_aside=odd))
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=60).run()  # the queue
    assert not at.exception
    assert any("Source demo (demo) set aside 2 items the platform sent that could not be read or stored" in read(w)
               for w in at.warning)
    at.switch_page("views/sources.py").run()
    assert not at.exception
    [line] = [read(w) for w in at.warning if read(w).startswith("Set aside:")]
    assert line.startswith("Set aside: 2 items the platform sent could not be read or stored (last ")
    assert line.endswith("UTC: demo 'd2': its time 1557-05-04 is before 2000)")
    [table] = at.dataframe
    assert list(table.value["item"]) == ["d2", "d1"] and list(table.value["as the platform sent it"]) == [
        '{"id": "d2"}', '{"id": "d1"}']
    at.button(key="aside-clear-demo").click().run()  # local mode acts as the first admin, Alex Admin
    assert not at.exception
    assert not [w for w in at.warning if "set aside" in read(w).lower()]
    with store.session() as s:
        assert {(i.cleared_by, i.cleared_at is not None) for i in s.scalars(select(SetAsideItem))} == {("Alex Admin", True)}
        assert s.scalars(select(Event.action).where(Event.action == "set_aside_cleared")).all() == ["set_aside_cleared"]
    store.close()


# -- a post is its id and, where ids can be given out again, its author and time -----------------------------

def fmention(ext: str, author: str, at: datetime, body: str = "acme is down", platform: str = "forum") -> Found:
    return Found(platform=platform, source="board", external_id=ext, url=f"https://board.example/{ext}",
                 author=author, body=body, posted_at=at)


def test_a_new_post_under_a_stored_id_is_stored_as_a_post_of_its_own(store):
    """A board restored from a backup gives the ids of posts it lost (stored here) to new posts."""
    from desk.intake import source_warnings

    t = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    store_poll(store, "board", "forum", PollResult([fmention("b#102", "bob", t), fmention("b#103", "carol", t)], {"n": 1}))
    later = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    again = PollResult([fmention("b#102", "dave", later, "acme billed me twice"),
                        fmention("b#103", "carol", t, "acme is down (edited)")], {"n": 2})
    assert store_poll(store, "board", "forum", again) == 1
    rows = stored(store, "board")
    assert {k: v.author for k, v in rows.items()} == {"b#102": "bob", "b#103": "carol",
                                                      "b#102~2026-11-20T12:00:00Z": "dave"}
    assert rows["b#102~2026-11-20T12:00:00Z"].extra["reused_id"] == "b#102"
    assert rows["b#103"].body == "acme is down"  # an edit is the post stored before
    assert "came under ids that posts stored earlier have ('b#102')" in state(store, "board").status_reason
    [warning] = source_warnings.recent(store)["board"]
    assert "gave out its ids again" in warning.text

    assert store_poll(store, "board", "forum", again) == 0  # a re-poll stores nothing twice, and warns no more
    assert len(source_warnings.recent(store)["board"]) == 1
    erin = fmention("b#102", "erin", later + timedelta(hours=1), "acme hung up on me")  # a third post under the id
    assert store_poll(store, "board", "forum", PollResult([erin], {"n": 3})) == 1
    assert stored(store, "board")["b#102~2026-11-20T13:00:00Z"].author == "erin"
    assert store_poll(store, "board", "forum", PollResult([erin], {"n": 4})) == 0
    # one of author and time differing is the post stored before: an account renamed, a "Today" read a day off
    renamed, day_off = fmention("b#103", "carol_w", t), fmention("b#103", "carol", t + timedelta(days=1))
    assert store_poll(store, "board", "forum", PollResult([renamed, day_off], {"n": 5})) == 0


def test_an_author_that_names_nobody_leaves_the_time_to_decide(store):
    """A forum account deleted since shows as "[Deleted]": at the post's own time it is the post stored
    before; under the same id days later it is a new post (a guest's, say), stored under an id of its own."""
    t = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    store_poll(store, "board", "forum", PollResult([fmention("b#7", "alice", t)], {"n": 1}))
    assert store_poll(store, "board", "forum", PollResult([fmention("b#7", " [Deleted] ", t)], {"n": 2})) == 0
    later = fmention("b#7", "Guest", t + timedelta(days=3), "acme cut me off")
    assert store_poll(store, "board", "forum", PollResult([later], {"n": 3})) == 1
    assert store_poll(store, "board", "forum", PollResult([later], {"n": 4})) == 0
    assert {k: v.author for k, v in stored(store, "board").items()} == {"b#7": "alice",
                                                                        "b#7~2026-11-23T09:00:00Z": "Guest"}


def test_where_ids_are_for_ever_another_author_under_one_id_is_the_post_stored_before(store):
    """Reddit names a deleted account "[deleted]" in a re-read comment: still the comment stored before."""
    t = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    store_poll(store, "r", "reddit", PollResult([fmention("t1_abc", "alice", t, platform="reddit")], {"n": 1}))
    assert store_poll(store, "r", "reddit", PollResult([fmention("t1_abc", "[deleted]", t, platform="reddit")],
                                                       {"n": 2})) == 0
    assert list(stored(store, "board")) == ["t1_abc"]


def test_a_platform_warning_is_on_every_page_until_a_manager_has_looked_at_it(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    store = dashboard_store(tmp_path, monkeypatch)
    said = "latest posts: the forum's post ids went backwards (its newest is now 302; 5002 was seen before)"
    store_poll(store, "demo", "demo", PollResult([raw_mention(1)], {"next": 1}, warnings=[said]))
    store_poll(store, "demo", "demo", PollResult([], {"next": 1}))  # the next poll has nothing to say: it stays
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=60).run()  # the queue
    assert not at.exception
    assert any("Source demo (demo) gave a warning about its platform" in read(w) for w in at.warning)
    at.switch_page("views/sources.py").run()
    assert not at.exception
    [line] = [read(w) for w in at.warning if said in read(w)]
    assert line.startswith("**WARNING** (")  # said in a word, not by the box's colour alone
    at.button(key="warnings-seen-demo").click().run()  # local mode acts as the first admin
    assert not at.exception
    assert not [w for w in at.warning if "went backwards" in read(w) or "gave a warning" in read(w)]
    with store.session() as s:
        assert s.scalars(select(Event.actor).where(Event.action == "source_warnings_seen")).all() == ["Alex Admin"]
    store.close()
