"""The weekly report on a hand-built week whose answers were worked out by hand (see each comment).

Config: Europe/London (GMT in November, so local = UTC), business hours Mon-Fri 09:00-17:00,
default targets (first response 480/240/120/60 minutes, resolution 4320/2880/1440/480 for
severity 1/2/3/4). Week 2026-W47 = Mon 16 Nov to Mon 23 Nov; the report is built Mon 23 Nov 12:00.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

from zoneinfo import ZoneInfo

import pytest

from desk import periods
from desk.notify import alerts
from desk.notify import mailer
from desk.store.models import MentionRow, Reply
from desk.reports import weekly
from tests.test_alerts_support import make_cfg, new_case, smtp_server, update_case  # noqa: F401

UTC = dt.timezone.utc
AS_OF = dt.datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def t(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def _cfg(port: int = 25, **kw):
    return make_cfg(port, **{"sla.timezone": "Europe/London",
                             "sla.business_hours": {"days": ["mon", "tue", "wed", "thu", "fri"],
                                                    "start": "09:00", "end": "17:00"}, **kw})


def _reply(store, case_id: int, at: dt.datetime, kind: str = "public", where: str = "demo", url: str | None = None):
    with store.session() as s:
        s.add(Reply(case_id=case_id, idempotency_key=f"r{case_id}:{at.timestamp()}", kind=kind, platform=where,
                    body="Sorry about this, we are on it", author="Sam Agent", status="posted",
                    url=url or f"https://example.com/reply/{case_id}", posted_at=at, attempted_at=at))


def _mention(store, platform: str, posted: dt.datetime, n: int) -> None:
    with store.session() as s:
        s.add(MentionRow(platform=platform, source=platform, external_id=f"extra{platform}{n}{posted:%d%H}",
                      url="", author="fan", body="Northwind is fine today", posted_at=posted, detected_at=posted,
                      matched_terms=[], extra={}, classified=True))


@pytest.fixture
def week(store):
    """Seven cases in 2026-W47, one in W46, plus non-complaint mentions. Returns the case ids by letter."""
    cfg = _cfg(**{"alerts.rules.severe_complaint": False})
    ids = {}
    # A: demo, Tue 10:00, sev 4 (due 11:00); detected 10:10; public reply 10:30; resolved 14:00 (outage)
    ids["A"] = new_case(store, cfg, platform="demo", posted_at=t(17, 10), detected_at=t(17, 10, 10), severity=4,
                        body="Northwind broadband keeps dropping every evening", assignee="Sam Agent")
    _reply(store, ids["A"], t(17, 10, 30))
    update_case(store, ids["A"], first_response_at=t(17, 10, 30), status="resolved", resolved_at=t(17, 14),
                root_cause="outage")
    # B: demo, Fri 16:30, sev 3: 120 business minutes = 30 on Friday + 90 on Monday -> due Mon 10:30.
    #    detected 16:40; public reply Mon 09:45 (65.25 h wall clock, 75 business minutes): met. Still open.
    ids["B"] = new_case(store, cfg, platform="demo", posted_at=t(20, 16, 30), detected_at=t(20, 16, 40), severity=3,
                        body="The Northwind engineer never showed up for my installation")
    _reply(store, ids["B"], t(23, 9, 45))
    update_case(store, ids["B"], first_response_at=t(23, 9, 45), status="replied")
    # C: x, Sat 11:00, sev 2: due Mon 13:00 -> not yet due at 12:00: no verdict. Open, unanswered.
    ids["C"] = new_case(store, cfg, platform="x", posted_at=t(21, 11), severity=2,
                        body="Northwind internet down again, the whole area has an outage")
    # D: x, Wed 09:00, sev 1 (due Wed 17:00); detected 09:30; public reply Thu 09:00 (24 h): missed.
    #    resolved Thu 12:00 (27 h), billing.
    ids["D"] = new_case(store, cfg, platform="x", posted_at=t(18, 9), detected_at=t(18, 9, 30), severity=1,
                        body="Northwind charged me twice for my broadband this month")
    _reply(store, ids["D"], t(19, 9))
    update_case(store, ids["D"], first_response_at=t(19, 9), status="resolved", resolved_at=t(19, 12),
                root_cause="billing")
    # E: reddit, Thu 14:00, sev 2; answered by phone at 15:00 (private: first response met, not public);
    #    resolved 16:00 (2 h), billing.
    ids["E"] = new_case(store, cfg, platform="reddit", posted_at=t(19, 14), severity=2,
                        body="Northwind billed me twice this month for broadband, I want a refund")
    _reply(store, ids["E"], t(19, 15), kind="elsewhere", where="phone call", url="")
    update_case(store, ids["E"], first_response_at=t(19, 15), status="resolved", resolved_at=t(19, 16),
                root_cause="billing")
    # F: reddit, Tue 12:00, dismissed as not a complaint.
    ids["F"] = new_case(store, cfg, platform="reddit", posted_at=t(17, 12), severity=2,
                        body="Is Northwind any good for gaming?")
    update_case(store, ids["F"], status="dismissed", resolved_at=t(17, 13))
    # G: reddit, Mon 09:00, sev 2 (due 13:00); detected 09:20; replied on Reddit outside Hearken at 10:00 with
    #    a link: public (1 h). Still open (replied).
    ids["G"] = new_case(store, cfg, platform="reddit", posted_at=t(16, 9), detected_at=t(16, 9, 20), severity=2,
                        body="Northwind internet disconnects constantly every night")
    _reply(store, ids["G"], t(16, 10), kind="elsewhere", where="reddit", url="https://reddit.com/r/x/comments/1/a/b")
    update_case(store, ids["G"], first_response_at=t(16, 10), status="replied")
    # previous week W46: demo, Tue 10 Nov 10:00, sev 4 (due 11:00); public reply 12:00 (2 h, missed).
    ids["P"] = new_case(store, cfg, platform="demo", posted_at=t(10, 10), severity=4, body="Northwind is down")
    _reply(store, ids["P"], t(10, 12))
    update_case(store, ids["P"], first_response_at=t(10, 12), status="resolved", resolved_at=t(11, 10),
                root_cause="outage")
    for n, (platform, posted) in enumerate([("demo", t(18, 8)), ("demo", t(22, 20)), ("x", t(19, 1)),
                                            ("demo", t(11, 9)), ("reddit", t(23, 1))]):
        _mention(store, platform, posted, n)  # the last one is in W48: not counted
    return ids


def test_overall_figures_match_the_hand_computed_answers(store, week):
    rep = weekly.weekly_report(store, _cfg(), "2026-W47", now=AS_OF, embed=_no_embed)
    o = rep.overall
    assert (o.mentions, o.complaints, o.dismissed) == (10, 6, 1)
    assert o.answered_publicly == 4 and o.answered_share == pytest.approx(4 / 6)
    # from the post: [0.5, 1, 24, 65.25]; median = 1 + 0.5*(24-1); p90 at rank 2.7 = 24 + 0.7*(65.25-24)
    assert o.first_reply_hours_median == pytest.approx(12.5)
    assert o.first_reply_hours_p90 == pytest.approx(52.875)
    # from detection: [1/3, 2/3, 23.5, 65 1/12]
    assert o.detect_reply_hours_median == pytest.approx((2 / 3 + 23.5) / 2)
    assert o.detect_reply_hours_p90 == pytest.approx(23.5 + 0.7 * (65 + 1 / 12 - 23.5))
    # resolution: [2, 4, 27]
    assert o.resolution_hours_median == pytest.approx(4) and o.resolution_hours_p90 == pytest.approx(22.4)
    # first response: A, B (business hours over the weekend), E, G met; D missed; C not yet due
    assert (o.first_response_sla_met, o.first_response_sla_judged) == (4, 5)
    assert o.first_response_sla_share == pytest.approx(0.8)
    assert (o.resolution_sla_met, o.resolution_sla_judged) == (3, 3)
    assert o.still_open == 3


def test_per_platform_figures_and_change_from_the_week_before(store, week):
    rep = weekly.weekly_report(store, _cfg(), "2026-W47", now=AS_OF, embed=_no_embed)
    demo, x, reddit = rep.platforms["demo"], rep.platforms["x"], rep.platforms["reddit"]
    assert (demo.mentions, demo.complaints, demo.answered_share) == (4, 2, 1.0)
    assert demo.first_reply_hours_median == pytest.approx((0.5 + 65.25) / 2)
    assert (x.mentions, x.complaints, x.answered_share, x.first_reply_hours_median) == (3, 2, 0.5, 24.0)
    assert (reddit.mentions, reddit.complaints, reddit.dismissed, reddit.answered_share) == (3, 2, 1, 0.5)
    assert rep.previous_week == "2026-W46"
    assert rep.previous_overall.complaints == 1 and rep.previous_overall.first_reply_hours_median == pytest.approx(2.0)
    assert rep.change("complaints") == 5 and rep.change("mentions") == 8
    assert rep.change("first_reply_hours_median") == pytest.approx(10.5)
    assert rep.change("answered_share") == pytest.approx(4 / 6 - 1)
    assert rep.change("first_response_sla_share") == pytest.approx(0.8)
    assert rep.change("complaints", "demo") == 1


def test_csv_has_one_row_per_case_with_times_and_sla(store, week):
    rep = weekly.weekly_report(store, _cfg(), "2026-W47", now=AS_OF, embed=_no_embed)
    rows = list(csv.DictReader(io.StringIO(weekly.to_csv(rep))))
    by_id = {int(r["case_id"]): r for r in rows}
    assert sorted(by_id) == sorted(week[k] for k in "ABCDEFG")
    b = by_id[week["B"]]
    assert b["platform"] == "demo" and b["customer_posted_at"] == "2026-11-20T16:30:00Z"
    assert b["hours_to_first_public_reply"] == "65.25" and b["sla_clock_minutes_to_first_response"] == "75.00"
    assert b["first_response_sla"] == "met" and b["first_response_due"] == "2026-11-23T10:30:00Z"
    assert by_id[week["A"]]["assignee"] == "Sam Agent" and by_id[week["A"]]["root_cause"] == "outage"
    assert by_id[week["D"]]["first_response_sla"] == "missed" and by_id[week["D"]]["hours_to_resolution"] == "27.00"
    assert by_id[week["C"]]["first_response_sla"] == "pending" and by_id[week["C"]]["status"] == "open"
    assert by_id[week["E"]]["answered_publicly"] == "no" and by_id[week["G"]]["answered_publicly"] == "yes"
    assert by_id[week["F"]]["status"] == "dismissed"


def test_files_html_and_json_carry_figures_and_definitions(store, week, tmp_path):
    rep = weekly.weekly_report(store, _cfg(), "2026-W47", now=AS_OF, embed=_no_embed)
    paths = weekly.write_files(rep, tmp_path)
    assert sorted(p.name for p in paths) == ["hearken-report-2026-W47.csv", "hearken-report-2026-W47.html",
                                             "hearken-report-2026-W47.json"]
    with open(tmp_path / "hearken-report-2026-W47.csv", newline="", encoding="utf-8") as f:
        assert len(list(csv.DictReader(f))) == 7
    data = json.loads((tmp_path / "hearken-report-2026-W47.json").read_text())
    assert data["overall"]["first_reply_hours_p90"] == pytest.approx(52.875)
    assert data["change"]["overall"]["complaints"] == 5
    assert "first_response_at" in data["definitions"]["first_response_sla"]
    page = (tmp_path / "hearken-report-2026-W47.html").read_text()
    assert "<svg" in page and "<script" not in page
    assert "12.5 h" in page and "52.9 h" in page and "67%" in page
    assert "90th percentile" in page and "linear interpolation" in page


def test_default_week_is_the_last_full_week_in_the_configured_zone():
    cfg = _cfg(**{"sla.timezone": "Pacific/Auckland"})
    # Sunday 22 Nov 20:00 UTC is already Monday 23 Nov 09:00 in Auckland: last full week there is W47
    sunday_evening = dt.datetime(2026, 11, 22, 20, 0, tzinfo=UTC)
    assert periods.last_full_week(ZoneInfo(cfg.sla.timezone), sunday_evening) == "2026-W47"
    assert periods.last_full_week(ZoneInfo(_cfg().sla.timezone), sunday_evening) == "2026-W46"
    start, end = periods.parse_week("2026-W47", ZoneInfo("Europe/London"))
    assert (start, end) == (t(16, 0), t(23, 0))
    with pytest.raises(periods.WeekError, match="not a week of 2026"):
        periods.parse_week("2026-W54", ZoneInfo("UTC"))


def _no_embed(texts):
    raise RuntimeError("no embeddings in this test")


def test_cluster_groups_by_cosine_threshold():
    import numpy as np

    v = np.array([[1, 0, 0], [0.95, 0.31, 0], [0.9, 0.1, 0.42], [0, 1, 0], [0, 0.98, 0.2], [0, 0, 1]], float)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    assert weekly.cluster(v, 0.8) == [[0, 1, 2], [3, 4], [5]]
    assert weekly.cluster(v, 0.999) == [[0], [1], [2], [3], [4], [5]]


def test_themes_group_similar_complaints_with_root_causes(store, week):
    pytest.importorskip("classifier")
    rep = weekly.weekly_report(store, _cfg(), "2026-W47", now=AS_OF)
    billing = [th for th in rep.themes if week["D"] in th.case_ids]
    assert billing, [(th.case_ids, th.words) for th in rep.themes]
    [th] = billing
    assert week["E"] in th.case_ids and th.root_causes == {"billing": 2}
    assert week["B"] not in th.case_ids  # the missed engineer visit is another matter
    assert th.example_case_id in (week["D"], week["E"]) and "twice" in th.words
    assert week["F"] not in [c for theme in rep.themes for c in theme.case_ids]  # dismissed: not a complaint


def test_weekly_send_emails_the_report_once(store, week, smtp_server, tmp_path):
    cfg = _cfg(smtp_server.port, **{"report.recipients": ["Morgan Manager"], "report.output_dir": str(tmp_path),
                                    "alerts.rules.severe_complaint": False})
    monday_8 = dt.datetime(2026, 11, 23, 8, 59, tzinfo=UTC)
    for now in (monday_8, monday_8 + dt.timedelta(minutes=1), monday_8 + dt.timedelta(hours=2)):
        with store.session() as s:
            alerts.send_weekly_report(s, cfg, now, embed=_no_embed)
        mailer.send_pending(store, cfg, now=now)
    [got] = smtp_server.messages
    assert got.rcpt_tos == ["morgan@example.com"]
    assert got.message["Subject"].startswith("[Hearken] Weekly public-response report 2026-W47: 6 complaints")
    assert "<svg" in got.part("html") and "Definitions:" in got.part("plain")
    assert (tmp_path / "hearken-report-2026-W47.csv").is_file()
