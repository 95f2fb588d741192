"""An HTML forum source's settings (`type: forum` under `sources:`): its pages, preset and selectors."""

from __future__ import annotations

import re
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator, model_validator

from collectors.forum.presets import PRESETS
from collectors.settings import SourceBase

PresetName = Literal[tuple(PRESETS) + ("custom",)]  # type: ignore[valid-type]


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
    parent: str | None = Field(None, description="Where the post names the post it answers or quotes (a reply-to marker, a quote's link, usually @attribute): the post id is taken from it and becomes the mention's parent.")

    @field_validator("post", "body", "author", "time", "permalink", "id", "title", "next_page", "quote_author", "quote",
                     "parent")
    @classmethod
    def _valid_css(cls, v: str | None) -> str | None:
        if v is None:
            return v
        import soupsieve  # here, not with the module: every config load finds this platform, few name selectors

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
    preset: PresetName = Field("custom", description="The forum software whose selectors to use (collectors/forum/presets.py), or custom.")
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
