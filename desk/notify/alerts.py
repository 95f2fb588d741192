"""Alerts: outbox rows written in the same transaction as the state that causes them.

Each alert has a `dedupe_key` naming its event (e.g. "severe:case:42"),
unique in the outbox, so an event alerts once however often it is seen. The
rules (config `alerts.rules`):

- severe_complaint: a new complaint of `min_severity` or above, at once (from the pipeline).
- sla_warning: `sla_warning_minutes` (wall clock) before a first-response or resolution
  target falls due while its clock still runs, to the assignee (the managers when unassigned).
- sla_breach: a target passed with its clock still running, once per case and clock,
  to `escalation_managers` (every manager when empty) -- not to everyone.
- source_failing / source_silent: a source failing, or finding nothing, for
  `source_silent_minutes`; once per outage or silence.
- read_budget: a source whose platform caps its monthly reads (X) has used `read_budget_warn_fraction` of
  the cap; once a month.
- digest: the open complaints, once a day at `digest_hour` (sla.timezone) when `daily_digest` is on.
- weekly_report: the public-response report for the last full week, at report.weekday/hour.

No alert is written for a resolved or dismissed case. The rules decide who hears of what; writing
the row (dedupe, `throttle_minutes`, header-safe subjects) is desk/notify/outbox.py, what the email
says desk/notify/emails.py, and the worker that sends it desk/notify/mailer.py. `periodic_tasks` is
what the runner schedules.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

import collectors
from desk.cases import audit
from desk.cases.actions import ACTIVE
from desk.config.schema import HearkenConfig
from desk.notify import cards, emails, routing
from desk.notify.channels import send_channels
from desk.notify.mailer import SEND_INTERVAL_SECONDS, send_pending
from desk.periods import last_full_week, month_key
from desk.reports import weekly
from desk.store.db import Store
from desk.store.models import Case, MentionRow, Outbox, SourceState

log = logging.getLogger(__name__)

STALE_BREACH = timedelta(days=7)  # a target missed longer ago than this is backlog, not news: no escalation
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def on_case_opened(session: Session, cfg: HearkenConfig, case: Case, mention: MentionRow) -> None:
    """A new complaint: alert at once when it is severe enough."""
    rules = cfg.alerts.rules
    if not cfg.alerts.enabled or not rules.severe_complaint:
        return
    if (case.severity or 0) < rules.min_severity or case.status not in ACTIVE:
        return
    recipients = cfg.resolve_recipients(rules.severe_recipients, fallback_role="manager")
    who = f" from {mention.author}" if mention.author else ""
    intro = f"A new complaint of severity {case.severity} needs a public reply."
    text, body_html = emails.about_case(cfg, case, mention, intro)
    routing.alert(session, cfg, kind="severe_complaint", dedupe_key=f"severe:case:{case.id}", recipients=recipients,
                  case_id=case.id, source=case.source, throttle_minutes=rules.throttle_minutes, now=case.opened_at,
                  subject=f"[Hearken] New severity {case.severity} complaint on {case.platform}{who}: "
                          f"\"{emails.snippet(mention)}\" (case #{case.id})",
                  body_text=text, body_html=body_html,
                  card=cards.about_case(cfg, case, mention, f"Severity {case.severity} complaint on {case.platform}"
                                        f"{who} (case #{case.id})", intro))


def _assignee_or_managers(cfg: HearkenConfig, case: Case) -> list[str]:
    if case.assignee:
        return cfg.resolve_recipients([case.assignee])
    return cfg.resolve_recipients([], fallback_role="manager")


_CLOCKS = {"first_response": ("first public reply", "first_response_due", "first_response_at"),
           "resolution": ("resolution", "resolution_due", "resolved_at")}


def scan_sla(session: Session, cfg: HearkenConfig, now: datetime) -> list[Outbox]:
    """Warnings before, and escalations after, an SLA target, for every case whose clock still runs."""
    rules = cfg.alerts.rules
    if not cfg.alerts.enabled:
        return []
    written: list[Outbox] = []
    lead = timedelta(minutes=rules.sla_warning_minutes)
    cases = session.scalars(select(Case).where(Case.status.in_(ACTIVE), Case.resolved_at.is_(None))
                            .order_by(Case.id))
    for case in cases:
        for clock, (label, due_attr, stop_attr) in _CLOCKS.items():
            due_at: datetime | None = getattr(case, due_attr)
            if due_at is None or getattr(case, stop_attr) is not None:
                continue
            if now <= due_at:
                if lead and now >= due_at - lead:
                    written += _warn(session, cfg, case, clock, label, due_at, now)
            elif rules.sla_breach_to_managers and now - due_at <= STALE_BREACH:
                written += _breach(session, cfg, case, clock, label, due_at, now)
    return written


def _warn(session: Session, cfg: HearkenConfig, case: Case, clock: str, label: str, due_at: datetime,
          now: datetime) -> list[Outbox]:
    mention = session.get(MentionRow, case.mention_id)
    left = emails.span(due_at - now)
    intro = f"The {label} for case #{case.id} is due in {left} ({emails.when(due_at, cfg)})."
    text, body_html = emails.about_case(cfg, case, mention, intro)
    row = routing.alert(session, cfg, kind="sla_warning", dedupe_key=f"sla_warning:{clock}:case:{case.id}",
                        recipients=_assignee_or_managers(cfg, case), case_id=case.id, source=case.source,
                        throttle_minutes=cfg.alerts.rules.throttle_minutes, now=now,
                        subject=f"[Hearken] SLA warning: {label} due in {left} - case #{case.id} "
                                f"({case.platform}, severity {case.severity or '-'})",
                        body_text=text, body_html=body_html,
                        card=cards.about_case(cfg, case, mention, f"SLA warning: {label} due in {left} "
                                              f"(case #{case.id})", intro))
    return [row] if row else []


def _breach(session: Session, cfg: HearkenConfig, case: Case, clock: str, label: str, due_at: datetime,
            now: datetime) -> list[Outbox]:
    rules = cfg.alerts.rules
    managers = cfg.resolve_recipients(rules.escalation_managers, fallback_role="manager")
    mention = session.get(MentionRow, case.mention_id)
    late = emails.span(now - due_at)
    intro = (f"Escalation: the {label} SLA for case #{case.id} was missed; it was due "
             f"{emails.when(due_at, cfg)} and is overdue by {late}.")
    text, body_html = emails.about_case(cfg, case, mention, intro)
    row = routing.alert(session, cfg, kind="sla_breach", dedupe_key=f"sla_breach:{clock}:case:{case.id}",
                        recipients=managers, case_id=case.id, source=case.source,
                        throttle_minutes=rules.throttle_minutes, now=now,
                        subject=f"[Hearken] SLA breached: {label} overdue by {late} - case #{case.id} "
                                f"({case.platform}, severity {case.severity or '-'})",
                        body_text=text, body_html=body_html,
                        card=cards.about_case(cfg, case, mention, f"SLA breached: {label} overdue by {late} "
                                              f"(case #{case.id})", intro))
    if row is not None:
        audit.record(session, case.id, "system", "sla_breached", clock=clock, due=due_at,
                     escalated_to=", ".join(row.recipients))
        return [row]
    return []


def scan_sources(session: Session, cfg: HearkenConfig, now: datetime) -> list[Outbox]:
    """Sources failing or silent beyond `source_silent_minutes`; sources near their platform's monthly read cap."""
    rules = cfg.alerts.rules
    if not cfg.alerts.enabled:
        return []
    recipients = cfg.resolve_recipients(rules.source_recipients, fallback_role="admin")
    silent = timedelta(minutes=rules.source_silent_minutes)
    link = [("Sources page", f"{cfg.dashboard.public_url.rstrip('/')}/sources")]
    written: list[Outbox] = []
    for src in cfg.sources:
        if not src.enabled:
            continue
        st = session.get(SourceState, src.name)
        if st is None:
            continue
        facts = [("Source", f"{src.name} ({st.platform})"), ("Status", st.status),
                 ("Last successful poll", emails.when(st.last_success_at, cfg)),
                 ("Last new mention", emails.when(st.last_mention_at, cfg)),
                 ("Last error", st.last_error or "-")]
        row = None
        failing = st.failing_since is not None and st.status not in ("ok", "capped")
        if failing and now - st.failing_since >= silent:
            intro = (f"Source {src.name} has been failing for {emails.span(now - st.failing_since)}: "
                     f"{st.status_reason or st.status}.")
            text, body_html = emails.compose(intro, facts, links=link)
            title = f"Source {src.name} failing for {emails.span(now - st.failing_since)}"
            row = routing.alert(session, cfg, kind="source_failing", source=src.name,
                                dedupe_key=f"source_failing:{src.name}:{st.failing_since.isoformat()}",
                                recipients=recipients, throttle_minutes=rules.throttle_minutes, now=now,
                                subject=f"[Hearken] {title}", body_text=text, body_html=body_html,
                                card=cards.Card(title, intro, facts, link))
        elif not failing and st.last_mention_at is not None and now - st.last_mention_at >= silent:
            intro = f"Source {src.name} has found no new mention for {emails.span(now - st.last_mention_at)}."
            text, body_html = emails.compose(intro, facts, links=link)
            title = f"Source {src.name} silent for {emails.span(now - st.last_mention_at)}"
            row = routing.alert(session, cfg, kind="source_silent", source=src.name,
                                dedupe_key=f"source_silent:{src.name}:{st.last_mention_at.isoformat()}",
                                recipients=recipients, throttle_minutes=rules.throttle_minutes, now=now,
                                subject=f"[Hearken] {title}", body_text=text, body_html=body_html,
                                card=cards.Card(title, intro, facts, link))
        if row is not None:
            written.append(row)
        written += _read_budget(session, cfg, src, st, now, recipients=recipients, facts=facts, link=link)
    return written


def _read_budget(session: Session, cfg: HearkenConfig, src, st: SourceState, now: datetime, *,
                 recipients: list[str], facts: list[tuple[str, str]], link: list[tuple[str, str]]) -> list[Outbox]:
    """A source whose platform caps its monthly reads (`Platform.read_cap`: X) near that cap; once a month."""
    plat = collectors.PLATFORMS.get(src.type)
    cap = plat.read_cap(src) if plat is not None else None
    month = month_key(now)
    rules = cfg.alerts.rules
    if not cap or st.reads_month != month or st.reads_count < rules.read_budget_warn_fraction * cap:
        return []
    intro = (f"{plat.label} source {src.name} has read {st.reads_count} of its {cap} posts for {month} "
             f"({st.reads_count / cap:.0%}); it stops reading at the cap until next month.")
    text, body_html = emails.compose(intro, facts, links=link)
    title = f"{plat.label} read budget {st.reads_count / cap:.0%} used ({src.name}, {month})"
    row = routing.alert(session, cfg, kind="read_budget", dedupe_key=f"read_budget:{src.name}:{month}", recipients=recipients,
                        source=src.name, throttle_minutes=rules.throttle_minutes, now=now,
                        subject=f"[Hearken] {title}", body_text=text, body_html=body_html,
                        card=cards.Card(title, intro, facts, link))
    return [row] if row is not None else []


def daily_digest(session: Session, cfg: HearkenConfig, now: datetime) -> Outbox | None:
    """Once a day at or after `digest_hour` (sla.timezone): the open complaints, most urgent first."""
    rules = cfg.alerts.rules
    if not cfg.alerts.enabled or not rules.daily_digest:
        return None
    local = now.astimezone(ZoneInfo(cfg.sla.timezone))
    if local.hour < rules.digest_hour:
        return None
    key = f"digest:{local.date().isoformat()}"
    if routing.already(session, key):
        return None
    cases = list(session.scalars(select(Case).where(Case.status.in_(ACTIVE))
                                 .order_by(Case.first_response_due, Case.id)))
    overdue = sum(1 for c in cases if c.first_response_at is None and c.first_response_due and c.first_response_due < now)
    unassigned = sum(1 for c in cases if not c.assignee)
    table = [["Case", "Platform", "Severity", "Status", "Assignee", "First reply due", "Link"]]
    for c in cases[:50]:
        table.append([f"#{c.id}", c.platform, str(c.severity or "-"), c.status, c.assignee or "-",
                      "replied" if c.first_response_at else emails.when(c.first_response_due, cfg), emails.case_url(cfg, c.id)])
    intro = (f"{len(cases)} open complaint(s): {overdue} past their first-reply target, {unassigned} unassigned."
             if cases else "No open complaints.")
    queue_link = [("Queue", cfg.dashboard.public_url.rstrip("/"))]
    text, body_html = emails.compose(intro, [], table=table if cases else None, links=queue_link)
    title = f"Daily digest {local.date().isoformat()}: {len(cases)} open, {overdue} overdue"
    return routing.alert(session, cfg, kind="digest", dedupe_key=key,
                         recipients=cfg.resolve_recipients(rules.digest_recipients, fallback_role="manager"), now=now,
                         subject=f"[Hearken] {title}", body_text=text, body_html=body_html,
                         card=cards.Card(title, intro, [("Open", str(len(cases))), ("Past first-reply target",
                                                                                   str(overdue)),
                                                        ("Unassigned", str(unassigned))], queue_link))


def weekly_report_due(cfg: HearkenConfig, now: datetime) -> bool:
    local = now.astimezone(ZoneInfo(cfg.sla.timezone))
    return local.weekday() == _DAYS.index(cfg.report.weekday) and local.hour >= cfg.report.hour


def send_weekly_report(session: Session, cfg: HearkenConfig, now: datetime, *, force: bool = False,
                       week: str | None = None, embed: Callable | None = None,
                       write_files: bool = True) -> Outbox | None:
    """Queue the weekly report email (and write its files) at report.weekday/hour; once per week."""
    if not (cfg.report.recipients or routing.has_channels(cfg, "weekly_report")) \
            or (not force and not weekly_report_due(cfg, now)):
        return None
    week = week or last_full_week(ZoneInfo(cfg.sla.timezone), now)
    key = f"weekly_report:{week}"
    if routing.already(session, key):
        return None
    rep = weekly.build(session, cfg, week, now=now, embed=embed)
    if write_files:
        try:
            weekly.write_files(rep, weekly.output_dir(cfg))
        except OSError:
            log.warning("could not write the weekly report files to %s", weekly.output_dir(cfg), exc_info=True)
    title = f"Weekly public-response report {week}: {weekly.headline(rep)}"
    return routing.alert(session, cfg, kind="weekly_report", dedupe_key=key,
                         recipients=cfg.resolve_recipients(cfg.report.recipients), now=now, subject=f"[Hearken] {title}",
                         body_text=weekly.to_text(rep), body_html=weekly.to_html(rep),
                         card=cards.Card(title, weekly.headline(rep),
                                         links=[("Metrics page", f"{cfg.dashboard.public_url.rstrip('/')}/metrics")]))


def periodic_tasks(cfg: HearkenConfig, store: Store, *,
                   mailer: bool = True) -> list[tuple[str, float, Callable[[datetime], object]]]:
    """(name, interval seconds, fn(now)) to call on a schedule; each scan is one transaction.

    With `mailer` the outbox is sent as one of them ("mailer.send"), for a caller that runs everything
    in one loop; the runner passes False and sends from a thread of its own (`mailer.MailerThread`).
    """
    def in_session(scan: Callable[[Session, HearkenConfig, datetime], object]) -> Callable[[datetime], object]:
        def run(now: datetime) -> object:
            with store.session() as s:
                return scan(s, cfg, now)
        return run

    tasks: list[tuple[str, float, Callable[[datetime], object]]] = [
        ("alerts.sla", 60, in_session(scan_sla)),
        ("alerts.sources", 60, in_session(scan_sources)),
        ("alerts.digest", 300, in_session(daily_digest)),
        ("report.weekly", 300, in_session(send_weekly_report)),
    ]
    if mailer:
        tasks.append(("mailer.send", SEND_INTERVAL_SECONDS, lambda now: send_pending(store, cfg, now=now)))
        tasks.append(("channels.send", SEND_INTERVAL_SECONDS, lambda now: send_channels(store, cfg, now=now)))
    return tasks
