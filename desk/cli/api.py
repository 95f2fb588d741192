"""`hearken api`: serve the HTTP API alone (uvicorn), on api.host and api.port (default 127.0.0.1:8600).

    hearken api                    the API until stopped (Ctrl+C or SIGTERM); OpenAPI at /docs
    hearken api --port 0           any free port; the address is printed

`hearken up` starts it beside the dashboard when api.enabled (`api_child` here).
A host beyond loopback is refused unless api.behind_tls_proxy says a TLS proxy
is in front of it: a bearer token sent in plain HTTP across a network can be read.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from desk.cli.common import load, open_store, port_number

if TYPE_CHECKING:
    from desk.config.schema import HearkenConfig


def exposure(cfg: HearkenConfig, host: str) -> str | None:
    """Why the API must not listen on `host`, or None when it may."""
    from desk.config.schema import is_loopback

    if is_loopback(host) or cfg.api.behind_tls_proxy:
        return None
    return (f"api.host {host or '(every address)'} would carry API tokens across the network in plain HTTP, "
            "where anyone on the way can read and reuse them; use host: 127.0.0.1, or put a TLS-terminating "
            "proxy in front of it and set api.behind_tls_proxy: true (README 'HTTP API')")


def claim(cfg: HearkenConfig, host: str, port: int, option: str = "--port") -> int:
    """The API's port, checked as the dashboard's is; exits 2 with the reason when it cannot be served."""
    from desk.cli.serve import PortError, claim_port

    why = exposure(cfg, host)
    if why:
        print(f"hearken: refusing to serve the API: {why}", file=sys.stderr)
        raise SystemExit(2)
    try:
        return claim_port(host, port, what="the API", setting="api", option=option)
    except PortError as exc:
        print(f"hearken: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def api_child(cfg: HearkenConfig, host: str, port: int, env: dict[str, str], verbose: bool = False):
    """`hearken api` as a child process of `hearken up` (it stops with its parent)."""
    from desk.cli.serve import Child

    command = [sys.executable, "-m", "desk.cli", "api", "--host", host, "--port", str(port)]
    if cfg.path:
        command += ["--config", str(cfg.path)]
    return Child(command + (["--verbose"] if verbose else []), env)


def cmd_api(args) -> int:
    import uvicorn

    from desk.api import create_app
    from desk.cli.serve import on_stop_signals
    from desk.config.schema import served_url

    cfg = load(args)
    host = args.host or cfg.api.host
    port = claim(cfg, host, cfg.api.port if args.port is None else args.port)
    store = open_store(cfg)
    app = create_app(cfg, store)
    url = served_url(host, port)
    print(f"Hearken API: {url}/api/v1  (OpenAPI: {url}/docs)", flush=True)
    # uvicorn stops gracefully on SIGINT and SIGTERM, then raises the signal again for the handler it found:
    # ours notes it, so a stop asked for ends with 0, as `hearken dashboard` does
    on_stop_signals(lambda signum: None)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_config=None,  # our logging: one line,
                                           log_level="debug" if args.verbose else "info",  # secrets redacted
                                           access_log=bool(args.verbose)))
    try:
        server.run()
    finally:
        store.close()
    return 0 if server.started else 1


def register(sub) -> None:
    p = sub.add_parser("api", help="serve the HTTP API alone (OpenAPI at /docs); `hearken up` starts it too")
    p.add_argument("--host", help="address to serve the API on (default: api.host)")
    p.add_argument("--port", type=port_number, help="API port (default: api.port); refused when taken, 0 = any free port")
    p.set_defaults(func=cmd_api)
