"""Detection latency: from a post appearing at a platform to its case being in the queue, p50 and p95.

    .venv/bin/python benchmarks/bench_latency.py [--pg URL] [--interval 10] [--duration 120]

A real `hearken run` process polls a Discourse stand-in on 127.0.0.1 (benchmarks/_common.py) every
`--interval` seconds (with the configured 10 % jitter). For `--duration` seconds the stand-in publishes
a complaint at random moments (about one every two seconds), each in a topic of its own by an author
of their own, so each opens its own case. Meanwhile this script reads the queue the way the Queue page
does (`desk.cases.queue.open_queue`) every 0.2 s and notes when each post's case first shows.

- ours: publish -> case in the queue.
- baseline, from the same run: publish -> first served to the runner, i.e. the wait for the next
  poll alone, which no implementation of polling can beat; the difference is what fetching, storing,
  classifying and opening the case add. For uniform arrivals the poll wait alone has p50 = interval/2
  and p95 = 0.95 x interval.

Posts the classifier does not take for complaints open no case and are left out (the count is printed).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _common import database, header, kinds, pct
from _replay import ReplayForum, publish_and_watch, replay_posts, start_runner, stop_runner


def run(kind: str, pg_url: str | None, interval: float, duration: float) -> dict:
    forum = ReplayForum(page=50)
    forum.publish(replay_posts(5, first_id=100))
    folder = Path(tempfile.mkdtemp(prefix="hearken-latency-"))
    with database(kind, pg_url) as store:
        url = str(store.engine.url.render_as_string(hide_password=False))
        proc = start_runner(folder, url, [{"type": "discourse", "name": "forum", "base_url": forum.url,
                                           "interval_seconds": interval}])
        try:
            published, seen = publish_and_watch(forum, store, duration=duration, interval=interval)
        finally:
            stop_runner(proc)
            forum.close()
    queue_lat = [seen[p["topic_id"]] - forum.published_at[p["id"]] for p in published if p["topic_id"] in seen]
    fetch_lat = [forum.served_at[p["id"]] - forum.published_at[p["id"]] for p in published if p["id"] in forum.served_at]
    added = [seen[p["topic_id"]] - forum.served_at[p["id"]] for p in published
             if p["topic_id"] in seen and p["id"] in forum.served_at]
    return {"kind": kind, "published": len(published), "cases": len(queue_lat), "queue": queue_lat, "fetch": fetch_lat,
            "added": added, "interval": interval}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pg", help="PostgreSQL URL; without it only SQLite is measured")
    ap.add_argument("--interval", type=float, default=10.0, help="the source's poll interval, seconds")
    ap.add_argument("--duration", type=float, default=120.0, help="seconds of publishing")
    ap.add_argument("--only", choices=["sqlite", "postgresql"])
    args = ap.parse_args(argv)
    header("Detection latency", args.pg)
    print("\n| database | interval | posts / cases | in the queue p50 / p95 (ours) | first fetched p50 / p95 "
          "(poll wait alone) | added after the fetch: store+classify+case+queue read |")
    print("|---|---:|---:|---:|---:|---:|")
    for kind in kinds(args.pg, args.only):
        r = run(kind, args.pg, args.interval, args.duration)
        q, f = r["queue"], r["fetch"]
        print(f"| {kind} | {r['interval']:g} s | {r['published']} / {r['cases']} | {pct(q, 50):.1f} s / {pct(q, 95):.1f} s | "
              f"{pct(f, 50):.1f} s / {pct(f, 95):.1f} s | {pct(r['added'], 50):.1f} s (p95 {pct(r['added'], 95):.1f} s) |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
