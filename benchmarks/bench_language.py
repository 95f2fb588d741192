"""Language detection on short posts: accuracy and speed of py3langid and lingua, side by side.

    python benchmarks/bench_language.py [--only py3langid|lingua]

Texts (real posts, none written by us):

- tests/fixtures/languages/umsab_tweets.tsv: 40 tweets in each of 8 languages (ar, de, en, es, fr, hi, it,
  pt; the Hindi ones are mostly written in Latin letters), see the SOURCES.md beside it;
- ../shared/data/complaints_xci.csv: the 3,448 English customer tweets the complaint model trains on,
  read in place: what matters most there is how many English complaints a detector would call
  something else (they would be set aside instead of scored);
- ../shared/fixtures/x/noflat.jsonl: the recorded X search page, with X's own `lang` per tweet, read in place.

Printed per detector: accuracy per language, the English/not-English decision Hearken takes
(`classifier.language`: not English only when the detector is confident), texts per second, load time
and resident memory. A detector that is not installed is skipped with a note (lingua is not a Hearken
dependency: `pip install lingua-language-detector` to compare).
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "tests" / "fixtures" / "languages" / "umsab_tweets.tsv"
X_PAGE = REPO.parent / "shared" / "fixtures" / "x" / "noflat.jsonl"


def _sets() -> dict[str, list[tuple[str, str]]]:
    sys.path.insert(0, str(REPO))
    from classifier.data import default_data_path

    sets = {}
    with SAMPLE.open(encoding="utf-8") as fh:
        sets["umsab"] = [(r["language"], r["text"]) for r in csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)]
    path = default_data_path()
    if path.is_file():
        with path.open(encoding="utf-8", newline="") as fh:
            sets["complaints_xci (all en)"] = [("en", r["tweet"]) for r in csv.DictReader(fh)]
    if X_PAGE.is_file():
        page = json.loads(X_PAGE.read_text(encoding="utf-8").splitlines()[0])
        tweets = {t["id"]: t for t in page["data"] + page.get("includes", {}).get("tweets", [])}
        sets["x page (X's lang)"] = [(t["lang"], t["text"]) for t in tweets.values() if t.get("lang") not in (None, "und")]
    return sets


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def detectors(only: str | None):
    if only in (None, "py3langid"):
        def load_py3langid():
            sys.path.insert(0, str(REPO))
            from classifier.language import detect

            detect(["loading the model takes this long the first time"])
            return lambda texts: [(d.guess or d.code, d.confident and d.code != "en") for d in detect(texts)]
        yield "py3langid (classifier.language)", load_py3langid
    if only in (None, "lingua"):
        def load_lingua():
            from lingua import LanguageDetectorBuilder

            det = LanguageDetectorBuilder.from_all_languages().with_preloaded_language_models().build()

            def run(texts):
                out = []
                for conf in det.compute_language_confidence_values_in_parallel(texts):
                    best = conf[0] if conf else None
                    code = best.language.iso_code_639_1.name.lower() if best else "und"
                    out.append((code, bool(best and code != "en" and best.value >= 0.5)))
                return out
            return run
        yield "lingua (all languages, high accuracy)", load_lingua


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", choices=["py3langid", "lingua"])
    args = ap.parse_args()
    sets = _sets()
    base_rss = _rss_mb()
    for name, load in detectors(args.only):
        t0 = time.perf_counter()
        try:
            run = load()
        except ImportError as exc:
            print(f"\n{name}: not installed ({exc})")
            continue
        load_s = time.perf_counter() - t0
        print(f"\n{name}: loaded in {load_s:.2f} s, resident {_rss_mb() - base_rss:+.0f} MB")
        for set_name, rows in sets.items():
            texts = [t for _, t in rows]
            t1 = time.perf_counter()
            got = run(texts)
            rate = len(texts) / (time.perf_counter() - t1)
            per_lang: dict[str, Counter] = defaultdict(Counter)
            wrong_side = 0
            for (gold, _), (code, non_english) in zip(rows, got):
                per_lang[gold]["n"] += 1
                per_lang[gold]["right"] += code[:2] == gold  # a regional variant counts (arz, ary for ar)
                wrong_side += non_english != (gold != "en")
            acc = " ".join(f"{g} {100 * c['right'] / c['n']:.0f}" for g, c in sorted(per_lang.items()) if c["n"] >= 5)
            print(f"  {set_name:<26} n={len(rows):>5}  {rate:>7.0f} texts/s  English-or-not wrong: {wrong_side:>4} "
                  f"({100 * wrong_side / len(rows):.1f}%)  exact language %: {acc}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
