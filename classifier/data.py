"""Reading the labelled data: the public complaint benchmark and staff labels.

Nothing here imports torch or scikit-learn.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path

from .text import normalise

RANDOM_DOMAINS = frozenset({"random_tweet", "random_reply"})
SENTIMENTS = {"negative": 0, "neutral": 1, "positive": 2}
EMOTIONS = {"anger": 1, "sadness": 2, "joy": 3}  # the four rare others count as "other" (0)


@dataclass(frozen=True)
class Example:
    text: str
    label: int  # 1 = complaint
    severity: int  # 1..4 for complaints, 0 when unknown or not a complaint
    domain: str = ""
    sentiment: int = -1  # 0 negative, 1 neutral, 2 positive; -1 unknown (auxiliary task)
    emotion: int = -1  # 0 other, 1 anger, 2 sadness, 3 joy; -1 unknown (auxiliary task)


def default_data_path() -> Path:
    """<repo>/../shared/data/complaints_xci.csv, or $HEARKEN_DATA when set."""
    env = os.environ.get("HEARKEN_DATA")
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parent.parent
    return repo.parent / "shared" / "data" / "complaints_xci.csv"


def load_benchmark(path: str | os.PathLike | None = None) -> list[Example]:
    """The X-CI complaint tweets (see shared/data/SOURCES.md)."""
    path = Path(path) if path else default_data_path()
    if not path.is_file():
        raise FileNotFoundError(
            f"labelled data not found at {path}; pass --data or set HEARKEN_DATA"
        )
    rows = []
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            label = int(row["label"])
            severity = int(row.get("Severity") or 0) if label else 0
            sentiment = SENTIMENTS.get((row.get("sentiment") or "").strip().lower(), -1)
            emotion = EMOTIONS.get((row.get("emotion") or "").strip().lower(), 0) if row.get("emotion") else -1
            rows.append(
                Example(normalise(row["tweet"]), label, severity, row.get("domain", ""), sentiment, emotion)
            )
    return rows


# A CSV text cell that a spreadsheet would run as a formula, or that begins with an apostrophe of its own,
# is exported with one more leading apostrophe (desk.untrusted.csv_cell).
_ESCAPED_FORMULA = tuple("'" + c for c in "=+-@\t\r\n'")


def load_extra_labels(path: str | os.PathLike) -> list[Example]:
    """Staff labels exported by desk: CSV or JSONL with text,label[,severity].

    Severity may be empty; it is then left out of the severity loss. In a CSV, a text the export
    protected from spreadsheets (an apostrophe before a leading = + - @, tab, CR or apostrophe) is read
    without it.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"extra labels file not found: {path}")
    if path.suffix.lower() in {".jsonl", ".ndjson"}:
        with path.open(encoding="utf-8") as fh:
            records = [json.loads(line) for line in fh if line.strip()]
    else:
        with path.open(newline="", encoding="utf-8") as fh:
            records = list(csv.DictReader(fh))
    out = []
    for i, rec in enumerate(records, start=1):
        try:
            text = str(rec["text"])
            label = int(rec["label"])
            if path.suffix.lower() not in {".jsonl", ".ndjson"} and text.startswith(_ESCAPED_FORMULA):
                text = text[1:]
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: record {i} needs 'text' and 'label' (0 or 1)") from exc
        if label not in (0, 1):
            raise ValueError(f"{path}: record {i} has label {label!r}, expected 0 or 1")
        raw = rec.get("severity")
        severity = int(raw) if raw not in (None, "") and label else 0
        if severity not in (0, 1, 2, 3, 4):
            raise ValueError(f"{path}: record {i} has severity {severity}, expected 1-4")
        out.append(Example(normalise(text), label, severity, "staff"))
    return out


EXTRA_DIR = Path(__file__).resolve().parent / "train_extra"
EXTRA_SETS = ("goemotions_friendly", "nlupp_hotels", "hard_cases")


def load_training_extras(names=EXTRA_SETS, directory: str | os.PathLike | None = None) -> list[Example]:
    """The extra training texts in classifier/train_extra/ (SOURCES.md there), domain = the file's name."""
    from dataclasses import replace

    directory = Path(directory) if directory else EXTRA_DIR
    out: list[Example] = []
    for name in names:
        matches = [p for p in (directory / f"{name}.csv", directory / f"{name}.jsonl") if p.is_file()]
        if not matches:
            raise FileNotFoundError(f"extra training set {name!r} not found in {directory}")
        out += [replace(e, domain=name) for e in load_extra_labels(matches[0])]
    return out
