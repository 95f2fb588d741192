"""The `hearken` command: its parser, built from the rooms of desk/cli/, and main().

Each room adds its commands with `register(subparsers)`; every command takes --config and --verbose.
"""

from __future__ import annotations

import argparse
import sys

from desk import logs
from desk.cli import api, check, labels, model, report, running

# in the order `hearken --help` lists them: up, run, dashboard, api, check-config, classify, train, evaluate,
# report, export-labels
ROOMS = [running, api, check, model, report, labels]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hearken",
        description="Hearken finds complaints about your company in public (forums, Reddit, X) "
                    "and helps your team answer each one publicly, on time.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", "-c", metavar="PATH", default=argparse.SUPPRESS,
                        help="YAML config file (default: $HEARKEN_CONFIG, else config/example.yaml)")
    common.add_argument("--verbose", "-v", action="store_true", default=argparse.SUPPRESS, help="log more")
    parser.add_argument("--config", "-c", metavar="PATH", default=None,
                        help="YAML config file (default: $HEARKEN_CONFIG, else config/example.yaml)")
    parser.add_argument("--verbose", "-v", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_parser = sub.add_parser

    def add_parser(name, **kw):
        kw.setdefault("parents", []).append(common)
        return _add_parser(name, **kw)

    sub.add_parser = add_parser  # every command, ours or the classifier's, takes --config and --verbose

    for room in ROOMS:
        room.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logs.setup(args.verbose)
    try:
        return int(args.func(args) or 0)
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in model.TRAIN_ONLY:
            raise
        print(f"hearken: `hearken {args.command}` needs the train extra, and {exc.name} is not installed. "
              "Install it (with the CPU build of torch) by running: EXTRAS=train bash scripts/_setup.sh",
              file=sys.stderr)
        return 2
