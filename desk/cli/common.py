"""What every `hearken` command shares: reading the config (or exiting with its problems) and opening the store."""

from __future__ import annotations

import os
import sys

from desk import logs
from desk.config import ConfigError, HearkenConfig, load_config


def load(args) -> HearkenConfig:
    """The config named by --config (else $HEARKEN_CONFIG, else the example); exit 2 listing every problem."""
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        print(f"hearken: the configuration has {len(exc.problems)} problem(s):", file=sys.stderr)
        for p in exc.problems:
            print(f"  {p}", file=sys.stderr)
        raise SystemExit(2) from None
    logs.protect(cfg)
    return cfg


def open_store(cfg: HearkenConfig):
    from desk.db import connect

    return connect(cfg.database_url())


def red(text: str) -> str:
    return text if os.environ.get("NO_COLOR") else f"\033[1;31m{text}\033[0m"
