"""Every mention gets its language; one the complaint model does not read is routed, never silently scored.

Real posts in other languages (tests/fixtures/languages/umsab_tweets.tsv, see the SOURCES.md beside it)
come through the Discourse collector from a real HTTP server on 127.0.0.1, the runner stores and routes
them, and the dashboard (AppTest) shows each with its language: as a case for a reader (`queue`) or set
aside on the Sources page (`drop`). The English customer tweets of the benchmark (read in place) check
the other side: English complaints must not be taken for another language.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from sqlalchemy import func, select

from classifier.language import UNDETERMINED, detect
from desk.config.schema import parse_config
from desk.store.db import connect
from desk.intake.languages import set_aside_by_language
from desk.store.models import Case, Classification, MentionRow
from desk.intake.runner import Runner
from desk.intake.set_aside import summary
from tests.collector_helpers import LocalServer, Reply as Answer
from tests.conftest import ROOT
from tests.test_dashboard import app, markdown

SAMPLE = ROOT / "tests" / "fixtures" / "languages" / "umsab_tweets.tsv"
BENCHMARK = ROOT.parent / "shared" / "data" / "complaints_xci.csv"


def sample() -> list[tuple[str, str]]:
    with SAMPLE.open(encoding="utf-8") as fh:
        return [(r["language"], r["text"]) for r in csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)]


def real_post(language: str, contains: str) -> str:
    """A real post of the sample, found by a word in it (the brand term the config below watches)."""
    return next(t for lang, t in sample() if lang == language and contains.lower() in t.lower())


def test_real_posts_in_six_languages_are_told_from_english():
    rows = [(lang, t) for lang, t in sample() if lang in ("ar", "de", "es", "fr", "it", "pt")]
    found = detect([t for _, t in rows])
    not_english = [d.confident and d.code != "en" for d in found]
    assert sum(not_english) / len(rows) >= 0.85, sum(not_english)
    # where it names a language, it is the right one (Arabic's regional variants count as Arabic)
    named = [(lang, d.code) for (lang, _), d in zip(rows, found) if d.confident and d.code != "en"]
    assert sum(code[:2] == lang for lang, code in named) / len(named) >= 0.95
    english = detect([t for lang, t in sample() if lang == "en"])
    assert all(d.code in ("en", UNDETERMINED) for d in english), [d for d in english if d.code not in ("en", "und")]


@pytest.mark.skipif(not BENCHMARK.is_file(), reason=f"benchmark data not found at {BENCHMARK}")
def test_english_customer_tweets_are_not_taken_for_another_language():
    with BENCHMARK.open(encoding="utf-8", newline="") as fh:
        tweets = [r["tweet"] for r in csv.DictReader(fh)][:1500]
    other = [(t, d.code) for t, d in zip(tweets, detect(tweets)) if d.code not in ("en", UNDETERMINED)]
    # one in a thousand at most; the benchmark itself holds a Portuguese tweet or two
    assert len(other) <= 2, other


def test_too_little_text_is_undetermined_and_handles_and_links_do_not_count():
    short, links, german = detect(["ok 👍", "@NorthwindHelp @user https://t.co/abc #fail", "Seit Montag kein Internet, "
                                   "und die Hotline legt einfach auf"])
    assert (short.code, links.code) == (UNDETERMINED, UNDETERMINED)
    assert german.code == "de" and german.confident
    with pytest.raises(TypeError):
        detect("one string")


CONFIG = """\
brand: {{terms: [iPhone, Outlett]}}
accounts: {{discourse: [shop_team]}}
sources:
  - {{type: discourse, name: community, base_url: '{url}'}}
classifier: {{languages: [en], other_languages: {route}}}
team:
  - {{name: Alex Admin, email: alex@example.com, role: admin}}
  - {{name: Sam Agent, email: sam@example.com, role: agent}}
"""
ENGLISH_COMPLAINT = "My iPhone came back from the repair still broken and Amazon support keeps hanging up on me. Fix it!"


def _posts() -> list[dict]:
    bodies = [("fr", real_post("fr", "iphone")), ("de", real_post("de", "Outlett")), ("es", real_post("es", "iPhone")),
              ("en", ENGLISH_COMPLAINT)]
    return [{"id": 20 + i, "username": f"customer{i}", "topic_id": 7 + i, "post_number": 1, "topic_slug": f"t{i}",
             "topic_title": "", "created_at": "2026-11-20T09:00:00Z", "post_type": 1, "raw": body}
            for i, (_, body) in enumerate(bodies)]


def _collect(tmp_path, monkeypatch, model, route: str):
    """Poll the stand-in forum once with the real runner, into the database the dashboard reads."""
    with LocalServer() as server:
        posts = _posts()
        server.route("/posts.json", lambda req: Answer(200, {"latest_posts": list(reversed(posts))}))
        path = tmp_path / "hearken.yaml"
        path.write_text(CONFIG.format(url=server.url, route=route))
        url = f"sqlite:///{tmp_path / 'hearken.db'}"
        monkeypatch.setenv("HEARKEN_CONFIG", str(path))
        monkeypatch.setenv("HEARKEN_DATABASE_URL", url)
        cfg = parse_config(path.read_text(), str(path))
        store = connect(url)
        runner = Runner(cfg, store, model_loader=lambda: model)
        runner.poll_source(cfg.sources[0])
        runner.classify()
        host = server.url.removeprefix("http://")
    return cfg, store, host


def _by_language(store) -> dict[str, tuple[MentionRow, Classification | None, Case | None]]:
    with store.session() as s:
        out = {}
        for m in s.scalars(select(MentionRow)):
            out[m.language] = (m, m.classification, s.get(Case, m.case_id) if m.case_id else None)
        return out


def test_other_languages_queue_for_a_reader_end_to_end(tmp_path, monkeypatch, model):
    cfg, store, host = _collect(tmp_path, monkeypatch, model, "queue")
    rows = _by_language(store)
    assert set(rows) == {"fr", "de", "es", "en"}
    for lang in ("fr", "de", "es"):
        m, cls, case = rows[lang]
        assert cls is None, f"{lang}: scored by the English model"  # never silently scored
        assert case is not None and case.score is None and case.severity is None
    m, cls, case = rows["en"]
    assert cls is not None and cls.is_complaint and case is not None and case.score == pytest.approx(cls.score)

    at = app()  # the queue: every card says its language; the foreign ones say they were not scored
    assert not at.exception
    cards = markdown(at)
    for lang in ("fr", "de", "es"):
        assert f"{lang}: not scored, for a reader" in cards.replace("\\", "")
    assert "score 0." in cards or "score 1." in cards

    german_case = rows["de"][2].id
    at = app("views/case.py", case_id=german_case)
    assert not at.exception
    assert any("Written in 'de'" in i.value and "not scored" in i.value for i in at.info)
    assert real_post("de", "Outlett") in [t.value for t in at.text]
    store.close()


def test_other_languages_drop_keeps_them_set_aside_and_visible(tmp_path, monkeypatch, model):
    cfg, store, host = _collect(tmp_path, monkeypatch, model, "drop")
    rows = _by_language(store)
    assert set(rows) == {"fr", "de", "es", "en"}  # all kept in the database, with their language
    for lang in ("fr", "de", "es"):
        m, cls, case = rows[lang]
        assert cls is None and case is None and m.classified
    assert rows["en"][2] is not None
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(Case)) == 1
    assert "community" not in summary(store)  # no "could not be read" item: nothing went wrong
    dropped = set_aside_by_language(store)["community"]
    assert (dropped.count, dropped.by_language) == (3, {"fr": 1, "de": 1, "es": 1})

    at = app("views/sources.py")
    assert not at.exception
    info = " ".join(i.value for i in at.info).replace("\\", "")
    assert "Set aside, not scored: 3 mentions in languages the complaint model does not read" in info
    assert real_post("es", "iPhone")[:60] in str(at.dataframe[-1].value.to_dict("records"))
    store.close()
