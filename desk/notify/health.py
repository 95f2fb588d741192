"""What is broken right now, for the banner every dashboard page carries: email delivery and sources.

Each `Trouble` names what is wrong, in words a person reads at a glance, the last error once, and
where to fix it (the config key with its file and line, and the Sources page). Nothing here is shown
only in a log: the dashboard draws every item on every page until it is fixed.

- Email: an alert that failed for good in the last week, emails being retried, or emails waiting
  longer than `STUCK` with nobody trying them (the runner, which sends them, is not running).
- Runners: a `hearken run` that has not written its heartbeat for `RUNNER_QUIET` without having
  stopped (it cannot write to the database, locked or unreachable, or it died), and one whose
  database outage ended within `RECENT_OUTAGE` (its polls, classification and alerts waited).
- Sources: an enabled source that is failing, whose credentials were refused, that the runner disabled
  (credentials missing), that has found no new mention for `alerts.rules.source_silent_minutes`, or
  that has not been polled for much longer than its interval (the runner is not running), that set
  items aside (desk/intake/set_aside.py) nobody has looked at yet, or whose platform gave a warning about
  itself (its post ids went backwards: desk/intake/source_warnings.py) nobody has looked at yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select

from desk.intake import set_aside
from desk.intake import source_warnings
from desk.config.schema import HearkenConfig, key_location
from desk.notify.outbox import EMAIL  # the rows the mailer sends; channels: desk/notify/channel_health.py
from desk.store.db import Store
from desk.store.models import Outbox, RunnerState, now_utc
from desk.cases.sla import human_duration
from desk.intake.sources import SourceHealth, source_health

STUCK = timedelta(minutes=5)  # the runner tries the outbox every 15 s: older untried rows mean nobody is sending
FAILED_RECENTLY = timedelta(days=7)
RUNNER_QUIET = timedelta(seconds=60)  # a runner writes its heartbeat every 5 s: this long without one means trouble
RECENT_OUTAGE = timedelta(minutes=15)



@dataclass(frozen=True)
class Trouble:
    kind: str  # "email" or "source"
    name: str  # the source's name, or "email"
    headline: str
    detail: str | None
    fix: str


@dataclass(frozen=True)
class Delivery:
    """The email queue as the Sources page shows it."""

    pending: int
    retrying: int
    failed: int
    failed_recently: int
    oldest_pending_at: datetime | None
    last_error: str | None
    next_retry_at: datetime | None
    unknown: int = 0  # may or may not have arrived: waiting for a person
    refused: tuple[tuple[int, str, str], ...] = ()  # (email id, kind, address) refused for good in the last week
    unknown_to: tuple[tuple[int, str, str], ...] = ()  # (email id, kind, address) that may not have got it


def _ago(now: datetime, at: datetime) -> str:
    seconds = (now - at).total_seconds()
    return "under a minute" if seconds < 60 else human_duration(seconds)


def delivery(store: Store, *, now: datetime | None = None) -> Delivery:
    """Counts of the emails not yet sent, read through the outbox's status index (sent rows are not scanned)."""
    now = now or now_utc()
    open_ = ("pending", "sending", "failed")
    with store.session() as s:
        counts = dict(s.execute(select(Outbox.status, func.count()).where(EMAIL, Outbox.status.in_(open_))
                                .group_by(Outbox.status)).all())
        retrying = s.scalar(select(func.count()).select_from(Outbox)
                            .where(EMAIL, Outbox.status.in_(("pending", "sending")), Outbox.attempts > 0)) or 0
        failed_recently = s.scalar(select(func.count()).select_from(Outbox)
                                   .where(EMAIL, Outbox.status == "failed",
                                          Outbox.created_at >= now - FAILED_RECENTLY)) or 0
        oldest = s.scalar(select(func.min(Outbox.created_at)).where(EMAIL, Outbox.status.in_(("pending", "sending"))))
        next_retry = s.scalar(select(func.min(Outbox.next_attempt_at))
                              .where(EMAIL, Outbox.status == "pending", Outbox.attempts > 0))
        latest = s.scalar(select(Outbox.last_error).where(EMAIL, Outbox.status.in_(open_), Outbox.last_error.is_not(None))
                          .order_by(Outbox.id.desc()).limit(1))
        # recipients refused for good while the others got it, and emails that may not have arrived
        partial = s.execute(select(Outbox.id, Outbox.kind, Outbox.refused, Outbox.unknown_to, Outbox.status)
                            .where(EMAIL, or_(and_(Outbox.status == "sent", Outbox.refused.is_not(None),
                                            Outbox.created_at >= now - FAILED_RECENTLY),
                                       Outbox.status == "unknown"))
                            .order_by(Outbox.id.desc()).limit(20)).all()
        unknown = s.scalar(select(func.count()).select_from(Outbox).where(EMAIL, Outbox.status == "unknown")) or 0
    refused = tuple((i, k, a) for i, k, r, _, st in partial if st == "sent" for a in (r or {}))
    unknown_to = tuple((i, k, a) for i, k, _, u, st in partial if st == "unknown" for a in (u or []))
    return Delivery(pending=counts.get("pending", 0) + counts.get("sending", 0), retrying=retrying,
                    failed=counts.get("failed", 0), failed_recently=failed_recently, oldest_pending_at=oldest,
                    last_error=latest, next_retry_at=next_retry, unknown=unknown, refused=refused,
                    unknown_to=unknown_to)


def _who(items: tuple[tuple[int, str, str], ...], limit: int = 3) -> str:
    """'#12 severe complaint to morgan@example.com, ...' for the banner."""
    shown = [f"#{i} {k.replace('_', ' ')} to {a}" for i, k, a in items[:limit]]
    return ", ".join(shown) + (f" and {len(items) - limit} more" if len(items) > limit else "")


def email_trouble(store: Store, cfg: HearkenConfig, *, now: datetime | None = None) -> Trouble | None:
    now = now or now_utc()
    if not cfg.alerts.enabled:
        return None
    d = delivery(store, now=now)
    stuck = d.pending > d.retrying and d.oldest_pending_at is not None and now - d.oldest_pending_at > STUCK
    if not (d.failed_recently or d.retrying or stuck or d.refused or d.unknown):
        return None
    parts = [f"{d.pending} waiting"] + ([f"{d.retrying} of them retrying"] if d.retrying else []) \
        + ([f"{d.failed} failed for good"] if d.failed else [])
    if d.pending or d.failed_recently or stuck:
        headline = "Email alerts are not being delivered: " + ", ".join(parts) + "."
    else:
        headline = "Some email alerts did not reach everyone."
    if d.refused:
        headline += f" Refused for good by the recipient's server: {_who(d.refused)} (the others got it)."
    if d.unknown_to:
        headline += (f" May not have arrived (the server hung up after receiving it; not sent again by itself, "
                     f"so nobody gets it twice): {_who(d.unknown_to)}.")
    if stuck and not d.retrying:
        headline += (f" The oldest has waited {_ago(now, d.oldest_pending_at)} without a try: is 'hearken run' "
                     "running? It sends them.")
    detail = None
    if d.last_error:
        detail = f"Last error: {d.last_error}"
        if d.next_retry_at:
            detail += f" · next try in {human_duration(max(0.0, (d.next_retry_at - now).total_seconds()))}"
    smtp = cfg.alerts.smtp
    fix = (f"check alerts.smtp ({smtp.host}:{smtp.port}, security {smtp.security}) at "
           f"{key_location(cfg, 'alerts', 'smtp')}; the Sources page lists each email and retries failed ones"
           + (" and those that may not have arrived" if d.unknown else "")
           + ("; an address refused for good needs correcting in the config (team, alerts.rules)" if d.refused
              else "") + ".")
    return Trouble("email", "email", headline, detail, fix)


def runner_trouble(store: Store, cfg: HearkenConfig, *, now: datetime | None = None) -> list[Trouble]:
    """Runners that have gone quiet without stopping, and runners whose database outage has just ended."""
    now = now or now_utc()
    with store.session() as s:
        rows = list(s.scalars(select(RunnerState).order_by(RunnerState.started_at)))
    out = []
    where = cfg.database_url().split("@")[-1]
    for r in rows:
        if r.stopped_at is None and now - r.seen_at > RUNNER_QUIET:
            out.append(Trouble(
                "runner", r.owner,
                f"Runner {r.owner} has not checked in for {_ago(now, r.seen_at)}: it cannot write to the database "
                "(locked by another program, or unreachable) or it stopped without saying so. Sources are not "
                "polled, nor alerts sent, by it meanwhile.", r.outage,
                f"check that the database ({where}) is up and that no other program holds it (a backup, an sqlite3 "
                f"shell, a stuck transaction), and that 'hearken run' is running on {r.host}."))
        elif r.outage and r.outage_ended_at is not None and now - r.outage_ended_at <= RECENT_OUTAGE:
            out.append(Trouble(
                "runner", r.owner,
                f"Runner {r.owner} could not use the database for a while; it has worked again for "
                f"{_ago(now, r.outage_ended_at)}, and the polls, classification and alerts waited meanwhile and have "
                "caught up.", r.outage,
                f"nothing, if it does not happen again; otherwise see what holds the database ({where})."))
    return out


def source_trouble(store: Store, cfg: HearkenConfig, *, now: datetime | None = None,
                   rows: list[SourceHealth] | None = None) -> list[Trouble]:
    now = now or now_utc()
    rows = source_health(store, cfg, now=now) if rows is None else rows
    index = {src.name: i for i, src in enumerate(cfg.sources)}
    aside = set_aside.summary(store)
    warned = source_warnings.recent(store, now=now)
    out = []
    for h in rows:
        if h.name not in index or not h.enabled:
            continue
        problem = describe_problem(h, cfg, now)
        if problem is None and h.name in aside:
            n = aside[h.name].count
            out.append(Trouble("source", h.name, f"Source {h.name} ({h.type}) set aside {n} item{'s' if n != 1 else ''} "
                                                 "the platform sent that could not be read or stored.",
                               aside[h.name].last_reason,
                               "look at them on the Sources page, and mark them as looked at there."))
            continue
        if problem is None and h.name in warned:
            latest = warned[h.name][0]
            out.append(Trouble("source", h.name, f"Source {h.name} ({h.type}) gave a warning about its platform.",
                               latest.text, "read it on the Sources page, and mark it as looked at there."))
            continue
        if problem is None:
            continue
        headline, detail = problem
        src = cfg.sources[index[h.name]]
        where = key_location(cfg, "sources", index[h.name])
        settings = f"sources[{index[h.name]}] ({src.name}) at {where}"
        if h.status in ("disabled", "auth_failed"):
            fix = (f"give 'hearken run' the credentials named in {settings} (environment variables), "
                   "then restart it.")
        else:
            fix = f"see this source on the Sources page; its settings are {settings}."
        out.append(Trouble("source", h.name, headline, detail, fix))
    return out


def describe_problem(h: SourceHealth, cfg: HearkenConfig, now: datetime) -> tuple[str, str | None] | None:
    """(headline, detail) when this enabled source needs a person's attention, else None."""
    silent = timedelta(minutes=cfg.alerts.rules.source_silent_minutes)
    label = f"Source {h.name} ({h.type})"
    if h.status == "disabled":
        return f"{label} is disabled: {h.status_reason or 'its settings are incomplete'}.", None
    if h.status == "auth_failed":
        return f"{label} cannot sign in to the platform: its credentials were refused.", h.last_error
    if h.status == "failing":
        since = f" for {_ago(now, h.failing_since)}" if h.failing_since else ""
        return (f"{label} is failing{since} ({h.consecutive_failures} failed poll"
                f"{'s' if h.consecutive_failures != 1 else ''} in a row)."), h.last_error
    if h.status in ("ok", "new") and h.last_poll_at is not None and not h.backing_off:
        expected = max(timedelta(minutes=10), 3 * timedelta(seconds=h.interval_seconds or 0))
        if now - h.last_poll_at > expected:
            return (f"{label} has not been polled for {_ago(now, h.last_poll_at)}: is 'hearken run' running?"), None
    if h.status == "ok" and h.last_mention_at is not None and now - h.last_mention_at >= silent:
        return (f"{label} is silent: no new mention for {_ago(now, h.last_mention_at)} "
                f"(alerts.rules.source_silent_minutes is {cfg.alerts.rules.source_silent_minutes:g})."), None
    return None
