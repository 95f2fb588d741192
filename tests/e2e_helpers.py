"""Helpers for the dashboard, case, reply and end-to-end tests: seed cases, serve a platform stand-in, run apps."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from collectors.base import Mention
from collectors.demo.publish import platform_file as demo_platform_file
from desk.cases.publishing import data_dir
from desk.store.models import Classification, MentionRow
from desk.intake.case_rules import open_case
from desk.intake.storing import mention_values
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"

HOSTILE_BODY = ("<script>window.hacked=1</script> **bold** [click me](https://evil.example/phish) "
                "<img src=x onerror=alert(1)>\n# GIANT HEADER\nNorthwind took my money")


def platform_file(cfg, env) -> Path:
    """The file the demo platform keeps its replies in for this config, found where the desk's publisher puts it
    (beside the SQLite database; HEARKEN_DEMO_PLATFORM_FILE if set)."""
    return demo_platform_file(data_dir(cfg, env), env)


def seed_case(store, cfg, *, external_id: str, body: str, author: str = "maria_t", title: str = "",
              platform: str = "demo", source: str = "demo", minutes_ago: float = 30, severity: int = 2,
              score: float = 0.9, topic: str | None = "outage", thread_id: str | None = None,
              parent_id: str | None = None, extra: dict[str, Any] | None = None, url: str | None = None) -> int:
    """Store one mention as a classified complaint and open its case the way the pipeline does; returns the case id."""
    now = datetime.now(timezone.utc)
    m = Mention(platform=platform, source=source, external_id=external_id,
                url=url or f"https://demo.hearken.invalid/x/{external_id}", author=author, body=body,
                posted_at=now - timedelta(minutes=minutes_ago), title=title, thread_id=thread_id or external_id,
                parent_id=parent_id, matched_terms=("Northwind",), extra=extra or {"style": "x"})
    with store.session() as s:
        row = MentionRow(**mention_values(m, now))
        row.classified = True
        s.add(row)
        s.flush()
        c = Classification(mention_id=row.id, model_version="test", score=score, is_complaint=True,
                           severity=severity, topic=topic)
        s.add(c)
        s.flush()
        return open_case(s, cfg, row, c).id


def add_followup(store, *, platform: str, source: str, external_id: str, thread_id: str, author: str, body: str,
                 parent_id: str | None = None, minutes_ago: float = 5, case_id: int | None = None) -> None:
    now = datetime.now(timezone.utc)
    m = Mention(platform=platform, source=source, external_id=external_id, url=f"https://demo.hearken.invalid/{external_id}",
                author=author, body=body, posted_at=now - timedelta(minutes=minutes_ago), thread_id=thread_id,
                parent_id=parent_id, matched_terms=("Northwind",))
    with store.session() as s:
        row = MentionRow(**mention_values(m, now))
        row.classified = True
        row.case_id = case_id
        s.add(row)


# --- a platform stand-in on 127.0.0.1 -----------------------------------------------


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class StandIn:
    """A real HTTP server on 127.0.0.1; `routes` maps (method, path) to a handler returning (status, body, headers)."""

    routes: dict[tuple[str, str], Callable[[Recorded], tuple[int, Any, dict[str, str]]]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> "StandIn":
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                rec = Recorded(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                               self.rfile.read(length) if length else b"")
                stand_in.requests.append(rec)
                path = self.path.split("?", 1)[0]
                handler = stand_in.routes.get((self.command, path))
                if handler is None:
                    status, body, headers = 404, {"errors": ["not found"]}, {}
                else:
                    status, body, headers = handler(rec)
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _any

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    def posts(self, path: str = "/posts.json") -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST" and r.path.split("?")[0] == path]


# --- running the real dashboard ----------------------------------------------------------


def start_streamlit(app: Path, *, env: dict[str, str], home: Path, port: int | None = None,
                    timeout: float = 60) -> tuple[subprocess.Popen, str]:
    port = port or free_port()
    full_env = dict(os.environ)
    full_env.update(env)
    full_env["HOME"] = str(home)
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(app), "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none", "--theme.base", "light"],
        cwd=str(home), env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited: {proc.stdout.read().decode(errors='replace')[-3000:]}")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.read().strip() == b"ok":
                    return proc, url
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("streamlit did not become healthy")


def oidc_account(provider: str, sub: str, **claims: Any) -> None:
    """Create or replace an account at oidc-provider-mock (PUT /users/<sub>): the claims its ID tokens carry."""
    req = urllib.request.Request(f"{provider}/users/{sub}", data=json.dumps(claims).encode(), method="PUT",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 204, r.status


def oidc_sign_in(page, provider: str, sub: str, *, timeout: float = 20000) -> None:
    """Click Sign in on the dashboard and authorize as `sub` on the provider's page."""
    page.get_by_role("button", name="Sign in").first.click()
    page.wait_for_url(f"{provider}/**", timeout=timeout)
    page.fill("input[name=sub]", sub)
    page.get_by_role("button", name="Authorize").click()


def oidc_home(tmp_path: Path, provider: str, port: int) -> Path:
    """A HOME whose .streamlit/secrets.toml points st.login at the provider, for a dashboard on `port`."""
    home = tmp_path / "home"
    (home / ".streamlit").mkdir(parents=True, exist_ok=True)
    (home / ".streamlit" / "secrets.toml").write_text(
        "[auth]\n"
        f'redirect_uri = "http://127.0.0.1:{port}/oauth2callback"\n'
        'cookie_secret = "e2e-only-Vq3Jx8Rk2Tn6Wb9Lm4Pz7Hc1Yf5Ds0Ga"\n'
        'client_id = "hearken"\nclient_secret = "hearken-secret"\n'
        f'server_metadata_url = "{provider}/.well-known/openid-configuration"\n')
    return home


CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]


# --- a Discourse forum stand-in built on the recorded create-post response -------------------


class DiscourseForum:
    """A Discourse forum on 127.0.0.1 holding one topic. POST /posts.json answers with the recorded
    create-post response (../shared/fixtures/discourse/new_topic_response.json) adapted to the new post;
    GET /t/{id}.json lists the topic's posts. `answer_delay` makes it post first and answer late
    (the reply is up but the client times out); `fail_status` refuses posts with that status."""

    def __init__(self, recorded: Path, *, topic_id: int = 17, our_user: str = "northwind_team") -> None:
        self.template = json.loads(recorded.read_text())
        self.topic_id = topic_id
        self.our_user = our_user
        self.posts: list[dict] = []
        self.answer_delay = 0.0
        self.fail_status: int | None = None
        self.lock = threading.Lock()
        self.http = StandIn()
        self.http.routes[("POST", "/posts.json")] = self._create
        self.http.routes[("GET", f"/t/{topic_id}.json")] = self._topic

    def start(self) -> "DiscourseForum":
        self.http.start()
        return self

    def stop(self) -> None:
        self.http.stop()

    @property
    def base_url(self) -> str:
        return self.http.base_url

    def _create(self, rec: Recorded):
        if self.fail_status:
            return self.fail_status, {"action": "create_post", "errors": ["You've performed this action too many times."],
                                      "error_type": "rate_limit"}, {}
        payload = rec.json()
        with self.lock:
            post = dict(self.template)
            post.update(id=1000 + len(self.posts), topic_id=payload["topic_id"], post_number=len(self.posts) + 2,
                        raw=payload["raw"], cooked=f"<p>{payload['raw']}</p>", username=rec.headers.get("api-username"),
                        reply_to_post_number=payload.get("reply_to_post_number"),
                        created_at=datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"))
            self.posts.append(post)
        if self.answer_delay:
            time.sleep(self.answer_delay)
        return 200, post, {}

    def _topic(self, rec: Recorded):
        first = {"id": 999, "post_number": 1, "username": "kevin.r", "topic_id": self.topic_id,
                 "created_at": "2026-01-01T00:00:00Z", "reply_to_post_number": None, "cooked": "<p>help</p>"}
        posts = [first] + self.posts
        return 200, {"id": self.topic_id, "post_stream": {"posts": posts, "stream": [p["id"] for p in posts]}}, {}


def discourse_config(base_url: str, *, read_only: bool = False) -> str:
    return f"""\
brand:
  terms: ["Northwind"]
accounts:
  demo: ["NorthwindHelp"]
  discourse: ["northwind_team"]
sources:
  - {{type: demo, name: demo, interval_seconds: 1}}
  - type: discourse
    name: community
    base_url: "{base_url}"
    api_key_env: TEST_DISCOURSE_KEY
    api_username_env: TEST_DISCOURSE_USER
    read_only: {str(read_only).lower()}
team:
  - {{name: Alex Admin, email: alex@example.com, role: admin}}
  - {{name: Morgan Manager, email: morgan@example.com, role: manager}}
  - {{name: Sam Agent, email: sam@example.com, role: agent}}
"""


DISCOURSE_ENV = {"TEST_DISCOURSE_KEY": "test-key", "TEST_DISCOURSE_USER": "northwind_team"}


def seed_discourse_case(store, cfg, base_url: str, *, topic_id: int = 17, post_number: int = 1,
                        body: str = "My Northwind hub drops every evening", **kw) -> int:
    host = base_url.split("//", 1)[1]
    return seed_case(store, cfg, platform="discourse", source="community",
                     external_id=f"{host}/t/{topic_id}/{post_number}", thread_id=f"{host}/t/{topic_id}",
                     url=f"{base_url}/t/hub/{topic_id}/{post_number}", author="kevin.r", body=body,
                     extra={"forum": base_url, "topic_id": topic_id, "post_number": post_number}, **kw)
