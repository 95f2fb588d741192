"""The `hearken` command.

    hearken up             runner and dashboard together (what a fresh install runs)
    hearken run            the runner alone: poll, classify, open cases, send alerts
    hearken dashboard      the Streamlit dashboard alone
    hearken check-config   validate the config file and list every problem
    hearken classify TEXT  score a text with the classifier

Other packages add their own commands (train, evaluate, report, ...) through a
`register(subparsers)` function; see _EXTENSIONS.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from desk import logs
from desk.config import DEFAULT_CONFIG, ConfigError, HearkenConfig, is_loopback, load_config, local_mode_exposure

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "dashboard" / "app.py"

# modules with register(subparsers) that add commands of their own
_EXTENSIONS = ["classifier.cli", "desk.report_cli", "desk.labels_cli"]

log = logging.getLogger("hearken")


def _load(args) -> HearkenConfig:
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        print(f"hearken: the configuration has {len(exc.problems)} problem(s):", file=sys.stderr)
        for p in exc.problems:
            print(f"  {p}", file=sys.stderr)
        raise SystemExit(2) from None
    logs.protect(cfg)
    return cfg


def _red(text: str) -> str:
    return text if os.environ.get("NO_COLOR") else f"\033[1;31m{text}\033[0m"


def _guard_exposure(cfg: HearkenConfig, host: str) -> None:
    """Refuse to serve a dashboard without sign-in beyond loopback; with the switch, say so in red."""
    why = local_mode_exposure(cfg.dashboard, host)
    if why:
        print(f"hearken: refusing to serve the dashboard: {why}", file=sys.stderr)
        raise SystemExit(2)
    if cfg.dashboard.auth == "local" and not is_loopback(host):
        print(_red(f"WARNING: the dashboard listens on {host or 'every address'} WITHOUT SIGN-IN "
                   "(dashboard.auth: local, dashboard.insecure_local_on_network: true). Anyone who can reach it "
                   "acts as the local user and can post public replies as the brand."), file=sys.stderr, flush=True)


def open_store(cfg: HearkenConfig):
    from desk.db import connect

    return connect(cfg.database_url())


def cmd_check_config(args) -> int:
    path = args.config or os.environ.get("HEARKEN_CONFIG") or DEFAULT_CONFIG
    try:
        cfg = load_config(path)
    except ConfigError as exc:
        print(f"{path}: {len(exc.problems)} problem(s)")
        for p in exc.problems:
            print(f"  {p}")
        return 1
    from collectors import NotConfigured, TermMatcher, build, PLATFORM_OF_TYPE

    print(f"{path}: OK")
    print(f"  database: {cfg.database_url().split('@')[-1]}")
    for src in cfg.sources:
        if not src.enabled:
            print(f"  source {src.name} ({src.type}): disabled in the config")
            continue
        try:
            c = build(src, matcher=TermMatcher(cfg.brand.terms, cfg.brand.exclusions),
                      own_accounts=cfg.accounts.get(PLATFORM_OF_TYPE[src.type], []))
            c.close()
            print(f"  source {src.name} ({src.type}): ready, every {src.interval_seconds:g}s")
        except NotConfigured as exc:
            print(f"  source {src.name} ({src.type}): will be skipped: {exc}")
    return 0


def cmd_run(args) -> int:
    from desk.runner import Runner

    cfg = _load(args)
    store = open_store(cfg)
    runner = Runner(cfg, store)
    if args.once:
        runner.run_once()
        from desk.pipeline import counts

        print(counts(store))
        return 0
    runner.run_forever()
    return 0


def _free_port(host: str, preferred: int) -> int:
    with socket.socket() as s:
        try:
            s.bind((host, preferred))
            return preferred
        except OSError:
            s.bind((host, 0))
            return s.getsockname()[1]


def dashboard_command(cfg: HearkenConfig, host: str, port: int) -> list[str]:
    return [sys.executable, "-m", "streamlit", "run", str(APP),
            "--server.headless", "true", "--server.address", host, "--server.port", str(port),
            "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
            "--theme.base", "light", "--client.toolbarMode", "minimal"]


def _dashboard_env(cfg: HearkenConfig) -> dict[str, str]:
    env = dict(os.environ)
    if cfg.path:
        env["HEARKEN_CONFIG"] = str(cfg.path)
    env.setdefault("HEARKEN_DATABASE_URL", cfg.database_url())
    return env


def cmd_dashboard(args) -> int:
    cfg = _load(args)
    open_store(cfg).close()  # migrate before the app starts
    host = args.host or cfg.dashboard.host
    _guard_exposure(cfg, host)
    port = _free_port(host, args.port or cfg.dashboard.port)
    print(f"Hearken dashboard: http://{host}:{port}", flush=True)
    return subprocess.call(dashboard_command(cfg, host, port), env=_dashboard_env(cfg))


def cmd_up(args) -> int:
    from desk.runner import Runner

    cfg = _load(args)
    store = open_store(cfg)
    host = args.host or cfg.dashboard.host
    _guard_exposure(cfg, host)
    port = _free_port(host, args.port or cfg.dashboard.port)
    dash = subprocess.Popen(dashboard_command(cfg, host, port), env=_dashboard_env(cfg),
                            stdout=subprocess.DEVNULL if not args.verbose else None,
                            stderr=subprocess.DEVNULL if not args.verbose else None)
    print(f"Hearken is running. Dashboard: http://{host}:{port}  (Ctrl+C stops it)", flush=True)
    print(f"  config: {cfg.path}", flush=True)
    print(f"  database: {cfg.database_url().split('@')[-1]}", flush=True)
    runner = Runner(cfg, store)
    try:
        runner.run_forever()
    finally:
        dash.send_signal(signal.SIGTERM)
        try:
            dash.wait(timeout=10)
        except subprocess.TimeoutExpired:
            dash.kill()
    return 0


def cmd_classify(args) -> int:
    import classifier

    cfg = _load(args)
    model = classifier.load(cfg.classifier.model_path) if cfg.classifier.model_path else classifier.load()
    texts = args.text or [line.rstrip("\n") for line in sys.stdin if line.strip()]
    for text, p in zip(texts, model.predict(texts, threshold=cfg.classifier.threshold)):
        verdict = f"complaint (severity {p.severity}, {p.topic})" if p.is_complaint else "not a complaint"
        print(f"{p.score:.3f}  {verdict}  {text[:80]!r}")
    return 0


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

    sub.add_parser = add_parser  # every command, ours or an extension's, takes --config and --verbose

    p = sub.add_parser("up", help="run the runner and the dashboard together; prints the dashboard URL")
    p.add_argument("--host", help="dashboard address (default: dashboard.host)")
    p.add_argument("--port", type=int, help="dashboard port (default: dashboard.port, or a free one)")
    p.set_defaults(func=cmd_up)

    p = sub.add_parser("run", help="poll the sources, classify, open cases and send alerts until stopped")
    p.add_argument("--once", action="store_true", help="poll every source once, classify, print counts and exit")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("dashboard", help="serve the Streamlit dashboard alone")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.set_defaults(func=cmd_dashboard)

    p = sub.add_parser("check-config", help="validate the config file; print every problem with its line")
    p.set_defaults(func=cmd_check_config)

    p = sub.add_parser("classify", help="score texts (arguments, or one per line on stdin) with the classifier")
    p.add_argument("text", nargs="*")
    p.set_defaults(func=cmd_classify)

    for name in _EXTENSIONS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logs.setup(args.verbose)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
