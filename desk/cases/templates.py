"""Saved replies and the placeholders a reply may hold: {name} (the customer) and {case} (our reference).

The composer offers `TEMPLATES`; whatever is posted, a template or what staff typed, goes through
`fill_placeholders` first, and a {word} Hearken does not fill stops the post (it would reach the
public as typed).
"""

from __future__ import annotations

import re

from desk.cases.actions import CaseError

TEMPLATES: dict[str, str] = {
    "Acknowledge and investigate": (
        "Hi {name}, thank you for raising this, and sorry for the trouble. I can see how frustrating this is. "
        "We're looking into it now and will update you here within 24 hours. Ref {case}"),
    "Billing correction": (
        "Hi {name}, thanks for flagging this. Being charged wrongly is stressful, and we'll put it right: "
        "our billing team will correct it and confirm here within 2 working days. Ref {case}"),
    "Outage update": (
        "Hi {name}, sorry, losing your connection is disruptive. We know about the fault in your area; "
        "engineers are on it and we'll post an update here by 6pm today. Thanks for telling us. Ref {case}"),
    "Move to private channel": (
        "Hi {name}, thanks for letting us know and sorry this happened. To fix it we need your account "
        "details: please send us a private message quoting {case} and we'll reply within 4 hours."),
    "Follow-up: resolved": (
        "Hi {name}, following up on {case}: this should now be fixed. Thank you for your patience and for "
        "raising it. If anything still isn't right, reply here and we'll pick it straight back up."),
}


PLACEHOLDERS = {"name": "the customer's name", "case": "the case reference, such as #HK12"}
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


class PlaceholderError(CaseError):
    """A reply still holds a {placeholder} that Hearken does not fill: posted, it would reach the public as is."""


def fill_placeholders(text: str, *, customer: str, case_id: int) -> str:
    """Put the customer's name and the case reference where a reply (a template, or what staff typed) says
    {name} and {case}: one pass over the text, so a name that itself holds braces is never filled again.
    Any other {word} raises PlaceholderError naming it: it would be posted literally."""
    values = {"name": customer.lstrip("@") or "there", "case": case_ref(case_id)}
    unknown = sorted({m.group(1) for m in _PLACEHOLDER.finditer(text) if m.group(1) not in values})
    if unknown:
        known = " and ".join(f"{{{k}}} ({v})" for k, v in PLACEHOLDERS.items())
        names = ", ".join(f"{{{u}}}" for u in unknown)
        raise PlaceholderError(f"the reply holds {names}, which Hearken does not fill in (it fills {known}); "
                               "write the words in its place, or it would reach the public as typed")
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def fill_template(template: str, *, customer: str, case_id: int) -> str:
    """A template with the customer's name and the case reference put in (the same filling as a typed reply)."""
    return fill_placeholders(template, customer=customer, case_id=case_id)


def case_ref(case_id: int) -> str:
    return f"#HK{case_id}"

