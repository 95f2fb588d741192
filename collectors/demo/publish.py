"""The demo platform's publisher: "posts" by appending to a local JSON-lines file.

The demo source replays invented posts, so there is nowhere real to answer.
This publisher stands in for a platform: each reply is one line in
`demo_platform.jsonl` in the data directory the desk passes (next to the
SQLite database), or where HEARKEN_DEMO_PLATFORM_FILE points, written under a file lock, and
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

from typing import Any

from collectors.demo.settings import reply_limit
from collectors.errors import Rejected
from collectors.net import deadline
from collectors.posting import Posted, Target, same_text

FILE_ENV = "HEARKEN_DEMO_PLATFORM_FILE"
FILE_NAME = "demo_platform.jsonl"
DEFAULT_ACCOUNT = "NorthwindHelp"


def platform_file(data_dir: Path, env: Mapping[str, str]) -> Path:
    """Where the demo platform keeps its replies: FILE_ENV if set, else demo_platform.jsonl in `data_dir`."""
    if env.get(FILE_ENV):
        return Path(env[FILE_ENV])
    return Path(data_dir) / FILE_NAME


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
        limit = reply_limit(target.extra)
        if len(text) > limit:
            raise Rejected(f"the reply is longer than {limit} characters")
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


def build(settings: Any, *, accounts: list[str], env: Mapping[str, str], data_dir: Path) -> DemoPublisher:
    """The demo publisher posting as our first demo account, to the file in `data_dir` (or FILE_ENV)."""
    return DemoPublisher(platform_file(data_dir, env), (accounts or [DEFAULT_ACCOUNT])[0])
