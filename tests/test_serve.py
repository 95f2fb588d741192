"""`hearken up` and `hearken dashboard` as real processes: the port asked for or a clear refusal, links that
follow the port actually used, the dashboard's own output, and no child left behind however they stop."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from tests.conftest import MINIMAL_CONFIG, free_port
from tests.test_alerts_support import smtp_server  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent


class Hearken:
    """A `hearken` command in its own session, its output collected line by line."""

    def __init__(self, tmp_path: Path, *args: str, config: str = MINIMAL_CONFIG, **env: str) -> None:
        cfg = tmp_path / "hearken.yaml"
        cfg.write_text(config)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "desk.cli", *args, "--config", str(cfg)], cwd=ROOT, text=True,
            env={**os.environ, "HOME": str(tmp_path), "HEARKEN_DATABASE_URL": f"sqlite:///{tmp_path / 'h.db'}", **env},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        self.lines: list[str] = []
        self.closed = False
        self._changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self.closed = True
            self._changed.notify_all()

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = 180) -> re.Match:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                m = re.search(pattern, self.output)
                if m:
                    return m
                left = deadline - time.monotonic()
                assert left > 0 and not self.closed, f"no {pattern!r} in:\n{self.output}"
                self._changed.wait(min(left, 1.0))

    def streamlit(self) -> psutil.Process:
        [child] = [p for p in psutil.Process(self.proc.pid).children(recursive=True) if "streamlit" in p.cmdline()]
        return child

    def finish(self, timeout: float = 60) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)


def wait_healthy(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            assert urllib.request.urlopen(url + "/_stcore/health", timeout=5).read() == b"ok"
            return
        except OSError:
            assert time.monotonic() < deadline, f"{url} never answered its health check"
            time.sleep(0.5)


def wait_gone(procs: list[psutil.Process], timeout: float = 30) -> None:
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    assert not alive, f"still running: {[p.cmdline() for p in alive]}"


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_a_busy_port_is_refused_naming_the_port_and_what_holds_it(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        for command in ("dashboard", "up"):
            api = ("--api-port", "0") if command == "up" else ()  # the API's own port is not the point here
            run = Hearken(tmp_path, command, "--port", str(port), *api)
            assert run.finish() == 2, run.output
            assert f"port {port} on 127.0.0.1 is already in use by PID {os.getpid()}" in run.output
            assert "--port 0" in run.output  # and how to get any free port instead
            assert "Hearken is running" not in run.output


@pytest.mark.slow
def test_up_on_any_free_port_links_emails_there_shows_streamlit_and_sigterm_stops_every_child(tmp_path, smtp_server):
    config = MINIMAL_CONFIG + (
        "alerts:\n"
        f"  smtp: {{host: 127.0.0.1, port: {smtp_server.port}}}\n"
        "  rules: {severe_complaint: true, min_severity: 1}\n")
    up = Hearken(tmp_path, "up", "--port", "0", "--api-port", "0", config=config)
    url = up.wait_for(r"Dashboard: (http://127\.0\.0\.1:(\d+))").group(1)
    port = int(url.rsplit(":", 1)[1])
    assert port != 8501
    wait_healthy(url)
    up.wait_for(r"You can now view your Streamlit app")  # Streamlit's own output, without --verbose
    streamlit = up.streamlit()

    deadline = time.monotonic() + 180
    while not smtp_server.messages:
        assert time.monotonic() < deadline and up.proc.poll() is None, "no alert email:\n" + up.output
        time.sleep(0.5)
    body = smtp_server.messages[0].part("plain")
    assert f"{url}/case?id=" in body, body  # dashboard.public_url unset: the port actually served

    up.proc.send_signal(signal.SIGTERM)
    assert up.finish() == 0, up.output
    wait_gone([streamlit])
    assert not listening(port)


@pytest.mark.slow
def test_dashboard_gets_its_port_back_at_once_and_never_outlives_ctrl_c_or_kill(tmp_path):
    port = free_port()
    first = Hearken(tmp_path, "dashboard", "--port", str(port))
    url = first.wait_for(r"Hearken dashboard: (http://\S+)").group(1)
    assert url == f"http://127.0.0.1:{port}"
    wait_healthy(url)
    streamlit = first.streamlit()
    # a browser's open connection: the server closes it first when it stops, which leaves its side of it in
    # TIME_WAIT on the port; a check that binds without SO_REUSEADDR takes the port for busy then
    browser = socket.create_connection(("127.0.0.1", port))
    os.killpg(first.proc.pid, signal.SIGINT)  # Ctrl+C in a terminal signals the whole process group
    assert first.finish() == 0, first.output
    wait_gone([streamlit])
    browser.close()
    assert any(c.status == psutil.CONN_TIME_WAIT and c.laddr.port == port for c in psutil.net_connections("tcp"))

    again = Hearken(tmp_path, "dashboard", "--port", str(port))
    assert again.wait_for(r"Hearken dashboard: (http://\S+)").group(1) == url, again.output
    wait_healthy(url)
    streamlit = again.streamlit()
    again.proc.send_signal(signal.SIGTERM)  # to hearken alone, as a service manager does
    assert again.finish() == 0, again.output
    wait_gone([streamlit])

    third = Hearken(tmp_path, "dashboard", "--port", str(port))
    wait_healthy(third.wait_for(r"Hearken dashboard: (http://\S+)").group(1))
    streamlit = third.streamlit()
    third.proc.kill()  # no chance to clean up: the kernel tells Streamlit its parent died
    third.finish()
    wait_gone([streamlit])
    assert not listening(port)
