"""Case events as webhooks: a case opened, replied, resolved, reopened or escalated, for a CRM to follow.

Every change to a case writes an audit event (desk/cases/audit.record) in the change's transaction:
opening (desk/intake/case_rules.open_case), a public reply found posted (desk/cases/replies.py) or a
reply made elsewhere, resolving, reopening (by a person, or by the customer's follow-up), escalating
(desk/cases/actions.py). A `before_flush` listener turns each such event into one outbox row per
webhook channel with `case_events: true`, in that same flush, so the webhook is written with the case
change or not at all, whichever code path made it, the dashboard's, the API's or the runner's.

The listener finds the config on the session (`attach`: desk/cli/common.open_store and the dashboard's
store call it); a session without one writes no case events. The body is JSON with `"schema_version": 1`
(docs/webhooks.md, docs/webhook-event.schema.json); the sender signs and posts it (desk/notify/channels.py).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from desk.config.schema import HearkenConfig
from desk.notify import cards
from desk.store.db import Store
from desk.store.models import Case, Event, MentionRow, Outbox, now_utc

CONFIG_KEY = "hearken_config"
EVENT_TYPES = {"opened": "case.opened", "replied": "case.replied", "reply_found": "case.replied",
               "replied_elsewhere": "case.replied", "resolved": "case.resolved", "reopened": "case.reopened",
               "escalated": "case.escalated"}


def attach(store: Store, cfg: HearkenConfig) -> Store:
    """Let the store's sessions write case events for `cfg`'s subscribed channels."""
    store.sessions.configure(info={CONFIG_KEY: cfg})
    return store


def event_type(ev: Event) -> str | None:
    """The webhook event an audit event is, or None (a customer's follow-up is one only when it reopened)."""
    if ev.action == "customer_followup":
        return "case.reopened" if (ev.detail or {}).get("reopened") else None
    return EVENT_TYPES.get(ev.action)


def payload(cfg: HearkenConfig, case: Case, mention: MentionRow | None, ev: Event, etype: str, event_id: str) -> dict[str, Any]:
    detail = {k: v for k, v in (ev.detail or {}).items()
              if k in ("to", "reason", "note", "root_cause", "where", "url", "was", "reply_id")}
    return {"schema_version": cards.SCHEMA_VERSION, "id": event_id, "type": etype,
            "occurred_at": cards.iso(ev.at or now_utc()), "actor": ev.actor, "detail": detail,
            "case": cards.case_json(cfg, case, mention)}


@event.listens_for(Session, "before_flush")
def _write_case_events(session: Session, _flush_context, _instances) -> None:
    cfg: HearkenConfig | None = session.info.get(CONFIG_KEY)
    if cfg is None or not cfg.alerts.enabled:
        return
    subscribed = {n: c for n, c in cfg.alerts.channels.items() if c.case_events}
    if not subscribed:
        return
    for ev in [o for o in session.new if isinstance(o, Event)]:
        etype = event_type(ev)
        if etype is None or ev.case_id is None:
            continue
        with session.no_autoflush:
            case = session.get(Case, ev.case_id)
            mention = session.get(MentionRow, case.mention_id) if case is not None else None
        if case is None:
            continue
        event_id = f"{etype}:case:{case.id}:{uuid.uuid4().hex[:12]}"
        body = json.dumps(payload(cfg, case, mention, ev, etype, event_id), ensure_ascii=False,
                          separators=(",", ":"))
        at = ev.at or now_utc()
        for name, channel in subscribed.items():
            if channel.sources and case.source not in channel.sources:
                continue
            session.add(Outbox(kind=etype, dedupe_key=f"{event_id}@{name}", recipients=[name], channel=name,
                               subject=f"{etype} #{case.id} ({case.platform}, {case.status})", body_text=body,
                               case_id=case.id, status="pending", attempts=0, created_at=at, next_attempt_at=at))
