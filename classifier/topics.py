"""A coarse topic for a complaint, from keywords.

This is a transparent rule list, not a learned model: the benchmark has no
topic labels to learn from. The first topic whose keywords match wins, in the
order below; "other" when none does.
"""

from __future__ import annotations

import re

TOPICS: dict[str, tuple[str, ...]] = {
    "outage": (
        "down", "outage", "not working", "doesn't work", "does not work", "won't load", "wont load",
        "crash", "crashed", "crashing", "error", "offline", "no signal", "no service", "no internet",
        "broken link", "cannot connect", "can't connect", "cant connect", "bug", "glitch", "freezes",
    ),
    "delivery": (
        "deliver", "delivery", "delivered", "shipping", "shipped", "parcel", "package", "courier",
        "tracking", "dispatch", "arrive", "arrived", "order", "late", "delayed", "delay", "missing item",
    ),
    "billing": (
        "bill", "billing", "charge", "charged", "refund", "payment", "paid", "pay ", "invoice", "price",
        "overcharged", "fee", "fees", "money", "subscription", "direct debit", "cancel my",
    ),
    "account": (
        "account", "password", "login", "log in", "sign in", "locked out", "hacked", "verification",
        "username", "email address", "two-factor", "2fa",
    ),
    "quality": (
        "quality", "faulty", "defective", "broke", "broken", "damaged", "cold food", "stale", "tastes",
        "ripped", "fell apart", "poor", "useless", "rubbish", "awful product", "leaking", "dirty",
    ),
    "support": (
        "customer service", "support", "no reply", "no response", "on hold", "waiting", "ignored",
        "rude", "staff", "helpline", "call centre", "call center", "agent", "dm", "answer", "respond",
    ),
    "transport": (
        "train", "flight", "bus", "cancelled", "canceled", "platform", "seat", "luggage", "baggage",
    ),
}

_PATTERNS = {
    topic: re.compile(r"(?<!\w)(?:" + "|".join(re.escape(w.strip()) for w in words) + r")(?!\w)", re.I)
    for topic, words in TOPICS.items()
}


def topic_of(text: str) -> str:
    for topic, pattern in _PATTERNS.items():
        if pattern.search(text):
            return topic
    return "other"
