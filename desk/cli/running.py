"""`hearken up`, `hearken run` and `hearken dashboard`: the processes that keep running until stopped.

    hearken up             runner, dashboard and HTTP API together (what a fresh install runs)
    hearken run            the runner alone: poll, classify, open cases, send alerts
    hearken dashboard      the Streamlit dashboard alone

The dashboard is Streamlit in a child process (desk/cli/serve.py keeps it bounded by our stop signals); its
port is claimed and its sign-in checked here before it starts. With api.enabled, `hearken up` starts
`hearken api` (desk/cli/api.py) as a second child, its port claimed the same way.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from desk.cli.common import load, open_store, port_number as _port, red

if TYPE_CHECKING:
    from desk.config.schema import HearkenConfig

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "dashboard" / "app.py"

log = logging.getLogger("hearken")


def _guard_exposure(cfg: HearkenConfig, host: str) -> None:
    """Refuse to serve a dashboard without sign-in beyond loopback; with the switch, say so in red."""
    from desk.config.schema import is_loopback, local_mode_exposure

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


def _dashboard_env(cfg: HearkenConfig, url: str, api_url: str | None = None) -> dict[str, str]:
    from desk.config.environment import API_URL_ENV, DATABASE_URL_ENV
    from desk.config.schema import SERVED_URL_ENV

    env = dict(os.environ)
    if api_url:
        env[API_URL_ENV] = api_url  # the Team page names the API where `hearken up` serves it
    if cfg.path:
        env["HEARKEN_CONFIG"] = str(cfg.path)
    env.setdefault(DATABASE_URL_ENV, cfg.database_url())
    env[SERVED_URL_ENV] = url  # an unset dashboard.public_url follows the port actually used
    return env


def _serve_dashboard(args, cfg: HearkenConfig, api_url: str | None = None):
    """Claim the port, check sign-in and start Streamlit; exits with the reason when it cannot."""
    from desk.config.preflight import auth_problems
    from desk.cli.serve import Child, PortError, claim_port
    from desk.config.schema import served_url

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
    return Child(dashboard_command(cfg, host, port, args.verbose), _dashboard_env(cfg, url, api_url)), url


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


def _api_port(args, cfg: HearkenConfig) -> int | None:
    """With api.enabled, the API's port, claimed (and refused) like the dashboard's; else None."""
    from desk.cli.api import claim

    if not cfg.api.enabled:
        return None
    return claim(cfg, cfg.api.host, cfg.api.port if args.api_port is None else args.api_port, option="--api-port")


def cmd_up(args) -> int:
    import threading

    from desk.store.db import shown_url
    from desk.intake.runner import Runner
    from desk.cli.serve import on_stop_signals
    from desk.config.schema import served_url

    cfg = load(args)
    store = open_store(cfg)
    runner = Runner(cfg, store)
    api_port = _api_port(args, cfg)
    api_url = served_url(cfg.api.host, api_port) if api_port is not None else None
    dash, url = _serve_dashboard(args, cfg, api_url)
    children = [("dashboard", dash)]
    if api_port is not None:
        from desk.cli.api import api_child

        children.append(("API", api_child(cfg, cfg.api.host, api_port, _dashboard_env(cfg, url), args.verbose)))
    failed: list[int] = []
    asked_to_stop = threading.Event()

    def stop(signum: int) -> None:
        asked_to_stop.set()
        for _, child in children:
            child.terminate()
        runner.stop()

    def watch(name: str, child) -> None:
        code = child.wait()
        # Ctrl+C reaches the children too, and they may be quicker than our own handler
        if not asked_to_stop.wait(2.0):
            failed.append(code)
            log.error("the %s stopped by itself (exit code %s; its output is above): stopping Hearken", name, code)
            runner.stop()

    on_stop_signals(stop)
    for name, child in children:
        threading.Thread(target=watch, args=(name, child), name=f"{name}-watch", daemon=True).start()
    print(f"Hearken is running. Dashboard: {url}  (Ctrl+C stops it)", flush=True)
    if api_url:
        print(f"  API: {api_url}/api/v1  (OpenAPI: {api_url}/docs)", flush=True)
    print(f"  config: {cfg.path}", flush=True)
    print(f"  database: {shown_url(cfg.database_url())}", flush=True)
    try:
        runner.run_forever(install_signals=False)
    finally:
        asked_to_stop.set()
        for _, child in children:
            child.stop()
    return _exit(runner, 1 if failed else 0)


def register(sub) -> None:
    def serve_options(p) -> None:
        p.add_argument("--host", help="address to serve the dashboard on (default: dashboard.host)")
        p.add_argument("--port", type=_port, help="dashboard port (default: dashboard.port); refused when taken, "
                                                 "0 = any free port")

    p = sub.add_parser("up", help="run the runner, the dashboard and the API together; prints their URLs")
    serve_options(p)
    p.add_argument("--api-port", type=_port, help="API port (default: api.port); refused when taken, 0 = any free "
                                                 "port; api.enabled: false starts no API")
    p.set_defaults(func=cmd_up)

    p = sub.add_parser("run", help="poll the sources, classify, open cases and send alerts until stopped")
    p.add_argument("--once", action="store_true", help="poll every source once, classify, print counts and exit")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("dashboard", help="serve the Streamlit dashboard alone")
    serve_options(p)
    p.set_defaults(func=cmd_dashboard)
