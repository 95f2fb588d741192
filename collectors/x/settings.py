"""An X source's settings (`type: x` under `sources:`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from collectors.settings import SourceBase


class XSource(SourceBase):
    type: Literal["x"]
    query: str = Field("", description="Extra X search operators added to the query built from the terms.")
    bearer_token_env: str = "X_BEARER_TOKEN"
    api_key_env: str = Field("X_API_KEY", description="With the three below, lets Hearken post replies.")
    api_secret_env: str = "X_API_SECRET"
    access_token_env: str = "X_ACCESS_TOKEN"
    access_secret_env: str = "X_ACCESS_SECRET"
    monthly_read_cap: int = Field(10000, ge=0, description="Stop reading posts this month after this many (X bills each read).")
    page_size: int = Field(100, ge=10, le=100)
    max_pages: int = Field(5, ge=1)
    interval_seconds: float = Field(900, gt=0, description="How often to poll, before jitter.")
    base_url: str | None = Field(None, description="Only for tests: the X API's address.")
