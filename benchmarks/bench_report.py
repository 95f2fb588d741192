"""The weekly public-response report over 1M mentions, on SQLite and PostgreSQL.

    .venv/bin/python benchmarks/bench_report.py [--pg URL] [--mentions 1000000] [--only sqlite]
                                                [--scenarios year fortnight]

Two shapes of the same million mentions (a fifth of them complaints with cases, generated in bulk
as in bench_queue.py), the report built for the last full week as of the end of the data:

- year: spread over 52 weeks, so the week holds ~19k mentions and ~3.8k cases (a big brand's year
  of history in the database);
- fortnight: all in the reported week and the one before (the report compares the two), so the
  week holds 500k mentions and 100k cases: the worst case.

Timed on the same data:

- ours, full: `desk.reports.weekly.weekly_report(store, cfg)` as the dashboard and `hearken report` call it,
  themes included (classifier embeddings of up to 3,000 complaints, then clustering).
- ours, figures only: the same with the embeddings unavailable (the report then leaves themes out):
  the database and the arithmetic alone.
- baseline: a naive per-case Python loop computing the core figures (complaints, answered publicly,
  median and p90 time to first public reply) for both weeks: one query per case for its row, its
  mention and its replies. On the fortnight shape it runs on the first 5,000 cases and is
  extrapolated (marked "est.").

Target (issue 7): under 2 s.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import timedelta

from _common import UTC, database, fmt_ms, generate, header, kinds
from sqlalchemy import func, select

from desk.config.schema import HearkenConfig
from desk.store.models import Case, MentionRow, Reply
from desk.periods import last_full_week, parse_week, previous_week
from desk.reports.weekly import weekly_report
from zoneinfo import ZoneInfo

TARGET = 2.0
SAMPLE = 5_000


def cfg() -> HearkenConfig:
    return HearkenConfig.model_validate({
        "brand": {"terms": ["Northwind"]},
        "sources": [{"type": "demo", "name": "demo"}],
        "team": [{"name": "Morgan Manager", "email": "morgan@example.com", "role": "manager"}],
    })


def no_embeddings(texts):
    raise RuntimeError("embeddings switched off for the figures-only timing")


def naive(store, c: HearkenConfig, week: str, limit: int | None = None) -> tuple[dict, int]:
    """Baseline: the core figures of the week and the week before, one case at a time."""
    tz = ZoneInfo(c.sla.timezone)
    out = {}
    done = 0
    with store.session() as s:
        for w in (week, previous_week(week)):
            start, end = parse_week(w, tz)
            ids = list(s.scalars(select(Case.id).where(Case.customer_posted_at >= start, Case.customer_posted_at < end)
                                 .order_by(Case.id)))
            if limit is not None:
                ids = ids[: max(0, limit - done)]
            hours, complaints = [], 0
            for cid in ids:
                case = s.get(Case, cid)
                s.get(MentionRow, case.mention_id)
                replies = s.scalars(select(Reply).where(Reply.case_id == cid)).all()
                done += 1
                if case.status == "dismissed":
                    continue
                complaints += 1
                posted = [r.posted_at for r in replies if r.status == "posted" and r.kind == "public" and r.posted_at]
                if posted:
                    hours.append((min(posted) - case.customer_posted_at).total_seconds() / 3600)
            mentions = s.scalar(select(func.count()).select_from(MentionRow)
                                .where(MentionRow.posted_at >= start, MentionRow.posted_at < end))
            out[w] = {"mentions": mentions, "complaints": complaints, "answered": len(hours),
                      "median_h": statistics.median(hours) if hours else None}
            s.expunge_all()
    return out, done


def run(kind: str, shape: str, n: int, pg_url: str | None) -> dict:
    c = cfg()
    tz = ZoneInfo(c.sla.timezone)
    from datetime import datetime

    now = datetime.now(UTC)
    week = last_full_week(tz, now)
    start, end = parse_week(week, tz)
    pstart, _ = parse_week(previous_week(week), tz)
    with database(kind, pg_url) as store:
        if shape == "year":
            gen = generate(store, mentions=n, cases=n // 5, span=timedelta(weeks=52), now=end)
        else:
            gen = generate(store, mentions=n, cases=n // 5, span=end - pstart, now=end)
        with store.session() as s:
            in_week = s.scalar(select(func.count()).select_from(MentionRow)
                               .where(MentionRow.posted_at >= start, MentionRow.posted_at < end))
            cases_in_week = s.scalar(select(func.count()).select_from(Case)
                                     .where(Case.customer_posted_at >= start, Case.customer_posted_at < end))
        print(f"\n## {kind}, {shape}: {n:,} mentions, {gen.cases:,} cases; week {week} holds {in_week:,} mentions and "
              f"{cases_in_week:,} cases (loaded in {gen.seconds:.1f} s)")
        t = time.perf_counter()
        rep = weekly_report(store, c, week, now=now)
        full = time.perf_counter() - t
        assert rep.overall.mentions == in_week, (rep.overall.mentions, in_week)
        t = time.perf_counter()
        rep2 = weekly_report(store, c, week, now=now, embed=no_embeddings)
        figures = time.perf_counter() - t
        assert rep2.overall.complaints == rep.overall.complaints
        total_cases = cases_in_week + rep.previous_overall.complaints + rep.previous_overall.dismissed
        limit = SAMPLE if shape == "fortnight" else None
        t = time.perf_counter()
        base, done = naive(store, c, week, limit)
        base_s = time.perf_counter() - t
        estimated = done < total_cases
        if estimated:
            base_s = base_s / max(1, done) * total_cases
        else:
            assert base[week]["complaints"] == rep.overall.complaints, (base[week], rep.overall.complaints)
            assert base[week]["answered"] == rep.overall.answered_publicly
        verdict = lambda x: "meets" if x < TARGET else "MISSES"  # noqa: E731
        print(f"report  ours, full (with themes)   {fmt_ms(full):>10}   {verdict(full)} the 2 s target "
              f"({len(rep.themes)} themes)")
        print(f"report  ours, figures only         {fmt_ms(figures):>10}   {verdict(figures)} the 2 s target")
        print(f"report  baseline, per-case loop    {fmt_ms(base_s):>10}{' est.' if estimated else ''}"
              f"{f'  (ran {done:,} of {total_cases:,} cases)' if estimated else ''}")
        return {"kind": kind, "shape": shape, "week_mentions": in_week, "week_cases": cases_in_week, "full": full,
                "figures": figures, "base": base_s, "est": estimated}


def themes_split(n: int) -> None:
    """Where the themes' time goes: embeddings of n complaint texts, then the clustering, timed apart."""
    import numpy as np

    import classifier
    from _replay import replay_posts
    from desk.reports.weekly import THEME_SIMILARITY, cluster

    texts = [f"{p['topic_title']}\n\n{p['raw']}" for p in replay_posts(n, seed=9)]
    model = classifier.load()
    model.embed(texts[:8])  # load the model outside the timing
    t = time.perf_counter()
    vecs = np.asarray(classifier.embed(texts), dtype=np.float64)
    t_embed = time.perf_counter() - t
    t = time.perf_counter()
    groups = cluster(vecs, THEME_SIMILARITY)
    t_cluster = time.perf_counter() - t
    print(f"themes over {n:,} complaint texts (demo-post texts): embeddings {t_embed:.1f} s "
          f"({n / t_embed:.0f} texts/s), clustering {t_cluster:.1f} s ({len(groups)} groups)")
    try:
        from scipy.cluster.hierarchy import fcluster, linkage

        t = time.perf_counter()
        z = linkage(vecs, method="average", metric="cosine")
        flat = fcluster(z, t=1 - THEME_SIMILARITY, criterion="distance")
        t_scipy = time.perf_counter() - t
        print(f"  for comparison, scipy average linkage on the same vectors: {t_scipy:.2f} s "
              f"({len(set(flat))} groups)")
    except ImportError:
        pass


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pg", help="PostgreSQL URL; without it only SQLite is measured")
    ap.add_argument("--mentions", type=int, default=1_000_000)
    ap.add_argument("--scenarios", nargs="+", choices=["year", "fortnight"], default=["year", "fortnight"])
    ap.add_argument("--only", choices=["sqlite", "postgresql"])
    ap.add_argument("--themes-split", type=int, metavar="N",
                    help="only time the themes' two steps (embeddings, clustering) on N texts, no database")
    args = ap.parse_args(argv)
    header("Weekly report", args.pg)
    if args.themes_split:
        themes_split(args.themes_split)
        return 0
    results = [run(k, shape, args.mentions, args.pg) for shape in args.scenarios for k in kinds(args.pg, args.only)]
    print("\n| database | data | week: mentions / cases | ours, full | ours, figures only | baseline: per-case loop |")
    print("|---|---|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['kind']} | {r['shape']} | {r['week_mentions']:,} / {r['week_cases']:,} | {fmt_ms(r['full'])} | "
              f"{fmt_ms(r['figures'])} | {fmt_ms(r['base'])}{' (est.)' if r['est'] else ''} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
