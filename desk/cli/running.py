"""`hearken up`, `hearken run` and `hearken dashboard`: the processes that keep running until stopped.

    hearken up             runner and dashboard together (what a fresh install runs)
    hearken run            the runner alone: poll, classify, open cases, send alerts
    hearken dashboard      the Streamlit dashboard alone

The dashboard is Streamlit in a child process (desk/cli/serve.py keeps it bounded by our stop signals); its
port is claimed and its sign-in checked here before it starts.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from desk.cli.common import load, open_store, red
from desk.config.environment import DATABASE_URL_ENV
from desk.config.schema import SERVED_URL_ENV, HearkenConfig, is_loopback, local_mode_exposure, served_url

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "dashboard" / "app.py"

log = logging.getLogger("hearken")


def _guard_exposure(cfg: HearkenConfig, host: str) -> None:
    """Refuse to serve a dashboard without sign-in beyond loopback; with the switch, say so in red."""
    why = local_mode_exposure(cfg.dashboard, host)
    if why:
        print(f"hearken: refusing to serve the dashboard: {why}", file=sys.stderr)
        raise SystemExit(2)
    if cfg.dashboard.auth == "local" and not is_loopback(host):
        print(red(f"WARNING: the dashboard listens on {host or 'every address'} WITHOUT SIGN-IN "
                  "(dashboard.auth: local, dashboard.insecure_local_on_network: true). Anyone who can reach it "
                  "acts as the local user and can post public replies as the brand."), file=sys.stderr, flush=True)


def cmd_run(args) -> int:
    from desk.intake.runner import Runner

    cfg = load(args)
    store = open_store(cfg)
    runner = Runner(cfg, store)
    if args.once:
        runner.run_once()
        from desk.intake.pipeline import counts

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
    env.setdefault(DATABASE_URL_ENV, cfg.database_url())
    env[SERVED_URL_ENV] = url  # an unset dashboard.public_url follows the port actually used
    return env


def _serve_dashboard(args, cfg: HearkenConfig):
    """Claim the port, check sign-in and start Streamlit; exits with the reason when it cannot."""
    from desk.config.preflight import auth_problems
    from desk.cli.serve import Child, PortError, claim_port

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

    from desk.cli.serve import on_stop_signals

    cfg = load(args)
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

    from desk.store.db import shown_url
    from desk.intake.runner import Runner
    from desk.cli.serve import on_stop_signals

    cfg = load(args)
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
    print(f"  database: {shown_url(cfg.database_url())}", flush=True)
    try:
        runner.run_forever(install_signals=False)
    finally:
        asked_to_stop.set()
        dash.stop()
    return _exit(runner, 1 if failed else 0)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number from 0 (any free port) to 65535, got {text!r}")
    return port


def register(sub) -> None:
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
