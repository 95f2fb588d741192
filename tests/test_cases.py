"""Case actions: roles enforced in desk/, each action audited, labels stored, escalations emailed."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from desk.cases import actions as cases
from desk.cases.audit import history
from desk.store.models import Case, Label, Outbox
from desk.cases.queue import QueueFilters, case_detail, open_queue
from desk.team.users import NotAllowed, actor_for_name, local_actor, sync_team
from tests.e2e_helpers import seed_case


@pytest.fixture
def people(cfg):
    return {n.split()[0].lower(): actor_for_name(cfg, n) for n in ("Alex Admin", "Morgan Manager", "Sam Agent")}


def actions(store, case_id):
    with store.session() as s:
        return [(e.actor, e.action) for e in history(s, case_id)]


def test_claim_then_another_agent_cannot_take_it(store, cfg, people):
    cid = seed_case(store, cfg, external_id="c1", body="Northwind broadband down again")
    cases.claim(store, cid, people["sam"])
    other_agent = cases.Actor("Jo Agent", "jo@example.com", "agent")
    with pytest.raises(NotAllowed, match="Sam Agent has claimed this case; taking it over needs a manager"):
        cases.claim(store, cid, other_agent)
    cases.claim(store, cid, people["morgan"])  # a manager may take it over
    assert open_queue(store).items[0].assignee == "Morgan Manager"
    assert actions(store, cid)[-2:] == [("Sam Agent", "claimed"), ("Morgan Manager", "claimed")]


def test_only_managers_assign_to_someone_else(store, cfg, people):
    cid = seed_case(store, cfg, external_id="c2", body="Northwind charged twice")
    with pytest.raises(NotAllowed, match="needs a manager"):
        cases.assign(store, cfg, cid, people["sam"], "Morgan Manager")
    cases.assign(store, cfg, cid, people["morgan"], "Sam Agent")
    q = open_queue(store, QueueFilters(assignee="Sam Agent"))
    assert [i.case_id for i in q.items] == [cid]
    with pytest.raises(cases.CaseError, match="not a member"):
        cases.assign(store, cfg, cid, people["morgan"], "Nobody")


def test_not_a_complaint_closes_and_labels(store, cfg, people):
    cid = seed_case(store, cfg, external_id="c3", body="Loving my Northwind fibre")
    cases.dismiss(store, cid, people["sam"], note="praise")
    assert cid not in [i.case_id for i in open_queue(store).items]
    with store.session() as s:
        label = s.scalars(select(Label)).one()
        assert (label.is_complaint, label.author) == (False, "Sam Agent")
    detail = case_detail(store, cid)
    assert detail.status == "dismissed"
    assert detail.history[-1].action == "dismissed" and detail.history[-1].actor == "Sam Agent"


def test_resolve_needs_note_and_known_root_cause_then_reopen(store, cfg, people):
    cid = seed_case(store, cfg, external_id="c4", body="Northwind router broke")
    with pytest.raises(cases.CaseError, match="needs a note"):
        cases.resolve(store, cid, people["sam"], note="  ", root_cause="outage")
    with pytest.raises(cases.CaseError, match="unknown root cause"):
        cases.resolve(store, cid, people["sam"], note="fixed", root_cause="gremlins")
    with pytest.raises(cases.CaseError, match="needs a root cause: choose one, or 'Not known'"):
        cases.resolve(store, cid, people["sam"], note="fixed", root_cause=None)
    cases.resolve(store, cid, people["sam"], note="Replaced the router", root_cause="product_defect")
    d = case_detail(store, cid)
    assert (d.status, d.root_cause, d.resolution_note) == ("resolved", "product_defect", "Replaced the router")
    with pytest.raises(cases.CaseError, match="cannot resolve"):
        cases.resolve(store, cid, people["sam"], note="again", root_cause="other")
    cases.reopen(store, cid, people["sam"], reason="customer says still broken")
    assert case_detail(store, cid).status == "open"
    assert actions(store, cid)[-2:] == [("Sam Agent", "resolved"), ("Sam Agent", "reopened")]


def test_escalate_to_named_manager_emails_them(store, cfg, people):
    cid = seed_case(store, cfg, external_id="c5", body="Northwind lost my business line <script>x()</script>",
                    severity=4)
    with pytest.raises(cases.CaseError, match="not a manager"):
        cases.escalate(store, cfg, cid, people["sam"], manager="Sam Agent", reason="help")
    cases.escalate(store, cfg, cid, people["sam"], manager="Morgan Manager", reason="Business customer, 3 days down")
    with store.session() as s:
        case = s.get(Case, cid)
        assert case.escalated_to == "Morgan Manager"
        mail = s.scalars(select(Outbox).where(Outbox.kind == "escalation")).one()
        assert mail.recipients == ["morgan@example.com"]
        assert "3 days down" in mail.body_text and f"/case?id={cid}" in mail.body_text
        assert "&lt;script&gt;" in mail.body_html and "<script>" not in mail.body_html
    assert open_queue(store, QueueFilters(escalated_only=True)).items[0].escalated_to == "Morgan Manager"
    with pytest.raises(NotAllowed):
        cases.clear_escalation(store, cid, people["sam"])
    cases.clear_escalation(store, cid, people["morgan"], note="called the customer")
    assert open_queue(store, QueueFilters(escalated_only=True)).items == []


def test_replied_elsewhere_counts_as_first_response(store, cfg, people):
    cid = seed_case(store, cfg, external_id="c6", body="Northwind, answer your phone")
    cases.replied_elsewhere(store, cid, people["sam"], where="phone call", text="Called and sorted the bill")
    cases.replied_elsewhere(store, cid, people["sam"], where="phone call", text="Called and sorted the bill")
    d = case_detail(store, cid)
    assert len(d.replies) == 1  # the second click recorded nothing more
    assert d.status == "replied" and d.first_response_at is not None
    assert d.replies[0].kind == "elsewhere" and d.history[-1].action == "replied_elsewhere"


def test_queue_orders_by_due_then_severity_and_counts_overdue(store, cfg):
    late = seed_case(store, cfg, external_id="q1", body="Northwind old", minutes_ago=600, severity=1)  # due 480 min
    sev4 = seed_case(store, cfg, external_id="q2", body="Northwind severe", minutes_ago=10, severity=4)  # due in 50
    sev1 = seed_case(store, cfg, external_id="q3", body="Northwind mild", minutes_ago=10, severity=1)  # due in 470
    q = open_queue(store)
    assert [i.case_id for i in q.items] == [late, sev4, sev1]
    assert q.overdue == 1 and q.items[0].overdue and not q.items[1].overdue
    assert [i.case_id for i in open_queue(store, QueueFilters(severities=(4,))).items] == [sev4]
    assert open_queue(store, QueueFilters(platforms=("x",))).items == []


def test_team_sync_and_local_user(store, cfg):
    assert sync_team(store, cfg) == 3
    assert local_actor(cfg).name == "Alex Admin"


def test_similar_past_cases_rank_by_meaning_and_show_how_they_were_answered(sqlite_store, cfg, people):
    from desk.cases.queue import similar_cases
    from desk.cases.replies import new_key, post_reply

    store = sqlite_store
    billing = seed_case(store, cfg, external_id="s1", body="Northwind charged me twice this month, I want a refund")
    outage = seed_case(store, cfg, external_id="s2", body="Northwind broadband has been down all evening again")
    post_reply(store, cfg, billing, people["sam"], "Sorry! Billing will refund the double charge in 2 days.",
               key=new_key())
    cases.resolve(store, billing, people["sam"], note="Refunded", root_cause="billing")
    post_reply(store, cfg, outage, people["sam"], "Sorry, engineers are fixing the fault tonight.", key=new_key())
    new = seed_case(store, cfg, external_id="s3", body="I was billed two times by Northwind, need my money back")
    sims = similar_cases(store, new, k=2, min_similarity=-1)
    assert [s.case_id for s in sims] == [billing, outage]
    assert sims[0].reply.startswith("Sorry! Billing will refund") and sims[0].root_cause == "billing"
    assert sims[0].similarity > sims[1].similarity


def test_source_health_lists_config_sources_with_runner_state(sqlite_store, cfg):
    from desk.store.models import SourceState, now_utc
    from desk.intake.sources import source_health

    with sqlite_store.session() as s:
        s.add(SourceState(name="demo", platform="demo", status="failing", last_error="boom", last_error_at=now_utc(),
                          consecutive_failures=2, mentions_total=3))
        s.add(SourceState(name="old", platform="x", status="ok", reads_month="2001-01", reads_count=5))
    rows = {h.name: h for h in source_health(sqlite_store, cfg)}
    assert rows["demo"].status == "failing" and rows["demo"].last_error == "boom"
    assert rows["demo"].consecutive_failures == 2
    assert rows["old"].status == "removed from config" and rows["old"].reads_this_month == 0
