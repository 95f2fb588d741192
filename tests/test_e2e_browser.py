"""End to end in real Chromium: sign in through an OIDC provider, claim a case, post a reply to a
Discourse stand-in on 127.0.0.1 (answering with the recorded create-post response), resolve the case,
and see the audit trail. Screenshots of each page go to test-artifacts/.

Needs Debian's chromium (/usr/bin/chromium) and the playwright package; skips with the reason otherwise.
"""

from __future__ import annotations

import os
import re
import time
from datetime import timedelta

import pytest

from desk.config.schema import load_config
from desk.store.db import connect
from desk.cases.reply_status import unsettled
from tests.conftest import MINIMAL_CONFIG, need_fixtures
from tests.e2e_helpers import (ARTIFACTS, CHROMIUM_ARGS, DISCOURSE_ENV, HOSTILE_BODY, ROOT, DiscourseForum,
                               discourse_config, free_port, oidc_account, oidc_home, oidc_sign_in, seed_case,
                               seed_discourse_case, start_streamlit)

CHROMIUM = "/usr/bin/chromium"

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed")


@pytest.fixture(scope="module")
def chromium():
    """One Chromium for the module's tests: each test works in contexts of its own (cookies, storage)."""
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def browser(chromium):
    """The module's Chromium; every context a test opened is closed after it, so none outlives its test."""
    yield chromium
    for ctx in list(chromium.contexts):
        ctx.close()


@pytest.fixture
def oidc():
    from oidc_provider_mock import run_server_in_thread

    with run_server_in_thread(port=free_port()) as server:
        yield f"http://127.0.0.1:{server.server_port}"


def settle(page) -> None:
    from playwright.sync_api import expect

    expect(page.get_by_test_id("stStatusWidget")).to_be_hidden(timeout=20000)
    page.wait_for_timeout(300)


def draft_on_case_page(browser, url: str, case_id: int, text: str):
    """A browser page on a Discourse case with `text` typed into the reply box; returns (context, page)."""
    from playwright.sync_api import expect

    ctx = browser.new_context(viewport={"width": 1400, "height": 1800})
    page = ctx.new_page()
    page.goto(f"{url}/case?id={case_id}")
    box = page.get_by_label("Your reply (up to 32000 characters on discourse)")
    expect(box).to_be_visible(timeout=30000)
    settle(page)
    box.fill(text)
    box.press("Control+Enter")
    return ctx, page


def wait_until(condition, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def test_sign_in_claim_reply_resolve_in_chromium(tmp_path, browser, oidc):
    from playwright.sync_api import expect

    forum = DiscourseForum(need_fixtures("discourse", "new_topic_response.json")).start()
    port = free_port()
    home = oidc_home(tmp_path, oidc, port)
    oidc_account(oidc, "sam", email="sam@example.com", email_verified=True)
    cfg_path = tmp_path / "hearken.yaml"
    cfg_path.write_text(discourse_config(forum.base_url) + "dashboard: {auth: oidc}\n")
    db_url = f"sqlite:///{tmp_path / 'hearken.db'}"
    cfg = load_config(cfg_path)
    store = connect(db_url)
    case_id = seed_discourse_case(store, cfg, forum.base_url, body="My Northwind hub drops every evening",
                                  minutes_ago=90, severity=3)
    hostile = seed_case(store, cfg, external_id="evil", body=HOSTILE_BODY, author="[admin](https://evil.example)",
                        minutes_ago=20)
    proc, url = start_streamlit(ROOT / "dashboard" / "app.py", home=home, port=port,
                                env={"HEARKEN_CONFIG": str(cfg_path), "HEARKEN_DATABASE_URL": db_url, **DISCOURSE_ENV})
    try:
        ctx = browser.new_context(viewport={"width": 1400, "height": 1800})
        page = ctx.new_page()
        page.goto(url)
        expect(page.get_by_text("Sign in with your company account")).to_be_visible(timeout=30000)
        expect(page.get_by_text("My Northwind hub drops")).to_have_count(0)
        shot(page, "01-sign-in")
        oidc_sign_in(page, oidc, "sam")

        # the queue, signed in as Sam
        expect(page.get_by_text("Signed in as")).to_be_visible(timeout=30000)
        item = page.locator(f".st-key-case-{case_id}")
        expect(item).to_contain_text("My Northwind hub drops every evening")
        expect(page.locator(f".st-key-case-{hostile}")).to_contain_text("<script>window.hacked=1</script>")
        assert page.locator('a[href*="evil.example"]').count() == 0
        assert page.evaluate("window.hacked") is None
        assert page.locator("h1:has-text('GIANT HEADER')").count() == 0
        settle(page)
        shot(page, "02-queue")

        # the hostile post's own page: plain text, no link, no script, no heading (history included)
        from desk.cases import audit

        with store.session() as s:
            audit.record(s, hostile, "system", "customer_followup", author="[x](https://evil.example) www.evil.example")
        page.goto(f"{url}/case?id={hostile}")
        expect(page.get_by_text("<script>window.hacked=1</script>", exact=False).first).to_be_visible(timeout=20000)
        # the page's first visit in this process imports the composer's modules before drawing the history
        expect(page.locator(".st-key-history")).to_contain_text("customer followup", timeout=20000)
        settle(page)
        assert page.locator('a[href*="evil.example"]').count() == 0
        assert page.evaluate("window.hacked") is None
        assert page.locator("h1:has-text('GIANT HEADER')").count() == 0
        shot(page, "02b-hostile-case")
        page.goto(url)
        expect(item).to_contain_text("My Northwind hub drops every evening", timeout=20000)
        settle(page)
        item.get_by_role("button", name="Claim").click()
        settle(page)
        expect(page.locator(f".st-key-case-{case_id}")).to_contain_text("Assignee: Sam Agent")

        # the case: compose from a template and post publicly, clicking twice
        page.locator(f".st-key-case-{case_id}").get_by_role("link", name="Open").click()
        expect(page.get_by_role("heading", name=f"Case #{case_id}")).to_be_visible(timeout=20000)
        settle(page)
        page.get_by_label("Your reply (up to 32000 characters on discourse)").fill(
            "Hi kevin.r, sorry about the drops. We're checking the line tonight and will update you here by 6pm. "
            f"Thanks for raising it. Ref #HK{case_id}")
        page.keyboard.press("Control+Enter")
        settle(page)
        expect(page.get_by_test_id("stText").filter(has_text="checking the line tonight")).to_have_count(1)
        expect(page.locator(".st-key-history")).to_contain_text("claimed")  # the page is drawn to the end
        settle(page)
        shot(page, "03-case-composer")
        page.get_by_role("button", name="Post publicly").dblclick()
        expect(page.get_by_text("Posted publicly")).to_be_visible(timeout=20000)
        settle(page)
        assert len(forum.posts) == 1 and len(forum.http.posts()) == 1
        assert forum.http.posts()[0].json()["topic_id"] == 17
        expect(page.get_by_label("Your reply (up to 32000 characters on discourse)")).to_have_value("")
        shot(page, "04-case-replied")

        # resolve with a note and a root cause, then see the audit trail
        page.get_by_label("What was done").fill("Line fault fixed by the engineer on Tuesday")
        page.get_by_label("What was done").press("Tab")
        settle(page)
        page.get_by_role("combobox", name="Root cause").click()  # nothing is chosen for the person
        page.get_by_role("option", name="Network or service outage").click()
        settle(page)
        page.get_by_role("button", name="Resolve").click()
        expect(page.get_by_text("Case resolved.")).to_be_visible(timeout=20000)
        settle(page)
        expect(page.get_by_text("resolved", exact=True).first).to_be_visible()
        history = page.locator(".st-key-history")
        expect(history).to_contain_text("claimed")
        expect(history.locator("tr").last).to_contain_text("Sam Agent")
        expect(history.locator("tr").last).to_contain_text("resolved")
        expect(history.locator("tr").last).to_contain_text("Line fault fixed by the engineer on Tuesday")
        shot(page, "05-case-resolved")
        from sqlalchemy import select

        from desk.store.models import Event

        with store.session() as s:
            trail = [(e.actor, e.action) for e in s.scalars(select(Event).where(Event.case_id == case_id))]
        assert ("Sam Agent", "claimed") in trail and ("Sam Agent", "replied") in trail
        assert trail[-1] == ("Sam Agent", "resolved")

        page.goto(f"{url}/metrics")
        expect(page.get_by_role("heading", name="Metrics")).to_be_visible(timeout=20000)
        settle(page)
        # the week in progress holds the seeded complaints: it is the one shown, marked partial
        expect(page.get_by_role("combobox", name="Week")).to_have_value(
            re.compile(r"^\d{4}-W\d\d \(in progress: figures are partial\)$"), timeout=20000)
        expect(page.get_by_test_id("stMetric").first).to_contain_text("Complaints")
        expect(page.get_by_test_id("stMetric").first).to_contain_text("2")  # the two seeded complaints
        page.wait_for_timeout(1500)  # charts draw after the script finishes
        shot(page, "06-metrics")
        page.goto(f"{url}/sources")
        expect(page.get_by_role("heading", name="Sources")).to_be_visible(timeout=20000)
        settle(page)
        expect(page.locator(".st-key-source-community")).to_contain_text("Replies: posted publicly")
        shot(page, "07-sources")
        ctx.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        forum.stop()
        store.close()


def test_dashboard_killed_mid_post_then_check_finds_the_reply(tmp_path, browser):
    """kill -9 the real dashboard between the platform's answer and recording it; after a restart the
    case refuses a new post until 'Check the platform' finds the reply that went out."""
    from playwright.sync_api import expect

    forum = DiscourseForum(need_fixtures("discourse", "new_topic_response.json")).start()
    home = tmp_path / "home"
    home.mkdir()
    cfg_path = tmp_path / "hearken.yaml"
    cfg_path.write_text(discourse_config(forum.base_url) + "dashboard: {auth: local, local_user: Sam Agent}\n"
                        "replies: {publish_deadline_seconds: 2, check_deadline_seconds: 2, stale_after_seconds: 3}\n")
    db_url = f"sqlite:///{tmp_path / 'hearken.db'}"
    store = connect(db_url)
    cfg = load_config(cfg_path)
    case_id = seed_discourse_case(store, cfg, forum.base_url)
    marker = tmp_path / "hung-after-call"
    env = {"HEARKEN_CONFIG": str(cfg_path), "HEARKEN_DATABASE_URL": db_url, **DISCOURSE_ENV}
    proc, url = start_streamlit(ROOT / "dashboard" / "app.py", home=home,
                                env={**env, "HEARKEN_FAILPOINT": f"reply_after_call:{marker}"})
    proc2 = None
    try:
        ctx, page = draft_on_case_page(browser, url, case_id, "Hi kevin.r, sorry about this; we're on it.")
        settle(page)
        page.get_by_role("button", name="Post publicly").click()
        for _ in range(200):
            if marker.exists():
                break
            page.wait_for_timeout(100)
        assert marker.exists(), "the dashboard never reached the failpoint"
        proc.kill()  # SIGKILL: the reply is on the forum, our database still says 'posting'
        proc.wait(timeout=10)
        assert len(forum.posts) == 1

        proc2, url2 = start_streamlit(ROOT / "dashboard" / "app.py", home=home, env=env)
        wait_until(lambda: unsettled(store, cfg, case_id), "the dead dashboard's attempt to go stale")
        page.goto(f"{url2}/case?id={case_id}")
        expect(page.get_by_text("may or may not be on the platform")).to_be_visible(timeout=30000)
        expect(page.get_by_text("Signed in as")).to_be_visible()  # a deep link goes through app.py's gate
        settle(page)
        box = page.get_by_label("Your reply (up to 32000 characters on discourse)")
        box.fill("A second answer that must not go out")
        box.press("Control+Enter")
        settle(page)
        expect(page.get_by_role("button", name="Post publicly")).to_be_disabled()  # held until it is settled
        assert len(forum.http.posts()) == 1
        settle(page)
        shot(page, "08-case-outcome-unknown")
        page.get_by_role("button", name="Check the platform").click()
        expect(page.get_by_text("Found our reply on the platform")).to_be_visible(timeout=20000)
        settle(page)
        expect(page.get_by_text("may or may not be on the platform")).to_have_count(0)
        shot(page, "09-case-reply-found")
        assert len(forum.posts) == 1 and len(forum.http.posts()) == 1
        ctx.close()
    finally:
        for p in (proc, proc2):
            if p is not None and p.poll() is None:
                p.terminate()
                p.wait(timeout=10)
        forum.stop()
        store.close()


TEAM = MINIMAL_CONFIG + "dashboard: {auth: oidc}\n"


def signed_in_page(browser, url: str, provider: str, sub: str):
    """A fresh browser (its own cookies) signed in to the dashboard as `sub` at the provider."""
    from playwright.sync_api import expect

    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = ctx.new_page()
    page.goto(url)
    expect(page.get_by_text("Sign in with your company account")).to_be_visible(timeout=30000)
    oidc_sign_in(page, provider, sub)
    return ctx, page


def test_who_gets_in_unverified_email_copied_cookie_and_removal_in_chromium(tmp_path, browser, oidc):
    """Mallory's provider account claims Alex's address unverified: refused. Sam signs in (no Team page for an
    agent), copies his cookies, signs out: the copies no longer sign in. Morgan is removed from team: out at
    the next click."""
    from playwright.sync_api import expect

    port = free_port()
    home = oidc_home(tmp_path, oidc, port)
    oidc_account(oidc, "mallory", email="alex@example.com", email_verified=False)
    oidc_account(oidc, "sam", email="sam@example.com", email_verified=True)
    oidc_account(oidc, "morgan", email="morgan@example.com", email_verified=True)
    cfg_path = tmp_path / "hearken.yaml"
    cfg_path.write_text(TEAM)
    db_url = f"sqlite:///{tmp_path / 'hearken.db'}"
    store = connect(db_url)
    seed_case(store, load_config(cfg_path), external_id="secret", body="Northwind lost my order", minutes_ago=15)
    proc, url = start_streamlit(ROOT / "dashboard" / "app.py", home=home, port=port,
                                env={"HEARKEN_CONFIG": str(cfg_path), "HEARKEN_DATABASE_URL": db_url})
    secret = "Northwind lost my order"
    try:
        ctx, page = signed_in_page(browser, url, oidc, "mallory")
        expect(page.get_by_text("has not verified the address alex@example.com")).to_be_visible(timeout=30000)
        expect(page.get_by_text(secret)).to_have_count(0)
        settle(page)
        shot(page, "10-unverified-email-refused")
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url(f"{oidc}/**", timeout=20000)  # the provider's own sign-out page

        page.goto(url)
        expect(page.get_by_text("Sign in with your company account")).to_be_visible(timeout=30000)
        oidc_sign_in(page, oidc, "sam")
        expect(page.get_by_text("Signed in as Sam Agent (agent)")).to_be_visible(timeout=30000)
        expect(page.get_by_text(secret)).to_be_visible()
        nav = page.get_by_test_id("stSidebarNav")
        expect(nav.get_by_role("link", name="Queue")).to_be_visible()
        expect(nav.get_by_role("link", name="Sources")).to_be_visible()
        expect(nav.get_by_role("link", name="Team")).to_have_count(0)  # agents are not shown the Team page
        settle(page)
        shot(page, "11-agent-signed-in")
        page.goto(f"{url}/team")  # a link to it says whom it is for, rather than opening the Queue unasked
        expect(page.get_by_text("The team overview is for managers and admins.")).to_be_visible(timeout=30000)
        expect(page.get_by_role("heading", name="Queue")).to_have_count(0)
        copied = ctx.cookies()
        assert any(c["name"].startswith("_streamlit_user") for c in copied)
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url(f"{oidc}/**", timeout=20000)

        thief = browser.new_context(viewport={"width": 1400, "height": 1000})
        thief.add_cookies(copied)
        stolen = thief.new_page()
        stolen.goto(url)
        expect(stolen.get_by_text("this sign-in ended at")).to_be_visible(timeout=30000)
        expect(stolen.get_by_text("(signed out)", exact=False)).to_be_visible()
        expect(stolen.get_by_text(secret)).to_have_count(0)
        settle(stolen)
        shot(stolen, "12-copied-cookie-after-sign-out")
        thief.close()

        manager, mpage = signed_in_page(browser, url, oidc, "morgan")
        expect(mpage.get_by_text("Signed in as Morgan Manager (manager)")).to_be_visible(timeout=30000)
        expect(mpage.get_by_test_id("stSidebarNav").get_by_role("link", name="Team")).to_be_visible()
        cfg_path.write_text(TEAM.replace("  - {name: Morgan Manager, email: morgan@example.com, role: manager}\n", ""))
        mpage.get_by_test_id("stSidebarNav").get_by_role("link", name="Sources").click()
        expect(mpage.get_by_text("(removed from the team)", exact=False)).to_be_visible(timeout=30000)
        expect(mpage.get_by_text(secret)).to_have_count(0)
        settle(mpage)
        shot(mpage, "13-removed-from-the-team")
        manager.close()
        ctx.close()
        from sqlalchemy import select

        from desk.store.models import DashboardSession, User

        with store.session() as s:
            ended = {(s.get(User, r.user_id).name, r.end_reason) for r in s.scalars(select(DashboardSession))}
        assert ended == {("Sam Agent", "signed out"), ("Morgan Manager", "removed from the team")}
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        store.close()


def test_failures_nobody_can_miss_in_chromium(tmp_path, browser):
    """A forum answering 503 and an X source without its token, polled by the real runner code; an
    escalation email to an SMTP server that is down, then up. Every page carries the banner; the Sources
    page shows the outbox and each state in words; the case history shows when the email was delivered."""
    from playwright.sync_api import expect

    from desk.notify import mailer
    from desk.store.models import now_utc
    from desk.intake.runner import Runner
    from tests.collector_helpers import LocalServer, Reply
    from tests.test_alerts_support import SmtpServer

    smtp_port = free_port()
    with LocalServer() as forum:
        forum.route("/board", Reply(503, b"<html>Service Unavailable</html>", {"Content-Type": "text/html"}))
        cfg_path = tmp_path / "hearken.yaml"
        cfg_path.write_text(f"""\
brand: {{terms: ["Northwind"]}}
sources:
  - {{type: demo, name: demo, interval_seconds: 60}}
  - type: forum
    name: support-board
    pages: ["{forum.url}/board"]
    preset: phpbb
  - {{type: x, name: x-brand, bearer_token_env: HEARKEN_E2E_NO_SUCH_TOKEN}}
alerts:
  smtp: {{host: 127.0.0.1, port: {smtp_port}, timeout_seconds: 2}}
team:
  - {{name: Alex Admin, email: alex@example.com, role: admin}}
  - {{name: Morgan Manager, email: morgan@example.com, role: manager}}
dashboard: {{auth: local, local_user: Alex Admin}}
""")
        db_url = f"sqlite:///{tmp_path / 'hearken.db'}"
        cfg = load_config(cfg_path)
        store = connect(db_url)
        runner = Runner(cfg, store, model_loader=lambda: None)
        for src in cfg.sources[1:]:
            runner.poll_source(src)  # what `hearken run` records: failing (503), disabled (no token)
        case_id = seed_case(store, cfg, external_id="late", body="Northwind has cut my line for a week", minutes_ago=45,
                            severity=2)  # below alerts.rules.min_severity: the escalation is its only email
        home = tmp_path / "home"
        home.mkdir()
        proc, url = start_streamlit(ROOT / "dashboard" / "app.py", home=home,
                                    env={"HEARKEN_CONFIG": str(cfg_path), "HEARKEN_DATABASE_URL": db_url})
        smtp = None
        try:
            ctx = browser.new_context(viewport={"width": 1400, "height": 1900})
            page = ctx.new_page()
            page.goto(url)
            banner = page.locator(".st-key-health-banner")
            expect(banner).to_contain_text("SOURCES NEEDING ATTENTION", timeout=30000)
            expect(banner).to_contain_text("Source support-board (forum) is failing")
            expect(banner).to_contain_text("Source x-brand (x) is disabled")
            expect(banner).to_contain_text(f"sources[2] (x-brand) at {cfg_path}:")
            expect(banner.get_by_role("link", name="Open the Sources page")).to_be_visible()
            settle(page)
            shot(page, "14-queue-banner-sources")

            page.goto(f"{url}/case?id={case_id}")
            expect(page.get_by_role("heading", name=f"Case #{case_id}")).to_be_visible(timeout=30000)
            settle(page)
            page.get_by_text("Escalate to a manager").click()
            page.get_by_label("Reason").fill("Customer without a line for a week")
            page.get_by_label("Reason").press("Tab")
            settle(page)
            page.get_by_role("button", name="Escalate", exact=True).click()
            expect(page.get_by_text("An email to them is queued")).to_be_visible(timeout=20000)
            expect(page.get_by_text("they have been emailed")).to_have_count(0)
            expect(page.locator(".st-key-history")).to_contain_text("email queued")
            settle(page)

            mailer.send_pending(store, cfg)  # the runner's outbox pass: the SMTP server is down
            page.reload()
            expect(banner).to_contain_text("EMAIL NOT DELIVERED", timeout=30000)
            expect(banner).to_contain_text("1 waiting, 1 of them retrying")
            expect(banner).to_contain_text(f"check alerts.smtp (127.0.0.1:{smtp_port}, security none) at {cfg_path}:")
            expect(page.locator(".st-key-history")).to_contain_text("email not delivered yet")
            expect(page.locator(".st-key-history")).to_contain_text("Connection refused")
            settle(page)
            shot(page, "15-case-email-failing")
            page.locator(".st-key-history").screenshot(path=str(ARTIFACTS / "15b-case-history-email-failing.png"))

            page.goto(f"{url}/sources")
            expect(page.get_by_role("heading", name="Sources", exact=True)).to_be_visible(timeout=30000)
            settle(page)
            outbox = page.locator(".st-key-outbox")
            expect(outbox).to_contain_text("NOT DELIVERING")
            expect(outbox.get_by_test_id("stMetric").filter(has_text="Retrying")).to_contain_text("1")
            expect(outbox).to_contain_text("Connection refused")
            expect(outbox).to_contain_text("next try")
            board = page.locator(".st-key-source-support-board")
            expect(board).to_contain_text("FAILING")
            expect(board).to_contain_text("Failed polls in a row")
            assert board.inner_text().count("503") == 1  # the error once
            x = page.locator(".st-key-source-x-brand")
            expect(x).to_contain_text("DISABLED: CANNOT START")
            expect(x).to_contain_text("HEARKEN_E2E_NO_SUCH_TOKEN")
            assert "Failed polls in a row" not in x.inner_text() and "Waiting until" not in x.inner_text()
            expect(page.locator(".st-key-source-demo")).to_contain_text("NOT POLLED YET")
            shot(page, "16-sources-outbox-and-states")

            smtp = SmtpServer(port=smtp_port).start()
            mailer.send_pending(store, cfg, now=now_utc() + timedelta(minutes=5))  # the retry, now the server is up
            assert len(smtp.messages) == 1 and smtp.messages[0].rcpt_tos == ["morgan@example.com"]
            page.goto(f"{url}/case?id={case_id}")
            expect(page.locator(".st-key-history")).to_contain_text("email delivered", timeout=30000)
            expect(banner).not_to_contain_text("EMAIL NOT DELIVERED")
            expect(banner).to_contain_text("SOURCES NEEDING ATTENTION")
            settle(page)
            shot(page, "17-case-email-delivered")
            page.locator(".st-key-history").screenshot(path=str(ARTIFACTS / "17b-case-history-email-delivered.png"))

            # someone edits the config into a mistake while the dashboard runs: it keeps serving the version
            # that loaded, under a red banner saying what is wrong and where; no traceback
            cfg_path.write_text(cfg_path.read_text().replace("role: manager}", "role: manger}"))
            page.reload()
            config_banner = page.locator(".st-key-config-banner")
            expect(config_banner).to_contain_text("THE CONFIGURATION HAS 1 PROBLEM", timeout=30000)
            expect(config_banner).to_contain_text(f"{cfg_path}:{line_of(cfg_path, 'manger')}: team.1.role: "
                                                  "Input should be 'agent', 'manager' or 'admin' (got 'manger')")
            expect(page.get_by_text("Northwind has cut my line").first).to_be_visible()
            expect(page.get_by_test_id("stException")).to_have_count(0)
            settle(page)
            shot(page, "18-config-broken-dashboard-keeps-serving")
            ctx.close()
        finally:
            if smtp is not None:
                smtp.stop()
            proc.terminate()
            proc.wait(timeout=10)
            store.close()
def line_of(path, needle: str) -> int:
    return next(i for i, text in enumerate(path.read_text().splitlines(), 1) if needle in text)


def test_lost_reply_not_found_then_posted_anyway_with_a_reason_in_chromium(tmp_path, browser):
    """The forum swallows the post: the case page says so, checks, says when it can be concluded, then
    'not found', and only a reason typed by a person sends it again. The forum ends with one reply."""
    from playwright.sync_api import expect

    from tests.hostile_publish import stage

    home = tmp_path / "home"
    home.mkdir()
    db_url = f"sqlite:///{tmp_path / 'hearken.db'}"
    store = connect(db_url)
    st = stage("discourse", store, tmp_path, check_grace_seconds=4)
    st.platform.bad.never_store = True
    text = "Hi kevin.r, sorry the hub keeps dropping; an engineer will call you today."
    proc, url = start_streamlit(ROOT / "dashboard" / "app.py", home=home,
                                env={"HEARKEN_CONFIG": str(st.cfg.path), "HEARKEN_DATABASE_URL": db_url, **st.env})
    try:
        ctx, page = draft_on_case_page(browser, url, st.case_id, text)
        settle(page)
        page.get_by_role("button", name="Post publicly").click()
        expect(page.get_by_text("did not confirm the reply")).to_be_visible(timeout=20000)
        settle(page)
        expect(page.get_by_role("button", name="Post publicly")).to_be_disabled()
        page.get_by_role("button", name="Check the platform").click()
        expect(page.get_by_text("not conclusive before").first).to_be_visible(timeout=20000)
        settle(page)
        expect(page.get_by_role("button", name="Post anyway")).to_have_count(0)
        shot(page, "20-case-reply-not-found-yet")
        wait_until(lambda: unsettled(store, st.cfg, st.case_id)[0].may_post_anyway(), "the grace period to pass")
        page.get_by_role("button", name="Check the platform").click()
        expect(page.get_by_text("is not on the platform").first).to_be_visible(timeout=20000)
        settle(page)
        st.platform.bad.never_store = False
        page.get_by_text("Post anyway", exact=True).first.click()  # the expander
        reason = page.get_by_label("Why post it again? This goes into the case history with your name.")
        expect(reason).to_be_visible(timeout=10000)
        reason.fill("Read the thread myself: no reply from us is there")
        reason.press("Control+Enter")
        settle(page)
        shot(page, "21-case-post-anyway")
        page.get_by_role("button", name="Post anyway").click()
        expect(page.get_by_text("Posted publicly")).to_be_visible(timeout=20000)
        settle(page)
        expect(page.get_by_text("Posted anyway by Alex Admin")).to_be_visible()
        shot(page, "22-case-posted-anyway")
        assert st.held(text) == 1 and len(st.platform.stored) == 1
        ctx.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        st.platform.stop()
        store.close()
