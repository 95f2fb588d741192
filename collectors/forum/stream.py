"""A forum page parsed a post at a time: each post is read as soon as it closes and then dropped from the tree.

beautifulsoup4 builds the whole page as Python objects, some forty times the page's size: a 5 MB page of
30,000 short posts (inside the default byte cap) cost the runner 200 MB, and every forum polls in a thread
of its own. `PostStream` is a `BeautifulSoup` whose tree keeps only the page around the posts: when an
element that the `post` selector matches closes (html.parser has then given it all of its content), it is
handed to `on_post` and taken out of the tree, so the memory a page costs is its text, one post and what
is not a post (headers, navigation).

The page-wide selectors (`title`, `next_page`) are answered as `Spec.values(soup)[0]` would answer them on
the whole page, though parts of it are gone: before a post leaves, each alternative's first match inside it
is noted with its place on the page, and `first(spec)` compares those with what is left of the tree.

What cannot be known when a post closes is what comes after it: a post selector that looks at later
siblings (`:last-child`, `:nth-last-of-type`) matches as if the post were the last so far. The presets use
none. A post inside another post is read, and left in the outer one, as the whole-page parse did.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import soupsieve
from bs4 import BeautifulSoup, Tag

Place = tuple[int, int]  # (line, column) where an element starts on the page


def _place(el: Tag) -> Place:
    return (el.sourceline or 0, el.sourcepos or 0)


class _Alternative:
    """One `css@attr` alternative of a Spec, compiled once."""

    def __init__(self, css: str, attr: str | None) -> None:
        self.css, self.attr = css, attr
        self.compiled = soupsieve.compile(css) if css else None

    def matches(self, el: Tag) -> bool:
        return self.compiled is not None and bool(self.compiled.match(el)) and \
            (self.attr is None or el.get(self.attr) is not None)

    def found(self, scope: Tag) -> list[Tag]:
        """What `Spec.elements` finds for this alternative in `scope`."""
        if self.compiled is None:
            return [scope]
        found = self.compiled.select(scope)
        return [el for el in found if el.get(self.attr) is not None] if self.attr else found


class _Facts:
    """For one page-wide Spec: per alternative, whether it matched inside a post already dropped, and its first
    non-empty value there with that value's place."""

    def __init__(self, spec: Any, value: Callable[[Tag, str | None], str]) -> None:
        self.alternatives = [_Alternative(css, attr) for css, attr in spec.alternatives]
        self.value = value
        self.seen = [False] * len(self.alternatives)
        self.first: list[tuple[Place, str] | None] = [None] * len(self.alternatives)

    def note(self, post: Tag) -> None:
        for i, alt in enumerate(self.alternatives):
            if alt.compiled is None or self.first[i] is not None:
                continue
            for el in alt.found(post):
                self.seen[i] = True
                value = self.value(el, alt.attr)
                if value:
                    self.first[i] = (_place(el), value)
                    break

    def answer(self, soup: Tag) -> str | None:
        for i, alt in enumerate(self.alternatives):
            left = alt.found(soup)
            if not left and not self.seen[i]:
                continue  # this alternative found nothing: the next one is tried, as Spec.elements does
            here = next(((_place(el), v) for el in left if (v := self.value(el, alt.attr))), None)
            candidates = [c for c in (here, self.first[i]) if c is not None]
            return min(candidates)[1] if candidates else None
        return None


class PostStream(BeautifulSoup):
    """Parses `markup` with html.parser, calling `on_post(self, element, alternative)` for every element the
    `post` Spec matches (`alternative`: the index of the first of its alternatives that matches it), as it
    closes; an outermost post then leaves the tree. `facts` are the page-wide Specs to answer with `first`."""

    def __init__(self, markup: str, *, post: Any, on_post: Callable[[PostStream, Tag, int], None], facts: dict[str, Any],
                 value: Callable[[Tag, str | None], str]) -> None:
        self._alternatives = [_Alternative(css, attr) for css, attr in post.alternatives]
        self._on_post = on_post
        self._facts = {name: _Facts(spec, value) for name, spec in facts.items()}
        self._open_posts: dict[int, bool] = {}  # id of an open element -> whether it looks like a post
        self.matched: list[int] = [0] * len(self._alternatives)  # posts matched per alternative
        super().__init__(markup, "html.parser")

    def _which(self, el: Tag) -> int | None:
        return next((i for i, alt in enumerate(self._alternatives) if alt.matches(el)), None)

    def _inside_a_post(self, el: Tag) -> bool:
        for parent in el.parents:
            if parent is self:
                return False
            key = id(parent)
            if key not in self._open_posts:
                self._open_posts[key] = self._which(parent) is not None
            if self._open_posts[key]:
                return True
        return False

    def popTag(self) -> Tag | None:  # noqa: N802 - bs4's name: called as each element closes
        el = self.currentTag
        result = super().popTag()
        if el is None or el is self:
            return result
        self._open_posts.pop(id(el), None)
        which = self._which(el)
        if which is None:
            return result
        self.matched[which] += 1
        self._on_post(self, el, which)
        if not self._inside_a_post(el):
            self._drop(el)
        return result

    def _drop(self, el: Tag) -> None:
        for facts in self._facts.values():
            facts.note(el)
        before = el.previous_element
        el.extract()
        # what the parser links the next element to: never the dropped post, which would keep it alive
        self._most_recent_element = before
        el.decompose()

    def first(self, name: str) -> str | None:
        """The page-wide Spec `name`'s first value, as on the whole page."""
        return self._facts[name].answer(self)

    def winner(self) -> int | None:
        """The alternative of the post Spec that the whole-page `Spec.elements` would have used."""
        return next((i for i, n in enumerate(self.matched) if n), None)
