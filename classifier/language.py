"""Which language a post is written in: py3langid, which ships its own model (no download, no torch).

    from classifier.language import detect
    [lang] = detect(["Mein Internet ist seit drei Tagen weg"])
    lang.code, lang.probability, lang.confident          # 'de', 1.0, True

The complaint model reads English only, so the desk asks this module first
and routes a post in another language by its config rule instead of scoring
it (see README, "Languages").

py3langid (a maintained fork of langid.py: naive Bayes over byte n-grams, 140
languages and regional variants, a 3 MB model inside the wheel, NumPy only) was chosen over lingua
after measuring both on real short posts (benchmarks/bench_language.py,
classifier/MODEL.md "Language"): it is as good at the decision we take
(English or not) and far smaller and faster to load.

Short posts carry little evidence, and handles, links and hashtags carry
none, so those are removed before detection, and a post is called another
language only when the detector is confident that it is not English (the
normalised probabilities of all other languages together reach `CONFIDENT`)
and enough letters are left (`MIN_LETTERS`). A post whose
best guess is English is `en`; any other post the detector is unsure of is
`und` (undetermined), which the desk treats as it treats English (it is
scored), since nothing shows it is anything else.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass

UNDETERMINED = "und"
MIN_LETTERS = 12  # fewer letters than this (after removing handles and links): undetermined
CONFIDENT = 0.99  # the probability of "not English" (all other languages together) needed to call a post so

_NOISE = re.compile(r"https?://\S+|www\.\S+|[@#]\w+|&\w+;", re.UNICODE)
_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)

_lock = threading.Lock()
_identifier = None


@dataclass(frozen=True)
class Language:
    code: str  # ISO 639-1, or "und" when the post is too short or the detector unsure
    probability: float  # the detector's normalised probability of its best guess (0 on too little text)
    guess: str = ""  # the detector's best guess even when unsure ("" when there was nothing to read)

    @property
    def confident(self) -> bool:
        return self.code != UNDETERMINED


def _model():
    global _identifier
    with _lock:
        if _identifier is None:
            from py3langid.langid import MODEL_FILE, LanguageIdentifier

            _identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        return _identifier


def load() -> None:
    """Load the detector's model now (about 100 MB, a few seconds) rather than on the first post: the runner
    calls it at start, beside the complaint model, so its memory and time are paid before polling begins."""
    _model()


def _readable(text: str) -> str:
    return " ".join(_NOISE.sub(" ", text or "").split())


def detect_one(text: str) -> Language:
    plain = _readable(text)
    if len(_LETTER.findall(plain)) < MIN_LETTERS:
        return Language(UNDETERMINED, 0.0)
    ranked = _model().rank(plain)
    top, p_top = ranked[0]
    # English or not is the decision that matters: the probability of "not English" sums every other
    # language, so a post spread over close relatives (ar, arz, ary; pt, gl) still counts as not English
    p_english = next((p for code, p in ranked if code == "en"), 0.0)
    if top == "en":  # English or undetermined lead to the same: the post is scored
        return Language("en", float(p_english), "en")
    if top != "en" and 1.0 - p_english >= CONFIDENT:
        return Language(top, float(p_top), top)
    return Language(UNDETERMINED, float(p_top), top)


def known_codes() -> frozenset[str]:
    """Every code `detect` can return (besides "und")."""
    return frozenset(_model().labels)


def detect(texts: Sequence[str]) -> list[Language]:
    """The language of each text, in order."""
    if isinstance(texts, str):
        raise TypeError("detect() takes a sequence of texts, not one string")
    return [detect_one(t) for t in texts]
