"""The demo source's settings (`type: demo` under `sources:`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from collectors.settings import SourceBase


class DemoSource(SourceBase):
    type: Literal["demo"]
    speed: float = Field(1.0, gt=0, description="Replay speed: 60 releases an hour of posts each minute.")
    interval_seconds: float = Field(15, gt=0, description="How often to poll, before jitter.")
