"""The collector boundary's normaliser: every mention leaves a collector clean enough to store.

Whatever a platform sends, a `Mention` that leaves `collector_boundary` has:

- no NUL or other control characters (bodies keep newlines and tabs; CR LF
  becomes LF), no lone surrogates (each becomes U+FFFD, as bad bytes already
  do when a page is decoded);
- fields that fit their database columns: ids over `ID_LIMIT` keep their
  start and gain a hash of the whole (so one id always fits the same way and
  the unique key still tells posts apart), an author over `AUTHOR_LIMIT` is
  cut with a marker and kept whole (up to `AUTHOR_FULL_LIMIT`) in
  ``extra["author_full"]``, a body over `BODY_LIMIT` is cut with a marker
  saying how much is missing;
- only http(s) links: a `javascript:`, `data:` or otherwise odd URL is never
  stored as the post's link (the collector falls back to the page, or to no
  link, with a note), and a link keeps no user name or password;
- a plausible `posted_at` (see collectors/times.py).

A mention that cannot be made so (an implausible time, an empty id) becomes a
`SetAside`: kept with its raw payload, capped at `RAW_LIMIT` characters, and
the reason, and stored apart by the runner while the rest of the poll goes on.

HTML entities are a platform's business: X escapes `&`, `<` and `>` in post
text (`unescape_x`, applied where the X collector reads the text, before
terms are matched); Reddit's JSON does not when asked for `raw_json=1`, as
PRAW always does; Discourse's `raw` and titles are plain text and its
`cooked` HTML is read as text; HTML forums are read through an HTML parser.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

from collectors import times
from collectors.errors import BadPayload, CollectorError
from collectors.results import Mention, PollResult, SetAside
from collectors.plain import REASON_LIMIT, SURROGATE, clean_text, fit, fix_surrogates, reason_line  # noqa: F401 - named here too
from collectors.redact import hide_passwords, without_credentials

# The database columns these fit (desk/store/models.py; tests/test_clean.py checks they agree).
ID_LIMIT = 200
AUTHOR_LIMIT = 200
AUTHOR_FULL_LIMIT = 2000
TITLE_LIMIT = 1000
BODY_LIMIT = 100_000
URL_LIMIT = 4096
RAW_LIMIT = 64 * 1024
EXTRA_DEPTH = 20
JSON_DEPTH = 200

_X_ENTITY = re.compile(r"&(amp|lt|gt);")
_X_CHARS = {"amp": "&", "lt": "<", "gt": ">"}
_URL_NOISE = re.compile("[\t\n\r]")  # browsers drop these inside a URL, so "java\tscript:" is javascript:


class Unusable(ValueError):
    """A mention that cannot be stored as it is; `str()` is the reason."""


def unescape_x(text: str) -> str:
    """X post text with the three entities X writes (&amp; &lt; &gt;) turned back into characters, in one pass."""
    return _X_ENTITY.sub(lambda m: _X_CHARS[m.group(1)], text)


def fit_id(value: str, limit: int = ID_LIMIT) -> str:
    """An id that fits `limit`: its start and a hash of the whole, so the same id always fits the same way."""
    if len(value) <= limit:
        return value
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return value[:limit - len(digest) - 1] + "~" + digest


def fit_body(text: str, limit: int = BODY_LIMIT) -> str:
    if len(text) <= limit:
        return text
    marker = f"\n[… {len(text) - limit:,} more characters were not stored]"
    return text[:limit] + marker


def safe_link(url: object) -> str | None:
    """`url` when it is an absolute http(s) link (tabs and newlines a browser would drop removed), else None."""
    if not isinstance(url, str):
        return None
    url = clean_text(_URL_NOISE.sub("", url), multiline=False).replace(" ", "%20")
    if not url or len(url) > URL_LIMIT:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return url


def loads_json(data: bytes | str) -> Any:
    """A JSON body, read leniently where one item could otherwise lose the page.

    Bytes that are not valid UTF-8 become U+FFFD (RFC 8259 text is UTF-8; a BOM or UTF-16 is still
    recognised), and a value nested deeper than `JSON_DEPTH` (a hostile post nesting 100,000
    arrays, which Python's parser refuses with RecursionError) is replaced by null, so the posts
    around it are still read. Anything else that is not JSON raises ValueError as json.loads does.
    """
    text = data.decode(json.detect_encoding(data), "replace") if isinstance(data, bytes) else data
    try:
        return json.loads(text)
    except RecursionError:
        return json.loads(_flatten_deep(text, JSON_DEPTH))


_JSON_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.S)


def _flatten_deep(text: str, limit: int) -> str:
    """`text` with every array or object that opens at depth `limit` replaced by null."""
    out: list[str] = []
    depth = 0
    kept_to = 0
    cut_from: int | None = None
    for token in _JSON_TOKEN.finditer(text):
        char = token.group()
        if char in "[{":
            if depth == limit and cut_from is None:
                cut_from = token.start()
            depth += 1
        elif char in "]}":
            depth -= 1
            if cut_from is not None and depth == limit:
                out.append(text[kept_to:cut_from])
                out.append("null")
                kept_to = token.end()
                cut_from = None
    out.append(text[kept_to:])
    return "".join(out)


def shown(value: object, limit: int = 80) -> str:
    """A platform's value quoted for a note or reason: one line, cut, never able to forge a line."""
    return repr(fit(clean_text(str(value), multiline=False), limit))


def raw_payload(obj: Any) -> str:
    """What the platform sent for one item, as text to keep: JSON (escaping what a database refuses) or as given."""
    if isinstance(obj, str):
        text = obj
    else:
        try:
            text = json.dumps(obj, ensure_ascii=True, default=repr, sort_keys=True)
        except (TypeError, ValueError, RecursionError):
            text = repr(obj)
    return safe_raw(text)


def safe_raw(text: str, limit: int = RAW_LIMIT) -> str:
    """Raw text a database can hold: NUL and lone surrogates written as escapes, capped at `limit` with a marker."""
    text = text.replace("\x00", "\\u0000")
    if SURROGATE.search(text):
        text = "".join(f"\\u{ord(c):04x}" if "\ud800" <= c <= "\udfff" else c for c in text)
    if len(text) > limit:
        text = text[:limit] + f"\n[… {len(text) - limit:,} more characters cut]"
    return text


def clean_extra(value: Any, notes: list[str], key: str = "", depth: int = 0) -> Any:
    """`extra` with every string cleaned and every `*url` value an http(s) link or left out."""
    if depth > EXTRA_DEPTH:
        raise Unusable(f"extra is nested more than {EXTRA_DEPTH} deep")
    if isinstance(value, str):
        if key.endswith("url"):
            link = safe_link(value)
            if link is None and value:
                notes.append(f"extra {key} {shown(value)} is not an http(s) link: left out")
            return link
        return fit(clean_text(value), BODY_LIMIT)
    if isinstance(value, dict):
        return {clean_text(str(k), multiline=False): clean_extra(v, notes, str(k), depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_extra(v, notes, key, depth + 1) for v in value]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    raise Unusable(f"extra {key or '(top)'} holds a {type(value).__name__}, which is not JSON")


def _optional_id(value: str | None) -> str | None:
    if value is None:
        return None
    cleaned = clean_text(value, multiline=False)
    return fit_id(cleaned) if cleaned else None


def clean_mention(m: Mention, *, now: datetime | None = None) -> tuple[Mention, list[str]]:
    """The mention made storable, and notes on what was changed; raises `Unusable` when it cannot be."""
    notes: list[str] = []
    external_id = clean_text(m.external_id, multiline=False)
    if not external_id:
        raise Unusable("its id is empty once control characters are removed")
    external_id = fit_id(external_id)
    try:
        posted_at = times.check_plausible(m.posted_at, now=now)
    except times.BadTime as exc:
        raise Unusable(f"its time {exc}") from None
    url = safe_link(m.url) if m.url else ""
    if url is None:
        notes.append(f"{m.platform} {external_id}: link {shown(hide_passwords(m.url))} is not http(s); "
                     "stored without a link")
        url = ""
    url = without_credentials(url)  # staff open it in their browser: never with the source's login
    extra = clean_extra(dict(m.extra), notes)
    author_clean = clean_text(m.author, multiline=False)
    author = fit(author_clean, AUTHOR_LIMIT)
    if author != author_clean:
        extra["author_full"] = fit(author_clean, AUTHOR_FULL_LIMIT)
    try:
        json.dumps(extra, allow_nan=False)
    except ValueError as exc:
        raise Unusable(f"extra cannot be stored as JSON ({exc})") from None
    cleaned = dataclasses.replace(
        m,
        platform=clean_text(m.platform, multiline=False),
        source=clean_text(m.source, multiline=False),
        external_id=external_id,
        url=url,
        author=author,
        author_id=_optional_id(m.author_id),
        body=fit_body(clean_text(m.body)),
        title=fit(clean_text(m.title, multiline=False), TITLE_LIMIT),
        posted_at=posted_at,
        thread_id=_optional_id(m.thread_id),
        parent_id=_optional_id(m.parent_id),
        matched_terms=tuple(clean_text(t, multiline=False) for t in m.matched_terms),
        extra=extra,
    )
    return cleaned, notes


def set_aside_mention(m: Mention, reason: str) -> SetAside:
    """A mention that could not be cleaned or stored, kept with its fields as the raw payload."""
    fields = {f.name: getattr(m, f.name) for f in dataclasses.fields(m)}
    fields["posted_at"] = m.posted_at.isoformat() if isinstance(m.posted_at, datetime) else repr(m.posted_at)
    return SetAside(platform=m.platform, source=m.source, reason=reason, raw=raw_payload(fields),
                    external_id=m.external_id or None, url=m.url or None)


def clean_set_aside(item: SetAside) -> SetAside:
    return SetAside(platform=clean_text(item.platform, multiline=False), source=clean_text(item.source, multiline=False),
                    reason=reason_line(item.reason), raw=safe_raw(item.raw),
                    external_id=_optional_id(item.external_id),
                    url=without_credentials(link) if (link := safe_link(item.url)) else None)


def finish(result: PollResult, *, now: datetime | None = None) -> PollResult:
    """The poll's mentions cleaned (those that cannot be, set aside) and its set-aside items made storable."""
    now = now or datetime.now(timezone.utc)
    kept: list[Mention] = []
    seen: set[str] = set()
    for m in result.mentions:
        try:
            cleaned, notes = clean_mention(m, now=now)
        except Unusable as exc:
            result.set_aside.append(set_aside_mention(m, f"{m.platform} {shown(m.external_id)}: {exc}"))
            continue
        if cleaned.external_id in seen:
            continue
        seen.add(cleaned.external_id)
        kept.append(cleaned)
        result.notes.extend(notes)
    result.mentions = kept
    result.set_aside = [clean_set_aside(a) for a in result.set_aside]
    result.notes = [reason_line(n) for n in result.notes]
    result.warnings = [reason_line(w) for w in result.warnings]
    return result


def guarded_items(items: list[Any], read: Callable[[Any], Any], *, platform: str, source: str,
                  describe: Callable[[Any], str | None]) -> tuple[list[Any], list[SetAside]]:
    """`read` applied to each item; an item it raises on is set aside with the reason instead of failing the page.

    `read` returns None for an item it skips on purpose. `describe(item)` names the item (its id) in the
    reason when it can. A collector error other than `BadPayload` (a rate limit, a refusal) is the
    platform's trouble, not the item's, and still fails the poll.
    """
    out: list[Any] = []
    aside: list[SetAside] = []
    for item in items:
        try:
            value = read(item)
        except CollectorError as exc:
            if not isinstance(exc, BadPayload):
                raise
            aside.append(_aside(item, exc, platform, source, describe))
        except Exception as exc:  # noqa: BLE001 - one odd item loses only itself
            aside.append(_aside(item, exc, platform, source, describe))
        else:
            if value is not None:
                out.append(value)
    return out, aside


def _aside(item: Any, exc: Exception, platform: str, source: str, describe: Callable[[Any], str | None]) -> SetAside:
    try:
        name = describe(item)
    except Exception:  # noqa: BLE001 - the id is as unreadable as the rest
        name = None
    what = f"{platform} {shown(name)}" if name else f"a {platform} item without a readable id"
    return SetAside(platform=platform, source=source, reason=f"{what}: {_why(exc)}", raw=raw_payload(item),
                    external_id=str(name) if name else None)


def _why(exc: Exception) -> str:
    if isinstance(exc, (times.BadTime, Unusable)) or type(exc) is ValueError:  # our readers' own words
        return str(exc)
    if isinstance(exc, BadPayload):
        return exc.reason
    if isinstance(exc, KeyError):
        return f"no {exc.args[0]!r} field"
    return f"{type(exc).__name__}: {exc}"
