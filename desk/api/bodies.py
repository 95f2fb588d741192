"""What the HTTP API reads and writes: request bodies (pydantic, so a 422 names the bad field) and the JSON
made of desk/'s own values (times ISO 8601 in UTC, durations in seconds under a `_seconds` key)."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from desk.cases.actions import ROOT_CAUSES


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field is named in the 422, not ignored


class ReplyBody(Body):
    text: str = Field(min_length=1, max_length=40_000, description="The reply; {name} and {case} are filled in "
                      "as on the dashboard, and any other {word} is refused.")
    in_reply_to: int | None = Field(None, ge=1, le=2**63 - 1, description="Mention id of a later post of the customer's in the case "
                                    "(default: their newest; see `thread[].mention_id` of the case).")
    seen_replies: int | None = Field(None, ge=0, le=10**9, description="How many replies the case had when you read it: "
                                     "a reply added since then refuses the post (409).")


class ResolveBody(Body):
    note: str = Field(min_length=1, max_length=10_000, description="What was done.")
    root_cause: str = Field(description="One of: " + ", ".join(ROOT_CAUSES))


class AssignBody(Body):
    assignee: str | None = Field(description="A team member's name; null to unassign.")


class EscalateBody(Body):
    manager: str = Field(min_length=1, description="The name of a manager (or admin) on the team.")
    reason: str = Field(min_length=1, max_length=10_000)


class NotAComplaintBody(Body):
    note: str | None = Field(None, max_length=10_000)


class ReopenBody(Body):
    reason: str = Field("", max_length=10_000)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if isinstance(v, timedelta):
                out[f"{k}_seconds"] = v.total_seconds()
            else:
                out[k] = _plain(v)
        return out
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def to_json(obj: Any, **extra: Any) -> dict[str, Any]:
    """A dataclass of desk/ (a QueueItem, a CaseDetail, an outcome) as JSON-ready values, plus `extra`."""
    return _plain({**dataclasses.asdict(obj), **extra})
