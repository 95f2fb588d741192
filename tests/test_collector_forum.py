"""HTML forum collector: presets on real saved forum pages, and paging/politeness on self-written pages.

Every page is served by a real HTTP server on 127.0.0.1; robots.txt too.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from collectors import BadPayload, RateLimited, TermMatcher, TryLater, build
from collectors import times
from collectors.forum.settings import ForumSource
from tests.collector_helpers import LocalServer, Reply, fixture

UTC = timezone.utc


@pytest.fixture
def server():
    with LocalServer() as s:
        yield s


def make(server, pages, terms=("acme",), own=(), **kw):
    kw.setdefault("preset", "custom")
    settings = ForumSource(type="forum", name="board", pages=[server.url + p for p in pages], **kw)
    return build(settings, matcher=TermMatcher(terms), own_accounts=list(own), env={})


def serve_fixture(server, name, path="/thread", content_type="text/html"):
    server.route(path, Reply(200, fixture("html_forums", name).read_bytes(), {"Content-Type": content_type}))


# (fixture, preset, term, posts on the page, author, posted_at, permalink as it resolves, post id, title).
# Three saved pages resolve their permalinks to the site they were saved from (a <base href>, absolute links,
# a canonical link), which is not the 127.0.0.1 serving them here: such a link leads off the page's site, so
# the page's address stands in for it, and the note names the link the preset found.
RECORDED = [
    ("phpBB.html", "phpbb", "lecture", 25, "Jakob", datetime(2019, 5, 26, 16, 34, tzinfo=UTC),
     "{server}/viewtopic.php?p=2729870#p2729870", "2729870", "Biological Will"),
    ("vBulletin3.html", "vbulletin3", "loose interpretation", 20, "BBOvenGuy", datetime(2016, 2, 1, 2, 29, tzinfo=UTC),
     "{server}/showthread.php?p=5768676#post5768676", "5768676", "(L+CR) Hibike! Euphonium [anime]"),  # as shown: "(<acronym>L</acronym><span>+</span>..." has no spaces
    ("vBulletin4.html", "vbulletin4", "seas", 10, "Mjölnir", datetime(2016, 6, 15, 17, 21, tzinfo=UTC),
     ("{server}/thread#365267", "http://forums.militarytimes.com/showthread.php/9687-Legendary-military-columnist-"
                                "author-Bob-Dorr-dies-at-76?p=365267&viewfull=1#post365267"),
     "365267", "Legendary military columnist, author Bob Dorr dies at 76"),
    ("Xenforo1.html", "xenforo1", "pinky", 25, "Crow", datetime(2014, 10, 30, 22, 49, tzinfo=UTC),
     ("{server}/thread#2146297", "https://forums.sufficientvelocity.com/posts/2146297/"), "2146297",
     "Renascence: A Homura Quest"),
    ("Xenforo2.html", "xenforo2", "dark theme shipped", 8, "dieketzer", datetime(2010, 11, 21, 10, 51, 58, tzinfo=UTC),
     "{server}/community/threads/a-dark-theme-option.8276/post-114210", "114210", "a dark theme option"),
    ("discourse_topic.response", "discourse_crawler", "GitHub changed", 2, "codinghorror",
     datetime(2014, 2, 6, 5, 27, 6, tzinfo=UTC),
     ("{server}/thread#2", "https://meta.discourse.org/t/congratulations-most-stars-in-2013-github-octoverse/12483/2"),
     "2",
     "Congratulations, most stars in 2013 GitHub Octoverse!"),
]


@pytest.mark.parametrize("name, preset, term, count, author, posted_at, permalink, post_id, title", RECORDED,
                         ids=[r[1] for r in RECORDED])
def test_preset_reads_the_recorded_page(server, name, preset, term, count, author, posted_at, permalink, post_id, title):
    serve_fixture(server, name)
    result = make(server, ["/thread"], terms=[term], preset=preset, max_pages=1).poll(None)
    assert result.reads == count
    m = {x.extra["post_id"]: x for x in result.mentions}[post_id]
    assert m.author == author
    assert m.posted_at == posted_at
    if isinstance(permalink, tuple):  # saved from another site: the page's address, and a note naming the link
        permalink, elsewhere = permalink
        assert any(f"'{urlsplit(elsewhere).scheme}://{urlsplit(elsewhere).netloc}/" in n and "lead off" in n
                   for n in result.notes), result.notes
    assert m.url == permalink.format(server=server.url)
    assert m.extra["post_id"] == post_id
    assert m.title == title
    assert m.matched_terms == (term,)
    assert m.thread_id == server.url + "/thread"
    host = server.url.removeprefix("http://")
    expected_id = f"{host}/thread#{post_id}" if preset == "discourse_crawler" else f"{host}#{post_id}"
    assert m.external_id == expected_id


def test_latin1_page_is_read_as_windows_1252_and_config_overrides_a_preset(server):
    # vBulletin3.html declares ISO-8859-1 in <meta> and holds byte 0x94 (a closing quote in windows-1252)
    # in karice67's signature; widening the preset's body selector in the config brings the signature in.
    serve_fixture(server, "vBulletin3.html")
    result = make(server, ["/thread"], terms=["argue for"], preset="vbulletin3", max_pages=1,
                  selectors={"body": "td[id^=td_post_]"}).poll(None)
    assert {m.author for m in result.mentions} == {"karice67"}
    assert "5768715" in {m.extra["post_id"] for m in result.mentions}
    assert all("what you can argue for.\u201d" in m.body for m in result.mentions)


def test_own_posts_are_skipped_and_a_quote_of_ours_is_kept(server):
    # In the recorded XenForo 1 page, Crow's post 2146297 quotes Higure, who here plays our own account.
    serve_fixture(server, "Xenforo1.html")
    result = make(server, ["/thread"], terms=["Homura"], own=["Higure"], preset="xenforo1", max_pages=1).poll(None)
    assert "Higure" not in {m.author for m in result.mentions}
    quoting = [m for m in result.mentions if m.extra.get("reply_to_own")]
    assert "2146297" in {m.extra["post_id"] for m in quoting}


def test_the_next_page_link_is_followed_in_the_recorded_page(server):
    serve_fixture(server, "phpBB.html", path="/viewtopic.php")
    server.route("/robots.txt", Reply(404))
    collector = make(server, ["/viewtopic.php"], terms=["lecture"], preset="phpbb", max_pages=2)
    # The page links to start=50 as its next page; our server answers that path with the same page.
    out = collector.poll(None)
    assert [r.path for r in server.requests] == ["/robots.txt", "/viewtopic.php", "/viewtopic.php"]
    assert server.requests[-1].arg("start") == "50"
    # The second page links to itself (same saved page): the thread ends there, and the next poll starts there.
    assert out.cursor["pages"][server.url + "/viewtopic.php"]["resume"].endswith("start=50")
    assert not out.notes


# -- self-written pages --------------------------------------------------------------------------

SELECTORS = {"post": "div.msg", "id_attr": "data-id", "body": ".text", "author": ".who", "time": "time",
             "permalink": "a.link@href", "next_page": "a.next@href"}


def page(posts, next_href=None):
    items = "".join(
        f'<div class="msg" data-id="{pid}"><span class="who">{who}</span>'
        f'<time datetime="2026-11-0{1 + pid // 100}T10:{pid % 60:02d}:00Z">x</time>'
        f'<a class="link" href="/p/{pid}">#</a><div class="text">{text}</div></div>'
        for pid, who, text in posts)
    nxt = f'<a class="next" href="{next_href}">next</a>' if next_href else ""
    return f"<html><head><title>T</title></head><body>{items}{nxt}</body></html>"


def test_custom_selectors_and_paging_to_the_end_of_the_thread(server):
    pages = {1: [(1, "ann", "acme is down"), (2, "bob", "me too, acme")],
             2: [(3, "cat", "acme still down"), (4, "dan", "lunch?")],
             3: [(5, "eve", "acme back up")]}

    def handler(req):
        n = int(req.arg("page", "1"))
        return Reply(200, page(pages[n], f"?page={n + 1}" if n + 1 in pages else None), {"Content-Type": "text/html"})
    server.route("/t", handler)
    collector = make(server, ["/t"], selectors=SELECTORS)
    first = collector.poll(None)
    # First poll: posts of the pages passed are remembered, mentions come from the last (newest) page only.
    assert [m.extra["post_id"] for m in first.mentions] == ["5"]
    state = first.cursor["pages"][server.url + "/t"]
    assert state["resume"] == server.url + "/t?page=3"
    assert len(state["seen"]) == 5

    pages[3] += [(6, "fay", "acme again"), (7, "gus", "ok")]
    pages[4] = [(8, "hal", "acme??")]
    second = collector.poll(first.cursor)
    assert [(m.extra["post_id"], m.author, m.url) for m in second.mentions] == [
        ("6", "fay", server.url + "/p/6"), ("8", "hal", server.url + "/p/8")]
    assert [r.arg("page") for r in server.requests[-2:]] == ["3", "4"]
    assert second.mentions[0].posted_at == datetime(2026, 11, 1, 10, 6, tzinfo=UTC)

    third = collector.poll(second.cursor)
    assert third.mentions == []  # re-reading the last page finds nothing new


def test_conditional_get_and_304(server):
    def handler(req):
        if req.headers.get("if-none-match") == 'W/"1"':
            return Reply(304)
        return Reply(200, page([(1, "ann", "acme is down")]), {"ETag": 'W/"1"', "Content-Type": "text/html"})
    server.route("/t", handler)
    collector = make(server, ["/t"], selectors=SELECTORS)
    first = collector.poll(None)
    second = collector.poll(first.cursor)
    assert len(first.mentions) == 1 and second.mentions == []
    assert server.requests[-1].headers["if-none-match"] == 'W/"1"'
    assert second.cursor["pages"][server.url + "/t"]["seen"] == first.cursor["pages"][server.url + "/t"]["seen"]


def test_robots_disallow_and_crawl_delay(server):
    server.route("/robots.txt", Reply(200, "User-agent: *\nDisallow: /private\nCrawl-delay: 0.5\n"))
    server.route("/t", lambda req: Reply(200, page([(int(req.arg("page", "1")), "ann", "acme")],
                                                   "?page=2" if req.arg("page") is None else None)))
    collector = make(server, ["/private/t", "/t"], selectors=SELECTORS, respect_robots=True)
    started = time.monotonic()
    result = collector.poll(None)
    elapsed = time.monotonic() - started
    assert "/private/t" not in server.paths()
    assert any("robots.txt disallows" in n and "/private/t" in n for n in result.notes)
    assert [r.arg("page") for r in server.requests if r.path == "/t"] == [None, "2"]
    assert elapsed >= 0.45  # waited the crawl delay between the two pages


def test_a_forum_that_is_down_is_said_to_be_down_not_its_robots_txt(server):
    """Connection refused before robots.txt could be asked: the forum could not be reached (host:port, why).
    A robots.txt that answers with an error keeps the robots.txt wording."""
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    down = ForumSource(type="forum", name="board", pages=[f"http://127.0.0.1:{port}/t"], preset="custom",
                       selectors=SELECTORS)
    with pytest.raises(TryLater) as info:
        build(down, matcher=TermMatcher(["acme"]), own_accounts=[], env={}).poll(None)
    said = str(info.value)
    assert f"the forum at 127.0.0.1:{port} could not be reached (" in said and "Connection refused" in said
    assert "robots.txt" not in said

    server.route("/robots.txt", Reply(503, "down for maintenance"))
    with pytest.raises(TryLater, match="robots.txt answered HTTP 503; not crawling until it can be read"):
        make(server, ["/t"], selectors=SELECTORS).poll(None)


def test_a_429_with_an_http_date_retry_after(server):
    when = format_datetime(datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=120), usegmt=True)
    server.route("/t", Reply(429, "slow down", {"Retry-After": when}))
    with pytest.raises(RateLimited) as info:
        make(server, ["/t"], selectors=SELECTORS, respect_robots=False).poll(None)
    assert 100 < info.value.retry_after <= 121
    assert info.value.url == server.url + "/t"


def test_a_page_without_posts_is_a_clear_error(server):
    server.route("/t", Reply(200, "<html><body><form id=login>Please log in</form></body></html>"))
    with pytest.raises(BadPayload) as info:
        make(server, ["/t"], selectors=SELECTORS).poll(None)
    assert "div.msg" in info.value.reason and info.value.url == server.url + "/t"


def test_custom_preset_needs_selectors():
    with pytest.raises(ValidationError, match="post"):
        ForumSource(type="forum", name="b", pages=["https://f.example/t"])
    with pytest.raises(ValidationError, match="timezone"):
        ForumSource(type="forum", name="b", pages=["https://f.example/t"], preset="phpbb", timezone="Mars/Olympus")


def parse_time(text, zone, now=None):
    return times.parse(text, zone=zone, formats=times.FORUM_FORMATS, now=now)


def test_time_text_in_the_forums_zone():
    berlin = ZoneInfo("Europe/Berlin")
    assert parse_time("by Jakob » Sun May 26, 2019 4:34 pm", berlin) == datetime(2019, 5, 26, 14, 34, tzinfo=UTC)
    assert parse_time("1290336718", berlin) == datetime(2010, 11, 21, 10, 51, 58, tzinfo=UTC)
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    assert parse_time("Yesterday, 02:21", berlin, now=now) == datetime(2026, 11, 22, 1, 21, tzinfo=UTC)
    with pytest.raises(times.BadTime, match="'a while ago' is not a time we can read"):
        parse_time("a while ago", berlin)


# -- the presets on small pages we wrote in each forum's markup (run where ../shared is absent too) ---------

MINI = {
    "phpbb": ('<h2 class="topic-title"><a href="./viewtopic.php?t=9">Router</a></h2>'
              '<div id="p77" class="post has-profile bg2"><div class="postbody">'
              '<p class="author"><a href="./viewtopic.php?p=77#p77">x</a> by <strong><a class="username">Ann</a></strong>'
              ' &raquo; <time datetime="2026-11-20T08:15:00+00:00">Fri Nov 20, 2026 8:15 am</time></p>'
              '<div class="content">Acme router keeps dropping</div></div></div>'),
    "vbulletin3": ('<td class="navbar"><strong>Router</strong></td>'
                   '<table id="post77" class="tborder"><tr><td class="thead">20-11-2026, 08:15</td>'
                   '<td class="thead"><a href="showthread.php?p=77#post77" id="postlink77">Link</a></td></tr>'
                   '<tr><td><a class="bigusername" href="member.php?u=1">Ann</a></td>'
                   '<td><div id="post_message_77">Acme router keeps dropping</div></td></tr></table>'),
    "vbulletin4": ('<span class="threadtitle"><a href="showthread.php?t=9">Router</a></span>'
                   '<li class="postbitlegacy postcontainer" id="post_77"><span class="date">11-20-2026,&nbsp;'
                   '<span class="time">08:15 AM</span></span><a name="post77" href="showthread.php?p=77#post77" '
                   'class="postcounter">#1</a><a class="username" href="member.php/1-Ann"><strong>Ann</strong></a>'
                   '<blockquote class="postcontent restore">Acme router keeps dropping</blockquote></li>'),
    "xenforo1": ('<div class="titleBar"><h1>Router</h1></div>'
                 '<li id="post-77" class="message" data-author="Ann"><blockquote class="messageText">'
                 'Acme router keeps dropping</blockquote><a href="posts/77/" class="datePermalink">'
                 '<abbr class="DateTime" data-time="1795162500">Nov 20, 2026 at 8:15 AM</abbr></a></li>'),
    "xenforo2": ('<h1 class="p-title-value">Router</h1>'
                 '<article class="message message--post" data-author="Ann" data-content="post-77">'
                 '<div class="message-attribution-main"><a href="/threads/router.9/post-77">'
                 '<time class="u-dt" datetime="2026-11-20T08:15:00+0000">Nov 20, 2026</time></a></div>'
                 '<article class="message-body"><div class="bbWrapper">Acme router keeps dropping</div></article>'
                 '</article>'),
    "discourse_crawler": ('<link rel="canonical" href="/t/router/9"><meta property="og:title" content="Router">'
                          '<div itemscope itemtype="http://schema.org/DiscussionForumPosting" class="topic-body crawler-post">'
                          '<span itemprop="author"><a itemprop="url"><span itemprop="name">Ann</span></a></span>'
                          '<time itemprop="datePublished" datetime="2026-11-20T08:15:00Z"></time>'
                          '<span itemprop="position">#1</span>'
                          '<div class="post" itemprop="articleBody"><p>Acme router keeps dropping</p></div></div>'),
}
MINI_LINKS = {"phpbb": "/viewtopic.php?p=77#p77", "vbulletin3": "/showthread.php?p=77#post77",
              "vbulletin4": "/showthread.php?p=77#post77", "xenforo1": "/posts/77/",
              "xenforo2": "/threads/router.9/post-77", "discourse_crawler": "/t/router/9/1"}


@pytest.mark.parametrize("preset", sorted(MINI))
def test_preset_on_a_small_page_in_its_markup(server, preset):
    server.route("/thread", Reply(200, f"<html><head><title>Router</title></head><body>{MINI[preset]}</body></html>",
                                  {"Content-Type": "text/html; charset=utf-8"}))
    [m] = make(server, ["/thread"], preset=preset).poll(None).mentions
    assert (m.author, m.title, m.body) == ("Ann", "Router", "Acme router keeps dropping")
    assert m.posted_at == datetime(2026, 11, 20, 8, 15, tzinfo=UTC)
    assert m.url == server.url + MINI_LINKS[preset]
    assert m.extra["post_id"] == ("1" if preset == "discourse_crawler" else "77")


def test_a_bad_selector_is_a_config_error_naming_it():
    with pytest.raises(ValidationError, match="div.post >>"):
        ForumSource(type="forum", name="b", pages=["https://f.example/t"], preset="phpbb",
                    selectors={"body": "div.post >> p"})


def test_quoting_a_mention_is_not_a_new_mention(server):
    # phpBB markup: the brand is named only inside the quote.
    server.route("/thread", Reply(200, '<div id="p5" class="post"><p class="author">by <strong>Bob</strong> '
                                       '&raquo; Fri Nov 20, 2026 8:15 am</p><div class="content"><blockquote><div>'
                                       '<cite>Ann wrote:</cite>Acme router keeps dropping</div></blockquote>'
                                       'same here</div></div>'))
    assert make(server, ["/thread"], preset="phpbb").poll(None).mentions == []
    [m] = make(server, ["/thread"], preset="phpbb", own=["Ann"]).poll(None).mentions
    assert m.extra["reply_to_own"] is True and "Acme router keeps dropping" in m.body


def test_a_long_crawl_delay_means_one_page_per_poll(server):
    server.route("/robots.txt", Reply(200, "User-agent: hearken\nCrawl-delay: 120\n\nUser-agent: *\nDisallow: /\n"))
    server.route("/t", lambda req: Reply(200, page([(int(req.arg("page", "1")), "ann", "acme")], "?page=2")))
    collector = make(server, ["/t"], selectors=SELECTORS)
    started = time.monotonic()
    first = collector.poll(None)
    assert time.monotonic() - started < 5  # no two-minute sleep
    assert [r.arg("page") for r in server.requests if r.path == "/t"] == [None]
    assert any("120s between requests" in n for n in first.notes)
    assert first.cursor["pages"][server.url + "/t"]["resume"] == server.url + "/t?page=2"  # where to go on
    second = collector.poll(first.cursor)  # the delay has not passed: nothing is fetched
    assert [r.path for r in server.requests].count("/t") == 1 and second.mentions == []
    assert second.cursor["pages"][server.url + "/t"]["resume"] == server.url + "/t?page=2"


def test_links_resolve_against_the_page_a_redirect_led_to(server):
    server.route("/old/t", Reply(301, "", {"Location": "/new/t"}))
    server.route("/new/t", Reply(200, page([(1, "ann", "acme")]).replace('href="/p/1"', 'href="p/1"')))
    [m] = make(server, ["/old/t"], selectors=SELECTORS).poll(None).mentions
    assert m.url == server.url + "/new/p/1"


# -- a post is its id, author and time: a forum restored from a backup gives lost posts' ids to new ones ----

def _thread(posts):
    items = "".join(f'<div class="msg" data-id="{pid}"><span class="who">{who}</span>'
                    f'<time datetime="{at.isoformat()}">x</time><div class="text">{text}</div></div>'
                    for pid, who, at, text in posts)
    return f"<html><head><title>T</title></head><body>{items}</body></html>"


def test_an_id_given_to_another_post_is_read_as_new_and_an_edit_is_not(server):
    t = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
    html = {"now": _thread([(1, "ann", t, "acme is down"), (2, "bob", t + timedelta(minutes=1), "acme here too")])}
    server.route("/t", lambda req: Reply(200, html["now"], {"Content-Type": "text/html"}))
    collector = make(server, ["/t"], selectors={k: v for k, v in SELECTORS.items() if k != "permalink"})
    first = collector.poll(None)
    assert len(first.mentions) == 2
    html["now"] = _thread([(1, "ann", t, "acme is down (edit: since 9am)"), (2, "bob", t + timedelta(minutes=1),
                                                                           "acme here too")])
    edited = collector.poll(first.cursor)
    assert edited.mentions == []  # an edit keeps its author and time: the post stored before
    html["now"] = _thread([(1, "ann", t, "acme is down"), (2, "cat", t + timedelta(hours=3), "acme billed me twice")])
    restored = collector.poll(edited.cursor)
    host = server.url.removeprefix("http://")
    assert [(m.external_id, m.author, m.body) for m in restored.mentions] == [(f"{host}#2", "cat", "acme billed me twice")]
    assert collector.poll(restored.cursor).mentions == []  # and read once


def test_ids_remembered_alone_by_an_older_hearken_still_count_as_seen(server):
    t = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
    server.route("/t", Reply(200, _thread([(1, "ann", t, "acme is down")]), {"Content-Type": "text/html"}))
    host = server.url.removeprefix("http://")
    url = server.url + "/t"
    result = make(server, ["/t"], selectors=SELECTORS).poll({"pages": {url: {"resume": url, "seen": [f"{host}#1"]}}})
    assert result.mentions == []
    [entry] = result.cursor["pages"][url]["seen"]
    assert entry[0] == f"{host}#1" and entry[2] == int(t.timestamp())  # from now on with its author and time


NESTED = """<html><head><title>Board</title><base href="/forum/"></head><body>
<div class="p" id="p1"><h1 class="t">Acme thread</h1><span class="a">ann</span><time datetime="2026-01-05T10:00:00Z">
</time><div class="b">acme one</div>
  <div class="p" id="p2"><span class="a">bob</span><time datetime="2026-01-05T10:01:00Z"></time><div class="b">acme two</div>
  </div></div>
<div class="p" id="p3"><span class="a">cy</span><time datetime="2026-01-05T10:02:00Z"></time><div class="b">acme three</div>
<a class="perma" href="p3.html">#</a><a rel="next" href="/t?page=2">next</a></div>
</body></html>"""
LAST = """<html><body><div class="p" id="p4"><span class="a">di</span><time datetime="2026-01-05T10:03:00Z"></time>
<div class="b">acme four</div></div></body></html>"""


def test_a_page_read_a_post_at_a_time_answers_as_the_whole_page_would(server):
    """Posts are read as each one closes and then dropped (collectors/forum/stream.py), yet the page-wide answers
    are the whole page's: a title that only the first post holds, a next-page link inside the last post, the
    page's <base> for links, a post nested in another (both read, the outer keeps its own body), and the post
    selector's second alternative where the first matches nothing."""
    server.route("/t", lambda req: Reply(200, LAST if req.arg("page") == "2" else NESTED, {"Content-Type": "text/html"}))
    selectors = {"post": "article.post || div.p", "id_attr": "id", "body": "div.b", "author": ".a",
                 "time": "time@datetime", "title": "h1.t || title", "next_page": "a[rel=next]@href",
                 "permalink": "a.perma@href"}
    collector = make(server, ["/t"], selectors=selectors)
    result = collector.poll({"pages": {server.url + "/t": {"seen": ["none yet"]}}})
    got = [(m.extra["post_id"], m.author, m.body, m.title) for m in result.mentions]
    assert got == [("1", "ann", "acme one", "Acme thread"), ("2", "bob", "acme two", "Acme thread"),
                   ("3", "cy", "acme three", "Acme thread"), ("4", "di", "acme four", "")]
    assert result.mentions[2].url == server.url + "/forum/p3.html"
    assert [r.arg("page") for r in server.requests if r.path == "/t"] == [None, "2"]
