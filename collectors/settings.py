"""Settings of each kind of source, as they appear under `sources:` in the YAML.

Each model is validated by desk/config.py as part of the whole file; `type`
picks the model. Secrets never appear here: a field ending in `_env` names
the environment variable that holds the secret.
"""

from __future__ import annotations

import re
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import soupsieve
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator, model_validator


class SourceBase(BaseModel):
    """Keys every source has."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Unique name of this source, shown on the dashboard.")
    enabled: bool = Field(True, description="Set false to stop polling this source without deleting it.")
    interval_seconds: float = Field(300, gt=0, description="How often to poll, before jitter.")
    read_only: bool = Field(False, description="Collect, but never post replies through this source.")
    terms: list[str] = Field(default_factory=list, description="Extra terms for this source only, added to brand.terms.")
    poll_deadline_seconds: float = Field(120, gt=0, description="A poll still running after this long is abandoned and recorded as a failure.")
    request_deadline_seconds: float = Field(30, gt=0, description="Wall-clock limit of one request to the platform, redirects included.")
    max_response_bytes: int = Field(10_000_000, ge=1024, description="Stop reading an answer larger than this many bytes (after decompression).")

    @field_validator("name")
    @classmethod
    def _name_is_simple(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError("a source needs a non-empty name")
        return v


class DemoSource(SourceBase):
    type: Literal["demo"]
    speed: float = Field(1.0, gt=0, description="Replay speed: 60 releases an hour of posts each minute.")
    interval_seconds: float = Field(15, gt=0, description="How often to poll, before jitter.")


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


class DiscourseSource(SourceBase):
    type: Literal["discourse"]
    base_url: HttpUrl = Field(description="The forum's address, e.g. https://forum.example.com")
    api_key_env: str | None = Field(None, description="Environment variable with an Api-Key (needed to post).")
    api_username_env: str | None = Field(None, description="Environment variable with the Api-Username to post as.")
    read: list[Literal["latest", "search"]] = Field(
        default_factory=lambda: ["latest"],
        description="latest: every new post on the forum (/posts.json); search: /search.json for the terms or search_query.")
    search_query: str | None = Field(None, description="One Discourse search instead of one per term, e.g. 'acme category:support'.")
    max_pages: int = Field(10, ge=1, description="Stop paging back after this many pages per feed and poll.")


class ForumSelectors(BaseModel):
    """CSS selectors that find posts in a forum page (a preset fills them in).

    Every selector but `post` is looked up inside one post element. A selector
    may end in `@attribute` to read that attribute instead of the text
    (`a.permalink@href`); a bare `@attribute` reads the post element's own
    attribute (`@data-author`). Fields left out keep the preset's value.
    """

    model_config = ConfigDict(extra="forbid")

    post: str | None = Field(None, description="Matches each post on the page.")
    body: str | None = Field(None, description="The post's text.")
    author: str | None = Field(None, description="The author's name.")
    time: str | None = Field(None, description="When it was posted: an attribute with ISO time or epoch seconds, or text.")
    time_format: list[str] | None = Field(None, description="strptime formats for a time written as text, tried in order.")
    permalink: str | None = Field(None, description="Link to the post (usually an <a>@href); relative links are resolved.")
    permalink_template: str | None = Field(None, description="Used when there is no permalink link: '{page}' and '{id}' are filled in.")
    id_attr: str | None = Field(None, description="Attribute of the post element that holds its id (digits are taken from it).")
    id: str | None = Field(None, description="Selector (usually with @attribute) for the post id when id_attr is not enough.")
    id_scope: Literal["site", "thread"] | None = Field(None, description="site: post ids are unique on the forum; thread: only within a thread.")
    title: str | None = Field(None, description="The thread title, looked up in the whole page.")
    next_page: str | None = Field(None, description="The link to the next page of the thread, looked up in the whole page.")
    quote_author: str | None = Field(None, description="Author names of quoted posts, to notice answers to our own accounts.")
    quote: str | None = Field(None, description="Quoted posts inside the body: left out when matching terms, so quoting a mention is not a new one.")

    @field_validator("post", "body", "author", "time", "permalink", "id", "title", "next_page", "quote_author", "quote")
    @classmethod
    def _valid_css(cls, v: str | None) -> str | None:
        if v is None:
            return v
        for alt in v.split("||"):
            css = alt.strip()
            at = css.rfind("@")
            if at >= 0 and re.fullmatch(r"[\w:.-]+", css[at + 1:]):
                css = css[:at].strip()
            if css:
                try:
                    soupsieve.compile(css)
                except soupsieve.SelectorSyntaxError as exc:
                    raise ValueError(f"{css!r} is not a CSS selector soupsieve understands: {exc.args[0]}") from None
        return v


class ForumSource(SourceBase):
    type: Literal["forum"]
    pages: list[HttpUrl] = Field(min_length=1, description="Thread or listing pages to read.")
    preset: Literal["phpbb", "vbulletin3", "vbulletin4", "xenforo1", "xenforo2", "discourse_crawler", "custom"] = "custom"
    selectors: ForumSelectors | None = Field(None, description="Required when preset is custom; overrides the preset otherwise.")
    user_agent: str = "hearken/0.1 (+https://example.com/hearken)"
    respect_robots: bool = Field(True, description="Obey robots.txt: skip disallowed pages, wait its Crawl-delay between requests.")
    encoding: str | None = Field(None, description="Force a charset when a forum declares the wrong one.")
    timezone: str = Field("UTC", description="IANA zone of times the forum writes without one (the board's setting), e.g. Europe/Berlin.")
    max_pages: int = Field(5, ge=1, description="Pages to follow through the next-page link from each configured page, per poll.")

    @model_validator(mode="after")
    def _custom_needs_selectors(self) -> "ForumSource":
        if self.preset == "custom" and (self.selectors is None or not self.selectors.post or not self.selectors.body):
            raise ValueError("preset 'custom' needs selectors with at least 'post' and 'body'")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {self.timezone!r} (use an IANA name such as Europe/Berlin)") from None
        return self


SourceSettings = DemoSource | RedditSource | XSource | DiscourseSource | ForumSource
