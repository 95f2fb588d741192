"""Serving the dashboard for `hearken up` and `hearken dashboard`: its port and its Streamlit process.

A port given in the config or with --port is used or refused, never swapped
for another: bookmarks, the OIDC redirect URI and the links in alert emails
all name it. Port 0 asks for any free port. The check binds the way the
server will (SO_REUSEADDR), so a port that a stopped dashboard left in
TIME_WAIT a moment ago counts as free, as it is for the server, and an IPv6
address is tried dual-stack, as Streamlit binds it ("::" is IPv4's 0.0.0.0 too). The
Streamlit child is stopped with its parent: on SIGTERM, SIGINT or SIGHUP,
and on Linux even when the parent is killed outright.
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Callable, Sequence
from typing import Any

from desk.errors import UserError

log = logging.getLogger("hearken")

STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGINT", "SIGHUP") if hasattr(signal, name))


class PortError(UserError):
    """The dashboard cannot listen where it was told to; the message names the address and, where it can be
    found, the process that holds it."""


def port_holder(port: int) -> str:
    """Who listens on TCP `port` on this machine, as 'PID 123 (command line)'; '' where it cannot be seen."""
    import psutil

    try:
        listeners = [c for c in psutil.net_connections(kind="tcp")
                     if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port]
    except (psutil.Error, OSError):  # macOS without root, a locked-down /proc
        return ""
    for conn in listeners:
        if conn.pid is None:
            return "a process of another user"
        try:
            proc = psutil.Process(conn.pid)
            command = " ".join(proc.cmdline()) or proc.name()
        except psutil.Error:
            command = "?"
        return f"PID {conn.pid} ({textwrap.shorten(command, 120, placeholder=' ...')})"
    return ""


def claim_port(host: str, port: int, *, what: str = "the dashboard", setting: str = "dashboard",
               option: str = "--port") -> int:
    """The port `what` (the dashboard, the API) will listen on: `port` when a server can listen on host:port
    now, any free port for 0. Raises PortError otherwise, naming the `setting` section's host and port."""
    try:
        addresses = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise PortError(f"cannot serve {what} on host {host!r}: {exc.strerror} "
                        f"({setting}.host or --host)") from None
    seen: set[tuple[int, str]] = set()
    for family, kind, proto, _, address in addresses:
        if (family, address[0]) in seen:
            continue
        seen.add((family, address[0]))
        with socket.socket(family, kind, proto) as sock:
            if os.name != "nt":  # as Tornado (Streamlit's server) binds: TIME_WAIT leftovers do not block
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:  # as Streamlit binds an IPv6 address: "::" takes IPv4 too
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            try:
                sock.bind((address[0], port, *address[2:]))
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    holder = port_holder(port)
                    raise PortError(
                        f"port {port} on {host} is already in use{' by ' + holder if holder else ''}. Stop that, "
                        f"or choose another port with {option} N (or {setting}.port), or {option} 0 for any free one."
                    ) from None
                raise PortError(f"cannot serve {what} on {host}:{port}: {exc.strerror}") from None
            if port == 0:
                port = sock.getsockname()[1]
    return port


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn asking Linux to send the child SIGTERM when its parent dies, even by SIGKILL."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before the fork
    pr_set_pdeathsig = 1
    return lambda: prctl(pr_set_pdeathsig, signal.SIGTERM)


class Child:
    """A child process (the Streamlit server) that never outlives Hearken."""

    def __init__(self, command: Sequence[str], env: dict[str, str]) -> None:
        self.command = list(command)
        self.proc = subprocess.Popen(self.command, env=env, preexec_fn=_die_with_parent())  # noqa: PLW1509
        self.stopping = False

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait(self) -> int:
        return self.proc.wait()

    def terminate(self) -> None:
        """Ask it to stop (SIGTERM); returns at once."""
        self.stopping = True
        if self.proc.poll() is None:
            self.proc.terminate()

    def stop(self, timeout: float = 10.0) -> int:
        """Stop it and everything it started: SIGTERM, then SIGKILL after `timeout` seconds."""
        import psutil

        try:
            descendants = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.Error:
            descendants = []
        self.terminate()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log.warning("the dashboard (PID %d) did not stop within %gs; killing it", self.proc.pid, timeout)
            self.proc.kill()
            self.proc.wait()
        for p in descendants:
            try:
                p.kill()
            except psutil.Error:
                pass
        return self.proc.returncode


def on_stop_signals(handler: Callable[[int], None]) -> None:
    """Call handler(signum) on SIGTERM, SIGINT (Ctrl+C) and SIGHUP (the terminal closed)."""

    def _handle(signum: int, _frame: Any) -> None:
        handler(signum)

    for signum in STOP_SIGNALS:
        signal.signal(signum, _handle)
