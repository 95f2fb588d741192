"""The weekly report's figures: which cases a week holds (SQL), and the statistics over them.

A case belongs to the week its customer posted in; every time is measured as of the moment the report is
built. How each figure is counted is written out in `definitions.DEFINITIONS`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from desk.cases import sla as sla_mod
from desk.config.schema import HearkenConfig
from desk.store.models import Case, MentionRow, Reply
from desk.reports.weekly.values import CaseRow, Figures

PRIVATE_WORDS = re.compile(r"\b(dm|dms|direct|private|phone|call|called|email|e-mail|mail|message|pm|chat)\b", re.I)


def percentile(values: Sequence[float], p: float) -> float | None:
    """p in [0, 1], linear interpolation between closest ranks; None for no values."""
    if not values:
        return None
    xs = sorted(values)
    h = (len(xs) - 1) * p
    lo = math.floor(h)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (h - lo) * (xs[hi] - xs[lo])


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _hours(a: datetime, b: datetime) -> float:
    return (b - a).total_seconds() / 3600


def _public_reply_times(s: Session, case_ids: list[int]) -> tuple[dict[int, datetime], set[int]]:
    """Earliest public reply per case, and the cases with any reply recorded at all."""
    first: dict[int, datetime] = {}
    any_reply: set[int] = set()
    for chunk in range(0, len(case_ids), 500):
        ids = case_ids[chunk:chunk + 500]
        for r in s.scalars(select(Reply).where(Reply.case_id.in_(ids))):
            any_reply.add(r.case_id)
            if r.status != "posted" or r.posted_at is None:
                continue
            public = r.kind == "public" or (r.kind == "elsewhere" and bool(r.url)
                                             and not PRIVATE_WORDS.search(r.platform or ""))
            if public and (r.case_id not in first or r.posted_at < first[r.case_id]):
                first[r.case_id] = r.posted_at
    return first, any_reply


def _verdict(state: str) -> str:
    return {"met": "met", "breached": "missed", "running": "pending"}.get(state, "none")


def case_rows(s: Session, cfg: HearkenConfig, start: datetime, end: datetime, as_of: datetime) -> list[CaseRow]:
    """One row per case whose customer posted in [start, end), as it stood at `as_of`."""
    pairs = list(s.execute(select(Case, MentionRow).join(MentionRow, MentionRow.id == Case.mention_id)
                           .where(Case.customer_posted_at >= start, Case.customer_posted_at < end)
                           .order_by(Case.customer_posted_at, Case.id)).tuples())
    public, any_reply = _public_reply_times(s, [c.id for c, _ in pairs])
    rows = []
    for case, m in pairs:
        reply_at = public.get(case.id)
        if reply_at is None and case.id not in any_reply and case.first_response_at is not None:
            reply_at = case.first_response_at
        if reply_at is not None and reply_at > as_of:
            reply_at = None
        st = sla_mod.status(case, cfg.sla, as_of)
        resolved = (case.resolved_at if case.status == "resolved" and case.resolved_at is not None
                    and case.resolved_at <= as_of else None)
        rows.append(CaseRow(
            case_id=case.id, mention_id=m.id, platform=case.platform, source=case.source, status=case.status,
            severity=case.severity, topic=case.topic, assignee=case.assignee, root_cause=case.root_cause,
            author=m.author, url=m.url, customer_posted_at=case.customer_posted_at, detected_at=m.detected_at,
            opened_at=case.opened_at, first_public_reply_at=reply_at, first_response_at=case.first_response_at,
            first_response_due=st.first_response.due, resolved_at=case.resolved_at,
            resolution_due=st.resolution.due,
            hours_to_first_public_reply=_hours(case.customer_posted_at, reply_at) if reply_at else None,
            hours_to_first_public_reply_from_detection=(max(0.0, _hours(m.detected_at, reply_at))
                                                        if reply_at and m.detected_at else None),
            sla_clock_minutes_to_first_response=(sla_mod.clock_minutes(cfg.sla, case.customer_posted_at,
                                                                       case.first_response_at)
                                                 if case.first_response_at else None),
            hours_to_resolution=_hours(case.customer_posted_at, resolved) if resolved else None,
            first_response_sla=_verdict(st.first_response.state) if case.status != "dismissed" else "none",
            resolution_sla=_verdict(st.resolution.state) if case.status != "dismissed" else "none",
            answered_publicly=reply_at is not None))
    return rows


def mention_counts(s: Session, start: datetime, end: datetime) -> dict[str, int]:
    """Mentions posted in [start, end), per platform."""
    return dict(s.execute(select(MentionRow.platform, func.count()).where(MentionRow.posted_at >= start,
                                                                       MentionRow.posted_at < end)
                          .group_by(MentionRow.platform)).all())


def figures_for(rows: list[CaseRow], mentions: int) -> Figures:
    complaints = [r for r in rows if r.is_complaint]
    answered = [r for r in complaints if r.answered_publicly]
    from_post = [r.hours_to_first_public_reply for r in answered]
    from_detect = [r.hours_to_first_public_reply_from_detection for r in answered
                   if r.hours_to_first_public_reply_from_detection is not None]
    resolved = [r.hours_to_resolution for r in complaints if r.hours_to_resolution is not None]
    fr = [r.first_response_sla for r in complaints if r.first_response_sla in ("met", "missed")]
    rs = [r.resolution_sla for r in complaints if r.resolution_sla in ("met", "missed")]
    return Figures(
        mentions=mentions, complaints=len(complaints), dismissed=len(rows) - len(complaints),
        answered_publicly=len(answered), answered_share=_share(len(answered), len(complaints)),
        first_reply_hours_median=percentile(from_post, 0.5), first_reply_hours_p90=percentile(from_post, 0.9),
        detect_reply_hours_median=percentile(from_detect, 0.5), detect_reply_hours_p90=percentile(from_detect, 0.9),
        resolved=len(resolved), resolution_hours_median=percentile(resolved, 0.5),
        resolution_hours_p90=percentile(resolved, 0.9),
        first_response_sla_met=fr.count("met"), first_response_sla_judged=len(fr),
        first_response_sla_share=_share(fr.count("met"), len(fr)),
        resolution_sla_met=rs.count("met"), resolution_sla_judged=len(rs),
        resolution_sla_share=_share(rs.count("met"), len(rs)),
        still_open=sum(1 for r in complaints if r.status in ("open", "replied")))


def by_platform(rows: list[CaseRow], mentions: dict[str, int]) -> tuple[Figures, dict[str, Figures]]:
    """The figures of all platforms together, and of each platform that has a mention or a case."""
    platforms = sorted(set(mentions) | {r.platform for r in rows})
    per = {p: figures_for([r for r in rows if r.platform == p], mentions.get(p, 0)) for p in platforms}
    return figures_for(rows, sum(mentions.values())), per


def daily(rows: list[CaseRow], start: datetime, tz: ZoneInfo) -> list[dict[str, Any]]:
    """The seven days of the week from `start` (local days in `tz`): complaints, and those answered publicly."""
    first = start.astimezone(tz).date()
    days = [first + timedelta(days=i) for i in range(7)]
    out = []
    for d in days:
        todays = [r for r in rows if r.is_complaint and r.customer_posted_at.astimezone(tz).date() == d]
        out.append({"date": d.isoformat(), "day": d.strftime("%a"), "complaints": len(todays),
                    "answered_publicly": sum(1 for r in todays if r.answered_publicly)})
    return out
