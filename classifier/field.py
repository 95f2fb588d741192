"""The field sets: labelled posts unlike the training tweets (classifier/datasets/, SOURCES.md there).

    sets = load_field_sets()                      # forum/Reddit/X posts, a banking domain, sarcasm
    result = score_field_sets(classifier.load(), sets)
    print(format_field(result))

They measure what the protocol's cross-validation cannot: how the model does on long forum
posts, replies, sarcasm and a consumer domain it never trained on. Training never reads them.
Loading needs nothing beyond the standard library; scoring needs scikit-learn (the `train` extra).
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from .text import prepare_text

FIELD_DIR = Path(__file__).resolve().parent / "datasets"

# name -> (file, what it holds); the order is the order of the report
FIELD_SETS = {
    "posts": ("field_posts.jsonl", "forum, Reddit and X posts and replies (ours)"),
    "banking": ("banking77_field.csv", "online-banking queries, a domain absent from training (Banking77)"),
    "sarcasm": ("sarcasm_field.csv", "sarcastic tweets (iSarcasmEval)"),
}


@dataclass
class FieldSet:
    name: str
    description: str
    texts: list[str]
    labels: np.ndarray
    groups: dict[str, np.ndarray] = field(default_factory=dict)  # e.g. "reddit" -> row mask


def _label(path: Path, line: int, raw) -> int:
    try:
        label = int(raw)
    except (TypeError, ValueError):
        label = -1
    if label not in (0, 1):
        raise ValueError(f"{path}: line {line} has label {raw!r}, expected 0 or 1")
    return label


def _read_posts(path: Path) -> tuple[list[str], list[int], dict[str, list[str]]]:
    texts, labels, tags = [], [], {"platform": [], "kind": []}
    with path.open(encoding="utf-8") as fh:
        for line, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw)
                body = rec["body"]
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}: line {line} is not a post with a 'body' ({exc})") from exc
            texts.append(prepare_text(rec.get("title") or "", body))
            labels.append(_label(path, line, rec.get("label")))
            tags["platform"].append(str(rec.get("platform", "")))
            tags["kind"].append(str(rec.get("kind", "")))
    return texts, labels, tags


def _read_csv(path: Path) -> tuple[list[str], list[int], dict[str, list[str]]]:
    texts, labels = [], []
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"text", "label"} <= set(reader.fieldnames):
            raise ValueError(f"{path}: needs the columns 'text' and 'label' (found {reader.fieldnames})")
        for line, row in enumerate(reader, start=2):
            texts.append(prepare_text("", row["text"] or ""))
            labels.append(_label(path, line, row["label"]))
    return texts, labels, {}


def load_field_sets(directory: str | os.PathLike | None = None, names: Sequence[str] | None = None) -> list[FieldSet]:
    """The field sets in `directory` (default: the shipped classifier/datasets/)."""
    directory = Path(directory) if directory else FIELD_DIR
    unknown = sorted(set(names or ()) - set(FIELD_SETS))
    if unknown:
        raise ValueError(f"unknown field set {', '.join(unknown)}; known: {', '.join(FIELD_SETS)}")
    out = []
    for name, (filename, description) in FIELD_SETS.items():
        if names and name not in names:
            continue
        path = directory / filename
        if not path.is_file():
            raise FileNotFoundError(f"field set {name!r} not found at {path}")
        texts, labels, tags = (_read_posts if path.suffix == ".jsonl" else _read_csv)(path)
        if not texts:
            raise ValueError(f"{path}: no labelled texts")
        groups = {}
        for key, values in tags.items():
            arr = np.array(values)
            for value in sorted(set(values)):
                if value:
                    groups[value] = arr == value
        out.append(FieldSet(name, description, texts, np.array(labels), groups))
    return out


def score_field_sets(model, sets: Sequence[FieldSet], threshold: float | None = None) -> dict:
    """Per set (and per platform/kind for the posts): accuracy, recall, precision, macro-F1, AUC."""
    from .metrics import binary_metrics

    cut = model.threshold if threshold is None else float(threshold)
    result: dict = {"model": model.version, "threshold": cut, "sets": {}}
    for s in sets:
        p = model.scores(s.texts)[0]
        rows = {"all": np.ones(len(s.texts), dtype=bool), **s.groups}
        table = {}
        for group, mask in rows.items():
            m = binary_metrics(s.labels[mask], p[mask], cut)
            m.update(n=int(mask.sum()), complaints=int(s.labels[mask].sum()), flagged=int((p[mask] >= cut).sum()))
            table[group] = m
        result["sets"][s.name] = {"description": s.description, "groups": table, "scores": p.tolist()}
    return result


def format_field(result: dict) -> str:
    lines = [f"Field sets (classifier/datasets/SOURCES.md), model {result['model']}, threshold {result['threshold']:.3f}; percent.",
             "", f"{'set':<9}{'rows':<10}{'n':>6}{'compl.':>8}{'accuracy':>10}{'recall':>8}{'prec.':>8}{'macroF1':>9}{'AUC':>7}"]
    lines.append("-" * len(lines[-1]))
    for name, entry in result["sets"].items():
        for group, m in entry["groups"].items():
            auc = "-" if m["auc"] != m["auc"] else f"{100 * m['auc']:.1f}"
            lines.append(
                f"{name if group == 'all' else '':<9}{group:<10}{m['n']:>6}{m['complaints']:>8}{100 * m['accuracy']:>10.1f}"
                f"{100 * m['recall']:>8.1f}{100 * m['precision']:>8.1f}{100 * m['macro_f1']:>9.1f}{auc:>7}"
            )
    return "\n".join(lines)
