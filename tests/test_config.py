"""The config file: the example is valid and complete; each mistake names file, line, key and what was expected."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from desk.config.schema import DEFAULT_CONFIG, ConfigError, HearkenConfig, load_config, parse_config

ROOT = Path(__file__).resolve().parent.parent


def problems_of(text: str) -> list:
    with pytest.raises(ConfigError) as err:
        parse_config(text, "broken.yaml")
    return err.value.problems


def test_example_config_is_valid_and_runs_the_demo():
    cfg = load_config(DEFAULT_CONFIG)
    enabled = [s for s in cfg.sources if s.enabled]
    assert [s.type for s in enabled] == ["demo"]
    import collectors

    assert {s.type for s in cfg.sources} == set(collectors.NAMES)  # the example shows one source of each platform
    assert cfg.database_url({}).startswith("sqlite:///")
    assert cfg.database_url({}).endswith("/var/hearken.db")


def _keys(model: type, prefix: str = "") -> set[str]:
    """Every key path of a pydantic model, descending into nested models."""
    from pydantic import BaseModel

    out = set()
    for name, field in model.model_fields.items():
        if name == "path":
            continue
        out.add(prefix + name)
        ann = field.annotation
        for cand in getattr(ann, "__args__", ()) + (ann,):
            if isinstance(cand, type) and issubclass(cand, BaseModel):
                out |= _keys(cand, prefix + name + ".")
    return out


def _yaml_keys(node, prefix: str = "") -> set[str]:
    out = set()
    if isinstance(node, dict):
        for k, v in node.items():
            out.add(prefix + str(k))
            out |= _yaml_keys(v, prefix + str(k) + ".")
    return out


def test_example_config_shows_every_key_with_a_comment():
    text = DEFAULT_CONFIG.read_text()
    data = yaml.safe_load(text)
    shown = _yaml_keys(data)
    named = set(re.findall(r"(\w+):", text))  # keys shown in flow style or in commented examples
    missing = sorted(k for k in _keys(HearkenConfig)
                     if k not in shown and k.rsplit(".", 1)[-1] not in named)
    assert not missing, f"config/example.yaml lacks keys: {missing}"
    # every source type appears, with all of its keys
    import collectors

    assert {src["type"] for src in data["sources"]} == set(collectors.NAMES)
    for src in data["sources"]:
        model = collectors.platform(src["type"]).settings
        test_only = {n for n, f in model.model_fields.items() if (f.description or "").startswith("Only for tests")}
        absent = set(model.model_fields) - set(src) - test_only
        assert not absent, f"{src['type']} source in example.yaml lacks {sorted(absent)}"
    # top-level sections each carry an explanatory comment nearby
    for section in ("brand", "accounts", "sources", "sla", "alerts", "report", "team", "database", "classifier"):
        block = re.search(rf"(?:^#.*\n)*^{section}:.*?(?=^\w|^#|\Z)", text, re.S | re.M).group(0)
        assert "#" in block, f"section {section} has no comment"


def test_the_read_budget_warning_keeps_reading_its_old_name():
    """`x_budget_warn_fraction` (before the platforms moved into their packages) still reads."""
    old = parse_config("brand: {terms: [N]}\nalerts: {rules: {x_budget_warn_fraction: 0.5}}\n", "old.yaml")
    new = parse_config("brand: {terms: [N]}\nalerts: {rules: {read_budget_warn_fraction: 0.6}}\n", "new.yaml")
    assert old.alerts.rules.read_budget_warn_fraction == 0.5 and new.alerts.rules.read_budget_warn_fraction == 0.6


def test_unknown_key_names_key_and_line():
    text = "brand:\n  terms: [Acme]\n  exlusions: [x]\n"
    (p,) = problems_of(text)
    assert p.line == 3 and p.key == "brand.exlusions" and "unknown key" in p.message
    assert str(p).startswith("broken.yaml:3: brand.exlusions:")


def test_the_language_rule_is_checked_with_key_and_line():
    text = "brand: {terms: [Acme]}\nclassifier:\n  languages: [en, klingon]\n  other_languages: translate\n"
    problems = {p.key: p for p in problems_of(text)}
    assert problems["classifier.languages"].line == 3
    assert "unknown language code 'klingon'" in problems["classifier.languages"].message
    assert problems["classifier.other_languages"].line == 4
    assert "'queue' or 'drop'" in problems["classifier.other_languages"].message
    cfg = parse_config("brand: {terms: [Acme]}\nclassifier: {languages: [EN, de], other_languages: drop}\n")
    assert (cfg.classifier.languages, cfg.classifier.other_languages) == (["en", "de"], "drop")


def test_wrong_type_in_a_source_names_source_index_key_and_line():
    text = """\
brand:
  terms: [Acme]
sources:
  - type: demo
    name: demo
  - type: reddit
    name: r
    interval_seconds: soon
"""
    (p,) = problems_of(text)
    assert p.key == "sources.1.interval_seconds"
    assert p.line == 8
    assert "number" in p.message and "'soon'" in p.message


def test_every_problem_is_listed_at_once():
    text = """\
brand:
  terms: []
sources:
  - type: telegram
    name: t
sla:
  timezone: Mars/Olympus
  business_hours: {start: "9am", end: "17:00"}
team:
  - {name: Ann, email: not-an-email, role: boss}
"""
    problems = problems_of(text)
    by_key = {p.key: p for p in problems}
    assert by_key["brand.terms"].line == 2
    assert "at least 1" in by_key["brand.terms"].message
    assert by_key["sources.0"].line == 4 and "telegram" in by_key["sources.0"].message
    assert by_key["sla.timezone"].line == 7 and "Mars/Olympus" in by_key["sla.timezone"].message
    assert by_key["sla.business_hours.start"].line == 8 and "HH:MM" in by_key["sla.business_hours.start"].message
    assert by_key["team.0.email"].line == 10 and "email" in by_key["team.0.email"].message
    assert by_key["team.0.role"].line == 10 and "'agent'" in by_key["team.0.role"].message


def test_missing_required_key_points_at_its_parent():
    text = "brand:\n  terms: [Acme]\nsources:\n  - type: forum\n    name: f\n"
    (p,) = problems_of(text)
    assert p.key == "sources.0.pages" and p.line == 4 and "missing" in p.message


def test_yaml_syntax_error_names_the_line():
    (p,) = problems_of("brand:\n  terms: [Acme\nsources: []\n")
    assert p.line is not None and p.line >= 2 and "not valid YAML" in p.message


def test_duplicate_source_names_are_refused():
    text = "brand: {terms: [A]}\nsources:\n  - {type: demo, name: one}\n  - {type: demo, name: one}\n"
    (p,) = problems_of(text)
    assert "two sources are named 'one'" in p.message


def test_empty_and_missing_files():
    (p,) = problems_of("")
    assert "empty" in p.message
    with pytest.raises(ConfigError) as err:
        load_config("/nonexistent/hearken.yaml")
    assert "no such file" in str(err.value)


def test_secrets_are_named_by_variable_and_the_database_url_can_come_from_one(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("brand: {terms: [A]}\ndatabase: {url_env: MY_DB}\n")
    cfg = load_config(path)
    assert cfg.database_url({"MY_DB": "postgresql://u:p@db/h"}) == "postgresql://u:p@db/h"
    assert cfg.database_url({}) == f"sqlite:///{(tmp_path / '../var/hearken.db').resolve()}" or \
        cfg.database_url({}).endswith("var/hearken.db")


def test_check_config_prints_every_problem_and_exits_non_zero(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("brand:\n  terms: [Acme]\n  colour: red\nsla:\n  timezone: Nowhere/Land\n")
    run = subprocess.run([sys.executable, "-m", "desk.cli", "check-config", "--config", str(bad)],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 1
    assert f"{bad}:3: brand.colour: unknown key" in run.stdout
    assert f"{bad}:5: sla.timezone: unknown time zone 'Nowhere/Land'" in run.stdout
    good = subprocess.run([sys.executable, "-m", "desk.cli", "check-config", "--config", str(DEFAULT_CONFIG)],
                          capture_output=True, text=True, cwd=ROOT)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "OK" in good.stdout and "source demo (demo): ready" in good.stdout


def test_other_commands_refuse_a_broken_config_with_the_same_messages(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("brand:\n  terms: [Acme]\nsources:\n  - {type: demo, name: d, interval_seconds: -1}\n")
    run = subprocess.run([sys.executable, "-m", "desk.cli", "run", "--once", "--config", str(bad)],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 2
    assert f"{bad}:4: sources.0.interval_seconds: Input should be greater than 0" in run.stderr


def test_every_registered_platform_is_a_key_of_sla_platforms_and_accounts_and_no_other():
    import collectors

    for name in collectors.NAMES:
        cfg = parse_config(f"brand: {{terms: [A]}}\naccounts:\n  {name}: [us]\nsla:\n  platforms:\n"
                           f"    {name}: {{first_response: {{1: 5}}}}\n")
        assert cfg.accounts[name] == ["us"] and cfg.sla.targets_for(name).first_response[1] == 5
    found = problems_of("brand: {terms: [A]}\naccounts:\n  myspace: [us]\n")
    assert [p.line for p in found] == [3] and found[0].key.startswith("accounts.myspace")
    assert all(name in found[0].message for name in collectors.NAMES), found[0].message
    found = problems_of("brand: {terms: [A]}\nsources:\n  - {name: typeless}\n")
    assert found[0].key == "sources.0" and all(name in found[0].message for name in collectors.NAMES)


def test_the_config_package_names_no_platform():
    """A platform package added under collectors/ needs no edit here: desk/config/ takes the names from the
    registry, so no string in it is a platform's name and it imports no platform's package."""
    import ast

    import collectors

    for path in (ROOT / "desk" / "config").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                assert node.value not in collectors.NAMES, f"{path.name}:{node.lineno} names {node.value!r}"
            if isinstance(node, ast.ImportFrom) and node.module:
                assert node.module.split(".")[:2] not in ([["collectors", n] for n in collectors.NAMES]), \
                    f"{path.name}:{node.lineno} imports {node.module}"
