"""The weekly public-response report: how fast and how well the team answered complaints in public.

    rep = weekly_report(store, cfg, "2026-W47")      # default: the last full ISO week
    rep.to_html(), rep.to_csv(), rep.to_json()

A week is an ISO week in `sla.timezone`: Monday 00:00 to the next Monday
00:00, local time. Every figure counts the complaints *posted* in the week
(the customer's post time), measured as of the moment the report is built
(`generated_at`); the exact definition of each figure travels with the
report in `DEFINITIONS` and is printed in every output.

Recurring themes group the week's complaints by the classifier's sentence
embeddings (`classifier.embed`), numpy only: average-linkage agglomerative
clustering that merges the two closest groups while their mean pairwise
cosine similarity is at least `THEME_SIMILARITY`.
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from desk import sla as sla_mod
from desk.config import HearkenConfig
from desk.db import Store
from desk.errors import UserError
from desk.models import Case, Classification, Mention, Reply, now_utc
from desk.untrusted import csv_cell, web_url

THEME_SIMILARITY = 0.6
MAX_THEME_TEXTS = 3000
PRIVATE_WORDS = re.compile(r"\b(dm|dms|direct|private|phone|call|called|email|e-mail|mail|message|pm|chat)\b", re.I)

DEFINITIONS: dict[str, str] = {
    "week": "An ISO week in sla.timezone: Monday 00:00 to the following Monday 00:00, local time (DST-correct). "
            "Every figure below counts posts and complaints whose customer post time falls in the week, "
            "measured as of the moment the report was built (generated_at).",
    "mentions": "Mentions: posts collected from the sources (our own accounts excluded) whose posted time "
                "falls in the week.",
    "complaints": "Complaints: cases (one per complaint thread) whose customer_posted_at falls in the week, "
                  "excluding cases staff dismissed as not a complaint.",
    "dismissed": "Dismissed: cases from the week that staff marked as not a complaint; left out of every other figure.",
    "answered_publicly": "Answered publicly: complaints with a public reply by generated_at. A public reply is a reply "
                         "Hearken posted on the platform (replies.kind = 'public', status 'posted'), or a reply recorded "
                         "as made elsewhere (kind 'elsewhere') that has a link and whose 'where' does not say it was "
                         "private (DM, direct, private, phone, call, email, message, chat); for a case with no reply "
                         "recorded at all, cases.first_response_at (a reply of ours found in the thread). "
                         "The first public reply is the earliest of these.",
    "answered_share": "Share answered publicly: answered publicly / complaints.",
    "first_reply_hours": "Time to first public reply (from the post): over complaints answered publicly, "
                         "first public reply time - customer_posted_at, in wall-clock hours. "
                         "Median and 90th percentile.",
    "detect_reply_hours": "Time to first public reply (from detection): over complaints answered publicly, "
                          "first public reply time - the time Hearken collected the post (mentions.detected_at), "
                          "wall-clock hours, 0 when we replied before we collected it. Median and 90th percentile.",
    "resolution_hours": "Time to resolution: over complaints resolved by generated_at (status 'resolved'), "
                        "resolved_at - customer_posted_at, wall-clock hours. Median and 90th percentile.",
    "first_response_sla": "Within first-response SLA: share of complaints with a verdict whose first response "
                          "(cases.first_response_at: the first reply posted by Hearken or recorded as made elsewhere) "
                          "came at or before cases.first_response_due. The due time counts from the customer's post, "
                          "in business hours when sla.business_hours is set. A complaint still unanswered after its due "
                          "time counts as missed; one unanswered and not yet due, or closed without a reply before its "
                          "due time, has no verdict and is left out.",
    "resolution_sla": "Within resolution SLA: the same for resolution: resolved_at at or before cases.resolution_due; "
                      "unresolved past the due time counts as missed; unresolved and not yet due is left out.",
    "still_open": "Still open: complaints whose case is open or replied (not resolved) at generated_at.",
    "change": "Change: this week's figure minus the previous ISO week's, both measured at generated_at "
              "(shares in percentage points, times in hours).",
    "percentiles": "Median and 90th percentile use linear interpolation between the closest ranks: for n sorted "
                   "values x[0..n-1], the p-th percentile is at rank (n-1)*p.",
    "themes": "Recurring themes: the week's complaints grouped by the classifier's embeddings of their text "
              f"(title and body): groups merge while the mean cosine similarity between their members is at least "
              f"{THEME_SIMILARITY} (average linkage). A theme has two or more complaints; its example is the complaint closest to the "
              "centroid; its words are the most common words across its complaints; root causes are the tags staff "
              "gave when resolving them.",
    "sla_clock_minutes": "CSV sla_clock_minutes_to_first_response: minutes the SLA clock ran from the customer's post "
                         "to the first response (business minutes when business hours are set).",
}

FIGURE_LABELS: list[tuple[str, str, str]] = [
    # (attribute, label, unit: n = count, % = share, h = hours)
    ("mentions", "Mentions", "n"),
    ("complaints", "Complaints", "n"),
    ("answered_share", "Answered publicly", "%"),
    ("first_reply_hours_median", "Median time to first public reply (from post)", "h"),
    ("first_reply_hours_p90", "90th percentile time to first public reply (from post)", "h"),
    ("detect_reply_hours_median", "Median time to first public reply (from detection)", "h"),
    ("detect_reply_hours_p90", "90th percentile time to first public reply (from detection)", "h"),
    ("resolution_hours_median", "Median time to resolution", "h"),
    ("first_response_sla_share", "Within first-response SLA", "%"),
    ("resolution_sla_share", "Within resolution SLA", "%"),
    ("still_open", "Cases still open", "n"),
    ("dismissed", "Dismissed (not complaints)", "n"),
]


class ReportError(UserError, ValueError):
    """A week that is not a valid ISO week (e.g. '2026-W54')."""


# --- weeks ------------------------------------------------------------------------------


def parse_week(week: str, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """'2026-W47' -> (Monday 00:00, next Monday 00:00) local time in `tz`, as aware UTC."""
    m = re.fullmatch(r"(\d{4})-?W(\d{1,2})", week.strip(), re.I)
    if not m:
        raise ReportError(f"expected an ISO week such as 2026-W47, got {week!r}")
    try:
        monday = date.fromisocalendar(int(m.group(1)), int(m.group(2)), 1)
    except ValueError:
        raise ReportError(f"{week!r} is not a week of {m.group(1)}") from None
    start = datetime.combine(monday, time(0), tz)
    end = datetime.combine(monday + timedelta(days=7), time(0), tz)
    return start.astimezone(timezone.utc), end.astimezone(timezone.utc)


def week_name(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def last_full_week(cfg: HearkenConfig, now: datetime | None = None) -> str:
    """The ISO week before the one `now` falls in, in sla.timezone."""
    local = (now or now_utc()).astimezone(ZoneInfo(cfg.sla.timezone)).date()
    return week_name(local - timedelta(days=local.weekday() + 7))


def previous_week(week: str) -> str:
    y, w = re.fullmatch(r"(\d{4})-?W(\d{1,2})", week.strip(), re.I).groups()
    return week_name(date.fromisocalendar(int(y), int(w), 1) - timedelta(days=7))


# --- statistics ---------------------------------------------------------------------------


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


# --- the report's parts -------------------------------------------------------------------


@dataclass
class CaseRow:
    """One case of the week: the CSV's row."""

    case_id: int
    mention_id: int
    platform: str
    source: str
    status: str
    severity: int | None
    topic: str | None
    assignee: str | None
    root_cause: str | None
    author: str
    url: str
    customer_posted_at: datetime
    detected_at: datetime | None
    opened_at: datetime | None
    first_public_reply_at: datetime | None
    first_response_at: datetime | None
    first_response_due: datetime | None
    resolved_at: datetime | None
    resolution_due: datetime | None
    hours_to_first_public_reply: float | None
    hours_to_first_public_reply_from_detection: float | None
    sla_clock_minutes_to_first_response: float | None
    hours_to_resolution: float | None
    first_response_sla: str  # met, missed, pending, none
    resolution_sla: str
    answered_publicly: bool
    theme: int | None = None

    @property
    def is_complaint(self) -> bool:
        return self.status != "dismissed"


@dataclass
class Figures:
    mentions: int = 0
    complaints: int = 0
    dismissed: int = 0
    answered_publicly: int = 0
    answered_share: float | None = None
    first_reply_hours_median: float | None = None
    first_reply_hours_p90: float | None = None
    detect_reply_hours_median: float | None = None
    detect_reply_hours_p90: float | None = None
    resolved: int = 0
    resolution_hours_median: float | None = None
    resolution_hours_p90: float | None = None
    first_response_sla_met: int = 0
    first_response_sla_judged: int = 0
    first_response_sla_share: float | None = None
    resolution_sla_met: int = 0
    resolution_sla_judged: int = 0
    resolution_sla_share: float | None = None
    still_open: int = 0


@dataclass
class Theme:
    number: int
    size: int
    words: list[str]
    example_case_id: int
    example_text: str
    example_url: str
    case_ids: list[int]
    root_causes: dict[str, int]
    topics: dict[str, int]
    platforms: dict[str, int]


@dataclass
class WeeklyReport:
    week: str
    start: datetime
    end: datetime
    timezone: str
    generated_at: datetime
    previous_week: str
    overall: Figures
    platforms: dict[str, Figures]
    previous_overall: Figures
    previous_platforms: dict[str, Figures]
    themes: list[Theme]
    unthemed: int
    rows: list[CaseRow]
    daily: list[dict[str, Any]]
    definitions: dict[str, str] = field(default_factory=lambda: dict(DEFINITIONS))
    notes: list[str] = field(default_factory=list)

    def figures(self, platform: str | None = None, *, previous: bool = False) -> Figures:
        if platform is None:
            return self.previous_overall if previous else self.overall
        table = self.previous_platforms if previous else self.platforms
        return table.get(platform) or Figures()

    def change(self, attr: str, platform: str | None = None) -> float | None:
        """This week's figure minus the previous week's (None when either is missing)."""
        now, before = getattr(self.figures(platform), attr), getattr(self.figures(platform, previous=True), attr)
        if now is None or before is None:
            return None
        return now - before

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(_report_dict(self))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    def to_csv(self) -> str:
        return to_csv(self)

    def to_html(self) -> str:
        return to_html(self)

    def to_text(self) -> str:
        return to_text(self)

    def charts(self) -> list[str]:
        return svg_charts(self)


# --- building ----------------------------------------------------------------------------


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


def _rows(s: Session, cfg: HearkenConfig, start: datetime, end: datetime, as_of: datetime) -> list[CaseRow]:
    pairs = list(s.execute(select(Case, Mention).join(Mention, Mention.id == Case.mention_id)
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


def _mention_counts(s: Session, start: datetime, end: datetime) -> dict[str, int]:
    return dict(s.execute(select(Mention.platform, func.count()).where(Mention.posted_at >= start,
                                                                       Mention.posted_at < end)
                          .group_by(Mention.platform)).all())


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


def _by_platform(rows: list[CaseRow], mentions: dict[str, int]) -> tuple[Figures, dict[str, Figures]]:
    platforms = sorted(set(mentions) | {r.platform for r in rows})
    per = {p: figures_for([r for r in rows if r.platform == p], mentions.get(p, 0)) for p in platforms}
    return figures_for(rows, sum(mentions.values())), per


def _daily(rows: list[CaseRow], start: datetime, tz: ZoneInfo) -> list[dict[str, Any]]:
    first = start.astimezone(tz).date()
    days = [first + timedelta(days=i) for i in range(7)]
    out = []
    for d in days:
        todays = [r for r in rows if r.is_complaint and r.customer_posted_at.astimezone(tz).date() == d]
        out.append({"date": d.isoformat(), "day": d.strftime("%a"), "complaints": len(todays),
                    "answered_publicly": sum(1 for r in todays if r.answered_publicly)})
    return out


def build(session: Session, cfg: HearkenConfig, week: str | None = None, *, now: datetime | None = None,
          embed: Callable[[Sequence[str]], Any] | None = None) -> WeeklyReport:
    """The report for `week` (default: the last full week) from an open session, as of `now`."""
    as_of = now or now_utc()
    tz = ZoneInfo(cfg.sla.timezone)
    week = week or last_full_week(cfg, as_of)
    start, end = parse_week(week, tz)
    prev = previous_week(week)
    pstart, pend = parse_week(prev, tz)
    rows = _rows(session, cfg, start, end, as_of)
    prev_rows = _rows(session, cfg, pstart, pend, as_of)
    overall, platforms = _by_platform(rows, _mention_counts(session, start, end))
    prev_overall, prev_platforms = _by_platform(prev_rows, _mention_counts(session, pstart, pend))
    notes: list[str] = []
    if as_of < end:
        notes.append(f"The week is not over yet (built {as_of.astimezone(tz):%Y-%m-%d %H:%M}); figures are partial.")
    themes, unthemed = _themes(session, rows, embed, notes, cfg.brand.terms)
    return WeeklyReport(week=_canonical(week), start=start, end=end, timezone=cfg.sla.timezone, generated_at=as_of,
                        previous_week=prev, overall=overall, platforms=platforms, previous_overall=prev_overall,
                        previous_platforms=prev_platforms, themes=themes, unthemed=unthemed, rows=rows,
                        daily=_daily(rows, start, tz), notes=notes)


def _canonical(week: str) -> str:
    y, w = re.fullmatch(r"(\d{4})-?W(\d{1,2})", week.strip(), re.I).groups()
    return f"{int(y)}-W{int(w):02d}"


def weekly_report(store: Store, cfg: HearkenConfig, week: str | None = None, *, now: datetime | None = None,
                  embed: Callable[[Sequence[str]], Any] | None = None) -> WeeklyReport:
    """The weekly public-response report (the dashboard's Metrics page and `hearken report` call this)."""
    with store.session() as s:
        return build(s, cfg, week, now=now, embed=embed)


# --- themes -----------------------------------------------------------------------------


def cluster(vectors, threshold: float = THEME_SIMILARITY) -> list[list[int]]:
    """Average-linkage agglomerative clustering by cosine similarity, numpy only.

    `vectors` are L2-normalised rows. Repeatedly merges the two groups whose mean pairwise cosine
    similarity is highest, while it is at least `threshold`. For unit vectors that mean is
    sum(A) . sum(B) / (|A| |B|), so after a merge the new group's row is the size-weighted mean of
    the two old rows (Lance-Williams), O(n) per merge. Each group keeps
    its nearest neighbour, so finding the next merge is a scan of n values, not of the n x n
    matrix (3,000 complaints: well under a second instead of tens of seconds). Returns groups of
    row indexes, largest first.
    """
    import numpy as np

    x = np.asarray(vectors, dtype=np.float64)
    n = len(x)
    if n == 0:
        return []
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    sizes = np.ones(n)
    sim = x @ x.T
    np.fill_diagonal(sim, -np.inf)
    members: list[list[int]] = [[i] for i in range(n)]
    alive = np.ones(n, dtype=bool)
    nearest = sim.argmax(axis=1)
    nearest_sim = sim[np.arange(n), nearest]
    while True:
        i = int(np.argmax(nearest_sim))
        if not nearest_sim[i] >= threshold:
            break
        j = int(nearest[i])
        members[i] += members[j]
        members[j] = []
        alive[j] = False
        # average linkage (Lance-Williams): the merged group's mean similarity to k is the
        # size-weighted mean of i's and j's, the same value as sum(A).sum(B) / (|A| |B|)
        row = (sizes[i] * sim[i] + sizes[j] * sim[j]) / (sizes[i] + sizes[j])
        sizes[i] += sizes[j]
        row[~alive] = -np.inf
        row[i] = -np.inf
        sim[i, :] = row
        sim[:, i] = row
        sim[j, :] = -np.inf
        sim[:, j] = -np.inf
        nearest_sim[j] = -np.inf
        # groups whose nearest neighbour was i or j look again; the rest only compare with the new i
        stale = np.flatnonzero(alive & ((nearest == i) | (nearest == j)))
        for k in stale:
            nearest[k] = int(np.argmax(sim[k]))
            nearest_sim[k] = sim[k, nearest[k]]
        closer = alive & (row > nearest_sim)
        nearest[closer] = i
        nearest_sim[closer] = row[closer]
        nearest[i] = int(np.argmax(row))
        nearest_sim[i] = row[nearest[i]]
    groups = [sorted(m) for m in members if m]
    return sorted(groups, key=lambda g: (-len(g), g[0]))


_STOP = set("""a about after again all also am an and any are as at be been before being but by can cannot could did do
does doing don't for from get got had has have having he her here him his how i i'm i've if in into is it it's its
just me more my no not now of off on once one only or our out over own same she so some still such than that the
their them then there these they this those through to too under until up very was we were what when where which
while who why will with would you your yours im ive dont cant wont didnt isnt doesnt since been even ever every
again still yet really please thanks thank hi hello day days today week time""".split())


def _words(texts: list[str], brand_terms: list[str], k: int = 3) -> list[str]:
    brand = {w.casefold() for t in brand_terms for w in re.findall(r"[\w']+", t)}
    counts: Counter[str] = Counter()
    for t in texts:
        seen = {w for w in re.findall(r"[a-z][a-z']{2,}", t.casefold()) if w not in _STOP and w not in brand}
        counts.update(seen)
    return [w for w, _ in counts.most_common(k)]


def _themes(s: Session, rows: list[CaseRow], embed: Callable | None, notes: list[str],
            brand_terms: list[str]) -> tuple[list[Theme], int]:
    complaints = [r for r in rows if r.is_complaint][:MAX_THEME_TEXTS]
    if len(complaints) < 2:
        return [], len(complaints)
    mentions = {m.id: m for m in s.scalars(select(Mention).where(Mention.id.in_([r.mention_id for r in complaints])))}
    texts = [_text(mentions[r.mention_id]) for r in complaints]
    try:
        import numpy as np

        vecs = _vectors(s, complaints, texts, embed)
    except Exception as exc:  # the themes are a bonus: the figures stand without them
        notes.append(f"Themes left out: the classifier's embeddings were not available ({type(exc).__name__}: {exc}).")
        return [], len(complaints)
    themes = []
    grouped = 0
    for group in cluster(vecs, THEME_SIMILARITY):
        if len(group) < 2:
            continue
        centroid = vecs[group].sum(axis=0)
        best = max(group, key=lambda i: float(vecs[i] @ centroid))
        number = len(themes) + 1
        members = [complaints[i] for i in group]
        for r in members:
            r.theme = number
        grouped += len(group)
        ex = complaints[best]
        themes.append(Theme(
            number=number, size=len(group), words=_words([texts[i] for i in group], brand_terms),
            example_case_id=ex.case_id, example_text=_clip(texts[best], 280), example_url=ex.url,
            case_ids=sorted(r.case_id for r in members),
            root_causes=dict(Counter(r.root_cause for r in members if r.root_cause).most_common()),
            topics=dict(Counter(r.topic for r in members if r.topic).most_common()),
            platforms=dict(Counter(r.platform for r in members).most_common())))
    return themes, len(complaints) - grouped


def _vectors(s: Session, complaints: list[CaseRow], texts: list[str], embed: Callable | None):
    """The complaints' embeddings: those stored at classification time by the current model, the rest computed.

    A vector stored by another model version is not comparable and is computed again. A caller that
    passes its own `embed` (tests, benchmarks) gets that function for every text.
    """
    import numpy as np

    if embed is not None:
        return np.asarray(embed(texts), dtype=np.float64)
    import classifier

    from desk.pipeline import unpack_vector

    model = classifier.load()
    stored = dict(s.execute(select(Classification.mention_id, Classification.embedding)
                            .where(Classification.mention_id.in_([r.mention_id for r in complaints]),
                                   Classification.model_version == model.version,
                                   Classification.embedding.is_not(None))).all())
    missing = [i for i, r in enumerate(complaints) if r.mention_id not in stored]
    computed = model.embed([texts[i] for i in missing]) if missing else None
    rows = [unpack_vector(stored[r.mention_id]) if r.mention_id in stored else None for r in complaints]
    for k, i in enumerate(missing):
        rows[i] = computed[k]
    return np.asarray(rows, dtype=np.float64)


def _text(m: Mention) -> str:
    return f"{m.title}\n\n{m.body}".strip() if m.title else m.body


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3].rstrip() + "..."


# --- outputs ------------------------------------------------------------------------------


CSV_COLUMNS = [f.name for f in fields(CaseRow)]


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, datetime):
        return v.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    if isinstance(v, float):
        return f"{v:.2f}"
    return str(v)


def _csv_value(v: Any) -> str:
    # text came from customers, platforms or staff: never let a spreadsheet run it (numbers stay numbers)
    return csv_cell(v) if isinstance(v, str) else _cell(v)


def to_csv(rep: WeeklyReport) -> str:
    """One row per case posted in the week (dismissed ones included, with their status); times in UTC.

    A text cell beginning with = + - @, tab or CR gets a leading apostrophe, so it opens as text."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(CSV_COLUMNS)
    for r in rep.rows:
        w.writerow([_csv_value(getattr(r, c)) for c in CSV_COLUMNS])
    return buf.getvalue()


def _jsonable(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, float):
        return round(v, 4)
    return v


def _report_dict(rep: WeeklyReport) -> dict[str, Any]:
    changes = {"overall": {a: rep.change(a) for a, _, _ in FIGURE_LABELS}}
    for p in rep.platforms:
        changes[p] = {a: rep.change(a, p) for a, _, _ in FIGURE_LABELS}
    return {
        "week": rep.week, "start": rep.start, "end": rep.end, "timezone": rep.timezone,
        "generated_at": rep.generated_at, "previous_week": rep.previous_week,
        "overall": asdict(rep.overall), "platforms": {p: asdict(f) for p, f in rep.platforms.items()},
        "previous": {"overall": asdict(rep.previous_overall),
                     "platforms": {p: asdict(f) for p, f in rep.previous_platforms.items()}},
        "change": changes,
        "themes": [asdict(t) for t in rep.themes], "unthemed_complaints": rep.unthemed,
        "daily": rep.daily, "cases": [asdict(r) for r in rep.rows],
        "definitions": rep.definitions, "notes": rep.notes,
    }


def fmt(value: float | int | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "%":
        return f"{value * 100:.0f}%"
    if unit == "h":
        return f"{value:.1f} h"
    return f"{value:g}"


def fmt_change(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "%":
        return f"{value * 100:+.0f} pts"
    if unit == "h":
        return f"{value:+.1f} h"
    return f"{value:+g}"


def headline(rep: WeeklyReport) -> str:
    o = rep.overall
    return (f"{o.complaints} complaints, {fmt(o.answered_share, '%')} answered publicly, "
            f"median first reply {fmt(o.first_reply_hours_median, 'h')}")


def to_text(rep: WeeklyReport) -> str:
    tz = ZoneInfo(rep.timezone)
    lines = [f"Hearken weekly public-response report, {rep.week}",
             f"{rep.start.astimezone(tz):%a %d %b %Y} to {(rep.end.astimezone(tz) - timedelta(days=1)):%a %d %b %Y} "
             f"({rep.timezone}); as of {rep.generated_at.astimezone(tz):%Y-%m-%d %H:%M}", ""]
    lines += rep.notes
    platforms = list(rep.platforms)
    width = max(len(label) for _, label, _ in FIGURE_LABELS)
    lines.append(" " * width + "  " + "  ".join(f"{h:>12}" for h in ["overall", f"vs {rep.previous_week}"]
                                                  + platforms))
    for attr, label, unit in FIGURE_LABELS:
        cells = [fmt(getattr(rep.overall, attr), unit), fmt_change(rep.change(attr), unit)]
        cells += [fmt(getattr(rep.platforms[p], attr), unit) for p in platforms]
        lines.append(f"{label:<{width}}  " + "  ".join(f"{c:>12}" for c in cells))
    if rep.themes:
        lines += ["", "Recurring complaint themes:"]
        for t in rep.themes:
            causes = ", ".join(f"{k} {v}" for k, v in t.root_causes.items()) or "no root cause yet"
            lines.append(f"  {t.number}. {', '.join(t.words)} ({t.size} complaints; {causes}); "
                         f"e.g. case #{t.example_case_id}: \"{_clip(t.example_text, 120)}\"")
    lines += ["", "Definitions:"] + [f"  {k}: {v}" for k, v in rep.definitions.items()]
    return "\n".join(lines) + "\n"


def to_html(rep: WeeklyReport) -> str:
    """A self-contained HTML page: figures with their change, inline SVG charts, themes, cases, definitions."""
    tz = ZoneInfo(rep.timezone)
    e = html.escape
    platforms = list(rep.platforms)
    head = "".join(f"<th>{e(h)}</th>" for h in ["", "Overall", f"Change vs {rep.previous_week}"] + platforms)
    body = []
    for attr, label, unit in FIGURE_LABELS:
        cells = [fmt(getattr(rep.overall, attr), unit), fmt_change(rep.change(attr), unit)]
        for p in platforms:
            ch = fmt_change(rep.change(attr, p), unit)
            cells.append(fmt(getattr(rep.platforms[p], attr), unit) + (f" <small>({e(ch)})</small>" if ch != "-" else ""))
        body.append(f"<tr><th scope='row'>{e(label)}</th>" + "".join(f"<td>{c if '<small>' in c else e(c)}</td>"
                                                                      for c in cells) + "</tr>")
    figures = f"<table class='fig'><tr>{head}</tr>{''.join(body)}</table>"

    charts = svg_charts(rep)

    theme_rows = "".join(
        f"<tr><td>{t.number}</td><td>{e(', '.join(t.words))}</td><td>{t.size}</td>"
        f"<td>{e(', '.join(f'{k} ({v})' for k, v in t.root_causes.items()) or '-')}</td>"
        f"<td>{e(', '.join(f'{k} ({v})' for k, v in t.platforms.items()))}</td>"
        f"<td>{_example_link(t)}: <q>{e(t.example_text)}</q></td></tr>"
        for t in rep.themes)
    themes = (f"<table><tr><th>#</th><th>Common words</th><th>Complaints</th><th>Root causes given</th>"
              f"<th>Platforms</th><th>Example</th></tr>{theme_rows}</table>"
              f"<p>{rep.unthemed} complaint(s) fell in no recurring theme.</p>" if rep.themes
              else "<p>No recurring themes this week.</p>")

    case_cols = ["case_id", "platform", "status", "severity", "assignee", "root_cause", "customer_posted_at",
                 "hours_to_first_public_reply", "hours_to_resolution", "first_response_sla", "resolution_sla"]
    case_rows = "".join("<tr>" + "".join(f"<td>{e(_cell(getattr(r, c)))}</td>" for c in case_cols) + "</tr>"
                        for r in rep.rows)
    cases = (f"<details><summary>{len(rep.rows)} case(s)</summary><table><tr>"
             + "".join(f"<th>{e(c)}</th>" for c in case_cols) + f"</tr>{case_rows}</table></details>")
    definitions = "<dl>" + "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in rep.definitions.items()) + "</dl>"
    notes = "".join(f"<p class='note'>{e(n)}</p>" for n in rep.notes)
    period = (f"{rep.start.astimezone(tz):%a %d %b %Y} to {(rep.end.astimezone(tz) - timedelta(days=1)):%a %d %b %Y} "
              f"({rep.timezone}); as of {rep.generated_at.astimezone(tz):%Y-%m-%d %H:%M}")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Hearken weekly report {e(rep.week)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 70em; }}
table {{ border-collapse: collapse; margin: 1em 0; }} td, th {{ border: 1px solid #ccc; padding: .3em .6em; }}
table.fig td {{ text-align: right; white-space: nowrap; }} th[scope=row] {{ text-align: left; font-weight: normal; }}
.note {{ color: #a33; }} dt {{ font-weight: bold; margin-top: .5em; }} svg {{ margin: .5em 1em .5em 0; }}
</style></head><body>
<h1>Weekly public-response report {e(rep.week)}</h1>
<p>{e(period)}</p>{notes}
<h2>Figures</h2>{figures}
<h2>Charts</h2>{''.join(charts)}
<h2>Recurring complaint themes</h2>{themes}
<h2>Cases</h2>{cases}
<h2>Definitions</h2>{definitions}
</body></html>
"""


def _example_link(t: Theme) -> str:
    """The theme's example case, linked to its post only when that is an http(s) address."""
    url = web_url(t.example_url)
    label = f"#{t.example_case_id}"
    return f"<a href=\"{html.escape(url)}\">{label}</a>" if url else label


def svg_charts(rep: WeeklyReport) -> list[str]:
    """The report's charts as inline SVG strings (also usable by the dashboard with st.html)."""
    platforms = list(rep.platforms)
    charts = [
        bar_chart("Time to first public reply, hours (from the customer's post)", ["overall"] + platforms,
                  [("median", [rep.overall.first_reply_hours_median]
                    + [rep.platforms[p].first_reply_hours_median for p in platforms], "#4c78a8"),
                   ("90th percentile", [rep.overall.first_reply_hours_p90]
                    + [rep.platforms[p].first_reply_hours_p90 for p in platforms], "#f58518")]),
        bar_chart("Complaints per day, and how many were answered publicly", [d["day"] for d in rep.daily],
                  [("complaints", [d["complaints"] for d in rep.daily], "#9ecae9"),
                   ("answered publicly", [d["answered_publicly"] for d in rep.daily], "#54a24b")]),
        bar_chart(f"Share within SLA, % ({rep.week} and {rep.previous_week})", ["first response", "resolution"],
                  [(rep.previous_week, [_pct(rep.previous_overall.first_response_sla_share),
                                        _pct(rep.previous_overall.resolution_sla_share)], "#bab0ac"),
                   (rep.week, [_pct(rep.overall.first_response_sla_share),
                               _pct(rep.overall.resolution_sla_share)], "#4c78a8")]),
    ]
    if rep.themes:
        charts.append(bar_chart("Complaints per recurring theme", [f"{t.number}. {', '.join(t.words[:2])}"
                                                                   for t in rep.themes[:10]],
                                [("complaints", [t.size for t in rep.themes[:10]], "#e45756")]))

    return charts


def _pct(v: float | None) -> float | None:
    return None if v is None else v * 100


def bar_chart(title: str, labels: list[str], series: list[tuple[str, list[float | None], str]],
              width: int = 520, height: int = 240) -> str:
    """A grouped bar chart as inline SVG (no scripts); missing values draw no bar."""
    e = html.escape
    values = [v for _, vs, _ in series for v in vs if v is not None]
    top = max(values) if values else 1.0
    top = top if top > 0 else 1.0
    left, bottom, plot_h = 40, 50, height - 90
    plot_w = width - left - 10
    group_w = plot_w / max(1, len(labels))
    bar_w = group_w * 0.8 / max(1, len(series))
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' role='img' "
             f"aria-label='{e(title)}' style='font: 11px sans-serif'>",
             f"<text x='0' y='14' style='font-weight:bold'>{e(title)}</text>",
             f"<line x1='{left}' y1='{height - bottom}' x2='{width - 10}' y2='{height - bottom}' stroke='#999'/>",
             f"<text x='{left - 4}' y='{height - bottom - plot_h + 4}' text-anchor='end'>{top:.3g}</text>",
             f"<text x='{left - 4}' y='{height - bottom}' text-anchor='end'>0</text>"]
    for gi, label in enumerate(labels):
        gx = left + gi * group_w + group_w * 0.1
        for si, (name, vs, color) in enumerate(series):
            v = vs[gi] if gi < len(vs) else None
            if v is None:
                continue
            h = plot_h * v / top
            x = gx + si * bar_w
            parts.append(f"<rect x='{x:.1f}' y='{height - bottom - h:.1f}' width='{bar_w - 1:.1f}' height='{h:.1f}' "
                         f"fill='{color}'><title>{e(name)}: {v:.3g}</title></rect>")
        parts.append(f"<text x='{gx + group_w * 0.4:.1f}' y='{height - bottom + 14}' text-anchor='middle'>"
                     f"{e(label[:18])}</text>")
    for si, (name, _, color) in enumerate(series):
        x = left + si * 140
        parts.append(f"<rect x='{x}' y='{height - 18}' width='10' height='10' fill='{color}'/>"
                     f"<text x='{x + 14}' y='{height - 9}'>{e(name)}</text>")
    parts.append("</svg>")
    return "".join(parts)


def output_dir(cfg: HearkenConfig) -> Path:
    """report.output_dir, relative to the config file's folder."""
    out = Path(cfg.report.output_dir)
    if not out.is_absolute():
        out = (cfg.path.parent if cfg.path else Path.cwd()) / out
    return out.resolve()


def write_files(rep: WeeklyReport, out_dir: Path, formats: Sequence[str] = ("html", "csv", "json")) -> list[Path]:
    """Write hearken-report-<week>.<format> files; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    render = {"html": to_html, "csv": to_csv, "json": lambda r: r.to_json()}
    written = []
    for f in formats:
        if f not in render:
            raise ReportError(f"unknown format {f!r}; expected html, csv or json")
        path = out_dir / f"hearken-report-{rep.week}.{f}"
        path.write_text(render[f](rep), encoding="utf-8", newline="")
        written.append(path)
    return written


# --- the dashboard's Metrics page ---------------------------------------------------------


def recent_weeks(cfg: HearkenConfig, now: datetime | None = None, count: int = 12) -> list[str]:
    """The last `count` full ISO weeks, newest first, then the week in progress last."""
    local = (now or now_utc()).astimezone(ZoneInfo(cfg.sla.timezone)).date()
    monday = local - timedelta(days=local.weekday())
    return [week_name(monday - timedelta(days=7 * i)) for i in range(1, count + 1)] + [week_name(monday)]


def _md(text: str) -> str:
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|>~<$])", r"\\\1", text)


def dashboard_view(st, store: Store, cfg: HearkenConfig, *, now: datetime | None = None,
                   embed: Callable[[Sequence[str]], Any] | None = None) -> WeeklyReport:
    """Draw the weekly report with the Streamlit module `st` (the Metrics page passes it in).

    desk/ never imports Streamlit itself: the page hands over `st`. Returns the report shown.
    """
    import pandas as pd

    weeks = recent_weeks(cfg, now)
    week = st.selectbox("Week", weeks, index=0, key="report_week",
                        format_func=lambda w: w + (" (in progress)" if w == weeks[-1] else ""))
    rep = weekly_report(store, cfg, week, now=now, embed=embed)
    tz = ZoneInfo(rep.timezone)
    st.caption(f"{rep.start.astimezone(tz):%a %d %b %Y} to {(rep.end.astimezone(tz) - timedelta(days=1)):%a %d %b %Y} "
               f"({rep.timezone}), as of {rep.generated_at.astimezone(tz):%Y-%m-%d %H:%M}; "
               f"change against {rep.previous_week}.")
    for note in rep.notes:
        st.info(note)

    tiles = [("complaints", "Complaints", "n", "normal"), ("answered_share", "Answered publicly", "%", "normal"),
             ("first_reply_hours_median", "Median first public reply", "h", "inverse"),
             ("first_reply_hours_p90", "90th pct first public reply", "h", "inverse"),
             ("first_response_sla_share", "Within first-response SLA", "%", "normal"),
             ("resolution_sla_share", "Within resolution SLA", "%", "normal"),
             ("resolution_hours_median", "Median time to resolution", "h", "inverse"),
             ("still_open", "Still open", "n", "off")]
    for row in (tiles[:4], tiles[4:]):
        for col, (attr, label, unit, colour) in zip(st.columns(4), row):
            change = fmt_change(rep.change(attr), unit)
            col.metric(label, fmt(getattr(rep.overall, attr), unit), None if change == "-" else change,
                       delta_color=colour)

    st.subheader("Per platform")
    table = {"": [label for _, label, _ in FIGURE_LABELS],
             "overall": [fmt(getattr(rep.overall, a), u) for a, _, u in FIGURE_LABELS],
             f"change vs {rep.previous_week}": [fmt_change(rep.change(a), u) for a, _, u in FIGURE_LABELS]}
    for p, f in rep.platforms.items():
        table[p] = [fmt(getattr(f, a), u) for a, _, u in FIGURE_LABELS]
    st.dataframe(pd.DataFrame(table).set_index(""), use_container_width=True)

    left, right = st.columns(2)
    with left:
        st.caption("Complaints per day, and how many were answered publicly")
        st.bar_chart(pd.DataFrame({"complaints": [d["complaints"] for d in rep.daily],
                                   "answered publicly": [d["answered_publicly"] for d in rep.daily]},
                                  index=[f"{i + 1} {d['day']}" for i, d in enumerate(rep.daily)]), stack=False)
    with right:
        st.caption("Hours to first public reply (from the customer's post)")
        names = ["overall"] + list(rep.platforms)
        figs = [rep.overall] + list(rep.platforms.values())
        st.bar_chart(pd.DataFrame({"median": [f.first_reply_hours_median for f in figs],
                                   "90th percentile": [f.first_reply_hours_p90 for f in figs]}, index=names),
                     stack=False)

    st.subheader("Recurring complaint themes")
    if rep.themes:
        st.dataframe(pd.DataFrame([{"theme": t.number, "common words": ", ".join(t.words), "complaints": t.size,
                                    "root causes": ", ".join(f"{k} ({v})" for k, v in t.root_causes.items()),
                                    "example": f"#{t.example_case_id}: {t.example_text}"} for t in rep.themes]),
                     hide_index=True, use_container_width=True)
        st.caption(f"{rep.unthemed} complaint(s) in no recurring theme.")
    else:
        st.caption("No recurring themes this week.")

    with st.expander(f"Cases ({len(rep.rows)})"):
        cols = ["case_id", "platform", "status", "severity", "assignee", "root_cause", "customer_posted_at",
                "hours_to_first_public_reply", "hours_to_resolution", "first_response_sla", "resolution_sla"]
        st.dataframe(pd.DataFrame([{c: _cell(getattr(r, c)) for c in cols} for r in rep.rows], columns=cols),
                     hide_index=True, use_container_width=True)

    a, b, c = st.columns(3)
    a.download_button("Download HTML", to_html(rep), file_name=f"hearken-report-{rep.week}.html",
                      mime="text/html", key="report_dl_html")
    b.download_button("Download CSV (one row per case)", to_csv(rep), file_name=f"hearken-report-{rep.week}.csv",
                      mime="text/csv", key="report_dl_csv")
    c.download_button("Download JSON", rep.to_json(), file_name=f"hearken-report-{rep.week}.json",
                      mime="application/json", key="report_dl_json")
    with st.expander("Definitions of every figure"):
        for k, v in rep.definitions.items():
            st.markdown(f"**{_md(k)}**: {_md(v)}")
    return rep
