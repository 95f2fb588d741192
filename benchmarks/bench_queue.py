"""The dashboard's queue and case page at 10k, 100k and 1M cases, on SQLite and PostgreSQL.

    .venv/bin/python benchmarks/bench_queue.py [--pg URL] [--sizes 10000 100000 1000000] [--only sqlite]

For each size a fresh database gets that many cases (one mention each, in threads of four posts,
spread over two years; the newest 2 % active, half open, half replied; the rest resolved or
dismissed, each answered case with one public reply and every case with its audit event), loaded in
bulk. Then, timed on the same data:

- queue, ours: `desk.cases.queue.open_queue(store)` as the Queue page calls it (no filters, first 500).
- queue, baseline: the naive way: read every case with its mention, filter and sort in Python.
- queue, SQL-ordered (a proposal, not in desk/cases/queue.py): the same first 500 items and counts, with the
  ordering, limit and counts done by the database on the (status, due) indexes.
- case page, ours: `desk.cases.queue.case_detail(store, id)` for 30 random cases (p50 and p95).
- case page, baseline: the same calls after dropping the indexes the case page's queries use
  (mentions by thread, replies by case, events by case, labels by mention), recreated afterwards.

Target (issue 7): under 300 ms at 1M cases.
"""

from __future__ import annotations

import argparse
import random
import sys
from datetime import datetime, timedelta

from _common import UTC, database, fmt_ms, generate, header, kinds, median, pct, timed
from sqlalchemy import and_, case as sql_case, func, select, text

from desk.cases.actions import ACTIVE
from desk.store.models import Case, MentionRow
from desk.cases.queue import QueueItem, case_detail, open_queue

TARGET = 0.300
EXCERPT = 160  # characters of a post the Queue page shows
CASE_PAGE_INDEXES = {
    # name: (table, columns)
    "ix_mentions_thread": ("mentions", "platform, thread_id"),
    "ix_replies_case_id": ("replies", "case_id"),
    "ix_events_case": ("events", "case_id, at"),
    "ix_labels_mention_id": ("labels", "mention_id"),
}


def due(c: Case) -> datetime | None:
    """The due time a case runs on: the first response while it is open, the resolution once replied."""
    return c.first_response_due if c.status == "open" else c.resolution_due


def excerpt(text: str) -> str:
    """The post's excerpt as the Queue page shows it: one line, cut with an ellipsis."""
    text = " ".join(text.split())
    return text if len(text) <= EXCERPT else text[:EXCERPT - 1] + "…"


def naive_queue(store, now: datetime, limit: int = 500):
    """Baseline: every case and its mention into Python, then filter and sort there."""
    far = datetime.max.replace(tzinfo=UTC)
    with store.session() as s:
        rows = s.execute(select(Case, MentionRow).join(MentionRow, MentionRow.id == Case.mention_id)).all()
    items = []
    for c, m in rows:
        if c.status not in ACTIVE:
            continue
        items.append((due(c) or far, -(c.severity or 0), c.customer_posted_at, c.id, m.author))
    items.sort()
    return items[:limit]


def sql_queue(store, now: datetime, limit: int = 500):
    """Proposal: let the database order and limit. Open cases run on first_response_due, replied ones on
    resolution_due, so take the first `limit` of each from its index, merge, and count in SQL."""
    far = datetime.max.replace(tzinfo=UTC)
    out: list[QueueItem] = []
    with store.session() as s:
        for status, due_col in (("open", Case.first_response_due), ("replied", Case.resolution_due)):
            q = (select(Case, MentionRow).join(MentionRow, MentionRow.id == Case.mention_id).where(Case.status == status)
                 .order_by(due_col, Case.severity.desc(), Case.customer_posted_at, Case.id).limit(limit))
            for c, m in s.execute(q):
                until = due(c)
                out.append(QueueItem(
                    case_id=c.id, status=c.status, platform=c.platform, source=c.source, author=m.author,
                    title=m.title or "", excerpt=excerpt(m.body), url=m.url, severity=c.severity, score=c.score,
                    topic=c.topic, assignee=c.assignee, escalated_to=c.escalated_to,
                    customer_posted_at=c.customer_posted_at, due=until, age=now - c.customer_posted_at,
                    time_left=(until - now) if until else None))
        overdue = sql_case((and_(Case.status == "open", Case.first_response_due < now), 1),
                           (and_(Case.status == "replied", Case.resolution_due < now), 1), else_=0)
        total, overdue_active = s.execute(select(func.count(), func.coalesce(func.sum(overdue), 0))
                                          .where(Case.status.in_(ACTIVE))).one()
    out.sort(key=lambda i: (i.due or far, -(i.severity or 0), i.customer_posted_at, i.case_id))
    return out[:limit], total, overdue_active


def explain(store, sql: str) -> str:
    with store.engine.connect() as c:
        if store.dialect == "postgresql":
            return "\n".join(r[0] for r in c.execute(text("EXPLAIN " + sql)))
        return "\n".join(str(r[-1]) for r in c.execute(text("EXPLAIN QUERY PLAN " + sql)))


def drop_indexes(store) -> list[str]:
    dropped = []
    with store.engine.begin() as c:
        for name in CASE_PAGE_INDEXES:
            try:
                c.execute(text(f"DROP INDEX IF EXISTS {name}"))
                dropped.append(name)
            except Exception:  # noqa: BLE001 - an index that is not there is not a baseline
                pass
    return dropped


def create_indexes(store, names: list[str]) -> None:
    with store.engine.begin() as c:
        for name in names:
            table, cols = CASE_PAGE_INDEXES[name]
            c.execute(text(f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({cols})"))
    if store.dialect == "postgresql":
        with store.engine.connect() as c:
            c.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))


def run(kind: str, size: int, pg_url: str | None) -> dict:
    now = datetime.now(UTC)
    with database(kind, pg_url) as store:
        gen = generate(store, mentions=size, cases=size, span=timedelta(days=730), now=now)
        print(f"\n## {kind}, {size:,} cases ({gen.active:,} active), loaded in {gen.seconds:.1f} s")
        repeat = 3 if size >= 1_000_000 else 5
        q = open_queue(store, now=now)
        assert q.total_active == gen.active and len(q.items) == min(500, gen.active), (q.total_active, len(q.items))
        ours = timed(lambda: open_queue(store, now=now), repeat=repeat)
        base = timed(lambda: naive_queue(store, now), repeat=max(1, repeat - 2), warmup=0 if size >= 1_000_000 else 1)
        items, total, overdue = sql_queue(store, now)
        assert [i.case_id for i in items] == [i.case_id for i in q.items], "the SQL-ordered queue matches ours"
        assert (total, overdue) == (q.total_active, q.overdue_active)
        prop = timed(lambda: sql_queue(store, now), repeat=repeat)
        print(f"queue   ours (open_queue)            median {fmt_ms(median(ours)):>11}   "
              f"{'meets' if median(ours) < TARGET else 'MISSES'} the 300 ms target")
        print(f"queue   baseline (all rows, Py sort) median {fmt_ms(median(base)):>11}")
        print(f"queue   proposed (SQL order+limit)   median {fmt_ms(median(prop)):>11}   "
              f"{'meets' if median(prop) < TARGET else 'MISSES'} the 300 ms target")

        rng = random.Random(size)
        ids = [rng.randrange(1, gen.cases + 1) for _ in range(30)]
        for i in ids[:3]:
            d = case_detail(store, i)
            assert d is not None and d.thread, i

        def pages():
            out = []
            for i in ids:
                out.extend(timed(lambda i=i: case_detail(store, i), repeat=1, warmup=0))
            return out

        pages()  # warm caches
        page = pages()
        dropped = drop_indexes(store)
        try:
            page_base = pages()
        finally:
            create_indexes(store, dropped)
        print(f"case    ours (case_detail)           p50 {fmt_ms(pct(page, 50)):>11}  p95 {fmt_ms(pct(page, 95)):>11}   "
              f"{'meets' if pct(page, 95) < TARGET else 'MISSES'} the 300 ms target")
        print(f"case    baseline (no indexes)        p50 {fmt_ms(pct(page_base, 50)):>11}  "
              f"p95 {fmt_ms(pct(page_base, 95)):>11}   (dropped {', '.join(dropped)})")
        sys.stdout.flush()
        return {"kind": kind, "size": size, "queue": median(ours), "queue_base": median(base),
                "queue_sql": median(prop), "case_p50": pct(page, 50), "case_p95": pct(page, 95),
                "case_base_p50": pct(page_base, 50), "case_base_p95": pct(page_base, 95)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pg", help="PostgreSQL URL; without it only SQLite is measured")
    ap.add_argument("--sizes", nargs="+", type=int, default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--only", choices=["sqlite", "postgresql"])
    args = ap.parse_args(argv)
    header("Queue and case page", args.pg)
    results = [run(kind, size, args.pg) for size in args.sizes for kind in kinds(args.pg, args.only)]
    print("\n| database | cases | queue: ours | queue: baseline (Python sort) | queue: SQL-ordered proposal | "
          "case page p50 / p95: ours | case page p50 / p95: no indexes |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['kind']} | {r['size']:,} | {fmt_ms(r['queue'])} | {fmt_ms(r['queue_base'])} | "
              f"{fmt_ms(r['queue_sql'])} | {fmt_ms(r['case_p50'])} / {fmt_ms(r['case_p95'])} | "
              f"{fmt_ms(r['case_base_p50'])} / {fmt_ms(r['case_base_p95'])} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
