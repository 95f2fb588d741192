"""What every `hearken` command shares: reading the config (or exiting with its problems) and opening the store."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import TYPE_CHECKING

from desk import logs

if TYPE_CHECKING:  # the config and the store are imported by the commands that use them, so that the parser
    from desk.config.schema import HearkenConfig  # (hearken --help) is built without them

log = logging.getLogger("hearken")


def load(args) -> HearkenConfig:
    """The config named by --config (else $HEARKEN_CONFIG, else the example); exit 2 listing every problem."""
    from desk.config.schema import ConfigError, load_config

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
    """The database, migrated; one clear line and exit 2 when it cannot be opened (a typo in the URL, a
    server that is down, a driver that is not installed), with the traceback only under --verbose."""
    from sqlalchemy.exc import SQLAlchemyError

    from desk.store.db import connect
    from desk.config.preflight import database_problem
    from desk.notify import case_events

    try:
        return case_events.attach(connect(cfg.database_url()), cfg)
    except (ValueError, SQLAlchemyError, ImportError, OSError) as exc:
        log.debug("opening the database failed", exc_info=True)
        print(f"hearken: {database_problem(cfg, exc)}", file=sys.stderr)
        raise SystemExit(2) from None


def red(text: str) -> str:
    return text if os.environ.get("NO_COLOR") else f"\033[1;31m{text}\033[0m"


def port_number(text: str) -> int:
    """--port's value: 0 (any free port) to 65535."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number from 0 (any free port) to 65535, got {text!r}")
    return port
