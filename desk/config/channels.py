"""Where alerts go besides email: named chat and webhook channels (`alerts.channels`) and, per rule, the
channels that hear of it (`alerts.routes`).

A channel is Slack (an incoming webhook), Microsoft Teams (an incoming webhook or a Workflows "post to a
channel when a webhook request is received" flow) or a generic webhook signed with HMAC-SHA256. Its
address and signing key are secrets, so the config only names the environment variables that hold
them (`url_env`, `secret_env`). A channel may serve one team: `sources` limits the case alerts it hears
of to those sources' cases. A webhook channel with `case_events: true` also receives every case's
life (opened, replied, resolved, reopened, escalated): desk/notify/case_events.py.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

EMAIL = "email"  # in a route: the rule's recipients, by email
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


class Channel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["slack", "teams", "webhook"] = Field(description="slack, teams or webhook (signed JSON).")
    url_env: str = Field(description="Environment variable holding the webhook's URL (a secret: never in the YAML).")
    secret_env: str | None = Field(None, description="webhook: environment variable holding the signing key.")
    case_events: bool = Field(False, description="webhook: also send every case opened, replied, resolved, reopened "
                                                 "and escalated.")
    sources: list[str] = Field(default_factory=list, description="Only case alerts about these sources (a team's "
                                                                 "channel); empty = all.")
    timeout_seconds: float = Field(10, gt=0, le=120, description="Wall-clock limit of one delivery to this channel.")

    @model_validator(mode="after")
    def _signed(self) -> Channel:
        if self.type == "webhook" and not self.secret_env:
            raise ValueError("a webhook channel needs secret_env (the environment variable with its signing key)")
        if self.case_events and self.type != "webhook":
            raise ValueError("case_events are sent to webhook channels only")
        return self


def _route(default: list[str] | None = None):
    return Field(default_factory=lambda: list(default or [EMAIL]))


class Routes(BaseModel):
    """Per alert rule, where it goes: "email" and/or channel names from alerts.channels."""

    model_config = ConfigDict(extra="forbid")

    severe_complaint: list[str] = _route()
    sla_warning: list[str] = _route()
    sla_breach: list[str] = _route()
    escalation: list[str] = _route()
    source_failing: list[str] = _route()
    source_silent: list[str] = _route()
    read_budget: list[str] = _route()
    digest: list[str] = _route()
    weekly_report: list[str] = _route()

    def of(self, kind: str) -> list[str]:
        """The route of an alert kind; an unknown kind goes by email, as every alert did before channels."""
        return list(getattr(self, kind)) if kind in type(self).model_fields else [EMAIL]


def check_routes(channels: dict[str, Channel], routes: Routes) -> None:
    """Every name a route uses is "email" or a channel defined in alerts.channels."""
    for name in channels:
        if not _NAME.match(name):
            raise ValueError(f"alerts.channels: {name!r} is not a usable channel name (letters, digits, - _ .)")
    for rule in Routes.model_fields:
        unknown = [n for n in getattr(routes, rule) if n != EMAIL and n not in channels]
        if unknown:
            raise ValueError(f"alerts.routes.{rule}: {', '.join(map(repr, unknown))} is not \"email\" nor a channel "
                             f"in alerts.channels ({', '.join(channels) or 'none defined'})")
