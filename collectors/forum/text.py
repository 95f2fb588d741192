"""A forum post's HTML as the text a person reads: paragraphs kept, inline markup joined as written.

`html_text` walks the parsed tree (beautifulsoup4, which the forum collector
has already parsed the page with): block elements (p, div, li, headings,
blockquote, table rows, ...) start a new line, paragraphs are separated by a
blank line, `<br>` breaks a line, and inline elements (b, a, span, ...) add
nothing of their own, so "<b>Acme</b>, fix this" stays "Acme, fix this"
instead of gaining a line break or a space before the comma. Whitespace runs
collapse to one space (kept as written inside <pre>); scripts, styles and
comments are left out.
"""

from __future__ import annotations

import re

from bs4 import Comment, NavigableString, Tag
from bs4.element import CData, Declaration, Doctype, ProcessingInstruction

PARAGRAPH = frozenset({"p", "blockquote", "pre", "ul", "ol", "dl", "table", "h1", "h2", "h3", "h4", "h5", "h6",
                       "figure", "hr", "address", "details", "fieldset", "form"})
LINE = frozenset({"div", "li", "dt", "dd", "tr", "section", "article", "aside", "header", "footer", "nav", "main",
                  "figcaption", "summary", "caption", "legend", "center", "tbody", "thead", "tfoot", "cite"})
CELL = frozenset({"td", "th"})
SKIP = frozenset({"script", "style", "noscript", "template", "head", "title", "select", "button"})
_NOT_TEXT = (Comment, Declaration, Doctype, ProcessingInstruction, CData)

_PARA, _LINE, _BR = object(), object(), object()  # a paragraph break, a block's line break, a <br>
_SPACES = re.compile(r"[ \t\r\n\f\v]+")


def html_text(el: Tag) -> str:
    """The text of `el` with paragraphs (blank lines) and line breaks, and no breaks at inline elements.

    Two `<br>` in a row (how many forums separate paragraphs) make a blank line too.
    """
    tokens: list[object] = []
    _walk(el, tokens, pre=False)
    out: list[str] = []
    block = brs = 0
    for tok in tokens:
        if tok is _PARA:
            block = 2
        elif tok is _LINE:
            block = max(block, 1)
        elif tok is _BR:
            brs += 1
        elif isinstance(tok, str):
            if not tok.strip() and (block or brs or not out):
                continue  # the whitespace between blocks
            breaks = max(block, min(2, brs))
            if breaks and out:
                out.append("\n" * breaks)
            block = brs = 0
            out.append(tok)
    lines = [line.strip() for line in "".join(out).split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _walk(el: Tag, chunks: list[object], *, pre: bool) -> None:
    for child in el.children:
        if isinstance(child, _NOT_TEXT):
            continue
        if isinstance(child, NavigableString):
            text = str(child)
            chunks.append(text if pre else _SPACES.sub(" ", text))
            continue
        if not isinstance(child, Tag):
            continue
        name = (child.name or "").lower()
        if name in SKIP:
            continue
        if name == "br":
            chunks.append(_BR)
            continue
        if name == "img":
            alt = child.get("alt")
            if isinstance(alt, str) and alt.strip() and len(alt) <= 30 and not alt.startswith(("http", "/")):
                chunks.append(alt.strip())  # a smiley's text (":)"), not a photo's file name
            continue
        mark = _PARA if name in PARAGRAPH else _LINE if name in LINE else None
        if mark:
            chunks.append(mark)
        elif name in CELL:
            chunks.append(" ")
        _walk(child, chunks, pre=pre or name == "pre")
        if mark:
            chunks.append(mark)
        elif name in CELL:
            chunks.append(" ")


def line_text(el: Tag) -> str:
    """The text of `el` on one line (an author's name, a title): `html_text` with its breaks as spaces."""
    return " ".join(html_text(el).split())
