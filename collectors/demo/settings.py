"""The demo source's settings (`type: demo` under `sources:`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field

from collectors.settings import SourceBase


class DemoSource(SourceBase):
    type: Literal["demo"]
    speed: float = Field(1.0, gt=0, description="Replay speed: 60 releases an hour of posts each minute.")
    interval_seconds: float = Field(15, gt=0, description="How often to poll, before jitter.")


X_STYLE_LIMIT = 280  # a demo post written in X's style takes X's limit
OTHER_LIMIT = 10000


def reply_limit(extra: Mapping[str, Any]) -> int:
    return X_STYLE_LIMIT if (extra or {}).get("style") == "x" else OTHER_LIMIT
