"""A Reddit source's settings (`type: reddit` under `sources:`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from collectors.settings import SourceBase


class RedditSource(SourceBase):
    type: Literal["reddit"]
    subreddits: list[str] = Field(default_factory=list, description="Subreddits whose new submissions and comments are read ('name/new' or 'name/comments' for only one of them).")
    search: list[str] = Field(default_factory=list, description="Site-wide search queries (Reddit search finds submissions only).")
    client_id_env: str = "REDDIT_CLIENT_ID"
    client_secret_env: str = "REDDIT_CLIENT_SECRET"
    username_env: str = Field("REDDIT_USERNAME", description="Without user credentials the source is read-only.")
    password_env: str = "REDDIT_PASSWORD"
    user_agent: str = "hearken/0.1 (social care; by u/your_account)"
    page_limit: int = Field(100, ge=1, le=100)
    max_pages: int = Field(10, ge=1, description="Stop paging back after this many pages per listing.")
    base_url: str | None = Field(None, description="Only for tests: the Reddit API's address.")
