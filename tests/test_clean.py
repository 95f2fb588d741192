"""The collector boundary's normaliser (collectors/clean.py) and the shared time parser (collectors/times.py).

Hypothesis throws any text at the normaliser: what comes out must be storable (no NUL, no control
character but newline and tab, no lone surrogate, fitted to its column) whatever went in, and the
normaliser must leave clean text alone. The column limits are checked against desk/store/models.py so a
narrower column can never slip past the boundary.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors import clean, times
from collectors.base import Mention, PollResult
from collectors.errors import Rejected, TryLater
from collectors.plain import URL_SHOWN
from desk.store.models import MentionRow

UTC = timezone.utc
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
STORABLE_BODY = re.compile("[^\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]*")
STORABLE_LINE = re.compile("[^\x00-\x1f\x7f-\x9f\ud800-\udfff]*")

# Any text, with what json.loads and a broken page can give us mixed in: lone and split surrogate pairs
# (hypothesis's own text strategies never draw surrogates), NUL, CR, escape codes, C1 controls.
HOSTILE = st.sampled_from(["\x00", "\ud800", "\udfff", "\ud83d", "\ude00", "\r", "\r\n", "\x1b", "\x85", "\x7f",
                           "\u2028", "\ufeff", "\t", "\n", " ", "&amp;"])
anything = st.lists(st.one_of(st.characters(), HOSTILE), max_size=300).map("".join)


def mention(**kw) -> Mention:
    base = dict(platform="x", source="x-brand", external_id="1001", url="https://x.com/pat/status/1001",
                author="@pat", body="Acme is down", posted_at=NOW - timedelta(hours=1), thread_id="1001")
    base.update(kw)
    return Mention(**base)


@settings(max_examples=300, deadline=None)
@given(body=anything, author=anything, title=anything, ext=anything, thread=anything)
def test_whatever_a_platform_sends_the_mention_leaves_storable(body, author, title, ext, thread):
    m = mention(body=body, author=author, title=title, external_id=ext or "x", thread_id=thread or None)
    try:
        out, _ = clean.clean_mention(m, now=NOW)
    except clean.Unusable as exc:
        assert "id is empty" in str(exc)  # only an id made of nothing but control characters
        return
    assert STORABLE_BODY.fullmatch(out.body) and "\r" not in out.body
    for field in (out.author, out.title, out.external_id, out.thread_id or ""):
        assert STORABLE_LINE.fullmatch(field), repr(field)
    assert len(out.author) <= clean.AUTHOR_LIMIT and len(out.external_id) <= clean.ID_LIMIT
    assert len(out.thread_id or "") <= clean.ID_LIMIT
    json.dumps(out.extra)
    out.body.encode("utf-8")  # what SQLite and psycopg do with it; a lone surrogate would raise here
    again, _ = clean.clean_mention(out, now=NOW)
    assert again == out  # cleaning is idempotent: a re-poll stores the same values


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), max_size=200))
def test_clean_text_is_left_alone(text):
    assert clean.clean_text(text) == text


def test_what_the_normaliser_does_to_hostile_fields():
    m = mention(body="Acme\x00 took\r\nmy money\x07\ttwice \ud800", author="p" * 300, title="Bill\nshock\x1b[31m",
                external_id="9" * 250, parent_id="8" * 250, url="javascript:alert(1)",
                extra={"name": "Pat\x00", "link_url": "data:text/html,hi", "n": 3})
    out, notes = clean.clean_mention(m, now=NOW)
    assert out.body == "Acme took\nmy money\ttwice \ufffd"
    assert out.title == "Bill shock[31m"
    assert len(out.author) == 200 and out.author.endswith("…") and out.extra["author_full"] == "p" * 300
    assert len(out.external_id) == 200 and out.external_id.startswith("9" * 150)
    assert clean.fit_id("9" * 250) == out.external_id != clean.fit_id("9" * 249 + "8")  # stable, still unique
    assert len(out.parent_id) == 200
    assert out.url == "" and any("is not http(s)" in n for n in notes)
    assert out.extra["name"] == "Pat" and out.extra["link_url"] is None and out.extra["n"] == 3


def test_a_body_too_long_for_a_person_is_cut_with_a_marker():
    out, _ = clean.clean_mention(mention(body="a" * (clean.BODY_LIMIT + 5000)), now=NOW)
    assert out.body.startswith("a" * clean.BODY_LIMIT)
    assert out.body.endswith("[… 5,000 more characters were not stored]")


def test_a_split_surrogate_pair_is_joined_and_a_lone_one_replaced():
    assert clean.fix_surrogates("ok \ud83d\ude00 \udc80") == "ok \U0001F600 \ufffd"


@pytest.mark.parametrize("url, kept", [
    ("https://forum.example.com/t/1#p2", True), ("HTTP://forum.example.com/", True),
    ("javascript:alert(1)", False), ("  JavaScript:alert(1)", False), ("java\tscript:alert(1)", False),
    ("data:text/html,<script>", False), ("file:///etc/passwd", False), ("//forum.example.com/x", False),
    ("vbscript:msgbox", False), ("https://", False), ("", False),
])
def test_only_http_links_are_kept(url, kept):
    assert (clean.safe_link(url) is not None) is kept


def test_x_entities_are_read_once():
    # X writes & < > as entities in post text; "&amp;lt;" is what X sends for a literal "&lt;".
    assert clean.unescape_x("AT&amp;T &amp; M&amp;S &lt;3 &gt; &amp;lt;") == "AT&T & M&S <3 > &lt;"


def test_an_implausible_time_sets_the_mention_aside():
    result = PollResult([mention(external_id="1", posted_at=datetime(1557, 5, 4, tzinfo=UTC)),
                         mention(external_id="2", posted_at=NOW + timedelta(days=2)),
                         mention(external_id="3")], cursor={"since_id": "3"})
    out = clean.finish(result, now=NOW)
    assert [m.external_id for m in out.mentions] == ["3"]
    assert [a.external_id for a in out.set_aside] == ["1", "2"]
    assert "before 2000" in out.set_aside[0].reason and "more than a day in the future" in out.set_aside[1].reason
    assert json.loads(out.set_aside[0].raw)["posted_at"] == "1557-05-04T00:00:00+00:00"


def test_raw_payload_keeps_what_a_database_refuses_as_escapes_and_is_capped():
    raw = clean.raw_payload({"raw": "a\x00b\ud800", "n": 1})
    assert "\\u0000" in raw and "\\ud800" in raw
    raw.encode("utf-8")
    big = clean.safe_raw("x" * (clean.RAW_LIMIT + 10))
    assert big.endswith("[… 10 more characters cut]") and len(big) < clean.RAW_LIMIT + 40


def test_json_with_bad_bytes_or_absurd_nesting_still_gives_the_other_posts():
    body = (b'{"latest_posts": [{"id": 1, "raw": "caf\xe9 \xff"}, {"id": 2, "poll": ' + b"[" * 100_000
            + b"]" * 100_000 + b'}, {"id": 3, "raw": "ok [ \\" ] {"}]}')
    posts = clean.loads_json(body)["latest_posts"]
    assert [p["id"] for p in posts] == [1, 2, 3]
    assert posts[0]["raw"] == "caf\ufffd \ufffd" and posts[2]["raw"] == 'ok [ " ] {'
    with pytest.raises(ValueError):
        clean.loads_json(b"<html>maintenance</html>")


@settings(max_examples=60, deadline=None)
@given(anything, anything)
def test_whatever_a_platform_says_a_platform_error_keeps_one_storable_line(reason, url):
    """A reason quotes the platform (X's errors[].message, Discourse's errors list) and is stored as a source's
    status or a reply's error: PostgreSQL refuses NUL, a CR/LF would forge a log line, and a page-long error
    body would bury the Sources page."""
    for exc in (TryLater(reason, url=url), Rejected(reason * 20, url=url * 20)):
        shown = str(exc)
        assert STORABLE_LINE.fullmatch(shown), repr(shown)
        assert len(exc.reason) <= clean.REASON_LIMIT and len(shown) <= clean.REASON_LIMIT + URL_SHOWN + 3


def test_column_limits_match_the_database():
    columns = MentionRow.__table__.c
    assert columns.author.type.length >= clean.AUTHOR_LIMIT
    for name in ("external_id", "author_id", "thread_id", "parent_id"):
        assert columns[name].type.length >= clean.ID_LIMIT, name


# -- the time parser -------------------------------------------------------------------------------

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize("value, expected", [
    (1290336718, datetime(2010, 11, 21, 10, 51, 58, tzinfo=UTC)),              # seconds
    ("1290336718", datetime(2010, 11, 21, 10, 51, 58, tzinfo=UTC)),
    ("1795162500000", datetime(2026, 11, 20, 8, 15, tzinfo=UTC)),               # milliseconds, not the year 1557
    (1795162500000.0, datetime(2026, 11, 20, 8, 15, tzinfo=UTC)),
    ("1795162500000000", datetime(2026, 11, 20, 8, 15, tzinfo=UTC)),            # microseconds
    ("1290336718.5", datetime(2010, 11, 21, 10, 51, 58, 500000, tzinfo=UTC)),
    ("2026-11-20T08:15:00Z", datetime(2026, 11, 20, 8, 15, tzinfo=UTC)),
    ("2026-11-20T09:15:00+01:00", datetime(2026, 11, 20, 8, 15, tzinfo=UTC)),
    ("2026-11-20T08:15:00+0000", datetime(2026, 11, 20, 8, 15, tzinfo=UTC)),
    ("2026-11-20 09:15:00", datetime(2026, 11, 20, 8, 15, tzinfo=UTC)),         # no zone: the source's (Berlin)
    ("by Ann » Fri Nov 20, 2026 9:15 am", datetime(2026, 11, 20, 8, 15, tzinfo=UTC)),
    ("Yesterday, 09:15", datetime(2026, 11, 22, 8, 15, tzinfo=UTC)),
])
def test_times_every_way_a_platform_writes_them(value, expected):
    assert times.parse(value, zone=BERLIN, formats=times.FORUM_FORMATS, now=NOW) == expected


@pytest.mark.parametrize("value, why", [
    ("1557-05-04T00:00:00Z", "before 2000"), ("1999-12-31T23:59:59Z", "before 2000"), (0, "before 2000"),
    ("946684799", "before 2000"), ("2026-11-25T12:00:00Z", "more than a day in the future"),
    ("99999999999999999999", "too large"), (-5, "not a time"), (float("nan"), "not a time"),
    ("a while ago", "not a time we can read"), ("", "empty"), (None, "not a time"), (True, "not a time"),
    ([2026], "a list is not a time"),
])
def test_implausible_or_unreadable_times_are_refused_with_the_reason(value, why):
    with pytest.raises(times.BadTime, match=why):
        times.parse(value, zone=BERLIN, formats=times.FORUM_FORMATS, now=NOW)


def test_a_day_of_clock_skew_ahead_is_allowed():
    assert times.parse("2026-11-24T11:00:00Z", now=NOW) == datetime(2026, 11, 24, 11, tzinfo=UTC)
