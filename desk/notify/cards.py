"""What an alert or a case event says on a chat channel: Slack Block Kit, a Teams Adaptive Card, or signed JSON.

One `Card` (a title, a sentence, the facts, the links) is drawn three ways:

- Slack (incoming webhook): `text` (the notification and fallback line) and `blocks`: a header, a section
  with the sentence and up to 10 fields, the quoted post, and an actions block whose buttons open the case
  and the post. Slack's published limits are kept (header 150 characters, section text 3000, a field 2000,
  a button's text 75 and its URL 3000); everything from outside is escaped for mrkdwn (&, <, >), so a post
  saying `<!channel>` cannot ping anyone.
- Teams (incoming webhook or Workflows): a message with one attachment of contentType
  `application/vnd.microsoft.card.adaptive` holding an AdaptiveCard 1.4: TextBlocks, a FactSet, and
  Action.OpenUrl buttons; a markdown link in a post is broken up, so only our buttons link anywhere.
- A webhook: JSON with `"schema_version": 1`, the event's type and id, and the case as `case_json` gives it
  (docs/webhooks.md, docs/webhook-event.schema.json).

Only http(s) addresses become buttons (desk/untrusted.web_url); times are ISO 8601 UTC in JSON, the team's
zone in words.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from desk.config.schema import HearkenConfig
from desk.notify import emails
from desk.store.models import Case, MentionRow
from desk.untrusted import web_url

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Card:
    title: str
    intro: str
    facts: list[tuple[str, str]] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)
    quote: str | None = None
    case: dict[str, Any] | None = None  # case_json, for the webhook


def iso(at: datetime | None) -> str | None:
    """ISO 8601 in UTC with a Z, or None."""
    return at.astimezone(timezone.utc).isoformat().replace("+00:00", "Z") if at is not None else None


def case_json(cfg: HearkenConfig, case: Case, mention: MentionRow | None) -> dict[str, Any]:
    """A case as a webhook receiver sees it (docs/webhook-event.schema.json's `case`)."""
    return {"id": case.id, "reference": f"#HK{case.id}",  # the reference replies use (desk/cases/templates.case_ref)
            "platform": case.platform, "source": case.source, "status": case.status, "severity": case.severity,
            "assignee": case.assignee, "escalated_to": case.escalated_to,
            "url": emails.case_url(cfg, case.id), "post_url": web_url(mention.url) if mention else None,
            "author": mention.author if mention else None,
            "times": {"posted_at": iso(case.customer_posted_at), "opened_at": iso(case.opened_at),
                      "first_response_due": iso(case.first_response_due),
                      "first_response_at": iso(case.first_response_at),
                      "resolution_due": iso(case.resolution_due), "resolved_at": iso(case.resolved_at),
                      "escalated_at": iso(case.escalated_at)}}


def about_case(cfg: HearkenConfig, case: Case, mention: MentionRow | None, title: str, intro: str) -> Card:
    """The card of an alert about one case: its facts (SLA times included), the post quoted, its links."""
    return Card(title, intro, emails.case_facts(cfg, case, mention), emails.case_links(cfg, case, mention),
                quote=emails.excerpt(mention) or None, case=case_json(cfg, case, mention))


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _mrkdwn(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack(card: Card) -> dict[str, Any]:
    """A Slack incoming-webhook message (Block Kit)."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(card.title, 150), "emoji": False}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _cut(_mrkdwn(card.intro), 3000)}}]
    if card.facts:
        blocks[1]["fields"] = [{"type": "mrkdwn", "text": _cut(f"*{_mrkdwn(k)}*\n{_mrkdwn(v)}", 2000)}
                               for k, v in card.facts[:10]]
    if card.quote:
        quoted = "\n".join("> " + line for line in _mrkdwn(card.quote).splitlines() or [""])
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _cut(quoted, 3000)}})
    buttons = [{"type": "button", "text": {"type": "plain_text", "text": _cut(label, 75)}, "url": url,
                "action_id": f"hearken-link-{i}"} | ({"style": "primary"} if i == 0 else {})
               for i, (label, url) in enumerate((lb, u) for lb, u in card.links if web_url(u) and len(u) <= 3000)]
    if buttons:
        blocks.append({"type": "actions", "elements": buttons[:25]})
    return {"text": _cut(_mrkdwn(card.title), 3000), "blocks": blocks}


def _inert(text: str) -> str:
    """Text with no markdown link in it: a TextBlock renders `[label](url)`, and a post could dress a link up."""
    return text.replace("](", "]\u200b(")


def teams(card: Card) -> dict[str, Any]:
    """A Teams message carrying one Adaptive Card, as incoming webhooks and Workflows take it."""
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": _inert(card.title), "weight": "Bolder", "size": "Medium", "wrap": True},
        {"type": "TextBlock", "text": _inert(card.intro), "wrap": True}]
    if card.facts:
        body.append({"type": "FactSet", "facts": [{"title": _inert(k), "value": _inert(v)} for k, v in card.facts]})
    if card.quote:
        body.append({"type": "TextBlock", "text": _inert(card.quote), "wrap": True, "isSubtle": True})
    content: dict[str, Any] = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                               "type": "AdaptiveCard", "version": "1.4", "body": body}
    actions = [{"type": "Action.OpenUrl", "title": label, "url": url} for label, url in card.links if web_url(url)]
    if actions:
        content["actions"] = actions
    return {"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
                                                "contentUrl": None, "content": content}]}


def webhook(card: Card, *, event_type: str, event_id: str, at: datetime) -> dict[str, Any]:
    """An alert as signed JSON for a webhook receiver."""
    out: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "id": event_id, "type": event_type,
                           "occurred_at": iso(at), "title": card.title, "text": card.intro,
                           "facts": [{"name": k, "value": v} for k, v in card.facts],
                           "links": [{"label": lb, "url": u} for lb, u in card.links if web_url(u)]}
    if card.case is not None:
        out["case"] = card.case
    return out


def body_for(kind: str, card: Card, *, event_type: str, event_id: str, at: datetime) -> str:
    """The JSON body a channel of `kind` (slack, teams, webhook) is sent."""
    if kind == "slack":
        payload = slack(card)
    elif kind == "teams":
        payload = teams(card)
    else:
        payload = webhook(card, event_type=event_type, event_id=event_id, at=at)
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
