"""Selector presets for common forum software, read by collectors/forum/page.py.

Each preset is what `ForumSelectors` (collectors/forum/settings.py) would say in a
config. Syntax, shared with configs:

- a CSS selector, looked up inside one post element (title and next_page: in
  the whole page);
- ending in `@attr` to read that attribute rather than the text;
  a bare `@attr` reads the post element itself;
- `||` separates alternatives, tried left to right (older and newer themes).

A time without `@attr` is read from the element's `data-time`, `datetime`,
`content` or `title` attribute when it has one, else from its text.

`parent` finds where a post names the post it answers or quotes (a quote's
"View Post" link, a reply-to marker); the post id is read from it
(selectors.py's `post_ref`). Where a page names none (phpBB 3.0's quotes carry
only a name), the mention has no parent.

The presets were written against real saved pages (phpBB 3.0 prosilver,
vBulletin 3.8 and 4.2, XenForo 1 and 2, Discourse 2.4's crawler view; see
../shared/fixtures/SOURCES.md) and pages in the shape of vBulletin 5.6 and
NodeBB's Persona theme (tests/fixtures/SOURCES.md), and also name the markup
of newer themes where it differs.
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
        "parent": "blockquote cite a[data-post-id]@data-post-id || blockquote cite a[href*='p=']@href",
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
        "parent": "div[id^=post_message_] td.alt2 > div > a[href*='p=']@href",
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
        "parent": "div.bbcode_postedby a[href*='p=']@href",
    },
    "vbulletin5": {
        # vBulletin 5 ("Connect"): every post is an <li> of the conversation list with its node id and its time
        # as an epoch; <time datetime> is the server's local time without a zone, so it is only the fallback.
        "post": "li.b-post[data-node-id]",
        "id_attr": "data-node-id",
        "body": "div.js-post__content-text",
        "author": "div.author a || .b-userinfo [itemprop=name] || a.user-profile",
        "time": "@data-node-publishdate || time[itemprop=dateCreated]@datetime || time",
        "permalink": "a.b-post__count@href",
        "title": "h1.main-title || meta[property='og:title']@content || title",
        "next_page": "link[rel=next]@href || a.js-pagenav-next-button@href || a[rel=next]@href",
        "quote_author": "div.bbcode_postedby strong",
        "quote": "div.bbcode_container",
        "parent": "div.bbcode_postedby a[href*='p=']@href || div.bbcode_postedby a[href*='/node/']@href",
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
        "parent": "div.bbCodeQuote a.AttributionLink@href",
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
        "parent": "blockquote.bbCodeBlock--quote[data-source]@data-source || a.bbCodeBlock-sourceJump@href",
    },
    "nodebb": {
        # NodeBB (Persona and Harmony themes): posts carry their pid, author and time (ms) as attributes; a reply
        # made with the Reply button shows the post it answers (post/parent), a quote opens with "@name said in
        # <a href=/post/pid>".
        "post": "li[component=post][data-pid]",
        "id_attr": "data-pid",
        "body": "[component='post/content']",
        "author": "@data-username || [itemprop=author]",
        "time": "meta[itemprop=datePublished]@content || @data-timestamp",
        "permalink": "a.permalink@href || a.post-index@href",
        "title": "[component='topic/title'] || h1[component='post/header'] || meta[property='og:title']@content || title",
        "next_page": DEFAULT_NEXT_PAGE,
        "quote_author": "p:has(+ blockquote) a.plugin-mentions-user",
        "quote": "blockquote, p:has(+ blockquote)",
        "parent": "[component='post/parent']@data-topid || [component='post/parent'] a[href*='/post/']@href "
                  "|| [component='post/parent']@href || p:has(+ blockquote) a[href*='/post/']@href",
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
