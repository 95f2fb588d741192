"""Load with hostile platforms: 20 sources of which 5 hostile, on SQLite (one runner) and PostgreSQL (two).

    .venv/bin/python benchmarks/bench_hostile.py [--minutes 10] [--baseline-minutes M] [--pg URL] [--only KIND]

Stand-ins on 127.0.0.1 (tests/hostile.py, the tests' hostile platform): 15 Discourse forums that keep
publishing (each post a topic of its own by an author of its own, the demo's texts, so complaints open
cases and severe ones alert), and 5 hostile platforms, polled with the default limits: one drips a
byte every 5 s, one drips its status line and headers, one reads the request and never answers, one
floods an endless body, one redirects to another origin. Email goes to a real aiosmtpd server that
keeps every message. Real `hearken run` processes do the work: one on SQLite, two sharing PostgreSQL.

Per database it prints:
- posted: posts the healthy stand-ins published; stored: those in the database (each once), after a
  catch-up of at most two minutes once publishing stops;
- detection p50 / p95: from a post's publication to its row in the database;
- alerts: outbox rows written; delivered: distinct messages the SMTP server got (Message-ID names the
  row), and how many arrived twice, after the outbox drains;
- memory: each runner's peak resident memory (VmHWM from /proc) and its resident memory at the start
  of the load;
- SIGTERM: seconds from the signal to the runners' exit (bound: runner.shutdown_seconds, 10).
Baseline, measured in the same run: the same 15 healthy forums without the hostile five, for
--baseline-minutes (default: --minutes).

Replies reaching the platform (one per attempt) are counted by the exactly-once work in tests/
(test_replies.py, test_publishers.py); this benchmark posts none.
"""

from __future__ import annotations

import argparse
import email
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

from _common import REPO, database, header, kinds, pct
from _replay import replay_posts
from sqlalchemy import func, select

from desk.store.models import MentionRow, Outbox, SourceState
from tests.hostile import Drip, Flood, HostileServer, Json, Redirect, Stall

UTC = timezone.utc
GOOD = 15
HOSTILE = {"drip": Drip(every=5), "drip-headers": Drip(every=5, in_headers=True), "stall": Stall(),
           "flood": Flood(), "elsewhere": None}  # elsewhere: a redirect to the second server, set up below
INTERVAL = 5.0
PAGE = 50


class Forums:
    """The healthy stand-ins: 15 forums on one server, /f<i>/posts.json, newest first, paged with ?before=."""

    def __init__(self, srv: HostileServer) -> None:
        self.srv = srv
        self.lock = threading.Lock()
        self.posts: dict[int, list[dict]] = {i: [] for i in range(GOOD)}
        self.published_at: dict[str, float] = {}  # external id as Hearken names it -> time.time()
        self.next_id = 1
        self.texts = [(p["topic_title"], p["raw"].rsplit(" (#", 1)[0]) for p in replay_posts(60, seed=5)]
        for i in range(GOOD):
            srv.serve(f"/f{i}/posts.json", Json(lambda ex, i=i: self.page(i, ex.request.arg("before"))))

    def page(self, i: int, before: str | None) -> dict:
        with self.lock:
            chosen = [p for p in reversed(self.posts[i]) if before is None or p["id"] < int(before)][:PAGE]
        return {"latest_posts": chosen}

    def publish(self, i: int) -> None:
        with self.lock:
            pid = self.next_id
            self.next_id += 1
            title, body = self.texts[pid % len(self.texts)]
            topic = 100_000 * (i + 1) + pid
            self.posts[i].append({
                "id": pid, "username": f"customer{pid}", "user_id": pid, "post_number": 1,
                "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"), "reply_to_post_number": None,
                "topic_id": topic, "topic_slug": f"t{topic}", "topic_title": title, "post_type": 1,
                "raw": f"{body} (#{pid})", "cooked": ""})
            self.published_at[f"127.0.0.1:{self.srv.port}/t/{topic}/1"] = time.time()

    def newest(self) -> int:
        with self.lock:
            return self.next_id - 1


class Inbox:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that counts messages by Message-ID."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.ids: Counter[str] = Counter()
        inbox = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802
                msg = email.message_from_bytes(envelope.content)
                inbox.ids[str(msg["Message-ID"])] += 1
                return "250 OK"

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def close(self) -> None:
        self.controller.stop()


def status_kib(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def run(kind: str, pg_url: str | None, minutes: float, hostile: bool) -> dict:
    runners = 2 if kind == "postgresql" else 1
    folder = Path(tempfile.mkdtemp(prefix="hearken-hostile-"))
    inbox = Inbox()
    with HostileServer() as srv, HostileServer() as away, database(kind, pg_url) as store:
        forums = Forums(srv)
        sources = [{"type": "discourse", "name": f"forum{i}", "base_url": f"{srv.url}/f{i}",
                    "interval_seconds": INTERVAL} for i in range(GOOD)]
        if hostile:
            away.serve("/posts.json", Json({"latest_posts": []}))
            for name, behaviour in HOSTILE.items():
                srv.serve(f"/{name}/posts.json", behaviour or Redirect(f"{away.url}/posts.json"))
                sources.append({"type": "discourse", "name": name, "base_url": f"{srv.url}/{name}",
                                "interval_seconds": INTERVAL})
        for i in range(GOOD):
            forums.publish(i)  # each forum's first poll sets its cursor on these; nothing is backfilled
        url = store.engine.url.render_as_string(hide_password=False)
        cfg = folder / "hearken.yaml"
        cfg.write_text(json.dumps({
            "brand": {"terms": ["Northwind", "@NorthwindHelp"], "exclusions": ["Northwind Traders"]},
            "sources": sources, "database": {"url": url},
            "team": [{"name": "Morgan Manager", "email": "morgan@example.com", "role": "manager"},
                     {"name": "Alex Admin", "email": "alex@example.com", "role": "admin"}],
            "alerts": {"enabled": True, "smtp": {"host": "127.0.0.1", "port": inbox.port},
                       "rules": {"severe_complaint": True, "min_severity": 3, "source_silent_minutes": 1,
                                 "sla_warning_minutes": 0}},
            "runner": {"lease_seconds": 30}}))
        env = dict(os.environ, HEARKEN_DATABASE_URL=url)
        log = open(folder / "runner.log", "wb")
        procs = [subprocess.Popen([sys.executable, "-m", "desk.cli", "run", "--config", str(cfg)], cwd=REPO, env=env,
                                  stdout=log, stderr=subprocess.STDOUT) for _ in range(runners)]
        peak = {p.pid: 0 for p in procs}
        try:
            deadline = time.time() + 120
            while time.time() < deadline and count(store) < GOOD:  # the first polls: every cursor set
                time.sleep(0.5)
            start_rss = {p.pid: status_kib(p.pid, "VmRSS") for p in procs}
            end = time.time() + minutes * 60
            rate = GOOD / (2 * INTERVAL)  # a post per forum every two poll intervals on average
            next_post, k = time.time(), 0
            while time.time() < end:
                if time.time() >= next_post:
                    forums.publish(k % GOOD)
                    k += 1
                    next_post += 1 / rate
                for p in procs:
                    peak[p.pid] = max(peak[p.pid], status_kib(p.pid, "VmRSS"))
                time.sleep(min(0.2, max(0.0, next_post - time.time())))
            posted = len(forums.published_at)
            deadline = time.time() + 120
            while time.time() < deadline and count(store, healthy=True) < posted:
                time.sleep(0.5)
            deadline = time.time() + 120
            while time.time() < deadline and pending(store):
                time.sleep(0.5)
            hwm = {p.pid: status_kib(p.pid, "VmHWM") for p in procs}
            sent = time.monotonic()
            for p in procs:
                p.send_signal(signal.SIGTERM)
            codes = [p.wait(timeout=60) for p in procs]
            stop_s = time.monotonic() - sent
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
            log.close()
        time.sleep(1)
        inbox.close()
        with store.session() as s:
            rows = list(s.execute(select(MentionRow.external_id, MentionRow.detected_at)
                                  .where(MentionRow.source.like("forum%"))))
            outbox = dict(s.execute(select(Outbox.status, func.count()).group_by(Outbox.status)).all())
            written = sum(outbox.values())
            sent_rows = {str(i) for i in s.scalars(select(Outbox.id).where(Outbox.status == "sent"))}
            reasons = {st.name: (st.status, st.status_reason) for st in s.scalars(select(SourceState))
                       if not st.name.startswith("forum")}
    stored = {r[0] for r in rows}
    latency = [r[1].timestamp() - forums.published_at[r[0]] for r in rows if r[0] in forums.published_at]
    delivered_rows = {mid.split(".")[1] for mid in inbox.ids}  # <hearken.ROW.key@hearken.invalid>
    return {
        "kind": kind, "runners": runners, "minutes": minutes, "hostile": hostile, "sources": len(sources),
        "posted": posted, "stored": len(stored & set(forums.published_at)), "twice": len(rows) - len(stored),
        "latency": latency, "written": written, "outbox": outbox, "delivered": len(inbox.ids),
        "delivered_twice": sum(1 for n in inbox.ids.values() if n > 1),
        "sent_not_delivered": len(sent_rows - delivered_rows),
        "peak_mib": [hwm[p] / 1024 for p in hwm], "sampled_peak_mib": [v / 1024 for v in peak.values()],
        "start_mib": [start_rss[p] / 1024 for p in start_rss], "stop_s": stop_s, "codes": codes, "reasons": reasons,
        "log": folder / "runner.log",
    }


def count(store, healthy: bool = False) -> int:
    with store.session() as s:
        q = select(func.count()).select_from(MentionRow)
        if healthy:
            q = q.where(MentionRow.source.like("forum%"))
        return s.scalar(q) or 0


def pending(store) -> int:
    with store.session() as s:
        return s.scalar(select(func.count()).select_from(Outbox).where(Outbox.status.in_(["pending", "sending"]))) or 0


def row(r: dict) -> str:
    lat = r["latency"]
    mem = " / ".join(f"{p:.0f}" for p in r["peak_mib"])
    start = " / ".join(f"{p:.0f}" for p in r["start_mib"])
    what = f"{r['sources']} ({5 if r['hostile'] else 0} hostile)"
    return (f"| {r['kind']}{' (baseline)' if not r['hostile'] else ''} | {r['runners']} | {r['minutes']:g} | {what} | "
            f"{r['posted']:,} | {r['stored']:,} | {r['twice']} | {pct(lat, 50):.1f} s / {pct(lat, 95):.1f} s | "
            f"{r['written']} | {r['delivered']} | {r['delivered_twice']} | {mem} MiB (from {start}) | "
            f"{r['stop_s']:.1f} s |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="minutes of load with the hostile sources")
    ap.add_argument("--baseline-minutes", type=float, default=None,
                    help="minutes of the baseline without hostile sources (default: --minutes; 0 skips it)")
    ap.add_argument("--pg", help="PostgreSQL URL; without it only SQLite is measured")
    ap.add_argument("--only", choices=["sqlite", "postgresql"])
    args = ap.parse_args(argv)
    baseline = args.minutes if args.baseline_minutes is None else args.baseline_minutes
    header("Load with hostile platforms", args.pg)
    print("\n| database | runners | minutes | sources | posted | stored | stored twice | detection p50 / p95 | "
          "alerts written | delivered | delivered twice | runner memory peak (VmHWM) | SIGTERM to exit |")
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|", flush=True)
    notes = []
    for kind in kinds(args.pg, args.only):
        for hostile, minutes in ((True, args.minutes), (False, baseline)):
            if minutes <= 0:
                continue
            r = run(kind, args.pg, minutes, hostile)
            print(row(r), flush=True)
            notes.append(f"{kind}{'' if hostile else ' baseline'}: outbox {r['outbox']}; exit codes {r['codes']}; "
                         f"marked sent but not received: {r['sent_not_delivered']}; sampled RSS peak "
                         f"{', '.join(f'{m:.0f}' for m in r['sampled_peak_mib'])} MiB; log {r['log']}")
            for name, (status, reason) in sorted(r["reasons"].items()):
                notes.append(f"  {name}: {status}: {reason}")
    print()
    for n in notes:
        print(n)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
