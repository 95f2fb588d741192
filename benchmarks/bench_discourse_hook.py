"""Instant intake: post-to-queue p50 and p95 through the Discourse webhook against polling, same run.

    .venv/bin/python benchmarks/bench_discourse_hook.py [--pg URL] [--only sqlite|postgresql]
        [--interval 10] [--duration 90]

A real `hearken run` process polls a Discourse stand-in on 127.0.0.1 (benchmarks/_replay.py) every
`--interval` seconds, as configured (with its 10 % jitter); the webhook endpoint (desk/api/discourse_hook.py)
is served by uvicorn on 127.0.0.1 in this process, mounted on a small FastAPI app as desk/api's app mounts
it, on the same database. For `--duration` seconds the stand-in publishes a complaint at random moments
(about one every two seconds), each in a topic of its own by an author of their own, so each opens its
own case. Every other post is also delivered to the webhook the moment it is published, signed as
Discourse signs it; the others reach Hearken by the poll alone. Meanwhile this script reads the queue
the way the Queue page does (`desk.cases.queue.open_queue`) every 0.2 s and notes when each post's case
first shows.

- webhook: publish -> case in the queue, for the posts delivered to the webhook (the poll reads them
  too, later, and stores nothing: the script checks that no post is stored twice);
- polling: publish -> case in the queue, for the others, in the same run;
- the webhook's answer: publish -> the endpoint's 200 (the post stored, unclassified).

Discourse sends a webhook from a background job (Sidekiq) after the post is saved; that queueing,
usually well under a second on a healthy forum, is not part of these figures.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import database, header, kinds, pct
from _replay import ReplayForum, publish_and_watch, replay_posts, start_runner, stop_runner

import httpx
import uvicorn
from fastapi import FastAPI
from sqlalchemy import func, select

from desk.api.discourse_hook import router
from desk.config.schema import load_config
from desk.store.models import MentionRow

SECRET_VAR = "HEARKEN_BENCH_DISCOURSE_WEBHOOK_SECRET"
SECRET = "bench-secret-" + os.urandom(8).hex()


def serve_hook(cfg, store) -> tuple[uvicorn.Server, threading.Thread, str]:
    app = FastAPI()
    app.state.cfg, app.state.store = cfg, store
    app.include_router(router)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, thread, f"http://127.0.0.1:{port}/hooks/discourse/forum"


def deliver(client: httpx.Client, url: str, post: dict, answered: dict[int, float]) -> None:
    body = json.dumps({"post": post}).encode()
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    r = client.post(url, content=body, headers={
        "Content-Type": "application/json", "X-Discourse-Event": "post_created", "X-Discourse-Event-Type": "post",
        "X-Discourse-Instance": "http://127.0.0.1", "X-Discourse-Event-Signature": signature})
    if r.status_code == 200:
        answered[post["id"]] = time.time()
    else:
        print(f"webhook answered {r.status_code}: {r.text[:200]}", file=sys.stderr)


def run(kind: str, pg_url: str | None, interval: float, duration: float) -> dict:
    os.environ[SECRET_VAR] = SECRET
    forum = ReplayForum(page=50)
    forum.publish(replay_posts(5, first_id=100))
    folder = Path(tempfile.mkdtemp(prefix="hearken-hook-"))
    answered: dict[int, float] = {}
    hooked: set[int] = set()
    senders: list[threading.Thread] = []
    with database(kind, pg_url) as store:
        url = str(store.engine.url.render_as_string(hide_password=False))
        proc = start_runner(folder, url, [{"type": "discourse", "name": "forum", "base_url": forum.url,
                                           "interval_seconds": interval, "webhook_secret_env": SECRET_VAR}])
        server, thread, hook_url = serve_hook(load_config(folder / "hearken.yaml"), store)
        client = httpx.Client(timeout=30)

        def on_publish(post: dict, k: int) -> None:
            if k % 2 == 0:  # every other post is delivered to the webhook too, the moment it is published
                hooked.add(post["id"])
                t = threading.Thread(target=deliver, args=(client, hook_url, post, answered), daemon=True)
                t.start()
                senders.append(t)

        try:
            published, seen = publish_and_watch(forum, store, duration=duration, interval=interval,
                                                on_publish=on_publish)
            for t in senders:
                t.join(10)
            with store.session() as s:  # each published post is a topic of its own: one row per thread
                per_thread = dict(s.execute(select(MentionRow.thread_id, func.count())
                                            .group_by(MentionRow.thread_id)).all())
        finally:
            client.close()
            server.should_exit = True
            thread.join(10)
            stop_runner(proc)
            forum.close()
    threads = {f"{forum.url.split('//')[1]}/t/{p['topic_id']}" for p in published}
    rows = sum(n for t, n in per_thread.items() if t in threads)
    stored = sum(1 for t in per_thread if t in threads)
    published = [(p, p["id"] in hooked) for p in published]

    def latency(by_hook: bool) -> list[float]:
        return [seen[p["topic_id"]] - forum.published_at[p["id"]] for p, h in published
                if h == by_hook and p["topic_id"] in seen]

    answer = [answered[p["id"]] - forum.published_at[p["id"]] for p, h in published if h and p["id"] in answered]
    return {"kind": kind, "interval": interval, "published": published, "hook": latency(True),
            "poll": latency(False), "answer": answer, "rows": rows, "distinct": stored}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pg", help="PostgreSQL URL; without it only SQLite is measured")
    ap.add_argument("--interval", type=float, default=10.0, help="the source's poll interval, seconds")
    ap.add_argument("--duration", type=float, default=90.0, help="seconds of publishing")
    ap.add_argument("--only", choices=["sqlite", "postgresql"])
    args = ap.parse_args(argv)
    header("Instant intake: Discourse webhook against polling", args.pg)
    print("\n| database | interval | posts (webhook / poll only) | cases (webhook / poll only) | webhook: in the queue "
          "p50 / p95 | polling: in the queue p50 / p95 | webhook answered p50 / p95 | rows / posts stored |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for kind in kinds(args.pg, args.only):
        r = run(kind, args.pg, args.interval, args.duration)
        h, p = r["hook"], r["poll"]
        n_hook = sum(1 for _, by in r["published"] if by)
        n_poll = len(r["published"]) - n_hook
        print(f"| {kind} | {r['interval']:g} s | {n_hook} / {n_poll} | {len(h)} / {len(p)} | "
              f"{pct(h, 50):.2f} s / {pct(h, 95):.2f} s | {pct(p, 50):.1f} s / {pct(p, 95):.1f} s | "
              f"{pct(r['answer'], 50) * 1000:.0f} ms / {pct(r['answer'], 95) * 1000:.0f} ms | "
              f"{r['rows']} / {r['distinct']} |", flush=True)
        if r["rows"] != r["distinct"]:
            print(f"  !! {r['rows'] - r['distinct']} post(s) stored twice", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
