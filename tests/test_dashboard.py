"""The dashboard's pages under Streamlit's AppTest: what a user sees after each action.

The app runs for real (app.py with its sign-in gate and navigation) on a real
SQLite file; posting goes to the demo platform's file next to the database.
"""

from __future__ import annotations

import os
import time
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from streamlit.testing.v1 import AppTest

from desk.store.db import connect
from desk.store.models import Label, Outbox, SourceState, now_utc
from collectors.demo.publish import read_posts
from tests.e2e_helpers import platform_file
from tests.conftest import MINIMAL_CONFIG, ROOT
from tests.e2e_helpers import HOSTILE_BODY, add_followup, seed_case

APP = str(ROOT / "dashboard" / "app.py")


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A config file and a SQLite database the app reads through HEARKEN_CONFIG / HEARKEN_DATABASE_URL."""
    from desk.config.schema import load_config

    def make(config_text: str = MINIMAL_CONFIG):
        path = tmp_path / "hearken.yaml"
        path.write_text(config_text)
        url = f"sqlite:///{tmp_path / 'hearken.db'}"
        monkeypatch.setenv("HEARKEN_CONFIG", str(path))
        monkeypatch.setenv("HEARKEN_DATABASE_URL", url)
        cfg = load_config(path)
        return cfg, connect(url)

    return make


AUTH_SECRETS = {"redirect_uri": "http://127.0.0.1:8501/oauth2callback", "cookie_secret": "x", "client_id": "h",
                "client_secret": "s", "server_metadata_url": "http://127.0.0.1:1/.well-known/openid-configuration"}


def app(page: str | None = None, *, case_id: int | None = None, user: dict | None = None,
        secrets: bool = True) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    if secrets:
        at.secrets["auth"] = AUTH_SECRETS
    if user is not None:
        at.user = user
    if page:
        at.switch_page(page)
    if case_id is not None:
        at.query_params["id"] = str(case_id)
    return at.run()


ISSUER = "https://id.example.com"


def oidc_user(email: str, *, sub: str | None = None, verified: bool | None = True, iat: float | None = None,
              nonce: str = "n-1") -> dict:
    """The claims Streamlit's st.login puts in st.user after a real OIDC sign-in (ID token claims)."""
    claims = {"is_logged_in": True, "iss": ISSUER, "sub": sub or f"sub-{email}", "aud": "hearken", "email": email,
              "iat": int(iat if iat is not None else time.time()), "exp": int(time.time()) + 3600, "nonce": nonce}
    if verified is not None:
        claims["email_verified"] = verified
    return claims


def plain(markdown_text: str) -> str:
    """A message as a person reads it: markdown escapes and the zero-width breaks in addresses removed."""
    return markdown_text.replace("\\", "").replace("\u200b", "")


def shown(elements) -> list[str]:
    """Messages as a person reads them (bold markers gone too)."""
    return [plain(e.value).replace("**", "") for e in elements]


def texts(at) -> list[str]:
    return [t.value for t in at.text]


def history(at) -> list[dict]:
    """The case's History table as the user reads it (cells are markdown-escaped for display)."""
    rows = at.table[0].value.to_dict("records")
    return [{k: plain(str(v)) for k, v in r.items()} for r in rows]


def actions(at) -> list[str]:
    return [r["action"] for r in history(at)]


def markdown(at) -> str:
    return "\n".join(m.value for m in at.markdown) + "\n".join(c.value for c in at.caption)


def test_queue_lists_cases_most_urgent_first_with_overdue_count(env):
    cfg, store = env()
    seed_case(store, cfg, external_id="m", body="Northwind mild gripe", minutes_ago=10, severity=1)
    late = seed_case(store, cfg, external_id="l", body="Northwind outage since this morning", minutes_ago=600)
    seed_case(store, cfg, external_id="s", body="Northwind cut off my business", minutes_ago=10, severity=4)
    at = app()
    assert not at.exception
    assert at.title[0].value == "Queue"
    bodies = [t for t in texts(at) if t.startswith("Northwind")]
    assert bodies == ["Northwind outage since this morning", "Northwind cut off my business", "Northwind mild gripe"]
    assert {m.label: m.value for m in at.metric}["Overdue"] == "1"
    assert "past the SLA" in at.warning[0].value
    assert f"#{late}" in at.markdown[0].value and "overdue by" in at.markdown[0].value


def test_claim_and_not_a_complaint_from_the_queue(env):
    cfg, store = env()
    a = seed_case(store, cfg, external_id="a", body="Northwind broadband down")
    b = seed_case(store, cfg, external_id="b", body="Love my Northwind router")
    at = app()
    at.button(key=f"claim-{a}").click().run()
    assert not at.exception
    assert f"You have case #{a}." in shown(at.success)
    assert any("Assignee: Alex Admin" in c.value for c in at.caption)
    at.button(key=f"dismiss-{b}").click().run()  # one click asks; nothing is closed yet
    assert "Love my Northwind router" in texts(at)
    assert at.button(key=f"dismiss-{b}-confirm").label == f"Yes: close #{b}, not a complaint"
    at.button(key=f"dismiss-{b}-cancel").click().run()
    assert "Love my Northwind router" in texts(at) and at.button(key=f"dismiss-{b}").label == "Not a complaint"
    with store.session() as s:
        assert s.scalars(select(Label.is_complaint)).all() == []
    at.button(key=f"dismiss-{b}").click().run()
    at.button(key=f"dismiss-{b}-confirm").click().run()
    assert "Love my Northwind router" not in texts(at)
    with store.session() as s:
        assert s.scalars(select(Label.is_complaint)).all() == [False]
    at.selectbox(key="f-assignee").set_value("Me").run()
    assert [t for t in texts(at) if t.startswith("Northwind")] == ["Northwind broadband down"]


def test_not_a_complaint_on_the_case_page_asks_before_it_closes(env):
    cfg, store = env()
    cid = seed_case(store, cfg, external_id="nc", body="Love my Northwind router")
    at = app("views/case.py", case_id=cid)
    at.button(key="dismiss").click().run()
    assert "**open**" in at.markdown[0].value and at.button(key="dismiss-confirm").label == "Yes: close it, not a complaint"
    at.button(key="dismiss-confirm").click().run()
    assert not at.exception
    assert shown(at.success)[0].startswith("Closed as not a complaint") and "**dismissed**" in at.markdown[0].value


def test_history_starts_with_the_case_opening_before_its_alert_email(env):
    cfg, store = env()
    cid = seed_case(store, cfg, external_id="sev", body="Northwind cut off my business", severity=4)
    at = app("views/case.py", case_id=cid)
    assert actions(at)[:2] == ["opened", "email queued"]
    assert history(at)[0]["who"] == "system" and "severe complaint" in history(at)[1]["detail"]


def test_filters_by_platform_and_severity(env):
    cfg, store = env()
    seed_case(store, cfg, external_id="x1", body="Northwind sev3", severity=3)
    seed_case(store, cfg, external_id="x2", body="Northwind sev1", severity=1)
    at = app()
    at.multiselect(key="f-severity").select(3).run()
    assert [t for t in texts(at) if t.startswith("Northwind")] == ["Northwind sev3"]
    at.multiselect(key="f-platform").select("demo").run()
    assert [t for t in texts(at) if t.startswith("Northwind")] == ["Northwind sev3"]


def test_case_page_shows_post_thread_and_history(env):
    cfg, store = env()
    cid = seed_case(store, cfg, external_id="t1", thread_id="t1", body="Northwind billed me twice", author="jo")
    add_followup(store, platform="demo", source="demo", external_id="t2", thread_id="t1", parent_id="t1",
                 author="jo", body="Still waiting, Northwind", case_id=cid)
    at = app("views/case.py", case_id=cid)
    assert not at.exception
    assert at.title[0].value == f"Case #{cid}"
    assert "Northwind billed me twice" in texts(at)
    assert "jo: Still waiting, Northwind" in texts(at)
    assert "later" in markdown(at)
    assert [(r["who"], r["action"]) for r in history(at)] == [("system", "opened")]


def test_hostile_post_is_shown_as_plain_text(env):
    cfg, store = env()
    cid = seed_case(store, cfg, external_id="h", body=HOSTILE_BODY, author="**boss** [me](https://evil.example)",
                    title="# <b>Big</b>")
    for at in (app(), app("views/case.py", case_id=cid)):
        assert not at.exception
        md = markdown(at)
        assert "](https://evil" not in md and "<script>" not in md and "<img" not in md  # nothing live
        assert len(at.title) == 1 and not at.header  # no heading made from "# GIANT HEADER"
        assert any("<script>window.hacked=1</script>" in t for t in texts(at))
    at = app("views/case.py", case_id=cid)
    assert HOSTILE_BODY in texts(at)  # exactly as written, newlines kept
    assert "# <b>Big</b>" in texts(at)
    from desk.cases import audit

    with store.session() as s:
        audit.record(s, cid, "system", "customer_followup", author="[x](https://evil.example) **b**")
    at = app("views/case.py", case_id=cid)
    cell = at.table[0].value.to_dict("records")[-1]["detail"]
    assert "](https" not in cell and "\\]\\(https" in cell  # markdown-escaped in the table
    assert history(at)[-1]["detail"] == "author: [x](https://evil.example) **b**"  # reads as written


def test_reply_with_template_posts_once_and_case_is_replied(env):
    cfg, store = env()
    cid = seed_case(store, cfg, external_id="p1", body="Northwind outage again", author="@maria_t")
    at = app("views/case.py", case_id=cid)
    at.selectbox(key=f"template-{cid}").set_value("Outage update").run()
    draft = at.text_area(key=f"draft-{cid}").value
    assert draft.startswith("Hi maria_t,") and f"#HK{cid}" in draft
    assert "Your reply (up to 280 characters on demo)" == at.text_area(key=f"draft-{cid}").label
    assert draft in texts(at)  # the preview
    at.button(key="post").click().run()
    assert not at.exception
    assert at.success[0].value.startswith("Posted publicly")
    posts = read_posts(platform_file(cfg, dict(os.environ)))
    assert [p["text"] for p in posts] == [draft]
    assert "**replied**" in at.markdown[0].value
    assert "replied" in actions(at)
    # the composer is empty again, so clicking once more posts nothing
    assert at.text_area(key=f"draft-{cid}").value == ""
    assert at.selectbox(key=f"template-{cid}").value == "(write my own)"
    assert at.button(key="post").disabled
    assert len(read_posts(platform_file(cfg, dict(os.environ)))) == 1


def test_typed_placeholders_are_filled_in_the_preview_and_the_post(env):
    """"Hi {name}," typed by hand reaches the public as "Hi maria_t,": the preview shows what will be posted."""
    cfg, store = env()
    cid = seed_case(store, cfg, external_id="p9", body="Northwind outage again", author="@maria_t")
    at = app("views/case.py", case_id=cid)
    at.text_area(key=f"draft-{cid}").set_value("Hi {name}, your order {order} is on its way.").run()
    [said] = shown(at.error)
    assert said.startswith("Post publicly is off: the reply holds {order}, which Hearken does not fill in")
    assert at.button(key="post").disabled
    at.text_area(key=f"draft-{cid}").set_value("Hi {name}, we are on it: {case}.").run()
    expected = f"Hi maria_t, we are on it: #HK{cid}."
    assert not at.error and expected in texts(at)  # the preview
    assert f"{len(expected)}/280 characters (with {{name}} and {{case}} filled in)" in [c.value for c in at.caption]
    at.button(key="post").click().run()
    assert not at.exception and at.success[0].value.startswith("Posted publicly")
    assert [p["text"] for p in read_posts(platform_file(cfg, dict(os.environ)))] == [expected]


def test_resolve_reopen_and_escalate_from_case_page(env):
    cfg, store = env()
    cid = seed_case(store, cfg, external_id="r", body="Northwind hub broken")
    at = app("views/case.py", case_id=cid)
    at.button(key="resolve").click().run()
    assert "needs a note" in at.error[0].value
    at.text_area(key="escalate-reason").input("VIP customer")
    at.selectbox(key="escalate-to").set_value("Morgan Manager")
    at.button(key="escalate").click().run()
    assert "Escalated to Morgan Manager" in at.warning[0].value
    at.text_area(key="resolve-note").input("Sent a new hub")
    assert at.selectbox(key="resolve-cause").value is None  # nothing chosen for the person
    at.button(key="resolve").click().run()
    assert shown(at.error) == ["a resolution needs a root cause: choose one, or 'Not known'"]
    assert "**open**" in at.markdown[0].value
    assert "Not known" in at.selectbox(key="resolve-cause").options
    at.selectbox(key="resolve-cause").set_value("product_defect")
    at.button(key="resolve").click().run()
    assert shown(at.success) == ["Case resolved."]
    assert "**resolved**" in at.markdown[0].value and "Sent a new hub" in texts(at)
    assert actions(at)[-3:] == ["escalated", "email queued", "resolved"]  # the email to Morgan, not yet sent
    assert {r["who"] for r in history(at)[-3:]} == {"Alex Admin", "Hearken"}
    assert "reason: VIP customer" in history(at)[-3]["detail"]
    assert "to: morgan@example.com" in history(at)[-2]["detail"]
    at.button(key="reopen").click().run()
    assert "**open**" in at.markdown[0].value


def test_agent_sees_no_assign_controls_and_manager_does(env):
    cfg, store = env(MINIMAL_CONFIG + "dashboard: {auth: local, local_user: Sam Agent}\n")
    cid = seed_case(store, cfg, external_id="g", body="Northwind slow")
    at = app()
    assert not [s for s in at.selectbox if s.key == f"assign-to-{cid}"]
    assert any(c.value == "Signed in as **Sam Agent** (agent)" for c in at.caption)
    at.button(key=f"claim-{cid}").click().run()
    assert f"You have case #{cid}." in shown(at.success)
    assert not [b for b in at.button if b.key == f"claim-{cid}"]  # own case: nothing to claim


def test_manager_assigns_from_queue(env):
    cfg, store = env(MINIMAL_CONFIG + "dashboard: {auth: local, local_user: Morgan Manager}\n")
    cid = seed_case(store, cfg, external_id="g", body="Northwind slow")
    at = app()
    at.selectbox(key=f"assign-to-{cid}").set_value("Sam Agent").run()
    at.button(key=f"assign-{cid}").click().run()
    assert f"Case #{cid} assigned to Sam Agent." in shown(at.success)


def test_read_only_source_disables_post(env):
    cfg, store = env(MINIMAL_CONFIG.replace("interval_seconds: 1}", "interval_seconds: 1, read_only: true}"))
    cid = seed_case(store, cfg, external_id="ro", body="Northwind bad")
    at = app("views/case.py", case_id=cid)
    at.text_area(key=f"draft-{cid}").input("Hello").run()
    assert at.button(key="post").disabled
    assert "read-only" in at.info[-1].value


OIDC = MINIMAL_CONFIG + "dashboard: {auth: oidc}\n"


def test_oidc_signed_out_sees_only_sign_in(env):
    cfg, store = env(OIDC)
    seed_case(store, cfg, external_id="o", body="Northwind secret complaint")
    at = app(user={"is_logged_in": False})
    assert not at.exception
    assert at.button(key="signin").label == "Sign in"
    assert "Northwind secret complaint" not in texts(at)


def test_oidc_without_auth_settings_says_how_to_set_it_up(env):
    env(OIDC)
    at = app(user={"is_logged_in": False}, secrets=False)
    assert not at.exception
    assert "secrets.toml" in at.error[0].value
    assert not [b for b in at.button if b.key == "signin"]


def test_oidc_stranger_is_refused_member_gets_in(env):
    cfg, store = env(OIDC)
    seed_case(store, cfg, external_id="o", body="Northwind secret complaint")
    at = app(user=oidc_user("eve@evil.example"))
    assert "not as a member of this team" in plain(at.error[0].value)
    assert "Northwind secret complaint" not in texts(at)
    at = app(user=oidc_user("SAM@example.com"))
    assert "Northwind secret complaint" in texts(at)
    assert any(c.value == "Signed in as **Sam Agent** (agent)" for c in at.caption)


X_SOURCE = "  - {type: x, name: x-brand, interval_seconds: 60, bearer_token_env: HEARKEN_TEST_UNSET_TOKEN}\n"


def with_x(config_text: str = MINIMAL_CONFIG) -> str:
    return config_text.replace("team:\n", X_SOURCE + "team:\n", 1)


def failing_demo_and_x_without_credentials(store) -> None:
    later = now_utc() + timedelta(minutes=50)
    with store.session() as s:
        s.add(SourceState(name="demo", platform="demo", status="failing", status_reason="HTTP 503 from demo",
                          last_error="HTTP 503 from demo", last_error_at=now_utc(), last_poll_at=now_utc(),
                          failing_since=now_utc() - timedelta(minutes=40), consecutive_failures=3,
                          backoff_until=later, mentions_total=7))
        s.add(SourceState(name="x-brand", platform="x", status="disabled", last_poll_at=now_utc(),
                          status_reason="no bearer token: set $HEARKEN_TEST_UNSET_TOKEN",
                          last_error="no bearer token: set $HEARKEN_TEST_UNSET_TOKEN", last_error_at=now_utc(),
                          consecutive_failures=1, backoff_until=later))


def test_sources_page_says_each_state_in_words_and_each_error_once(env):
    cfg, store = env(with_x())
    failing_demo_and_x_without_credentials(store)
    at = app("views/sources.py")
    assert not at.exception
    heads = [m.value for m in at.markdown if m.value.startswith("#### ")]
    assert heads == ["#### demo · demo · FAILING", "#### x\\-brand · x · DISABLED: CANNOT START"]
    boxes = shown(at.error) + shown(at.warning)
    assert any(b.startswith("FAILING: Source demo (demo) is failing for 40m (3 failed polls in a row)") for b in boxes)
    assert "DISABLED: CANNOT START: no bearer token: set $HEARKEN_TEST_UNSET_TOKEN" in boxes
    page = texts(at) + boxes + [plain(m.value) for m in at.markdown] + shown(at.caption)
    assert sum("HTTP 503 from demo" in t for t in page) == 1  # the error once, not as reason and as error
    assert sum("no bearer token" in t for t in page) == 1
    metrics = [(m.label, m.value) for m in at.metric]
    assert ("Failed polls in a row", "3") in metrics
    assert [label for label, _ in metrics].count("Failed polls in a row") == 1  # not for the disabled source
    assert not any("Waiting until" in c and "x-brand" in c for c in shown(at.caption))


def test_sources_page_shows_the_monthly_read_budget_only_where_the_platform_caps_reads(env):
    """The cap comes from the platform's own hook (X: monthly_read_cap), named by the platform's label."""
    from desk.periods import month_key

    cfg, store = env(with_x().replace("interval_seconds: 60, bearer", "interval_seconds: 60, monthly_read_cap: 400, bearer"))
    with store.session() as s:
        s.add(SourceState(name="x-brand", platform="x", status="ok", reads_month=month_key(now_utc()), reads_count=100))
        s.add(SourceState(name="demo", platform="demo", status="ok", mentions_total=2))
    at = app("views/sources.py")
    assert not at.exception
    bars = [e for e in at.get("progress")]
    assert [b.proto.text for b in bars] == ["X reads this month: 100 of 400"]
    assert abs(bars[0].proto.value - 25) <= 1  # a quarter of the month's budget


def test_every_page_carries_a_banner_naming_what_is_broken_and_where_to_fix_it(env):
    cfg, store = env(with_x())
    failing_demo_and_x_without_credentials(store)
    cid = seed_case(store, cfg, external_id="b", body="Northwind down")
    with store.session() as s:
        for i in range(3):
            s.add(Outbox(kind="severe_complaint", dedupe_key=f"k{i}", recipients=["morgan@example.com"],
                         subject=f"alert {i}", body_text="x", status="pending", attempts=2,
                         last_error="ConnectionRefusedError: [Errno 111] Connection refused",
                         next_attempt_at=now_utc() + timedelta(minutes=3)))
    for page, kw in [(None, {}), ("views/case.py", {"case_id": cid}), ("views/metrics.py", {}),
                     ("views/team.py", {})]:
        at = app(page, **kw)
        assert not at.exception
        email = [e for e in shown(at.error) if e.startswith("EMAIL NOT DELIVERED")]
        assert len(email) == 1, page
        assert "3 waiting, 3 of them retrying" in email[0]
        assert f"Fix: check alerts.smtp (127.0.0.1:25, security none) at {cfg.path} (not written there" in email[0]
        [sources] = [w for w in shown(at.warning) if w.startswith("SOURCES NEEDING ATTENTION")]
        assert "Source demo (demo) is failing for 40m" in sources
        assert "Source x-brand (x) is disabled: no bearer token: set $HEARKEN_TEST_UNSET_TOKEN" in sources
        assert f"Fix: give 'hearken run' the credentials named in sources[1] (x-brand) at {cfg.path}:8" in sources
        assert "Open the Sources page" in at.page_link[0].label or any(
            "Open the Sources page" in p.label for p in at.page_link)
    at = app("views/sources.py")  # the page that details them: the banner names them only
    assert "EMAIL NOT DELIVERED: see the outbox below." in shown(at.error)
    assert "SOURCES NEEDING ATTENTION: demo, x-brand (below)." in shown(at.warning)
    with store.session() as s:
        s.execute(update(Outbox).values(status="sent", sent_at=now_utc()))
        s.execute(update(SourceState).values(status="ok", status_reason=None, failing_since=None,
                                             consecutive_failures=0, backoff_until=None))
    at = app()
    assert not [e for e in shown(at.error) if "EMAIL" in e]
    assert not [w for w in shown(at.warning) if "SOURCE" in w]


def test_sources_page_shows_the_outbox_and_retries_failed_emails(env):
    cfg, store = env()
    with store.session() as s:
        s.add(Outbox(kind="escalation", dedupe_key="a", recipients=["morgan@example.com"], subject="escalated #1",
                     body_text="x", status="pending", attempts=3, last_error="SMTPServerDisconnected: gone",
                     next_attempt_at=now_utc() + timedelta(minutes=4)))
        s.add(Outbox(kind="sla_breach", dedupe_key="b", recipients=["morgan@example.com"], subject="breach #2",
                     body_text="x", status="failed", attempts=1, last_error="SMTPDataError: 554 rejected"))
        s.add(Outbox(kind="digest", dedupe_key="c", recipients=["alex@example.com"], subject="digest",
                     body_text="x", status="sent", attempts=1, sent_at=now_utc()))
    at = app("views/sources.py")
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert (metrics["Waiting to send"], metrics["Retrying"], metrics["Failed for good"], metrics["Sent"]) == \
        ("1", "1", "1", "1")
    assert any(e.startswith("NOT DELIVERING: Email alerts are not being delivered") for e in shown(at.error))
    rows = at.dataframe[0].value.to_dict("records")
    assert {(r["email"], r["status"], r["error"]) for r in rows} == {
        ("#1", "pending", "SMTPServerDisconnected: gone"), ("#2", "failed", "SMTPDataError: 554 rejected")}
    assert [r["next try"] != "—" for r in rows if r["status"] == "pending"] == [True]
    at.button(key="outbox-retry").click().run()
    assert "1 failed email(s) queued again" in shown(at.success)[0]
    with store.session() as s:
        assert s.scalar(select(Outbox.status).where(Outbox.dedupe_key == "b")) == "pending"


def test_metrics_page_counts_the_week(env):
    cfg, store = env()
    seed_case(store, cfg, external_id="mm", body="Northwind")
    at = app("views/metrics.py")
    assert not at.exception
    assert at.title[0].value == "Metrics"
    # a fresh install: the week in progress holds the one complaint, so it is offered first and shown
    week = at.selectbox(key="report_week")
    assert week.options[0].endswith(" (in progress: figures are partial)")
    assert week.value == week.options[0].split(" ")[0]
    assert {m.label: m.value for m in at.metric}["Complaints"] == "1"
    assert any("figures are partial" in i.value for i in at.info)


def test_reply_goes_to_the_customers_newest_post_in_the_case(env):
    cfg, store = env()
    cid = seed_case(store, cfg, external_id="n1", thread_id="n1", body="Northwind down", author="jo")
    add_followup(store, platform="demo", source="demo", external_id="n2", thread_id="n1", parent_id="n1",
                 author="jo", body="Hello?? still down", case_id=cid)
    at = app("views/case.py", case_id=cid)
    assert at.selectbox(key=f"reply-to-{cid}").value.external_id == "n2"
    at.text_area(key=f"draft-{cid}").input("Sorry Jo, an engineer is on the way.").run()
    at.button(key="post").click().run()
    assert at.success[0].value.startswith("Posted publicly")
    assert [p["in_reply_to"] for p in read_posts(platform_file(cfg, dict(os.environ)))] == ["n2"]


def test_team_page_for_managers_only(env):
    from desk.cases import actions as cases
    from desk.team.users import actor_for_name

    cfg, store = env(MINIMAL_CONFIG + "dashboard: {auth: local, local_user: Morgan Manager}\n")
    cid = seed_case(store, cfg, external_id="e", body="Northwind lost my line")
    cases.escalate(store, cfg, cid, actor_for_name(cfg, "Sam Agent"), manager="Morgan Manager", reason="VIP")
    at = app("views/team.py")
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["name"]) == ["Alex Admin", "Morgan Manager", "Sam Agent"]
    assert int(table[table["name"] == "Morgan Manager"]["escalated to them"].iloc[0]) == 1
    assert "to Morgan Manager" in at.markdown[0].value
    cfg, store = env(MINIMAL_CONFIG + "dashboard: {auth: local, local_user: Sam Agent}\n")
    at = app("views/team.py")  # a link to it: not in an agent's navigation, and it says whom it is for
    assert not at.exception and not at.dataframe
    assert at.title[0].value == "Team" and shown(at.info) == ["The team overview is for managers and admins."]


def test_opening_the_dashboard_is_audited(env):
    from sqlalchemy import select as sel

    from desk.store.models import Event

    cfg, store = env()
    app()
    with store.session() as s:
        assert [(e.actor, e.action) for e in s.scalars(sel(Event))] == [("Alex Admin", "signed_in")]


def test_two_staff_on_one_case_only_the_first_reply_goes_out(env):
    cfg, store = env(MINIMAL_CONFIG + "dashboard: {auth: oidc}\n")
    cid = seed_case(store, cfg, external_id="two", body="Northwind down", author="@maria_t")
    sam = app("views/case.py", case_id=cid, user=oidc_user("sam@example.com"))
    morgan = app("views/case.py", case_id=cid, user=oidc_user("morgan@example.com"))
    sam.text_area(key=f"draft-{cid}").input("Sorry Maria, from Sam").run()
    morgan.text_area(key=f"draft-{cid}").input("Sorry Maria, from Morgan").run()
    sam.button(key="post").click().run()
    morgan.button(key="post").click().run()
    assert sam.success[0].value.startswith("Posted publicly")
    assert "added to this case while you were writing" in morgan.error[0].value
    assert "Sorry Maria, from Sam" in texts(morgan)  # Morgan now sees Sam's reply
    assert [p["text"] for p in read_posts(platform_file(cfg, dict(os.environ)))] == ["Sorry Maria, from Sam"]
    assert morgan.button(key="post").disabled  # a second click cannot send it by accident
    morgan.checkbox(key=f"also-{cid}").check().run()  # having read Sam's reply, Morgan posts a follow-up
    morgan.button(key="post").click().run()
    assert morgan.success[0].value.startswith("Posted publicly")
    assert len(read_posts(platform_file(cfg, dict(os.environ)))) == 2


def test_replied_elsewhere_stops_the_first_response_clock(env):
    cfg, store = env()
    cid = seed_case(store, cfg, external_id="ph", body="Northwind call me", minutes_ago=5)
    at = app("views/case.py", case_id=cid)
    at.button(key="elsewhere").click().run()
    assert "say where the reply was made" in at.error[0].value
    at.text_input(key="elsewhere-where").input("phone call")
    at.text_area(key="elsewhere-text").input("Called Maria, engineer booked for Friday")
    at.button(key="elsewhere").click().run()
    assert at.success[0].value.startswith("Reply recorded")
    assert "**replied**" in at.markdown[0].value
    assert "Called Maria, engineer booked for Friday" in texts(at)
    assert actions(at)[-1] == "replied elsewhere"
    assert platform_file(cfg, dict(os.environ)).exists() is False  # nothing was posted anywhere


def test_case_page_without_an_id_offers_the_queue_and_unknown_id_says_so(env):
    cfg, store = env()
    cid = seed_case(store, cfg, external_id="pick", body="Northwind pick me")
    at = app("views/case.py")
    assert not at.exception
    assert at.selectbox(key="case-picker").value.case_id == cid
    at.button(key="case-open").click().run()
    assert at.title[0].value == f"Case #{cid}"
    at = app("views/case.py", case_id=999)
    assert "There is no case #999." in at.error[0].value


def test_an_agent_sees_no_actions_on_a_case_another_agent_has_claimed(env):
    from desk.cases import actions as cases
    from desk.team.users import Actor

    team = MINIMAL_CONFIG + "  - {name: Jo Agent, email: jo@example.com, role: agent}\n"
    cfg, store = env(team + "dashboard: {auth: local, local_user: Sam Agent}\n")
    cid = seed_case(store, cfg, external_id="held", body="Northwind still down")
    cases.claim(store, cid, Actor("Jo Agent", "jo@example.com", "agent"))
    at = app()
    keys = {b.key for b in at.button}
    assert f"claim-{cid}" not in keys and f"dismiss-{cid}" not in keys  # nothing Sam may not do
    at = app("views/case.py", case_id=cid)
    assert not at.exception
    keys = {b.key for b in at.button}
    assert not keys & {"post", "resolve", "dismiss", "claim", "elsewhere", "assign"}
    assert "escalate" in keys  # asking a manager is open to everyone
    assert shown(at.info)[0].startswith("Jo Agent has claimed this case, so Sam Agent cannot reply to it")
    cfg, store = env(team + "dashboard: {auth: local, local_user: Morgan Manager}\n")
    at = app("views/case.py", case_id=cid)
    assert {"post", "resolve", "claim"} <= {b.key for b in at.button}
    assert at.button(key="claim").label == "Take over"


def test_success_messages_quote_platform_data_as_text(env):
    cfg, store = env()
    cid = seed_case(store, cfg, external_id="md", body="Northwind down",
                    url="https://demo.example/t/**slug**_[x](https://evil.example)")
    at = app("views/case.py", case_id=cid)
    at.text_area(key=f"draft-{cid}").input("Sorry, on it.").run()
    at.button(key="post").click().run()
    [message] = [s.value for s in at.success]
    assert "**slug**" not in message and "](https" not in message and "://evil" not in message
    assert plain(message).startswith("Posted publicly: https://demo.example/t/**slug**_[x](https://evil.example)#")


def test_oidc_unverified_email_never_matches_a_member(env):
    cfg, store = env(OIDC)
    seed_case(store, cfg, external_id="o", body="Northwind secret complaint")
    for verified in (False, None):  # email_verified false, and absent
        at = app(user=oidc_user("alex@example.com", sub="mallory", verified=verified))
        assert "has not verified the address alex@example.com" in plain(at.error[0].value)
        assert "Northwind secret complaint" not in texts(at)
        assert at.button(key="signin-again").label == "Sign in again"
    at = app(user=oidc_user("alex@example.com", sub="alex-1"))
    assert "Northwind secret complaint" in texts(at)
    assert any(c.value == "Signed in as **Alex Admin** (admin)" for c in at.caption)


def test_local_mode_refuses_to_serve_beyond_loopback_without_the_switch(env):
    from streamlit import config as st_config

    cfg, store = env()
    seed_case(store, cfg, external_id="o", body="Northwind secret complaint")
    st_config.set_option("server.address", "0.0.0.0")
    try:
        at = app()
        assert "Refused: host: 0.0.0.0, auth: local would let everyone" in plain(at.error[0].value)
        assert "Northwind secret complaint" not in texts(at)
        cfg, store = env(MINIMAL_CONFIG + "dashboard: {insecure_local_on_network: true}\n")
        at = app()
        assert "Northwind secret complaint" in texts(at)
        assert shown(at.error)[0].startswith("NO SIGN-IN ON A NETWORK")
    finally:
        st_config.set_option("server.address", None)


def _break(path, text: str) -> None:
    path.write_text(text)
    os.utime(path, (time.time() + 5, time.time() + 5))  # a new mtime even within the file system's resolution


TYPO = "  - {name: Jo Agent, email: jo@example.com, role: agnet}\n"


def test_a_config_edited_into_a_mistake_keeps_the_dashboard_serving_with_a_banner_naming_it(env, tmp_path):
    """Someone adds a member with a typo while the dashboard runs: every page keeps working on the version
    that loaded, under a red banner naming the file, line, key and what is wrong (local mode: this machine)."""
    cfg, store = env()
    seed_case(store, cfg, external_id="q", body="Northwind lost my order")
    assert app().title[0].value == "Queue"
    path = tmp_path / "hearken.yaml"
    _break(path, MINIMAL_CONFIG + TYPO)
    line = MINIMAL_CONFIG.count(chr(10)) + 1
    for page, title in ((None, "Queue"), ("views/case.py", "Case"), ("views/sources.py", "Sources")):
        at = app(page)
        assert not at.exception, at.exception
        banner = shown(at.error)[0]
        assert banner.startswith("THE CONFIGURATION HAS 1 PROBLEM: this dashboard keeps running on the version "
                                 "that loaded at ")
        assert f"{path}:{line}: team.3.role: Input should be 'agent', 'manager' or 'admin' (got 'agnet')" in banner
        assert at.title[0].value == title
    assert "Northwind lost my order" in texts(app())
    _break(path, MINIMAL_CONFIG)  # fixed: the banner goes at the next click
    at = app()
    assert not at.exception and not at.error and "Northwind lost my order" in texts(at)


def test_under_sign_in_only_managers_read_what_is_wrong_with_the_config(env, tmp_path):
    cfg, store = env(OIDC)
    assert app(user=oidc_user("morgan@example.com")).title[0].value == "Queue"
    path = tmp_path / "hearken.yaml"
    _break(path, OIDC.replace("role: agent}", "role: agent}\n" + TYPO.rstrip()))
    manager = shown(app(user=oidc_user("morgan@example.com")).error)[0]
    assert "THE CONFIGURATION HAS 1 PROBLEM" in manager and "(got 'agnet')" in manager and "team.3.role" in manager
    agent = app(user=oidc_user("sam@example.com"))
    assert agent.title[0].value == "Queue"
    [said] = shown(agent.error)
    assert said.startswith("THE CONFIGURATION HAS 1 PROBLEM") and "A manager or admin sees what they are" in said
    assert "agnet" not in said and "team.3" not in said and "jo@example.com" not in said
    stranger = app()
    [said] = shown(stranger.error)
    assert said.startswith("THE CONFIGURATION HAS 1 PROBLEM") and "agnet" not in said and str(path) not in said
    assert stranger.button(key="signin")


@pytest.mark.parametrize("auth", ["local", "oidc"])
def test_a_config_that_never_loaded_closes_the_dashboard(env, tmp_path, auth):
    """No version has loaded in this process: nobody can be let in. Local mode (this machine) reads each
    mistake whole; under sign-in a stranger reads only where they are."""
    path = tmp_path / "hearken.yaml"
    env(MINIMAL_CONFIG)
    text = MINIMAL_CONFIG + TYPO + f"dashboard: {{auth: {auth}}}\n"
    _break(path, text)
    at = app(user=oidc_user("sam@example.com"))
    assert not at.exception, at.exception
    assert shown(at.error)[0].startswith("The dashboard is closed: its configuration has 1 problem(s).")
    where = f"{path}:{MINIMAL_CONFIG.count(chr(10)) + 1}: team.3.role"
    if auth == "local":
        assert texts(at) == [f"{where}: Input should be 'agent', 'manager' or 'admin' (got 'agnet')"]
    else:
        assert texts(at) == [where]
    assert [t.value for t in at.title] == ["Hearken"]


@pytest.mark.parametrize("auth", ["local", "oidc"])
def test_a_database_that_does_not_answer_is_one_clear_message(env, monkeypatch, auth):
    env(MINIMAL_CONFIG + f"dashboard: {{auth: {auth}}}\n")
    monkeypatch.setenv("HEARKEN_DATABASE_URL", "postgresql://hearken:pw@127.0.0.1:1/hearken")
    at = app(user=oidc_user("sam@example.com") if auth == "oidc" else None)
    assert not at.exception, at.exception
    [error] = shown(at.error)
    assert error.startswith("The dashboard cannot reach its database (its address comes from the environment "
                            "variable HEARKEN_DATABASE_URL)")
    said = " ".join(texts(at))
    if auth == "local":  # the person at the screen is on the server: the reason, password hidden
        assert "Connection refused" in said and "127.0.0.1" in said and ":pw@" not in said
    else:  # before anyone is signed in: where to look, not the database's address
        assert said == "" and "127.0.0.1" not in error


def test_the_outbox_says_sending_until_an_email_has_gone(env):
    cfg, store = env()
    at = app("views/sources.py")
    assert shown(at.info)[0] == "NOTHING SENT YET: no alert has needed an email so far."
    with store.session() as s:
        s.add(Outbox(kind="escalation", dedupe_key="a", recipients=["morgan@example.com"], subject="escalated #1",
                     body_text="x", status="pending", attempts=0, next_attempt_at=now_utc()))
    at = app("views/sources.py")
    assert not at.exception
    assert shown(at.info)[0].startswith("SENDING: 1 email(s) waiting for the runner's next pass")
    assert "none has been sent yet" in shown(at.info)[0] and not at.success
