"""The platform registry: one package per platform, found the same way for each (the demo included), the
config's source types derived from it, its hooks, one error tree, and posting through it (collectors/<p>/publish.py)
against the demo platform's file and a Discourse stand-in on 127.0.0.1."""

from __future__ import annotations

import ast
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import collectors
from collectors import NotConfigured, Platform, ReadOnlySource, Rejected, Target
from collectors.net import deadline
from desk.config.schema import ConfigError, load_config
from tests.conftest import need_fixtures
from tests.e2e_helpers import DISCOURSE_ENV, DiscourseForum

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = sorted(p.parent.name for p in (ROOT / "collectors").glob("*/__init__.py") if p.parent.name != "net")


def test_every_platform_package_is_registered_the_same_way_demo_included():
    assert list(collectors.NAMES) == PACKAGES
    assert "demo" in PACKAGES
    registry = (ROOT / "collectors" / "__init__.py").read_text()
    for name in PACKAGES:  # the registry names no platform: it finds their packages
        assert f'"{name}"' not in registry and f"'{name}'" not in registry
    for name in PACKAGES:
        plat = collectors.platform(name)
        assert isinstance(plat, Platform) and plat.name == name
        folder = ROOT / "collectors" / name
        assert (folder / "settings.py").is_file() and (folder / "collect.py").is_file()
        assert (folder / "publish.py").is_file() == plat.can_post
        assert plat.collector.startswith(f"collectors.{name}.collect:")
        assert plat.settings.__module__ == f"collectors.{name}.settings"
        assert plat.settings.model_fields["type"].annotation.__args__ == (name,)


def test_the_config_accepts_exactly_the_registered_source_types(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("brand: {terms: [Acme]}\nsources:\n  - {type: myspace, name: m}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    text = str(err.value)
    assert "unknown source type 'myspace'" in text
    for name in collectors.NAMES:
        assert name in text
    path.write_text("brand: {terms: [Acme]}\nsources:\n  - {type: demo, name: d}\n")
    assert type(load_config(path).sources[0]) is collectors.platform("demo").settings


def test_collectors_import_nothing_of_the_desk():
    for path in (ROOT / "collectors").rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                assert not name.split(".")[0] in ("desk", "dashboard", "classifier"), f"{path}: imports {name}"


def test_hooks_reply_limits_read_budget_and_answers_to_us():
    x, demo, forum = (collectors.platform(n) for n in ("x", "demo", "forum"))
    assert x.reply_limit({}) == 280 and collectors.platform("discourse").reply_limit({}) == 32000
    assert demo.reply_limit({"style": "x"}) == 280 and demo.reply_limit({"style": "forum"}) == 10000
    src = x.settings(type="x", name="x", monthly_read_cap=500)
    assert x.read_budget(src, 120) == 380 and x.read_budget(src, 900) == 0
    assert demo.read_budget(demo.settings(type="demo", name="d"), 10_000) is None
    assert forum.answers_us({"reply_to_own": True}) and not forum.answers_us({})
    assert not forum.can_post and x.can_post


def test_one_not_configured_for_reading_and_posting():
    with pytest.raises(NotConfigured) as reading:
        collectors.build(collectors.platform("x").settings(type="x", name="x"),
                         matcher=collectors.TermMatcher(["Acme"]), env={})
    with pytest.raises(NotConfigured) as posting:
        collectors.publisher(collectors.platform("x").settings(type="x", name="x"), env={})
    assert isinstance(reading.value, collectors.CollectorError) and isinstance(posting.value, collectors.PublishError)
    assert "X_BEARER_TOKEN" in str(reading.value) and "X_API_KEY" in str(posting.value)
    forum = collectors.platform("forum").settings(type="forum", name="f", pages=["https://f.example/t/1"],
                                                  preset="phpbb")
    with pytest.raises(NotConfigured, match="cannot post on forum sources"):
        collectors.publisher(forum)
    ro = collectors.platform("demo").settings(type="demo", name="d", read_only=True)
    with pytest.raises(ReadOnlySource, match="read-only"):
        collectors.publisher(ro, data_dir=Path("/nonexistent"))


def test_demo_posts_to_its_file_in_the_data_directory_and_finds_it_again(tmp_path):
    demo = collectors.platform("demo")
    pub = collectors.publisher(demo.settings(type="demo", name="demo"), accounts=["NorthwindHelp"], env={},
                               data_dir=tmp_path)
    target = Target("demo", "demo", "d-17", "d-17", "https://demo.hearken.invalid/x/d-17", "@kim", {"style": "x"})
    with pytest.raises(Rejected, match="longer than 280"):
        pub.publish(target, "x" * 281)
    since = datetime.now(timezone.utc)
    posted = deadline.run(pub.publish, 5, target, "Sorry Kim, we're on it.")
    assert (tmp_path / "demo_platform.jsonl").read_text().count("\n") == 1
    again = deadline.run(pub.find_ours, 5, target, "sorry kim,  we're on it.", since, timedelta(seconds=5))
    assert again == posted and posted.external_id.startswith("r-")
    assert pub.find_ours(target, "something else", since, timedelta(seconds=5)) is None


def test_discourse_posts_through_the_registry_with_the_collectors_id_format(tmp_path):
    stand = DiscourseForum(need_fixtures("discourse", "new_topic_response.json")).start()
    try:
        src = collectors.platform("discourse").settings(
            type="discourse", name="community", base_url=stand.base_url,
            api_key_env="TEST_DISCOURSE_KEY", api_username_env="TEST_DISCOURSE_USER")
        pub = collectors.publisher(src, accounts=["northwind_team"], env=DISCOURSE_ENV, data_dir=tmp_path)
        host = stand.base_url.split("//", 1)[1]
        target = Target("discourse", "community", f"{host}/t/17/1", f"{host}/t/17", "", "kevin.r",
                        {"topic_id": 17, "post_number": 1})
        since = datetime.now(timezone.utc) - timedelta(seconds=1)
        posted = deadline.run(pub.publish, 10, target, "Thanks Kevin, we're looking into it.")
        assert posted.external_id == f"{host}/t/17/2"  # the collector's id of that post
        assert [p.json()["raw"] for p in stand.http.posts()] == ["Thanks Kevin, we're looking into it."]
        found = deadline.run(pub.find_ours, 10, target, "Thanks Kevin, we're looking into it.", since,
                             timedelta(seconds=120))
        assert found == posted
        pub.close()
    finally:
        stand.stop()
