"""How a mention's title and body become the classifier's input text.

The same normalisation runs at training and at inference time, so a tweet in
the benchmark and a post collected live look alike to the model.
"""

from __future__ import annotations

import html
import re

_URL = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)
_HANDLE = re.compile(r"(?<![\w@])@\w{1,30}")
_SPACE = re.compile(r"\s+")

# Forum posts can be very long. The model reads windows of tokens (see
# ComplaintModel.predict), and this cap only protects against pathological
# inputs (pasted logs, whole documents): the head and the tail are kept.
MAX_CHARS = 4000


def normalise(text: str) -> str:
    """Unescape HTML entities, mask URLs and user handles, collapse spaces."""
    text = html.unescape(text or "")
    text = _URL.sub("http", text)
    text = _HANDLE.sub("@user", text)
    return _SPACE.sub(" ", text).strip()


def prepare_text(title: str, body: str) -> str:
    """Join a post's title and body into one model input.

    The title comes first, ended with a full stop unless it already ends in
    punctuation, so "Refund still missing" + "I sent it back..." reads as two
    sentences. Text longer than MAX_CHARS keeps its first three quarters and
    its last quarter: a complaint is usually stated at the start and often
    restated at the end ("...third time I ask, fix this").
    """
    title = normalise(title)
    body = normalise(body)
    if title and body:
        joined = title if title[-1] in ".!?:;" else title + "."
        text = f"{joined} {body}"
    else:
        text = title or body
    if len(text) > MAX_CHARS:
        head = MAX_CHARS * 3 // 4
        tail = MAX_CHARS - head - 5
        text = f"{text[:head]} ... {text[-tail:]}"
    return text
