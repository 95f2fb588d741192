"""Forum engines as presets: vBulletin 5 and NodeBB on pages in their markup (tests/fixtures/forums, see
tests/fixtures/SOURCES.md), and on every preset's real saved page (../shared/fixtures) the body text keeps its
paragraphs without breaking lines at inline markup, and a quoted or answered post becomes the mention's parent.
Every page is served by a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from collectors import TermMatcher, build
from collectors.forum.presets import PRESETS
from collectors.forum.settings import ForumSource
from tests.collector_helpers import LocalServer, Reply, fixture

UTC = timezone.utc
OURS = Path(__file__).resolve().parent / "fixtures" / "forums"


@pytest.fixture
def server():
    with LocalServer() as s:
        yield s


def ours(server, name: str) -> bytes:
    """One of our pages, its site's address (https://community.northwind.example, ...) being the server's."""
    page = (OURS / name).read_bytes()
    return re.sub(rb"https://(community|talk)\.northwind\.example", server.url.encode(), page)


def poll(server, body: bytes, preset: str, terms=("Northwind",), own=("NorthwindHelp",), **kw):
    server.route("/thread", Reply(200, body, {"Content-Type": "text/html; charset=utf-8"}))
    settings = ForumSource(type="forum", name="board", pages=[server.url + "/thread"], preset=preset, max_pages=1,
                           respect_robots=False, **kw)
    result = build(settings, matcher=TermMatcher(list(terms)), own_accounts=list(own), env={}).poll(None)
    host = server.url.removeprefix("http://")
    return result, {m.external_id.removeprefix(host + "#"): m for m in result.mentions}, host


def test_vbulletin5_reads_posts_authors_epoch_times_quotes_and_answers_to_us(server):
    result, by_id, host = poll(server, ours(server, "vbulletin5_thread.html"), "vbulletin5")
    assert result.reads == 4 and sorted(by_id) == ["2771", "2774", "2781"]  # 2779 is ours: skipped
    first = by_id["2771"]
    assert first.author == "maria_t"
    assert first.title == "Hub drops every evening since the update"
    # data-node-publishdate, not <time datetime="2024-06-10T08:05:05">, the server's local time without a zone
    assert first.posted_at == datetime(2024, 6, 10, 12, 5, 5, tzinfo=UTC)
    thread = "/forum/broadband/help-and-faults/2771-hub-drops-every-evening-since-the-update"
    assert first.url == server.url + thread + "#post2771"
    assert first.body == (
        "Since the Northwind firmware update on Friday, my hub drops the connection every evening between 7 and "
        "9pm. The lights go red, then it reboots itself.\n\n"
        "I have restarted it, done a factory reset and tried another cable (Cat 6, brand new). Nothing helps. "
        "I work from home, so this is costing me money!\n\n"
        "Is anyone else on the status page seeing this, or is it just me?")
    assert first.parent_id is None
    reply = by_id["2774"]
    assert reply.parent_id == f"{host}#2771"  # its quote's View Post link
    assert "every night since Friday (hub 3, firmware 2.4.1). Looks like" in reply.body
    answer = by_id["2781"]  # names no term, but quotes our post
    assert answer.extra["reply_to_own"] is True and answer.matched_terms == ()
    assert answer.parent_id == f"{host}#2779"


def test_vbulletin5_without_the_epoch_reads_the_naive_time_in_the_forums_zone(server):
    page = re.sub(rb' data-node-publishdate="\d+"', b"", ours(server, "vbulletin5_thread.html"))
    _, by_id, _ = poll(server, page, "vbulletin5", timezone="America/New_York")
    assert by_id["2771"].posted_at == datetime(2024, 6, 10, 12, 5, 5, tzinfo=UTC)  # 08:05:05 EDT


def test_nodebb_reads_posts_paragraphs_reply_markers_and_quotes_of_us(server):
    result, by_id, host = poll(server, ours(server, "nodebb_topic.html"), "nodebb")
    assert result.reads == 4 and sorted(by_id) == ["1950", "1953", "1961"]  # 1958 is ours
    first = by_id["1950"]
    assert (first.author, first.title) == ("maria_t", "Hub drops every evening")
    assert first.posted_at == datetime(2024, 6, 10, 12, 5, 5, tzinfo=UTC)
    assert first.url == server.url + "/post/1950"  # resolved against the page's address
    assert first.body == ("Since the Northwind firmware update on Friday my hub drops every evening, always between "
                          "7 and 9pm.\n\nI've tried a factory reset, another cable and another socket "
                          "(192.168.1.254 stops answering too). Nothing helps 😠\n\nIs it just me?")
    assert by_id["1953"].parent_id == f"{host}#1950"  # the Reply button's post/parent marker
    assert by_id["1953"].posted_at == datetime(2024, 6, 10, 14, 45, 10, tzinfo=UTC)
    quoted = by_id["1961"]  # "@NorthwindHelp said in <a href=/post/1958>": an answer to us, no term of its own
    assert quoted.extra["reply_to_own"] is True and quoted.matched_terms == ()
    assert quoted.parent_id == f"{host}#1958"


def test_nodebb_quoting_a_mention_is_not_a_new_mention(server):
    page = ours(server, "nodebb_topic.html").replace(b"Thanks! Does the rollback", b"Thanks! Does it")
    _, by_id, _ = poll(server, page, "nodebb", terms=["rolling it back"], own=())
    assert sorted(by_id) == ["1958"]  # 1961 quotes those words but does not say them


# (page, preset, term, post id, a line as the post writes it: inline markup joined, punctuation unspaced,
#  whether the post has paragraphs, the parent's post id where the page names one)
REAL = [
    ("phpBB.html", "phpbb", "description", "2729881", "It could very well be a matter of description.", None, None),
    ("vBulletin3.html", "vbulletin3", "White Man", "5769003", "It was called White Man's Burden, and it star", True,
     "5768696"),
    ("vBulletin3.html", "vbulletin3", "Yamada is free", "5768696",
     "So what you're telling me is Yamada is free to tell a story", True, "5768676"),
    ("vBulletin4.html", "vbulletin4", "rat in separate", "365272", 'and who could forget..."There is a rat in separate".',
     None, "365268"),
    ("Xenforo1.html", "xenforo1", "Lucky", "2146342", "Lucky, Crow. If the Doctor's second roll had come first...", True,
     "2146297"),
    ("Xenforo2.html", "xenforo2", "dark theme", None, None, None, None),
    ("discourse_topic.response", "discourse_crawler", "GitHub", "1",
     "Repositories with the most stars on GitHub Octoverse.", None, None),
]


@pytest.mark.parametrize("name, preset, term, post_id, line, paragraphs, parent", REAL,
                         ids=[f"{r[1]}-{r[3]}" for r in REAL])
def test_body_text_and_parents_on_the_real_saved_pages(server, name, preset, term, post_id, line, paragraphs, parent):
    result, by_id, host = poll(server, fixture("html_forums", name).read_bytes(), preset, terms=[term], own=())
    assert result.mentions
    for m in result.mentions:
        for text_line in m.body.split("\n"):
            assert text_line == text_line.strip()
        assert "\n\n\n" not in m.body
    if post_id is None:
        return
    m = next(x for x in result.mentions if x.extra["post_id"] == post_id)
    assert any(line in text_line for text_line in m.body.split("\n")), m.body
    if paragraphs:
        assert "\n\n" in m.body
    scope = f"{server.url.removeprefix('http://')}/thread#" if preset == "discourse_crawler" else f"{host}#"
    assert m.parent_id == (scope + parent if parent else None)


def test_every_preset_names_a_parent_or_says_why_not():
    without = {name for name, p in PRESETS.items() if not p.get("parent")}
    assert without == {"discourse_crawler"}  # its quotes name a post number of any topic, not this thread's


_SPACE_BEFORE_PUNCTUATION = re.compile(r"\S [.,;:!?)](?=\s|$)")
PAGES = [("phpBB.html", "phpbb"), ("vBulletin3.html", "vbulletin3"), ("vBulletin4.html", "vbulletin4"),
         ("Xenforo1.html", "xenforo1"), ("Xenforo2.html", "xenforo2"), ("discourse_topic.response", "discourse_crawler")]


@pytest.mark.parametrize("name, preset", PAGES, ids=[p for _, p in PAGES])
def test_no_post_on_a_real_page_gains_a_space_before_punctuation_or_a_line_break_at_inline_markup(
        server, name, preset):
    """The posts of every real saved page that use a common word: each body has a
    space before punctuation only where the page's own text has one, and no line opens with punctuation
    that the page writes straight after a word (a break added at an inline element)."""
    page = fixture("html_forums", name).read_bytes()
    result, _, _ = poll(server, page, preset, terms=["the", "a", "to", "and", "it", "is", "I"], own=())
    own_text = " ".join(BeautifulSoup(page.decode("utf-8", "replace"), "html.parser").get_text("").split())
    assert len(result.mentions) >= 2
    for m in result.mentions:
        for spaced in _SPACE_BEFORE_PUNCTUATION.findall(m.body):
            assert spaced in own_text, (m.extra["post_id"], spaced)
        lines = m.body.split("\n")
        for before, line in zip(lines, lines[1:]):
            if before and line and line[0] in ".,;:!?)":
                assert before.split()[-1] + line.split()[0] not in own_text, (m.extra["post_id"], before, line)
