"""The shipped classifier on posts unlike its training tweets: `hearken evaluate --field`.

The field sets (classifier/datasets/, SOURCES.md there) are forum, Reddit and X posts and replies,
queries from a consumer domain absent from training (online banking), and sarcastic tweets. The
floors below are what the shipped model measured (MODEL.md, "Field sets"), less a text or two for
float differences between CPUs; a model that falls under them is worse in the field. They are far
under the issue's floors (0.92 / 0.90 on posts): raise them with the model that reaches those.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import classifier
from classifier.field import load_field_sets

REPO = Path(__file__).resolve().parent.parent
OFFLINE = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}

# (set, rows) -> (accuracy, complaint recall) floors, fractions: the shipped model measured 55.7 / 91.4 (posts),
# 87.7 / 83.0 (banking), 74.4 / 56.7 (sarcasm); the floors sit one or two texts under each figure
FLOORS = {
    ("posts", "all"): (0.54, 0.88),
    ("banking", "all"): (0.87, 0.82),
    ("sarcasm", "all"): (0.72, 0.53),
}


def _evaluate(*args: str) -> subprocess.CompletedProcess:
    code = (
        "import argparse, sys\n"
        "from classifier.cli import register\n"
        "p = argparse.ArgumentParser(prog='hearken'); register(p.add_subparsers())\n"
        "a = p.parse_args(sys.argv[1:]); sys.exit(a.func(a))\n"
    )
    return subprocess.run([sys.executable, "-c", code, "evaluate", "--field", *args], cwd=REPO, env=OFFLINE,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def field_run(tmp_path_factory) -> tuple[subprocess.CompletedProcess, dict]:
    out = tmp_path_factory.mktemp("field") / "field.json"
    run = _evaluate("--json", str(out))
    assert run.returncode == 0, run.stderr
    return run, json.loads(out.read_text())


def test_field_sets_are_there_and_labelled():
    sets = {s.name: s for s in load_field_sets()}
    assert list(sets) == ["posts", "banking", "sarcasm"]
    for s in sets.values():
        assert len(s.texts) == len(s.labels) and set(s.labels.tolist()) == {0, 1}
    posts = sets["posts"]
    assert {"reddit", "forum", "x", "reply"} <= set(posts.groups)
    assert any(t.startswith("Moving house checklist and how it went. ") for t in posts.texts)  # title joined as the runner does


@pytest.mark.slow
def test_evaluate_field_prints_accuracy_recall_and_macro_f1_per_set(field_run):
    run, result = field_run
    header = next(line for line in run.stdout.splitlines() if line.startswith("set"))
    assert header.split() == ["set", "rows", "n", "compl.", "accuracy", "recall", "prec.", "macroF1", "AUC"]
    printed = {line.split()[0] for line in run.stdout.splitlines() if line.split() and line.split()[0] in FIELD_NAMES}
    assert printed == set(FIELD_NAMES)
    assert result["model"] == classifier.load().version and result["threshold"] == pytest.approx(classifier.load().threshold)


FIELD_NAMES = ("posts", "banking", "sarcasm")


@pytest.mark.slow
@pytest.mark.parametrize("key", sorted(FLOORS))
def test_shipped_model_reaches_its_measured_field_floors(field_run, key):
    _, result = field_run
    name, rows = key
    m = result["sets"][name]["groups"][rows]
    accuracy, recall = FLOORS[key]
    assert m["accuracy"] >= accuracy and m["recall"] >= recall, m


def test_a_bad_field_file_is_named_with_its_line(tmp_path):
    for name in ("field_posts.jsonl", "banking77_field.csv", "sarcasm_field.csv"):
        (tmp_path / name).write_bytes((classifier.field.FIELD_DIR / name).read_bytes())
    with (tmp_path / "sarcasm_field.csv").open("a", encoding="utf-8") as fh:
        fh.write("a sarcastic line,maybe,x\n")
    run = _evaluate("--field-dir", str(tmp_path))
    assert run.returncode != 0
    assert "sarcasm_field.csv: line 92 has label 'maybe', expected 0 or 1" in run.stderr
    (tmp_path / "banking77_field.csv").unlink()
    with pytest.raises(FileNotFoundError, match="banking77_field.csv"):
        load_field_sets(tmp_path)
