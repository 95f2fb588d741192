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
- x_budget: an X source has used `x_budget_warn_fraction` of its monthly read cap; once a month.
- digest: the open complaints, once a day at `digest_hour` (sla.timezone) when `daily_digest` is on.
- weekly_report: the public-response report for the last full week, at report.weekday/hour.

No alert is written for a resolved or dismissed case. `throttle_minutes` caps
alerts of one kind to one per recipient in that window; an alert with no
recipient left is kept as status "throttled" (never sent). The outbox worker
(desk/notify/mailer.py) sends; `periodic_tasks` is what the runner schedules. Subjects and
recipients are stripped of control characters here, where the headers are made, so nothing a
customer writes can add a header line.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from desk.cases import audit
from desk.config.schema import HearkenConfig
from desk.store.db import Store
from desk.notify.mailer import header_text
from desk.store.models import Case, Mention, Outbox, SourceState, now_utc
from desk.periods import last_full_week, month_key
from desk.reports import weekly
from desk.untrusted import web_url

log = logging.getLogger(__name__)

OPEN_STATUSES = ("open", "replied")
STALE_BREACH = timedelta(days=7)  # a target missed longer ago than this is backlog, not news: no escalation
QUOTE_LIMIT = 600
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


# --- writing an alert --------------------------------------------------------------


def _recent_recipients(session: Session, kind: str, since: datetime) -> set[str]:
    rows = session.scalars(select(Outbox.recipients).where(
        Outbox.kind == kind, Outbox.created_at >= since, Outbox.status.in_(["pending", "sending", "sent"])))
    return {addr.casefold() for recipients in rows for addr in recipients}


def queue(session: Session, *, kind: str, dedupe_key: str, recipients: list[str], subject: str,
          body_text: str, body_html: str | None = None, case_id: int | None = None,
          throttle_minutes: float = 0, now: datetime | None = None) -> Outbox | None:
    """Add an outbox row unless one with this dedupe key exists or nobody would receive it.

    With `throttle_minutes`, recipients who were sent an alert of this `kind` within that
    window are left off; if nobody is left the row is stored as "throttled" and never sent.
    """
    recipients = sorted({header_text(r) for r in recipients if r and "@" in r})
    if not recipients:
        return None
    subject = header_text(subject)  # a username such as "evil\r\nBcc: x@y" must not become a header of its own
    if session.scalar(select(Outbox.id).where(Outbox.dedupe_key == dedupe_key)) is not None:
        return None
    now = now or now_utc()
    status = "pending"
    if throttle_minutes > 0:
        recent = _recent_recipients(session, kind, now - timedelta(minutes=throttle_minutes))
        kept = [r for r in recipients if r.casefold() not in recent]
        if kept:
            recipients = kept
        else:
            status = "throttled"
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    row_id = session.scalar(
        insert(Outbox).values(kind=kind, dedupe_key=dedupe_key, recipients=recipients, subject=subject,
                              body_text=body_text, body_html=body_html, case_id=case_id, status=status,
                              attempts=0, created_at=now, next_attempt_at=now)
        .on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(Outbox.id))
    return session.get(Outbox, row_id) if row_id is not None else None


def case_url(cfg: HearkenConfig, case_id: int) -> str:
    return f"{cfg.dashboard.public_url.rstrip('/')}/case?id={case_id}"


def compose(intro: str, facts: list[tuple[str, str]], *, quote: str | None = None,
            links: list[tuple[str, str]] | None = None, table: list[list[str]] | None = None) -> tuple[str, str]:
    """Plain-text and HTML bodies from the same parts; everything from outside is escaped in the HTML."""
    links = links or []
    text = [intro, ""]
    text += [f"{k}: {v}" for k, v in facts]
    if quote is not None:
        text += ["", "> " + quote.replace("\n", "\n> ")]
    if table:
        text += [""] + ["  ".join(r) for r in table]
    if links:
        text += [""] + [f"{label}: {url}" if web_url(url) else f"{label} (not a web address, not linked): {url}"
                        for label, url in links]
    e = html.escape
    parts = [f"<p>{e(intro)}</p>"]
    if facts:
        parts.append("<table>" + "".join(f"<tr><th align='left'>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in facts)
                     + "</table>")
    if quote is not None:
        parts.append("<blockquote style='border-left:3px solid #999;margin:1em 0;padding-left:1em;white-space:pre-wrap'>"
                     f"{e(quote)}</blockquote>")
    if table:
        head, *body = table
        parts.append("<table border='1' cellpadding='4' style='border-collapse:collapse'>"
                     + "<tr>" + "".join(f"<th>{e(c)}</th>" for c in head) + "</tr>"
                     + "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in body) + "</table>")
    if links:  # only http(s) addresses become links: a post's `javascript:` permalink stays inert text
        parts.append("<p>" + " &middot; ".join(
            f"<a href=\"{e(url)}\">{e(label)}</a>" if web_url(url)
            else f"{e(label)} (not a web address, not linked): <code>{e(url)}</code>" for label, url in links) + "</p>")
    body_html = ("<!doctype html><html><body style='font-family:sans-serif'>" + "\n".join(parts) + "</body></html>")
    return "\n".join(text) + "\n", body_html


def _excerpt(mention: Mention | None) -> str:
    if mention is None:
        return ""
    body = f"{mention.title}\n\n{mention.body}".strip() if mention.title else mention.body
    return body if len(body) <= QUOTE_LIMIT else body[:QUOTE_LIMIT - 3].rstrip() + "..."


def _snippet(mention: Mention, limit: int = 60) -> str:
    """The post's first words on one line, for a subject a person can triage from."""
    text = " ".join((mention.title or mention.body or "").split())
    return text if len(text) <= limit else text[:limit - 3].rstrip() + "..."


def _when(at: datetime | None, cfg: HearkenConfig) -> str:
    if at is None:
        return "-"
    local = at.astimezone(ZoneInfo(cfg.sla.timezone))
    return f"{local:%a %d %b %Y %H:%M} {cfg.sla.timezone}"


def _span(delta: timedelta) -> str:
    minutes = int(abs(delta.total_seconds()) // 60)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    return f"{days}d {hours}h" if days else (f"{hours}h {mins:02d}m" if hours else f"{mins}m")


def _case_links(cfg: HearkenConfig, case: Case, mention: Mention | None) -> list[tuple[str, str]]:
    links = [("Open the case", case_url(cfg, case.id))]
    if mention is not None and mention.url:
        links.append(("Original post", mention.url))
    return links


def _case_facts(cfg: HearkenConfig, case: Case, mention: Mention | None) -> list[tuple[str, str]]:
    return [("Case", f"#{case.id} ({case.status})"),
            ("Platform", f"{case.platform} ({case.source})"),
            ("Author", mention.author if mention else "-"),
            ("Severity", str(case.severity or "-")),
            ("Posted", _when(case.customer_posted_at, cfg)),
            ("Assignee", case.assignee or "unassigned"),
            ("First reply due", _when(case.first_response_due, cfg)),
            ("Resolution due", _when(case.resolution_due, cfg))]


# --- rules -------------------------------------------------------------------------


def on_case_opened(session: Session, cfg: HearkenConfig, case: Case, mention: Mention) -> None:
    """A new complaint: alert at once when it is severe enough."""
    rules = cfg.alerts.rules
    if not cfg.alerts.enabled or not rules.severe_complaint:
        return
    if (case.severity or 0) < rules.min_severity or case.status not in OPEN_STATUSES:
        return
    recipients = cfg.resolve_recipients(rules.severe_recipients, fallback_role="manager")
    who = f" from {mention.author}" if mention.author else ""
    text, body_html = compose(
        f"A new complaint of severity {case.severity} needs a public reply.",
        _case_facts(cfg, case, mention), quote=_excerpt(mention), links=_case_links(cfg, case, mention))
    queue(session, kind="severe_complaint", dedupe_key=f"severe:case:{case.id}", recipients=recipients,
          case_id=case.id, throttle_minutes=rules.throttle_minutes, now=case.opened_at,
          subject=f"[Hearken] New severity {case.severity} complaint on {case.platform}{who}: "
                  f"\"{_snippet(mention)}\" (case #{case.id})",
          body_text=text, body_html=body_html)


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
    cases = session.scalars(select(Case).where(Case.status.in_(OPEN_STATUSES), Case.resolved_at.is_(None))
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
    mention = session.get(Mention, case.mention_id)
    left = _span(due_at - now)
    text, body_html = compose(
        f"The {label} for case #{case.id} is due in {left} ({_when(due_at, cfg)}).",
        _case_facts(cfg, case, mention), quote=_excerpt(mention), links=_case_links(cfg, case, mention))
    row = queue(session, kind="sla_warning", dedupe_key=f"sla_warning:{clock}:case:{case.id}",
                recipients=_assignee_or_managers(cfg, case), case_id=case.id,
                throttle_minutes=cfg.alerts.rules.throttle_minutes, now=now,
                subject=f"[Hearken] SLA warning: {label} due in {left} - case #{case.id} "
                        f"({case.platform}, severity {case.severity or '-'})",
                body_text=text, body_html=body_html)
    return [row] if row else []


def _breach(session: Session, cfg: HearkenConfig, case: Case, clock: str, label: str, due_at: datetime,
            now: datetime) -> list[Outbox]:
    rules = cfg.alerts.rules
    managers = cfg.resolve_recipients(rules.escalation_managers, fallback_role="manager")
    mention = session.get(Mention, case.mention_id)
    late = _span(now - due_at)
    text, body_html = compose(
        f"Escalation: the {label} SLA for case #{case.id} was missed; it was due {_when(due_at, cfg)} "
        f"and is overdue by {late}.",
        _case_facts(cfg, case, mention), quote=_excerpt(mention), links=_case_links(cfg, case, mention))
    row = queue(session, kind="sla_breach", dedupe_key=f"sla_breach:{clock}:case:{case.id}",
                recipients=managers, case_id=case.id, throttle_minutes=rules.throttle_minutes, now=now,
                subject=f"[Hearken] SLA breached: {label} overdue by {late} - case #{case.id} "
                        f"({case.platform}, severity {case.severity or '-'})",
                body_text=text, body_html=body_html)
    if row is not None:
        audit.record(session, case.id, "system", "sla_breached", clock=clock, due=due_at,
                     escalated_to=", ".join(row.recipients))
        return [row]
    return []


def scan_sources(session: Session, cfg: HearkenConfig, now: datetime) -> list[Outbox]:
    """Sources failing or silent beyond `source_silent_minutes`; X sources near their read cap."""
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
                 ("Last successful poll", _when(st.last_success_at, cfg)),
                 ("Last new mention", _when(st.last_mention_at, cfg)),
                 ("Last error", st.last_error or "-")]
        row = None
        failing = st.failing_since is not None and st.status not in ("ok", "capped")
        if failing and now - st.failing_since >= silent:
            text, body_html = compose(
                f"Source {src.name} has been failing for {_span(now - st.failing_since)}: {st.status_reason or st.status}.",
                facts, links=link)
            row = queue(session, kind="source_failing", dedupe_key=f"source_failing:{src.name}:{st.failing_since.isoformat()}",
                        recipients=recipients, throttle_minutes=rules.throttle_minutes, now=now,
                        subject=f"[Hearken] Source {src.name} failing for {_span(now - st.failing_since)}",
                        body_text=text, body_html=body_html)
        elif not failing and st.last_mention_at is not None and now - st.last_mention_at >= silent:
            text, body_html = compose(
                f"Source {src.name} has found no new mention for {_span(now - st.last_mention_at)}.", facts, links=link)
            row = queue(session, kind="source_silent", dedupe_key=f"source_silent:{src.name}:{st.last_mention_at.isoformat()}",
                        recipients=recipients, throttle_minutes=rules.throttle_minutes, now=now,
                        subject=f"[Hearken] Source {src.name} silent for {_span(now - st.last_mention_at)}",
                        body_text=text, body_html=body_html)
        if row is not None:
            written.append(row)
        cap = getattr(src, "monthly_read_cap", 0)
        month = month_key(now)
        if src.type == "x" and cap and st.reads_month == month and st.reads_count >= rules.x_budget_warn_fraction * cap:
            text, body_html = compose(
                f"X source {src.name} has read {st.reads_count} of its {cap} posts for {month} "
                f"({st.reads_count / cap:.0%}); it stops reading at the cap until next month.", facts, links=link)
            row = queue(session, kind="x_budget", dedupe_key=f"x_budget:{src.name}:{month}", recipients=recipients,
                        throttle_minutes=rules.throttle_minutes, now=now,
                        subject=f"[Hearken] X read budget {st.reads_count / cap:.0%} used ({src.name}, {month})",
                        body_text=text, body_html=body_html)
            if row is not None:
                written.append(row)
    return written


def daily_digest(session: Session, cfg: HearkenConfig, now: datetime) -> Outbox | None:
    """Once a day at or after `digest_hour` (sla.timezone): the open complaints, most urgent first."""
    rules = cfg.alerts.rules
    if not cfg.alerts.enabled or not rules.daily_digest:
        return None
    local = now.astimezone(ZoneInfo(cfg.sla.timezone))
    if local.hour < rules.digest_hour:
        return None
    key = f"digest:{local.date().isoformat()}"
    if session.scalar(select(Outbox.id).where(Outbox.dedupe_key == key)) is not None:
        return None
    cases = list(session.scalars(select(Case).where(Case.status.in_(OPEN_STATUSES))
                                 .order_by(Case.first_response_due, Case.id)))
    overdue = sum(1 for c in cases if c.first_response_at is None and c.first_response_due and c.first_response_due < now)
    unassigned = sum(1 for c in cases if not c.assignee)
    table = [["Case", "Platform", "Severity", "Status", "Assignee", "First reply due", "Link"]]
    for c in cases[:50]:
        table.append([f"#{c.id}", c.platform, str(c.severity or "-"), c.status, c.assignee or "-",
                      "replied" if c.first_response_at else _when(c.first_response_due, cfg), case_url(cfg, c.id)])
    intro = (f"{len(cases)} open complaint(s): {overdue} past their first-reply target, {unassigned} unassigned."
             if cases else "No open complaints.")
    text, body_html = compose(intro, [], table=table if cases else None,
                              links=[("Queue", cfg.dashboard.public_url.rstrip("/"))])
    return queue(session, kind="digest", dedupe_key=key,
                 recipients=cfg.resolve_recipients(rules.digest_recipients, fallback_role="manager"), now=now,
                 subject=f"[Hearken] Daily digest {local.date().isoformat()}: {len(cases)} open, {overdue} overdue",
                 body_text=text, body_html=body_html)


def weekly_report_due(cfg: HearkenConfig, now: datetime) -> bool:
    local = now.astimezone(ZoneInfo(cfg.sla.timezone))
    return local.weekday() == _DAYS.index(cfg.report.weekday) and local.hour >= cfg.report.hour


def send_weekly_report(session: Session, cfg: HearkenConfig, now: datetime, *, force: bool = False,
                       week: str | None = None, embed: Callable | None = None,
                       write_files: bool = True) -> Outbox | None:
    """Queue the weekly report email (and write its files) at report.weekday/hour; once per week."""
    if not cfg.report.recipients or (not force and not weekly_report_due(cfg, now)):
        return None
    week = week or last_full_week(ZoneInfo(cfg.sla.timezone), now)
    key = f"weekly_report:{week}"
    if session.scalar(select(Outbox.id).where(Outbox.dedupe_key == key)) is not None:
        return None
    rep = weekly.build(session, cfg, week, now=now, embed=embed)
    if write_files:
        try:
            weekly.write_files(rep, weekly.output_dir(cfg))
        except OSError:
            log.warning("could not write the weekly report files to %s", weekly.output_dir(cfg), exc_info=True)
    return queue(session, kind="weekly_report", dedupe_key=key, recipients=cfg.resolve_recipients(cfg.report.recipients),
                 now=now, subject=f"[Hearken] Weekly public-response report {week}: {weekly.headline(rep)}",
                 body_text=weekly.to_text(rep), body_html=weekly.to_html(rep))


def periodic_tasks(cfg: HearkenConfig, store: Store, *,
                   mailer: bool = True) -> list[tuple[str, float, Callable[[datetime], object]]]:
    """(name, interval seconds, fn(now)) to call on a schedule; each scan is one transaction.

    With `mailer` the outbox is sent as one of them ("mailer.send"), for a caller that runs everything
    in one loop; the runner passes False and sends from a thread of its own (`mailer.MailerThread`).
    """
    from desk.notify import mailer as outbox

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
        tasks.append(("mailer.send", outbox.SEND_INTERVAL_SECONDS, lambda now: outbox.send_pending(store, cfg, now=now)))
    return tasks



# --- reading a case's emails back (the case page's history) --------------------------------------------


@dataclass(frozen=True)
class EmailEvent:
    """One step of an alert email about a case, shaped like an audit entry (at, actor, action, detail)."""

    at: datetime
    actor: str
    action: str
    detail: dict


def case_emails(store: Store, case_id: int, *, now: datetime | None = None) -> list[EmailEvent]:
    """When each alert email about this case was queued, and when it was delivered, is failing or gave up."""
    now = now or now_utc()
    out: list[EmailEvent] = []
    with store.session() as s:
        rows = list(s.scalars(select(Outbox).where(Outbox.case_id == case_id).order_by(Outbox.id)))
    for r in rows:
        base = {"email": f"#{r.id} {r.kind.replace('_', ' ')}", "to": ", ".join(r.recipients)}
        out.append(EmailEvent(r.created_at, "Hearken", "email queued", dict(base, subject=r.subject)))
        at = r.sent_at or r.next_attempt_at or r.created_at
        delivered = r.delivered_to if r.delivered_to is not None else (r.recipients if r.status == "sent" else [])
        if r.status != "sent" and delivered:
            out.append(EmailEvent(at, "Hearken", "email delivered", dict(base, to=", ".join(delivered))))
        for address, why in (r.refused or {}).items() if r.status in ("sent", "pending", "sending", "unknown") else ():
            out.append(EmailEvent(at, "Hearken", "email refused", dict(base, to=address, error=why)))
        if r.status == "unknown":
            out.append(EmailEvent(at, "Hearken", "email may not have arrived",
                                  dict(base, to=", ".join(r.unknown_to or []), error=r.last_error)))
        if r.status == "sent" and r.sent_at:
            out.append(EmailEvent(r.sent_at, "Hearken", "email delivered", dict(base, to=", ".join(delivered))))
        elif r.status == "failed":
            out.append(EmailEvent(r.next_attempt_at or r.created_at, "Hearken", "email failed",
                                  dict(base, attempts=r.attempts, error=r.last_error)))
        elif r.status in ("pending", "sending") and r.attempts:
            wait = (r.next_attempt_at - now).total_seconds() if r.next_attempt_at else 0
            out.append(EmailEvent(now, "Hearken", "email not delivered yet",
                                  dict(base, attempts=r.attempts, error=r.last_error,
                                       next_try="in under a minute" if wait < 60 else f"in {_span(timedelta(seconds=wait))}")))
        elif r.status in ("cancelled", "throttled"):
            out.append(EmailEvent(r.sent_at or r.created_at, "Hearken", f"email {r.status}",
                                  dict(base, reason=r.last_error)))
    return out
