"""The demo platform's publisher: "posts" by appending to a local JSON-lines file.

The demo source replays invented posts, so there is nowhere real to answer.
This publisher stands in for a platform: each reply is one line in
`demo_platform.jsonl` (next to the SQLite database, or where
HEARKEN_DEMO_PLATFORM_FILE points), written under a file lock, and
`find_ours` reads the file back the way a real publisher reads a thread.
A reply's id is "r-" and ten hex digits; the demo replay never answers one.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from desk.config import HearkenConfig
from desk.publishers import deadline
from desk.publishers.base import Posted, Rejected, Target, length_limit, same_text

def platform_file(cfg: HearkenConfig, env: Mapping[str, str]) -> Path:
    if env.get("HEARKEN_DEMO_PLATFORM_FILE"):
        return Path(env["HEARKEN_DEMO_PLATFORM_FILE"])
    try:
        url = make_url(cfg.database_url(dict(env)))
    except (ArgumentError, ValueError):  # a URL that does not parse: check-config names it, nothing runs on it
        return Path("var") / "demo_platform.jsonl"
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database).resolve().parent / "demo_platform.jsonl"
    return Path("var") / "demo_platform.jsonl"


def read_posts(path: Path) -> list[dict]:
    """Every reply the demo platform holds, oldest first."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


class DemoPublisher:
    platform = "demo"

    def __init__(self, path: Path, account: str) -> None:
        self.path = path
        self.account = account

    def publish(self, target: Target, text: str) -> Posted:
        if len(text) > length_limit("demo", target.extra):
            raise Rejected(f"the reply is longer than {length_limit('demo', target.extra)} characters")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        post_id = "r-" + uuid.uuid4().hex[:10]
        row = {"id": post_id, "in_reply_to": target.external_id, "thread_id": target.thread_id,
               "author": self.account, "text": text, "at": datetime.now(timezone.utc).isoformat()}
        with open(self.path, "a", encoding="utf-8") as f:
            _lock(f)
            f.write(json.dumps(row) + "\n")
            f.flush()
            os.fsync(f.fileno())
        return Posted(post_id, f"{target.url}#{post_id}")

    def find_ours(self, target: Target, text: str, since: datetime, skew: timedelta) -> Posted | None:
        for row in reversed(read_posts(self.path)):
            if (row["in_reply_to"] == target.external_id and row["author"] == self.account
                    and datetime.fromisoformat(row["at"]) >= since - skew and same_text(row["text"], text)):
                return Posted(row["id"], f"{target.url}#{row['id']}")
        return None

    def close(self) -> None:
        pass


def _lock(f) -> None:
    """The file's write lock, waited for no longer than the call's deadline (nothing is written without it)."""
    d = deadline.current()
    while True:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if d is not None and d.remaining() <= 0.05:
                raise Rejected(f"{f.name} stayed locked by another writer; nothing was written") from None
            time.sleep(0.02)


def build(cfg: HearkenConfig, src, env: Mapping[str, str]) -> DemoPublisher:
    account = (cfg.accounts.get("demo") or ["NorthwindHelp"])[0]
    return DemoPublisher(platform_file(cfg, env), account)
