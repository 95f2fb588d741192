"""Brand-term matching shared by every collector: whole words, any case, any script.

A term matches where it stands as a whole word (or phrase): "Acme" matches
"acme's app is down" and "ACME!" but not "acmeville". Exclusions veto a post
outright ("acme anvil" when you sell software, not anvils). Text is cleaned
as it will be stored (collectors/clean.py: no control characters, so "Ac\x00me"
is "Acme"), NFKC normalised and case-folded first, so "ＡＣＭＥ" and
"Straße"/"STRASSE" match.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from collectors.clean import clean_text


def _norm(text: str) -> str:
    return unicodedata.normalize("NFKC", clean_text(text)).casefold()  # match what will be stored


def _pattern(term: str) -> re.Pattern[str]:
    words = _norm(term).split()
    if not words:
        raise ValueError("an empty term cannot be matched")
    body = r"\s+".join(re.escape(w) for w in words)
    return re.compile(rf"(?<!\w){body}(?!\w)")


class TermMatcher:
    """Finds which configured terms a text names, unless an exclusion vetoes it."""

    def __init__(self, terms: Iterable[str], exclusions: Iterable[str] = ()) -> None:
        self.terms = [t.strip() for t in terms if t and t.strip()]
        self.exclusions = [t.strip() for t in exclusions if t and t.strip()]
        self._terms = [(t, _pattern(t)) for t in self.terms]
        self._exclusions = [_pattern(t) for t in self.exclusions]

    def match(self, *texts: str | None) -> tuple[str, ...]:
        """Return the terms found in the texts (in configured order), or () if none or excluded."""
        joined = _norm("\n".join(t for t in texts if t))
        if any(p.search(joined) for p in self._exclusions):
            return ()
        return tuple(term for term, p in self._terms if p.search(joined))

    def __bool__(self) -> bool:
        return bool(self._terms)
