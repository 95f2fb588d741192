"""Ingest: mentions per second through fetch -> dedupe -> classify -> store -> case, on SQLite and PostgreSQL.

    .venv/bin/python benchmarks/bench_ingest.py [--pg URL] [--posts 3000] [--only sqlite]

A replay source: a Discourse stand-in on 127.0.0.1 (benchmarks/_common.py) serves `--posts` new posts
(texts of the bundled demo replay, all naming the brand) as /posts.json pages of 50, newest first.
One poll fetches them all through the real Discourse collector, paging back to the cursor. A tenth
of them were already stored by an earlier poll (a re-poll after a crash), so dedupe has work to do.
Each path starts from a fresh database holding that tenth, classified.

- ours: the runner's stages: `collector.poll` -> `desk.intake.storing.store_poll` (every new mention and
  the cursor in one transaction, ON CONFLICT DO NOTHING) -> `desk.intake.pipeline.classify_pending`
  (batches of 64 through the shipped classifier; cases and their alerts in the batch's transaction).
- baseline: the naive way: the same fetch, then per mention a SELECT on (platform, external_id),
  an INSERT when absent and a commit; then classification one mention per model call and per
  transaction (`classify_pending` with batch_size=1).

The figure is mentions fetched per second, end to end; stage times are printed beside it.
"""

from __future__ import annotations

import argparse
import random
import time

from _common import database, header, kinds
from _replay import ReplayForum, hearken_config, replay_posts
from sqlalchemy import func, select

import classifier
import collectors
from collectors.match import TermMatcher
from desk.store.models import Case, MentionRow
from desk.intake.pipeline import classify_pending
from desk.intake.source_state import state_for
from desk.intake.storing import mention_values, store_poll


def fetch(cfg, first_id: int):
    src = cfg.sources[0]
    c = collectors.build(src, matcher=TermMatcher(cfg.brand.terms, cfg.brand.exclusions), own_accounts=[])
    try:
        return c.poll({"latest": {"last_id": first_id - 1}})
    finally:
        c.close()


def naive_store(store, result, source: str, platform: str) -> int:
    from datetime import datetime, timezone

    new = 0
    for m in result.mentions:
        with store.session() as s:
            if s.scalar(select(MentionRow.id).where(MentionRow.platform == m.platform,
                                                    MentionRow.external_id == m.external_id)) is None:
                s.add(MentionRow(**mention_values(m, datetime.now(timezone.utc))))
                new += 1
    with store.session() as s:
        st = state_for(s, source, platform)
        st.cursor = result.cursor
    return new


def run(kind: str, n: int, pg_url: str | None, model) -> dict:
    forum = ReplayForum(page=50)
    first_id = 1_000
    posts = replay_posts(n, first_id=first_id)
    forum.publish(posts)
    out = {"kind": kind, "posts": n}
    try:
        for path in ("ours", "baseline"):
            with database(kind, pg_url) as store:
                cfg = hearken_config(str(store.engine.url), [{"type": "discourse", "name": "replay", "base_url": forum.url,
                                                              "max_pages": n // 50 + 2}])
                # the earlier poll: a random tenth already stored and classified
                warm = fetch(cfg, first_id)
                rng = random.Random(5)
                earlier = warm.mentions[:]
                rng.shuffle(earlier)
                warm.mentions = sorted(earlier[: len(earlier) // 10], key=lambda m: m.posted_at)
                store_poll(store, "replay", "discourse", warm)
                classify_pending(store, cfg, model)
                t0 = time.perf_counter()
                result = fetch(cfg, first_id)
                t1 = time.perf_counter()
                if path == "ours":
                    new = store_poll(store, "replay", "discourse", result)
                else:
                    new = naive_store(store, result, "replay", "discourse")
                t2 = time.perf_counter()
                outcome = classify_pending(store, cfg, model, batch_size=None if path == "ours" else 1)
                t3 = time.perf_counter()
                with store.session() as s:
                    stored = s.scalar(select(func.count()).select_from(MentionRow))
                    cases = s.scalar(select(func.count()).select_from(Case))
                assert stored == len(result.mentions), (stored, len(result.mentions))
                rate = len(result.mentions) / (t3 - t0)
                print(f"{kind:<10} {path:<8} {len(result.mentions):>6} fetched, {new:>5} new, {outcome.classified:>5} "
                      f"classified, {cases:>5} cases | fetch {t1 - t0:6.2f} s  store {t2 - t1:6.2f} s  "
                      f"classify+cases {t3 - t2:6.2f} s | {rate:8.1f} mentions/s", flush=True)
                out[path] = rate
                out[path + "_stages"] = (t1 - t0, t2 - t1, t3 - t2)
    finally:
        forum.close()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pg", help="PostgreSQL URL; without it only SQLite is measured")
    ap.add_argument("--posts", type=int, default=3000)
    ap.add_argument("--only", choices=["sqlite", "postgresql"])
    args = ap.parse_args(argv)
    header("Ingest", args.pg)
    model = classifier.load()
    print(f"model: {model.version}")
    results = [run(k, args.posts, args.pg, model) for k in kinds(args.pg, args.only)]
    print("\n| database | posts | ours: mentions/s | baseline: mentions/s | ours: fetch / store / classify+cases (s) | "
          "baseline: fetch / store / classify+cases (s) |")
    print("|---|---:|---:|---:|---|---|")
    for r in results:
        o, b = r["ours_stages"], r["baseline_stages"]
        print(f"| {r['kind']} | {r['posts']:,} | {r['ours']:.0f} | {r['baseline']:.0f} | "
              f"{o[0]:.2f} / {o[1]:.2f} / {o[2]:.2f} | {b[0]:.2f} / {b[1]:.2f} / {b[2]:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
