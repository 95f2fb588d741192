"""Answers to our replies join their case on every platform, whatever the id format.

Cases are opened by the real classifier from stored mentions; our public replies are recorded the way
desk/cases/replies.py records a posted one, with the external id each publisher returns (Reddit t1_...,
an X post id, Discourse "host/t/topic/n" - the form mentions carry); the answers then come in as
collectors hand them over (`reply_to_own`, `parent_id`, Discourse `quotes`). Real SQLite, and
PostgreSQL when HEARKEN_TEST_PG_URL is set. The last test drives the Discourse collector end to end:
a real HTTP server on 127.0.0.1 serves a reply that quotes our post without `reply_to_user`.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import select

from collectors.base import Mention, PollResult
from desk.store.db import MIGRATIONS, make_engine
from desk.store.models import Case, Event, MentionRow, Reply
from desk.intake.pipeline import classify_pending
from desk.intake.storing import store_poll
from desk.intake.runner import Runner
from desk.config.schema import parse_config
from tests.collector_helpers import LocalServer, Reply as Answer

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)
COMPLAINT = ("third outage this week, the broadband drops every afternoon and nobody answers the phone. "
             "I want a refund.")
PRAISE = "Shoutout to the engineer who came out today, sorted it in 20 minutes. Proper service, thank you!"
STILL_BROKEN = "That did not fix anything, it dropped again an hour later and I am still waiting for the refund."


def found(platform, ext, *, author="customer", body=COMPLAINT, thread=None, parent=None, minutes=0, **extra):
    return Mention(platform=platform, source=platform, external_id=ext, url=f"https://{platform}.example/{ext}",
                   author=author, body=body, posted_at=T0 + timedelta(minutes=minutes), thread_id=thread or ext,
                   parent_id=parent, matched_terms=("Northwind",) if not extra.get("reply_to_own") else (),
                   extra=extra)


def ingest(store, cfg, model, *mentions):
    store_poll(store, mentions[0].source, mentions[0].platform, PollResult(list(mentions), None), now=T0)
    classify_pending(store, cfg, model)


def case_of(store, platform, ext) -> int | None:
    with store.session() as s:
        return s.scalar(select(MentionRow.case_id).where(MentionRow.platform == platform,
                                                         MentionRow.external_id == ext))


def record_reply(store, case_id, platform, external_id, *, kind="public") -> None:
    """Our reply as desk/cases/replies.py records one that went out (or cases.replied_elsewhere one made elsewhere)."""
    with store.session() as s:
        s.add(Reply(case_id=case_id, idempotency_key=f"k{case_id}-{external_id}", kind=kind, platform=platform,
                    body="Sorry about this, an engineer is booked for tomorrow.", author="Sam Agent",
                    status="posted", external_id=external_id, url=None, created_at=T0, posted_at=T0))


def followup(store, case_id) -> dict:
    with store.session() as s:
        ev = s.scalars(select(Event).where(Event.case_id == case_id, Event.action == "customer_followup")).one()
        return ev.detail


ANSWERS = {
    # platform: (the customer's post, our reply's external id, an answer to it by someone else)
    "reddit": (found("reddit", "t3_1"), "t1_ours",
               found("reddit", "t1_ans", author="other", body=STILL_BROKEN, thread="t3_1", parent="t1_ours",
                     minutes=5, reply_to_own=True)),
    "x": (found("x", "1001", author="@cust"), "1002",
          found("x", "1003", author="@other", body=STILL_BROKEN, thread="1001", parent="1002", minutes=5,
                reply_to_own=True)),
    # Discourse: quoting our post without the reply button: no parent, the quote names the post
    "discourse": (found("discourse", "f.example/t/5/1", thread="f.example/t/5"), "f.example/t/5/2",
                  found("discourse", "f.example/t/5/3", author="other", body=STILL_BROKEN, thread="f.example/t/5",
                        minutes=5, reply_to_own=True, quotes=["f.example/t/5/2"])),
}


@pytest.mark.parametrize("platform", sorted(ANSWERS))
def test_an_answer_to_our_reply_joins_its_case(store, cfg, model, platform):
    customer, our_reply, answer = ANSWERS[platform]
    ingest(store, cfg, model, customer)
    case_id = case_of(store, platform, customer.external_id)
    assert case_id is not None
    record_reply(store, case_id, platform, our_reply)
    ingest(store, cfg, model, answer)
    assert case_of(store, platform, answer.external_id) == case_id
    assert followup(store, case_id)["joined"] == "answer to our reply"
    with store.session() as s:
        assert s.scalar(select(Case.status).where(Case.id == case_id)) == "open"
        assert len(s.scalars(select(Case)).all()) == 1  # the answer opened no case of its own


def test_an_answer_to_our_account_on_a_forum_joins_the_case_we_replied_to_in_that_thread(store, cfg, model):
    thread = "https://board.example/t/router"
    ingest(store, cfg, model, found("forum", "board.example#10", thread=thread))
    case_id = case_of(store, "forum", "board.example#10")
    record_reply(store, case_id, "forum", None, kind="elsewhere")  # staff answered on the forum itself
    ingest(store, cfg, model, found("forum", "board.example#12", author="other", body=STILL_BROKEN, thread=thread,
                                    minutes=5, reply_to_own=True))
    assert case_of(store, "forum", "board.example#12") == case_id
    assert followup(store, case_id)["joined"] == "answer to our account"


def test_an_answer_to_our_account_that_matches_no_case(store, cfg, model):
    # An answer to a post our team made outside Hearken: a complaint gets a case of its own, marked as
    # an answer to us; anything else stays a stored mention without a case.
    ingest(store, cfg, model, found("x", "2001", author="@a", parent="1999", reply_to_own=True),
           found("x", "2002", author="@b", body=PRAISE, parent="1999", reply_to_own=True))
    case_id = case_of(store, "x", "2001")
    assert case_id is not None and case_of(store, "x", "2002") is None
    with store.session() as s:
        opened = s.scalars(select(Event).where(Event.case_id == case_id, Event.action == "opened")).one()
        assert opened.detail["answer_to_our_account"] is True


def test_another_customer_in_the_thread_is_not_an_answer_to_us(store, cfg, model):
    ingest(store, cfg, model, found("reddit", "t3_1"))
    first = case_of(store, "reddit", "t3_1")
    record_reply(store, first, "reddit", "t1_ours")
    ingest(store, cfg, model, found("reddit", "t1_x", author="someone_else", thread="t3_1", parent="t3_1", minutes=5))
    second = case_of(store, "reddit", "t1_x")
    assert second is not None and second != first


def test_discourse_reply_ids_recorded_before_0003_are_rewritten_to_mention_ids(db_url):
    engine = make_engine(db_url)
    alembic = Config()
    alembic.set_main_option("script_location", str(MIGRATIONS))
    before = ScriptDirectory.from_config(alembic).get_revision("0003").down_revision
    with engine.begin() as conn:
        alembic.attributes["connection"] = conn
        command.upgrade(alembic, before)
        # rows as an older Hearken wrote them (core inserts: only the columns named, as they were then)
        mid = conn.execute(MentionRow.__table__.insert().values(
            platform="discourse", source="community", external_id="forum.example.com/t/5/1", url="", author="c",
            title="", body="b", posted_at=T0, detected_at=T0, matched_terms=[], extra={}, classified=True)
            .returning(MentionRow.id)).scalar_one()
        cid = conn.execute(Case.__table__.insert().values(
            mention_id=mid, platform="discourse", source="community", thread_id="forum.example.com/t/5",
            status="open", customer_posted_at=T0, opened_at=T0, updated_at=T0, version=1)
            .returning(Case.id)).scalar_one()
        for key, ext, url in (("a", "1234", "https://forum.example.com/t/router-down/5/2"),
                              ("b", "1235", "https://forum.example.com/community/t/router-down/5/7/"),
                              ("c", "999", None)):
            conn.execute(Reply.__table__.insert().values(
                case_id=cid, idempotency_key=key, kind="public", platform="discourse", body="x", author="Sam",
                status="posted", external_id=ext, url=url, created_at=T0))
    with engine.begin() as conn:
        alembic.attributes["connection"] = conn
        command.upgrade(alembic, "head")
        rows = dict(conn.execute(select(Reply.idempotency_key, Reply.external_id)).all())
    assert rows == {"a": "forum.example.com/t/5/2", "b": "forum.example.com/t/5/7", "c": "999"}
    engine.dispose()


def test_a_discourse_quote_of_our_reply_joins_the_case_end_to_end(store, model):
    with LocalServer() as server:
        host = server.url.removeprefix("http://")
        posts = [{"id": 11, "username": "pat", "topic_id": 5, "post_number": 1, "topic_slug": "outage",
                  "topic_title": "Northwind outage", "created_at": "2026-11-20T09:00:00Z", "post_type": 1,
                  "raw": "Northwind " + COMPLAINT}]
        server.route("/posts.json", lambda req: Answer(200, {"latest_posts": list(reversed(posts))}))
        cfg = parse_config(f"""\
brand: {{terms: [Northwind]}}
accounts: {{discourse: [northwind_team]}}
sources:
  - {{type: discourse, name: community, base_url: '{server.url}'}}
team:
  - {{name: Sam Agent, email: sam@example.com, role: agent}}
""", "hearken.yaml")
        runner = Runner(cfg, store, model_loader=lambda: model)
        src = cfg.sources[0]
        runner.poll_source(src)
        runner.classify()
        case_id = case_of(store, "discourse", f"{host}/t/5/1")
        assert case_id is not None
        record_reply(store, case_id, "discourse", f"{host}/t/5/2")  # the id h13's publisher records
        posts.append({"id": 12, "username": "northwind_team", "topic_id": 5, "post_number": 2,
                      "created_at": "2026-11-20T09:10:00Z", "post_type": 1, "raw": "Sorry, on it",
                      "reply_to_post_number": 1})
        # The customer's partner answers by quoting our reply: no reply_to_user, no brand term.
        posts.append({"id": 13, "username": "sam_w", "topic_id": 5, "post_number": 3, "post_type": 1,
                      "created_at": "2026-11-20T09:20:00Z", "reply_to_post_number": 2,
                      "raw": '[quote="northwind_team, post:2, topic:5"]\nSorry, on it\n[/quote]\nstill nothing here'})
        runner.poll_source(src)
        runner.classify()
    assert case_of(store, "discourse", f"{host}/t/5/3") == case_id
    assert followup(store, case_id)["joined"] == "answer to our reply"
    json.dumps(followup(store, case_id))


def test_an_answer_to_the_reply_our_discourse_publisher_posted_joins_its_case(store, model, tmp_path):
    """End to end on a real HTTP stand-in: the desk posts our reply through the Discourse publisher, the
    customer's partner answers it (no brand term), the runner polls the forum and classifies: the answer is in the
    case, as a follow-up to our reply, not a case of its own. It joins because the reference the publisher
    records for our reply is the id the collector gives the answer's parent ("host/t/topic/n")."""
    from desk.cases.replies import new_key, post_reply
    from desk.team.users import actor_for_name
    from tests.hostile_publish import stage

    st = stage("discourse", store, tmp_path)
    try:
        out = post_reply(store, st.cfg, st.case_id, actor_for_name(st.cfg, "Sam Agent"),
                         "Sorry Kevin, an engineer is looking at the hub today.", key=new_key(), env=st.env)
        assert out.status == "posted"
        st.platform.add_posts(1, username="sam_w", reply_to=2, text=STILL_BROKEN)  # not the case's author
        runner = Runner(st.cfg, store, model_loader=lambda: model)
        runner.poll_source(st.cfg.sources[0])
        runner.classify()
        host = st.platform.base_url.removeprefix("http://")
        with store.session() as s:
            answer = s.scalars(select(MentionRow).where(MentionRow.platform == "discourse",
                                                        MentionRow.body == STILL_BROKEN)).one()
            assert answer.parent_id == out.external_id == f"{host}/t/17/2"
            opened = s.scalars(select(Case.id)).all()
    finally:
        st.platform.stop()
    assert answer.case_id == st.case_id and opened == [st.case_id]
    assert followup(store, st.case_id)["joined"] == "answer to our reply"
