"""Adversary for issues 14 and 12: who gets in and what a role may do, found broken (each test xfail, strict).

Every test here demonstrates one finding against the public surfaces (the dashboard under Streamlit's
AppTest with the claims st.login would give, `hearken` processes, the config and secrets.toml files).
Each is marked `xfail(strict=True)` with the finding in one line: the suite stays green while the
finding stands and turns red once it is fixed, so the marker can be removed then.
What held under the same attacks is listed in the adversary's report, not tested twice here.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import MINIMAL_CONFIG, ROOT, free_port

APP = str(ROOT / "dashboard" / "app.py")
ISSUER = "https://id.example.com"
AUTH_SECRETS = {"redirect_uri": "http://127.0.0.1:8501/oauth2callback", "cookie_secret": "x" * 40,
                "client_id": "hearken", "client_secret": "s", "server_metadata_url":
                "http://127.0.0.1:1/.well-known/openid-configuration"}


def claims(email: str, sub: str, *, verified: bool = True) -> dict:
    """What st.user holds after a real OIDC sign-in: the ID token's claims."""
    now = int(time.time())
    return {"is_logged_in": True, "iss": ISSUER, "sub": sub, "aud": "hearken", "email": email,
            "email_verified": verified, "nonce": f"n-{sub}", "iat": now, "exp": now + 3600}


def dashboard(tmp_path: Path, monkeypatch, config_text: str, *, user: dict | None = None,
              page: str | None = None, query: dict | None = None):
    """The real dashboard (app.py, its sign-in gate and navigation) on a config and SQLite file in tmp_path."""
    from streamlit.testing.v1 import AppTest

    path = tmp_path / "hearken.yaml"
    path.write_text(config_text)
    monkeypatch.setenv("HEARKEN_CONFIG", str(path))
    monkeypatch.setenv("HEARKEN_DATABASE_URL", f"sqlite:///{tmp_path / 'hearken.db'}")
    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets["auth"] = AUTH_SECRETS
    if user is not None:
        at.user = user
    if page:
        at.switch_page(page)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    return at.run()


def signed_in_as(at) -> str | None:
    """The sidebar's "Signed in as NAME (role)" as a person reads it, or None on the sign-in screen."""
    for c in at.sidebar.caption:
        if c.value.startswith("Signed in as"):
            return c.value.replace("*", "").replace("\\", "")
    return None


# --- who gets in ----------------------------------------------------------------------------------------------


LOOKALIKES = [
    # the team's domain has "ss"; straße.example is another domain (IDNA2008: xn--strae-oqa), registrable by anyone
    pytest.param("alex@strasse.example", "alex@straße.example", id="sharp-s-domain"),
    # KELVIN SIGN U+212A casefolds to "k": a different mailbox name at a provider that allows Unicode local parts
    pytest.param("kim@example.com", "\u212aim@example.com", id="kelvin-sign"),
]


@pytest.mark.parametrize("member, attacker", LOOKALIKES)
def test_an_address_that_only_casefolds_to_a_members_does_not_sign_in_as_them(tmp_path, monkeypatch, member,
                                                                              attacker):
    team = MINIMAL_CONFIG.replace("alex@example.com", member)
    at = dashboard(tmp_path, monkeypatch, team + "dashboard: {auth: oidc}\n", user=claims(attacker, "mallory-1"))
    assert not at.exception
    # Python's casefold() makes "ß" "ss" and "K" (Kelvin) "k"; the provider verified a different address
    assert signed_in_as(at) is None, f"{attacker!r} got in: {signed_in_as(at)}"
    assert any("not as a member of this team" in e.value for e in at.error)


@pytest.mark.parametrize("secret", ["a long random string", "x", "changeme"])
def test_check_config_refuses_a_cookie_secret_anyone_can_guess(tmp_path, secret):
    """The README's secrets.toml example, copied as it stands. Streamlit's sign-in cookie is only signed (itsdangerous
    with cookie_secret): whoever knows the secret writes a cookie whose claims say email_verified, any team email
    and a fresh iat, and sign_in binds them as that member. Tried in Chromium against a real dashboard with
    cookie_secret = "a long random string": a cookie made with Streamlit's own create_signed_value, claims
    {iss, sub: attacker, email: alex@example.com, email_verified: true, iat: now, origin, provider}, showed
    "Signed in as Alex Admin (admin)" and bound Alex to the attacker's subject (locking the real Alex out).
    check-config must refuse a secret from the docs, or one too short to resist guessing."""
    port = free_port()
    cfg = tmp_path / "hearken.yaml"
    cfg.write_text(MINIMAL_CONFIG + f"dashboard:\n  port: {port}\n  auth: oidc\n")
    secrets = tmp_path / ".streamlit" / "secrets.toml"
    secrets.parent.mkdir()
    secrets.write_text(f'[auth]\nredirect_uri = "http://127.0.0.1:{port}/oauth2callback"\n'
                       f'cookie_secret = "{secret}"\nclient_id = "hearken"\nclient_secret = "s3cr3t-value"\n'
                       'server_metadata_url = "https://id.example.com/.well-known/openid-configuration"\n')
    run = subprocess.run([sys.executable, "-m", "desk.cli", "check-config", "--config", str(cfg)], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "HOME": str(tmp_path), "PYTHONPATH": str(ROOT)})
    assert run.returncode == 1, run.stdout
    assert "cookie_secret" in run.stdout


# --- what the dashboard shows on a bad link ------------------------------------------------------------------


def test_a_case_link_with_an_id_too_large_for_the_database_says_there_is_no_such_case(tmp_path, monkeypatch):
    at = dashboard(tmp_path, monkeypatch, MINIMAL_CONFIG, page="views/case.py", query={"id": "9" * 30})
    assert not at.exception, at.exception[0].value
    assert any("There is no case" in e.value for e in at.error)


# --- the team as configured -----------------------------------------------------------------------------------


@pytest.mark.parametrize("second, value", [
    pytest.param("  - {name: sam agent, email: sam.other@example.com, role: agent}\n", "sam agent", id="same-name"),
    pytest.param("  - {name: Eve Agent, email: ALEX@example.com, role: agent}\n", "ALEX@example.com",
                 id="same-email"),
])
def test_check_config_refuses_two_members_with_the_same_name_or_email(tmp_path, second, value):
    """An exact duplicate name is refused already; one in another case is not, although every lookup by name
    casefolds: Assign to "sam agent" gives the case to Sam Agent, and Sam Agent's SLA warnings go to the
    address of whichever entry comes last (Config.resolve_recipients). Two entries with one address in
    another case: sign-in matches the first (Alex, admin) while sync_team writes the second's name and role
    (Eve, agent) into the users table."""
    path = tmp_path / "hearken.yaml"
    path.write_text(MINIMAL_CONFIG + second)
    run = subprocess.run([sys.executable, "-m", "desk.cli", "check-config", "--config", str(path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stdout
    assert "team" in run.stdout and value in run.stdout, run.stdout


# --- every desk function the dashboard calls checks the role rules ------------------------------------------


@pytest.fixture
def discourse_stage(tmp_path, sqlite_store):
    from tests.hostile_publish import stage

    st = stage("discourse", sqlite_store, tmp_path)
    yield st
    st.platform.stop()


def test_an_agent_cannot_check_the_platform_for_a_reply_on_a_case_another_agent_holds(discourse_stage):
    """post_reply and post_anyway call cases.authorize; check_reply, which the composer's "Check the platform"
    calls and which rewrites the reply's status and the case's history, does not."""
    from desk.cases import actions as cases
    from desk.cases.queue import case_detail
    from desk.cases.replies import check_reply, post_reply
    from desk.team.users import Actor, NotAllowed, actor_for_name

    st = discourse_stage
    jo = Actor("Jo Agent", "jo@example.com", "agent")
    cases.claim(st.store, st.case_id, jo)
    st.platform.bad.commit_delay = 3  # the forum stores the post after our 1 s deadline: outcome unknown
    lost = post_reply(st.store, st.cfg, st.case_id, jo, "Sorry Kevin, a fix is on its way. Ref #HK7", key="jo-1",
                      env=st.env)
    assert lost.status == "unknown"
    sam = actor_for_name(st.cfg, "Sam Agent")
    with pytest.raises(NotAllowed, match="Jo Agent has claimed this case"):
        check_reply(st.store, st.cfg, lost.reply_id, sam, env=st.env)
    assert "reply_check" not in [h.action for h in case_detail(st.store, st.case_id).history if h.actor == "Sam Agent"]
