"""What an alert email says: plain-text and HTML bodies from the same parts, and a case's facts and links.

Everything from outside (a post, an author, a permalink) is escaped in the HTML, and only http(s)
addresses become links. Times are shown in the team's zone (`sla.timezone`).
"""

from __future__ import annotations

import html
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from desk.config.schema import HearkenConfig
from desk.store.models import Case, MentionRow
from desk.untrusted import web_url

QUOTE_LIMIT = 600


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


def excerpt(mention: MentionRow | None) -> str:
    if mention is None:
        return ""
    body = mention.text
    return body if len(body) <= QUOTE_LIMIT else body[:QUOTE_LIMIT - 3].rstrip() + "..."


def snippet(mention: MentionRow, limit: int = 60) -> str:
    """The post's first words on one line, for a subject a person can triage from."""
    text = " ".join((mention.title or mention.body or "").split())
    return text if len(text) <= limit else text[:limit - 3].rstrip() + "..."


def when(at: datetime | None, cfg: HearkenConfig) -> str:
    if at is None:
        return "-"
    local = at.astimezone(ZoneInfo(cfg.sla.timezone))
    return f"{local:%a %d %b %Y %H:%M} {cfg.sla.timezone}"


def span(delta: timedelta) -> str:
    minutes = int(abs(delta.total_seconds()) // 60)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    return f"{days}d {hours}h" if days else (f"{hours}h {mins:02d}m" if hours else f"{mins}m")


def case_links(cfg: HearkenConfig, case: Case, mention: MentionRow | None) -> list[tuple[str, str]]:
    links = [("Open the case", case_url(cfg, case.id))]
    if mention is not None and mention.url:
        links.append(("Original post", mention.url))
    return links


def case_facts(cfg: HearkenConfig, case: Case, mention: MentionRow | None) -> list[tuple[str, str]]:
    return [("Case", f"#{case.id} ({case.status})"),
            ("Platform", f"{case.platform} ({case.source})"),
            ("Author", mention.author if mention else "-"),
            ("Severity", str(case.severity or "-")),
            ("Posted", when(case.customer_posted_at, cfg)),
            ("Assignee", case.assignee or "unassigned"),
            ("First reply due", when(case.first_response_due, cfg)),
            ("Resolution due", when(case.resolution_due, cfg))]


def about_case(cfg: HearkenConfig, case: Case, mention: MentionRow | None, intro: str) -> tuple[str, str]:
    """The bodies of an alert about one case: `intro`, the case's facts, the post quoted, and the links."""
    return compose(intro, case_facts(cfg, case, mention), quote=excerpt(mention), links=case_links(cfg, case, mention))
