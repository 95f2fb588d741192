"""SLA clocks: business hours over weekends and DST, per-platform targets, and where a case stands."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from zoneinfo import ZoneInfo

from desk.cases import sla
from desk.config.schema import Sla

UTC = dt.timezone.utc
LONDON = ZoneInfo("Europe/London")

BUSINESS = Sla.model_validate({"timezone": "Europe/London",
                               "business_hours": {"days": ["mon", "tue", "wed", "thu", "fri"],
                                                  "start": "09:00", "end": "17:00"},
                               "platforms": {"x": {"first_response": {1: 30, 2: 30, 3: 15, 4: 15},
                                                   "resolution": {1: 600, 2: 600, 3: 300, 4: 300}}}})
ROUND_THE_CLOCK = Sla.model_validate({"timezone": "UTC"})


def local(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=LONDON).astimezone(UTC)


def test_friday_evening_post_is_due_on_monday_morning():
    # Friday 20 Nov 2026 18:30 London; severity 4 = 60 business minutes -> Monday 10:00
    first, resolution = sla.due_times(BUSINESS, "demo", 4, local(2026, 11, 20, 18, 30))
    assert first == local(2026, 11, 23, 10, 0)
    assert resolution == local(2026, 11, 23, 17, 0)  # 480 minutes = one whole business day


def test_friday_afternoon_post_carries_over_the_weekend():
    # 16:30 Friday, 120 minutes: 30 on Friday, 90 on Monday -> 10:30 Monday
    first, _ = sla.due_times(BUSINESS, "demo", 3, local(2026, 11, 20, 16, 30))
    assert first == local(2026, 11, 23, 10, 30)


def test_per_platform_targets_replace_the_defaults():
    first, _ = sla.due_times(BUSINESS, "x", 4, local(2026, 11, 17, 9, 0))
    assert first == local(2026, 11, 17, 9, 15)
    first, _ = sla.due_times(BUSINESS, "reddit", 4, local(2026, 11, 17, 9, 0))
    assert first == local(2026, 11, 17, 10, 0)


def test_business_minutes_across_a_weekend():
    minutes = sla.clock_minutes(BUSINESS, local(2026, 11, 20, 16, 0), local(2026, 11, 23, 9, 30))
    assert minutes == 90  # 60 on Friday, 30 on Monday


def test_business_hours_are_local_across_the_dst_change():
    # London leaves summer time on Sunday 25 Oct 2026: 09:00 local is 08:00 UTC before, 09:00 UTC after
    first, _ = sla.due_times(BUSINESS, "demo", 4, local(2026, 10, 23, 17, 30))
    assert first == dt.datetime(2026, 10, 26, 10, 0, tzinfo=UTC)
    assert sla.clock_minutes(BUSINESS, dt.datetime(2026, 10, 23, 15, 0, tzinfo=UTC),
                             dt.datetime(2026, 10, 26, 10, 0, tzinfo=UTC)) == 60 + 60


def test_round_the_clock_counts_every_minute():
    first, resolution = sla.due_times(ROUND_THE_CLOCK, "demo", 2, dt.datetime(2026, 11, 21, 23, 0, tzinfo=UTC))
    assert first == dt.datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
    assert resolution == dt.datetime(2026, 11, 23, 23, 0, tzinfo=UTC)


def _case(**kw):
    posted = dt.datetime(2026, 11, 17, 10, 0, tzinfo=UTC)
    base = dict(platform="demo", severity=4, customer_posted_at=posted, first_response_due=posted + dt.timedelta(hours=1),
                resolution_due=posted + dt.timedelta(hours=8), first_response_at=None, resolved_at=None,
                status="open", updated_at=posted)
    base.update(kw)
    return SimpleNamespace(**base)


T = dt.datetime(2026, 11, 17, 10, 0, tzinfo=UTC)


def test_status_running_then_overdue():
    st = sla.status(_case(), ROUND_THE_CLOCK, T + dt.timedelta(minutes=35))
    assert st.first_response.state == "running" and st.first_response.describe() == "due in 25m"
    st = sla.status(_case(), ROUND_THE_CLOCK, T + dt.timedelta(minutes=80))
    assert st.first_response.overdue and st.first_response.describe() == "overdue by 20m"
    assert st.next_due.which == "first_response"


def test_first_response_clock_stops_at_the_first_reply():
    case = _case(first_response_at=T + dt.timedelta(minutes=50), status="replied")
    st = sla.status(case, ROUND_THE_CLOCK, T + dt.timedelta(days=3))
    assert st.first_response.state == "met" and st.first_response.seconds_left == 600
    assert st.resolution.state == "breached"  # still running past its 8 hours


def test_clocks_never_run_after_resolution():
    case = _case(first_response_at=T + dt.timedelta(minutes=90), resolved_at=T + dt.timedelta(hours=2),
                 status="resolved")
    early = sla.status(case, ROUND_THE_CLOCK, T + dt.timedelta(hours=3))
    later = sla.status(case, ROUND_THE_CLOCK, T + dt.timedelta(days=30))
    assert early == later
    assert later.first_response.state == "breached" and later.resolution.state == "met"
    assert later.resolution.seconds_left == 6 * 3600
    assert later.next_due is None


def test_resolved_without_a_reply_stops_both_clocks():
    case = _case(resolved_at=T + dt.timedelta(minutes=30), status="resolved")
    st = sla.status(case, ROUND_THE_CLOCK, T + dt.timedelta(days=2))
    assert st.first_response.state == "stopped" and st.resolution.state == "met"


def test_dismissed_case_has_no_verdict():
    case = _case(status="dismissed", updated_at=T + dt.timedelta(hours=3))
    st = sla.status(case, ROUND_THE_CLOCK, T + dt.timedelta(days=2))
    assert st.first_response.state == "stopped" and st.resolution.state == "stopped"
