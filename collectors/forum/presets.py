"""Selector presets for common forum software, read by collectors/forum.py.

Each preset is what `ForumSelectors` (collectors/forum/settings.py) would say in a
config. Syntax, shared with configs:

- a CSS selector, looked up inside one post element (title and next_page: in
  the whole page);
- ending in `@attr` to read that attribute rather than the text;
  a bare `@attr` reads the post element itself;
- `||` separates alternatives, tried left to right (older and newer themes).

A time without `@attr` is read from the element's `data-time`, `datetime`,
`content` or `title` attribute when it has one, else from its text.

The presets were written against real saved pages (phpBB 3.0 prosilver,
vBulletin 3.8 and 4.2, XenForo 1 and 2, Discourse 2.4's crawler view) and
also name the markup of newer themes where it differs.
"""

from __future__ import annotations

DEFAULT_NEXT_PAGE = "link[rel=next]@href || a[rel=next]@href"

PRESETS: dict[str, dict[str, object]] = {
    "phpbb": {
        "post": "div.post[id^=p]",
        "id_attr": "id",
        "body": "div.content",
        "author": "p.author strong || dl.postprofile a.username",
        # 3.0 writes the time as text after the author; 3.2+ has <time datetime>.
        "time": "p.author time@datetime || p.author",
        "permalink": "p.author a[href*='#p']@href || h3 a[href^='#p']@href",
        "title": "h2.topic-title a || h2 a",
        "next_page": "a[rel=next]@href || div.pagination strong + span.page-sep + a@href",
        "quote_author": "blockquote cite",
        "quote": "blockquote",
    },
    "vbulletin3": {
        "post": "table.tborder[id^=post]",
        "id_attr": "id",
        "body": "div[id^=post_message_]",
        "author": "a.bigusername || .bigusername",
        "time": "td.thead",
        "permalink": "a[id^=postlink]@href || a[id^=postcount]@href",
        "title": "td.navbar > strong || title",
        "next_page": DEFAULT_NEXT_PAGE,
        "quote_author": "div[id^=post_message_] td.alt2 > div > strong",
        "quote": "div:has(> div.smallfont):has(> table)",
    },
    "vbulletin4": {
        "post": "li.postcontainer[id^=post_] || li.postbitlegacy[id^=post_] || li.postbit[id^=post_]",
        "id_attr": "id",
        "body": "blockquote.postcontent",
        "author": "a.username || .username",
        "time": "span.date",
        "permalink": "a.postcounter@href",
        "title": "span.threadtitle a || h1 span.threadtitle || title",
        "next_page": DEFAULT_NEXT_PAGE,
        "quote_author": "div.bbcode_postedby strong",
        "quote": "div.bbcode_container",
    },
    "xenforo1": {
        "post": "li.message[id^=post-]",
        "id_attr": "id",
        "body": "blockquote.messageText",
        "author": "@data-author || a.username",
        "time": "a.datePermalink .DateTime || .DateTime",
        "permalink": "a.datePermalink@href || a.hashPermalink@href",
        "title": "div.titleBar h1 || h1",
        "next_page": DEFAULT_NEXT_PAGE,
        "quote_author": "div.bbCodeQuote@data-author",
        "quote": "div.bbCodeQuote",
    },
    "xenforo2": {
        "post": "article.message[data-content]",
        "id_attr": "data-content",
        "body": "article.message-body div.bbWrapper || div.bbWrapper",
        "author": "@data-author || h4.message-name a",
        "time": ".message-attribution-main time || time.u-dt",
        "permalink": ".message-attribution-main a@href || .message-attribution-gadget@href",
        "title": "h1.p-title-value || h1",
        "next_page": DEFAULT_NEXT_PAGE,
        "quote_author": "blockquote.bbCodeBlock--quote@data-quote",
        "quote": "blockquote.bbCodeBlock--quote",
    },
    "discourse_crawler": {
        # The <noscript> view Discourse serves to crawlers and browsers without JavaScript.
        "post": "div.crawler-post || [itemtype$=DiscussionForumPosting]",
        "id": "[itemprop=position]",
        "id_scope": "thread",
        "body": "[itemprop=articleBody]",
        "author": "[itemprop=author] [itemprop=name]",
        "time": "[itemprop=datePublished]",
        "permalink_template": "{page}/{id}",
        "title": "meta[property='og:title']@content || h1.crawler-topic-title || h1",
        "next_page": "a[rel=next]@href || link[rel=next]@href",
        "quote_author": "aside.quote@data-username",
        "quote": "aside.quote",
    },
}
