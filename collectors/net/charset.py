"""The charset a page is read with, the way browsers pick it: the forced one, a BOM, the Content-Type
header, a <meta> tag, else UTF-8; a declared latin-1 or ASCII is read as windows-1252 (WHATWG Encoding)."""

from __future__ import annotations

import codecs
import re
from collections.abc import Mapping

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_\-:.]+)""", re.I)
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
# WHATWG Encoding: a page labelled latin-1 or ASCII is decoded as windows-1252 by every browser.
_WHATWG_ALIASES = {"iso-8859-1": "cp1252", "latin-1": "cp1252", "latin1": "cp1252", "l1": "cp1252",
                   "us-ascii": "cp1252", "ascii": "cp1252", "iso8859-1": "cp1252", "windows-1252": "cp1252"}


def _codec(label: str | None) -> str | None:
    if not label:
        return None
    label = label.strip().strip("\"'").lower()
    label = _WHATWG_ALIASES.get(label, label)
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def page_charset(content: bytes, headers: Mapping[str, str], *, forced: str | None = None, sniff_meta: bool = True) -> str:
    """The charset to read a page with: forced, BOM, Content-Type header, <meta>, else UTF-8."""
    if forced and _codec(forced):
        return _codec(forced)  # type: ignore[return-value]
    for bom, name in _BOMS:
        if content.startswith(bom):
            return name
    ctype = headers.get("content-type", "")
    match = re.search(r"charset\s*=\s*([^;\s]+)", ctype, re.I)
    if match and _codec(match.group(1)):
        return _codec(match.group(1))  # type: ignore[return-value]
    if sniff_meta:
        meta = _META_CHARSET.search(content[:4096])
        if meta and _codec(meta.group(1).decode("ascii", "replace")):
            return _codec(meta.group(1).decode("ascii", "replace"))  # type: ignore[return-value]
    return "utf-8"


def decode_html(content: bytes, headers: Mapping[str, str], *, forced: str | None = None, sniff_meta: bool = True) -> str:
    charset = page_charset(content, headers, forced=forced, sniff_meta=sniff_meta)
    text = content.decode(charset, errors="replace")
    return text[1:] if text.startswith("\ufeff") else text
