"""Rebuilds the public parts of classifier/train_extra/ (extra training texts) from their sources.

    python scripts/build_train_extra.py GOEMOTIONS_TRAIN_TSV NLUPP_HOTELS_DIR

GOEMOTIONS_TRAIN_TSV is data/original/train.tsv of monologg/GoEmotions-pytorch (the GoEmotions
train split); NLUPP_HOTELS_DIR holds fold0.json ... fold19.json of NLU++'s hotels domain
(PolyAI-LDN/task-specific-datasets, nlupp/data/hotels). See classifier/train_extra/SOURCES.md.
hard_cases.jsonl is written by hand and is not rebuilt here.
"""

from __future__ import annotations

import csv
import json
import random
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "classifier" / "train_extra"

# GoEmotions label ids (data/original/labels.txt)
FRIENDLY = {0, 4, 5, 15, 17, 20, 23}  # admiration, approval, caring, gratitude, joy, optimism, relief
CARING = 5
GOEMOTIONS_KEEP = 600  # all caring comments first (advice and support replies), then the others
MIN_WORDS = 8

HOTEL_PROBLEM = "wrong_notworking_notshowing"
HOTEL_LEFT_OUT = {"lost_stolen", "refund", "cancel_close_leave_freeze", "handoff", "deny"}
HOTEL_NOT_KEEP = 250


def goemotions(path: Path) -> list[dict]:
    caring, other = [], []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            text, labels, _ = line.rstrip("\n").split("\t")
            ids = {int(x) for x in labels.split(",")}
            if not ids <= FRIENDLY or len(text.split()) < MIN_WORDS:
                continue
            (caring if CARING in ids else other).append(text)
    rng = random.Random(0)
    rng.shuffle(caring)
    rng.shuffle(other)
    kept = (caring + other)[:GOEMOTIONS_KEEP]
    return [{"text": t, "label": 0} for t in kept]


def hotels(directory: Path) -> list[dict]:
    rows = []
    for f in range(20):
        rows += json.loads((directory / f"fold{f}.json").read_text(encoding="utf-8"))
    problem = [r["text"] for r in rows if HOTEL_PROBLEM in r.get("intents", [])]
    fine = [r["text"] for r in rows if r.get("intents") and not (set(r["intents"]) & (HOTEL_LEFT_OUT | {HOTEL_PROBLEM}))]
    fine = random.Random(0).sample(fine, min(HOTEL_NOT_KEEP, len(fine)))
    return [{"text": t, "label": 1} for t in problem] + [{"text": t, "label": 0} for t in fine]


def write(name: str, rows: list[dict]) -> None:
    with (OUT / name).open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["text", "label"])
        w.writeheader()
        w.writerows(rows)
    print(f"{name}: {len(rows)} rows, {sum(r['label'] for r in rows)} complaints")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    write("goemotions_friendly.csv", goemotions(Path(sys.argv[1])))
    write("nlupp_hotels.csv", hotels(Path(sys.argv[2])))
