"""A Discourse stand-in for the benchmarks that run a real runner: posts to replay, a real HTTP server on
127.0.0.1 that serves them as Discourse does, and the Hearken config that polls it.

Not a test and not part of the package: each benchmark script imports it from its own folder, after
_common.py (which puts the repository on the import path).
"""

from __future__ import annotations

import json
import random
import time
from datetime import datetime, timedelta

from _common import REPO, UTC


def replay_posts(n: int, *, first_id: int = 1, seed: int = 2) -> list[dict]:
    """`n` Discourse posts (newest last) whose texts cycle through the bundled demo posts, in threads of four."""
    rng = random.Random(seed)
    demo = [json.loads(line) for line in (REPO / "collectors" / "demo" / "data" / "demo_posts.jsonl").read_text().splitlines()
            if line.strip()]
    texts = [(d.get("title") or "", d["body"]) for d in demo if "northwind" in (d.get("title", "") + d["body"]).lower()
             and "traders" not in d["body"].lower()]
    now = datetime.now(UTC)
    posts = []
    for k in range(n):
        pid = first_id + k
        title, body = texts[rng.randrange(len(texts))]
        topic = 10_000 + pid // 4
        posts.append({"id": pid, "username": f"user{rng.randrange(5000)}", "user_id": rng.randrange(5000),
                      "created_at": (now - timedelta(seconds=n - k)).isoformat().replace("+00:00", "Z"),
                      "post_number": pid % 4 + 1, "reply_to_post_number": None, "topic_id": topic,
                      "topic_slug": f"t{topic}", "topic_title": title or "Northwind", "post_type": 1,
                      "raw": f"{body} (#{pid})", "cooked": ""})
    return posts


class ReplayForum:
    """A real HTTP server on 127.0.0.1 serving Discourse's /posts.json (newest first, paged back with
    ?before=) over a list of posts that grows when `publish` is called. `served_at` records when each
    post id was first sent to a client."""

    def __init__(self, page: int = 50) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import parse_qs, urlsplit

        self.page = page
        self.posts: list[dict] = []
        self.published_at: dict[int, float] = {}
        self.served_at: dict[int, float] = {}
        self.lock = threading.Lock()
        forum = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                parts = urlsplit(self.path)
                before = parse_qs(parts.query).get("before")
                limit = int(before[0]) if before else None
                with forum.lock:
                    chosen = [p for p in reversed(forum.posts) if limit is None or p["id"] < limit][: forum.page]
                    t = time.time()
                    for p in chosen:
                        forum.served_at.setdefault(p["id"], t)
                body = json.dumps({"latest_posts": chosen}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def publish(self, posts: list[dict]) -> None:
        with self.lock:
            t = time.time()
            for p in posts:
                self.posts.append(p)
                self.published_at[p["id"]] = t

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def hearken_config(db_url: str, sources: list[dict], **extra) -> "HearkenConfig":  # noqa: F821
    from desk.config.schema import HearkenConfig

    data = {"brand": {"terms": ["Northwind", "@NorthwindHelp"], "exclusions": ["Northwind Traders"]},
            "sources": sources, "alerts": {"enabled": False}, "database": {"url": db_url},
            "team": [{"name": "Morgan Manager", "email": "morgan@example.com", "role": "manager"}]}
    data.update(extra)
    return HearkenConfig.model_validate(data)


def start_runner(folder: "Path", url: str, sources: list[dict]) -> "subprocess.Popen":  # noqa: F821
    """A real `hearken run` process on database `url` polling `sources`, its log in `folder`/runner.log."""
    import os
    import subprocess
    import sys

    cfg = folder / "hearken.yaml"
    cfg.write_text(json.dumps({
        "brand": {"terms": ["Northwind", "@NorthwindHelp"], "exclusions": ["Northwind Traders"]},
        "sources": sources, "team": [{"name": "Morgan Manager", "email": "morgan@example.com", "role": "manager"}],
        "alerts": {"enabled": False}, "database": {"url": url}}))
    env = dict(os.environ, HEARKEN_DATABASE_URL=url)
    log = open(folder / "runner.log", "wb")
    return subprocess.Popen([sys.executable, "-m", "desk.cli", "run", "--config", str(cfg)], cwd=REPO, env=env,
                            stdout=log, stderr=subprocess.STDOUT)


def stop_runner(proc: "subprocess.Popen") -> None:  # noqa: F821
    import signal
    import subprocess

    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def publish_and_watch(forum: ReplayForum, store, *, duration: float, interval: float, seed: int = 11,
                      on_publish=None) -> tuple[list[dict], dict[int, float]]:
    """Once the runner's first poll has been served: for `duration` seconds publish a complaint at random
    moments (about one every two seconds), each in a topic of its own by an author of their own, calling
    `on_publish(post, k)` for each; meanwhile read the queue as the Queue page does every 0.2 s, until one
    poll interval (and a margin) after the last post. Returns the posts and, per topic, when its case
    first showed."""
    from desk.cases.queue import open_queue

    rng = random.Random(seed)
    pool = replay_posts(400, first_id=1_000, seed=3)
    seen: dict[int, float] = {}
    published: list[dict] = []
    deadline = time.time() + 60
    while not forum.served_at and time.time() < deadline:  # the first poll: sets the cursor
        time.sleep(0.2)
    time.sleep(1)
    start = time.time()
    next_post = start + rng.expovariate(0.5)
    end_publish = start + duration
    end = end_publish + interval * 1.2 + 10
    k = 0
    while time.time() < end:
        now = time.time()
        if now >= next_post and now < end_publish:
            p = dict(pool[k])
            k += 1
            p.update(topic_id=50_000 + k, post_number=1, username=f"customer{k}")
            forum.publish([p])
            published.append(p)
            if on_publish is not None:
                on_publish(p, k)
            next_post = now + rng.expovariate(0.5)
        q = open_queue(store, limit=100_000)
        t = time.time()
        for item in q.items:
            seen.setdefault(int(item.url.rstrip("/").split("/")[-2]), t)
        time.sleep(0.2)
    return published, seen
