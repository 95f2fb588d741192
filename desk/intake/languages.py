"""Routing mentions by language: the complaint model scores only the languages the config names.

The model reads English. Every mention gets its language from
`classifier.language` when it is classified; one in a language outside
`classifier.languages` (default `[en]`) is never scored by the model. The
config's `classifier.other_languages` says what happens to it instead:

- `queue` (default): it opens a case for a reader, flagged with its language,
  with no score and no severity (the SLA counts it as severity 1);
- `drop`: it stays in the database with its language, unscored, and opens no
  case; the Sources page counts and lists these per source
  (`set_aside_by_language`).

A post too short to tell (`und`) is scored: nothing shows it is not English.
A follow-up in another language still joins its case (desk.intake.case_rules).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select

from desk.config.schema import HearkenConfig
from desk.store.db import Store
from desk.store.models import Classification, MentionRow


@dataclass(frozen=True)
class Route:
    language: str  # ISO 639 code, or "und"
    scored: bool  # True: the complaint model scores it; False: other_languages decides


def route(cfg: HearkenConfig, texts: Sequence[str]) -> list[Route]:
    """Each text's language and whether the complaint model may score it."""
    from classifier.language import UNDETERMINED, detect

    allowed = set(cfg.classifier.languages)
    return [Route(lang.code, lang.code == UNDETERMINED or lang.code in allowed) for lang in detect(texts)]


def not_scored_note(cfg: HearkenConfig, language: str) -> str:
    """What the dashboard and the case history say about a mention that was not scored."""
    return (f"written in '{language}', which the complaint model does not score "
            f"(classifier.languages: {', '.join(cfg.classifier.languages)})")


@dataclass(frozen=True)
class SetAsideByLanguage:
    """One source's mentions that were not scored and opened no case (`other_languages: drop`)."""

    source: str
    count: int
    by_language: dict[str, int]
    latest: list[tuple[str, str, str]]  # (language, author, text) of the newest few

    def line(self) -> str:
        langs = ", ".join(f"{code} {n}" for code, n in sorted(self.by_language.items(), key=lambda kv: -kv[1]))
        noun = "mention" if self.count == 1 else "mentions"
        return (f"Set aside, not scored: {self.count} {noun} in languages the complaint model does not read "
                f"({langs}); classifier.other_languages is drop, so they open no case")


def set_aside_by_language(store: Store, *, latest: int = 20) -> dict[str, SetAsideByLanguage]:
    """Per source: the mentions classified without a score and without a case, i.e. dropped by language."""
    dropped = (MentionRow.classified.is_(True), MentionRow.case_id.is_(None), Classification.id.is_(None),
               MentionRow.language.is_not(None))
    out: dict[str, SetAsideByLanguage] = {}
    with store.session() as s:
        rows = s.execute(select(MentionRow.source, MentionRow.language, func.count())
                         .outerjoin(Classification, Classification.mention_id == MentionRow.id)
                         .where(*dropped).group_by(MentionRow.source, MentionRow.language)).all()
        counts: dict[str, dict[str, int]] = {}
        for source, language, n in rows:
            counts.setdefault(source, {})[language] = int(n)
        for source, by_language in counts.items():
            entry = out[source] = SetAsideByLanguage(source, sum(by_language.values()), by_language, [])
            newest = s.execute(select(MentionRow.language, MentionRow.author, MentionRow.title, MentionRow.body)
                               .outerjoin(Classification, Classification.mention_id == MentionRow.id)
                               .where(*dropped, MentionRow.source == source)
                               .order_by(MentionRow.posted_at.desc()).limit(latest)).all()
            entry.latest.extend((lang, author, f"{title}. {body}" if title else body)
                                for lang, author, title, body in newest)
    return out
