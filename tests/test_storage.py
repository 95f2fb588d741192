"""Storage on a real database: SQLite always, PostgreSQL when HEARKEN_TEST_PG_URL is set."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, inspect, select, text

from collectors.base import Mention, PollResult
from desk.store.db import connect
from desk.store.models import Base, Case, MentionRow, Outbox, SourceState
from desk.intake.pipeline import classify_pending
from desk.intake.storing import StoreFailed, store_poll

T0 = datetime(2026, 11, 20, 9, 30, tzinfo=timezone.utc)


def mention(i: int, *, body: str = "Northwind broadband is down again", thread: str | None = None,
            parent: str | None = None, posted: datetime | None = None) -> Mention:
    return Mention(platform="demo", source="demo", external_id=f"m{i}", url=f"https://demo.invalid/{i}",
                   author=f"user{i}", body=body, posted_at=posted or T0 + timedelta(minutes=i),
                   thread_id=thread or f"m{i}", parent_id=parent, matched_terms=("Northwind",),
                   extra={"style": "x", "n": i})


def test_migrations_create_every_table_and_match_the_models(store):
    names = set(inspect(store.engine).get_table_names())
    assert {"mentions", "classifications", "cases", "replies", "events", "outbox", "source_state",
            "labels", "users", "alembic_version"} <= names
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"models and migrations differ: {diff}"


def test_migrating_twice_is_harmless(db_url):
    connect(db_url).close()
    s = connect(db_url)
    with s.engine.connect() as c:
        assert c.execute(text("select count(*) from alembic_version")).scalar() == 1
    s.close()


def test_sqlite_runs_in_wal_mode(sqlite_store):
    with sqlite_store.engine.connect() as c:
        assert c.execute(text("PRAGMA journal_mode")).scalar() == "wal"


def test_a_poll_is_stored_once_with_its_cursor(store):
    result = PollResult(mentions=[mention(1), mention(2)], cursor={"next": 2}, reads=5)
    assert store_poll(store, "demo", "demo", result, now=T0) == 2
    # the same posts again (a re-poll after a crash) add nothing
    again = PollResult(mentions=[mention(2), mention(3)], cursor={"next": 3}, reads=2)
    assert store_poll(store, "demo", "demo", again, now=T0 + timedelta(minutes=1)) == 1
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(MentionRow)) == 3
        st = s.get(SourceState, "demo")
        assert st.cursor == {"next": 3}
        assert st.reads_count == 7 and st.reads_month == "2026-11"
        assert st.mentions_total == 3 and st.status == "ok"
        row = s.scalars(select(MentionRow).where(MentionRow.external_id == "m1")).one()
        assert row.extra == {"style": "x", "n": 1} and row.matched_terms == ["Northwind"]


def test_times_come_back_aware_utc_whatever_zone_went_in(store):
    paris = timezone(timedelta(hours=1))
    m = mention(1, posted=datetime(2026, 11, 20, 10, 30, tzinfo=paris))
    store_poll(store, "demo", "demo", PollResult([m], None), now=T0)
    with store.session() as s:
        row = s.scalars(select(MentionRow)).one()
        assert row.posted_at == datetime(2026, 11, 20, 9, 30, tzinfo=timezone.utc)
        assert row.posted_at.tzinfo is not None and row.posted_at.utcoffset() == timedelta(0)


def test_naive_times_are_refused_before_they_reach_the_database():
    with pytest.raises(ValueError, match="timezone-aware"):
        Mention(platform="x", source="x", external_id="1", url="", author="a", body="b",
                posted_at=datetime(2026, 1, 1))


def test_the_read_count_starts_again_each_month(store):
    store_poll(store, "x", "x", PollResult([], {"since_id": "1"}, reads=90), now=datetime(2026, 10, 31, 23, 0, tzinfo=timezone.utc))
    store_poll(store, "x", "x", PollResult([], {"since_id": "2"}, reads=4), now=datetime(2026, 11, 1, 0, 5, tzinfo=timezone.utc))
    with store.session() as s:
        st = s.get(SourceState, "x")
        assert (st.reads_month, st.reads_count) == ("2026-11", 4)


def test_a_poll_stopped_by_the_read_cap_shows_the_source_capped_whatever_its_notes_say(store):
    cap_words = "monthly read cap reached: 0 reads left this month"
    store_poll(store, "x", "x", PollResult([], {"since_id": "1"}, reads=9, notes=["read 9 posts"], capped=True), now=T0)
    with store.session() as s:
        assert s.get(SourceState, "x").status == "capped"
    store_poll(store, "x", "x", PollResult([], {"since_id": "2"}, reads=1, notes=[cap_words]), now=T0)
    with store.session() as s:  # a note is only words: the field says whether the poll stopped at the cap
        st = s.get(SourceState, "x")
        assert st.status == "ok" and cap_words in st.status_reason


def test_a_failed_transaction_keeps_neither_mentions_nor_cursor(store):
    store_poll(store, "demo", "demo", PollResult([mention(1)], {"next": 1}), now=T0)
    bad = PollResult([mention(2), mention(3)], {"next": 3, "oops": object()})  # the cursor cannot be stored
    with pytest.raises(StoreFailed) as info:
        store_poll(store, "demo", "demo", bad, now=T0)
    assert str(info.value).startswith("could not store the poll of demo: ")
    assert "INSERT" not in str(info.value) and "Northwind" not in str(info.value) and "\n" not in str(info.value)
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(MentionRow)) == 1
        assert s.get(SourceState, "demo").cursor == {"next": 1}


COMPLAINT = ("@NorthwindHelp third outage this week, the broadband drops every afternoon and nobody "
             "answers the phone. I want a refund.")
PRAISE = "Shoutout to the Northwind engineer who came out today, sorted it in 20 minutes. Proper service, thank you!"


def test_complaints_open_cases_with_sla_and_alerts_in_the_same_transaction(store, cfg, model):
    # read a minute after they were posted (a post read "before" it was written would start the clock when read)
    store_poll(store, "demo", "demo", PollResult([mention(1, body=COMPLAINT), mention(2, body=PRAISE)], None),
               now=T0 + timedelta(minutes=2))
    out = classify_pending(store, cfg, model)
    assert (out.classified, out.cases_opened) == (2, 1)
    with store.session() as s:
        case = s.scalars(select(Case)).one()
        assert case.mention.external_id == "m1"
        assert case.status == "open" and case.severity in (1, 2, 3, 4)
        assert case.customer_posted_at == T0 + timedelta(minutes=1)
        # the SLA clock runs from the customer's post, not from when we noticed it
        minutes = cfg.sla.targets.first_response[case.severity]
        assert case.first_response_due == T0 + timedelta(minutes=1 + minutes)
        # through the model: a raw query gives the JSON column back as text on SQLite, as a list on PostgreSQL
        outbox = [(o.kind, o.recipients) for o in s.scalars(select(Outbox))]
        if case.severity >= cfg.alerts.rules.min_severity:
            assert outbox == [("severe_complaint", ["morgan@example.com"])]
        else:
            assert outbox == []
        events = s.execute(text("select action from events where case_id = :c"), {"c": case.id}).scalars().all()
        assert events == ["opened"]
    # nothing left to classify, and running again opens nothing new
    assert classify_pending(store, cfg, model).classified == 0


def test_the_same_customer_following_up_in_the_thread_joins_their_case(store, cfg, model):
    store_poll(store, "demo", "demo", PollResult([mention(1, body=COMPLAINT)], None), now=T0)
    classify_pending(store, cfg, model)
    follow = mention(5, body="Still down this morning, Northwind. Is anyone reading this?", thread="m1", parent="m1")
    follow = replace(follow, author="user1")
    store_poll(store, "demo", "demo", PollResult([follow], None), now=T0)
    out = classify_pending(store, cfg, model)
    assert (out.followups, out.cases_opened) == (1, 0)
    with store.session() as s:
        (case,) = s.scalars(select(Case)).all()
        rows = s.scalars(select(MentionRow).where(MentionRow.case_id == case.id)).all()
        assert sorted(r.external_id for r in rows) == ["m1", "m5"]


def test_another_customer_complaining_in_the_same_thread_gets_a_case_of_their_own(store, cfg, model):
    store_poll(store, "demo", "demo", PollResult([mention(1, body=COMPLAINT)], None), now=T0)
    other = mention(6, body="Same here, Northwind broadband has been down for two days and nobody answers the phone.",
                    thread="m1", parent="m1")
    store_poll(store, "demo", "demo", PollResult([other], None), now=T0)
    out = classify_pending(store, cfg, model)
    assert (out.followups, out.cases_opened) == (0, 2)
    with store.session() as s:
        authors = sorted(c.mention.author for c in s.scalars(select(Case)))
        assert authors == ["user1", "user6"]


def test_a_complaints_embedding_is_stored_with_its_classification_and_reused_by_the_report(store, cfg, model):
    import numpy as np
    from types import SimpleNamespace

    from desk.store.models import Classification
    from desk.store.models import pack_vector
    from desk.reports.weekly.themes import vectors

    store_poll(store, "demo", "demo", PollResult([mention(1, body=COMPLAINT), mention(2, body=PRAISE)], None), now=T0)
    classify_pending(store, cfg, model)
    with store.session() as s:
        rows = {c.mention.external_id: c for c in s.scalars(select(Classification))}
        assert rows["m2"].embedding is None, "only complaints keep a vector"
        stored = np.frombuffer(rows["m1"].embedding, dtype=np.float16).astype(np.float32)
        import classifier

        fresh = model.embed([classifier.prepare_text("", COMPLAINT)])[0]
        # the same vector up to float16 rounding and int8 batch effects (the praise shared its batch)
        assert stored.shape == (384,) and float(stored @ fresh) > 0.95
        # the report takes the stored vector rather than embedding the text again
        marker = np.zeros(384, dtype=np.float32)
        marker[7] = 1.0
        rows["m1"].embedding = pack_vector(marker)
        s.flush()
        got = vectors(s, [SimpleNamespace(mention_id=rows["m1"].mention_id),
                           SimpleNamespace(mention_id=rows["m2"].mention_id)], [COMPLAINT, PRAISE], None)
        assert got[0].tolist() == marker.tolist()
        assert float(got[1] @ model.embed([PRAISE])[0]) > 0.999, "a text without a stored vector is embedded"
