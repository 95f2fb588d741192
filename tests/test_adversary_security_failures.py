"""Adversary for issues 14 and 12: failures that stay silent, and configs check-config passes that fail later.

Real `hearken` processes, a real SMTP server (aiosmtpd) and the dashboard under Streamlit's AppTest on
a SQLite file. Each test is `xfail(strict=True)` with its finding in one line, so it turns red once the
finding is fixed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import MINIMAL_CONFIG, ROOT

APP = str(ROOT / "dashboard" / "app.py")


def hearken(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "desk.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hearken.yaml"
    path.write_text(text + f"database: {{url: \"sqlite:///{tmp_path / 'hearken.db'}\"}}\n")
    return path


def line_of(path: Path, needle: str) -> int:
    return next(i for i, text in enumerate(path.read_text().splitlines(), 1) if needle in text)


def dashboard(path: Path, monkeypatch, page_file: str | None = None):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("HEARKEN_CONFIG", str(path))
    monkeypatch.setenv("HEARKEN_DATABASE_URL", f"sqlite:///{path.parent / 'hearken.db'}")
    at = AppTest.from_file(APP, default_timeout=60)
    if page_file:
        at.switch_page(page_file)
    return at.run()


TEAM_WITHOUT_MANAGER = """\
brand: {terms: ["Northwind"]}
sources:
  - {type: demo, name: demo, interval_seconds: 1}
alerts: {smtp: {host: 127.0.0.1, port: 2525}}
team:
  - {name: Alex Admin, email: alex@example.com, role: admin}
  - {name: Sam Agent, email: sam@example.com, role: agent}
"""


def _with_rule(rule: str) -> str:
    return MINIMAL_CONFIG + "alerts:\n  smtp: {host: 127.0.0.1, port: 2525}\n  rules: {" + rule + "}\n"


@pytest.mark.parametrize("text, needle", [
    pytest.param(_with_rule('severe_recipients: ["Morgan Manger"]'), "severe_recipients", id="severe-typo"),
    pytest.param(_with_rule('escalation_managers: ["Morgan Manger"]'), "escalation_managers", id="breach-typo"),
    pytest.param(_with_rule('source_recipients: ["Alx Admin"]'), "source_recipients", id="source-typo"),
    pytest.param(MINIMAL_CONFIG + 'report: {recipients: ["Morgan Manger"]}\n', "recipients", id="report-typo"),
    pytest.param(TEAM_WITHOUT_MANAGER, None, id="no-manager"),
])
def test_check_config_refuses_alert_rules_that_reach_nobody(tmp_path, text, needle):
    """Config.resolve_recipients keeps a name that is on no team entry as if it were an address; outbox.queue
    then drops everything without an "@" and, with nobody left, writes no outbox row at all: no email, no
    banner, no line in the log, no "throttled" row. The fallbacks ("empty = managers") count role ==
    "manager" only, so a team of an admin and agents gets no severe-complaint or SLA-breach alert ever.
    Seen at run time with a severity-4 case: the outbox stays empty. check-config says OK."""
    path = write(tmp_path, text)
    run = hearken("check-config", "--config", str(path))
    assert run.returncode == 1, run.stdout
    if needle is None:  # nobody with role manager: said where the rules or the team are
        assert "manager" in run.stdout and str(path) in run.stdout, run.stdout
    else:
        assert f"{path}:{line_of(path, needle)}:" in run.stdout, run.stdout


def test_an_alert_refused_for_one_recipient_is_not_shown_as_delivered(tmp_path, monkeypatch):
    """smtplib.send_message returns the refused recipients when at least one was accepted; desk/notify/mailer.py
    then marks the row sent with a note in last_error, which neither the banner, the Sources page's
    outbox state nor the case history reads: every page says all is well."""
    from desk.config.schema import load_config
    from desk.store.db import connect
    from desk.store.models import Outbox
    from sqlalchemy import select
    from tests.e2e_helpers import seed_case
    from tests.test_alerts_support import SmtpServer

    smtp = SmtpServer()
    smtp.sink.refuse = {"morgan@example.com"}  # the mailbox was renamed; the other manager's is fine
    smtp.start()
    try:
        path = write(tmp_path, MINIMAL_CONFIG.replace("sources:\n  - {type: demo, name: demo, interval_seconds: 1}",
                                                      "sources:\n  - {type: demo, name: demo, enabled: false}")
                     + "  - {name: Dana Director, email: dana@example.com, role: manager}\n"
                     + f"alerts: {{smtp: {{host: 127.0.0.1, port: {smtp.port}, timeout_seconds: 5}}}}\n")
        cfg = load_config(path)
        store = connect(cfg.database_url())
        cid = seed_case(store, cfg, external_id="sev4", body="Northwind cut off my business line", severity=4)
        proc = subprocess.Popen([sys.executable, "-m", "desk.cli", "run", "--config", str(path)], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=dict(os.environ))
        try:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                with store.session() as s:
                    if s.scalar(select(Outbox.status).where(Outbox.case_id == cid)) == "sent":
                        break
                assert proc.poll() is None, proc.stdout.read()
                time.sleep(0.5)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=60)
        store.close()
    finally:
        smtp.stop()
    assert [m.rcpt_tos for m in smtp.messages] == [["dana@example.com"]]  # Morgan never got it
    at = dashboard(path, monkeypatch)
    banner = [e.value for e in at.error] + [w.value for w in at.warning]
    assert any("morgan" in b.replace("\\", "").replace("\u200b", "") for b in banner), banner


@pytest.mark.parametrize("extra, key", [
    pytest.param('dashboard: {local_user: "Alx Admin"}\n', "local_user", id="local-user"),  # every page: ValueError
    pytest.param("classifier: {model_path: /nonexistent/model}\n", "model_path", id="model-path"),  # run: traceback
    pytest.param('dashboard: {public_url: "javascript:alert(1)"}\n', "public_url", id="public-url"),  # no email link
])
def test_check_config_catches_what_fails_at_run_time(tmp_path, extra, key):
    path = write(tmp_path, MINIMAL_CONFIG + extra)
    run = hearken("check-config", "--config", str(path))
    assert run.returncode == 1, run.stdout
    assert f"{path}:{line_of(path, key)}:" in run.stdout and key in run.stdout, run.stdout


@pytest.mark.parametrize("url", [
    pytest.param("postgresql://hearken:pw@127.0.0.1:54x2/hearken", id="bad-port"),
    pytest.param("postgresql://hearken:pw@127.0.0.1:1/hearken", id="down"),
])
def test_a_database_that_cannot_be_reached_is_one_clear_line(tmp_path, url):
    path = write(tmp_path, MINIMAL_CONFIG)
    env = {"HEARKEN_DATABASE_URL": url}
    check = hearken("check-config", "--config", str(path), env=env)
    assert check.returncode == 1, check.stdout
    assert "HEARKEN_DATABASE_URL" in check.stdout, check.stdout
    run = hearken("run", "--once", "--config", str(path), env=env)
    assert run.returncode != 0
    assert "Traceback" not in run.stderr, run.stderr[-1500:]
    assert "127.0.0.1" in run.stderr and "HEARKEN_DATABASE_URL" in run.stderr


# --- issue 12: the port is used as given or refused --------------------------------------------------------


def test_a_port_held_on_ipv4_is_refused_for_a_dual_stack_host(tmp_path):
    """desk/cli/serve.py checks "::" with IPV6_V6ONLY=1, but Streamlit binds "::" with IPV6_V6ONLY=0 (IPv4 too),
    which conflicts with any IPv4 listener on the port. The check passes, "Hearken dashboard: http://HOST:P"
    is printed (that address answers with the other program), and only then does Streamlit say
    "Port P is not available", without naming what holds it."""
    import socket

    holder = socket.socket(socket.AF_INET)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind(("0.0.0.0", 0))
    holder.listen()
    port = holder.getsockname()[1]
    path = write(tmp_path, MINIMAL_CONFIG + "dashboard: {insecure_local_on_network: true}\n")
    proc = subprocess.Popen([sys.executable, "-m", "desk.cli", "dashboard", "--config", str(path), "--host", "::",
                             "--port", str(port)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "HOME": str(tmp_path)}, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=20)
        holder.close()
    assert proc.returncode == 2, (proc.returncode, out, err[-1500:])
    assert f"port {port} on :: is already in use by PID {os.getpid()}" in err, err[-1500:]
    assert "Hearken dashboard:" not in out


def test_hearken_dashboard_exits_non_zero_when_its_streamlit_dies(tmp_path):
    """cmd_dashboard returns `0 if dash.stopping else code`, but its own `finally: dash.stop()` has set
    `stopping` by then, so every end is a clean one. Ctrl+C or SIGTERM to Hearken is a clean stop (0);
    the dashboard dying under it is not."""
    import urllib.request

    import psutil

    path = write(tmp_path, MINIMAL_CONFIG)
    proc = subprocess.Popen([sys.executable, "-m", "desk.cli", "dashboard", "--config", str(path), "--port", "0"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "HOME": str(tmp_path)}, start_new_session=True)
    try:
        url = proc.stdout.readline().split("Hearken dashboard: ")[-1].strip()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                    if r.read().strip() == b"ok":
                        break
            except OSError:
                time.sleep(0.3)
        [streamlit] = psutil.Process(proc.pid).children()
        streamlit.kill()  # the dashboard dies; nobody asked Hearken to stop
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=20)
    assert proc.returncode != 0
