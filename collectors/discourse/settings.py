"""A Discourse source's settings (`type: discourse` under `sources:`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, HttpUrl

from collectors.settings import SourceBase


class DiscourseSource(SourceBase):
    type: Literal["discourse"]
    base_url: HttpUrl = Field(description="The forum's address, e.g. https://forum.example.com")
    api_key_env: str | None = Field(None, description="Environment variable with an Api-Key (needed to post).")
    api_username_env: str | None = Field(None, description="Environment variable with the Api-Username to post as.")
    webhook_secret_env: str | None = Field(
        None, description="Environment variable with the secret of the forum's webhook (Admin > API > Webhooks): "
                          "set, posts are taken in the moment they are written (POST /hooks/discourse/<name>); "
                          "unset, the source refuses webhooks and is polled only.")
    read: list[Literal["latest", "search"]] = Field(
        default_factory=lambda: ["latest"],
        description="latest: every new post on the forum (/posts.json); search: /search.json for the terms or search_query.")
    search_query: str | None = Field(None, description="One Discourse search instead of one per term, e.g. 'acme category:support'.")
    max_pages: int = Field(10, ge=1, description="Stop paging back after this many pages per feed and poll.")
