"""When two posts under one id are one post: the rule a collector's memory and the store share.

On most platforms an id names one post for ever (a Reddit `t1_...`, an X post id). A forum's does only
as long as the forum keeps its numbering: one restored from last night's backup hands the ids of the
posts it lost to the next posts written, and one moved to a new server may number everything again.
Taking the id alone for the post, Hearken would drop those new posts as "already stored".

So on a platform whose ids can be reused (`Platform.ids_can_be_reused`), a post is known by its id
*and* its author and time, and a post under a known id is another post when both differ: someone else
wrote it, at another time. One that differs in one of them only is the post known before: an edit
changes neither, an account renamed changes the author only (one deleted, see below), and a forum's
"Today, 23:59" read across midnight in another time zone than the forum's moves the time by a day.
Times within `TIME_ALLOWANCE` are one time (a forum prints minutes). The price: a person given the id
of their own lost post is taken for that post (their earlier complaint is in the queue already).

An author that names nobody says nothing about who wrote a post: an empty one (a forum read without an
author selector), or a placeholder every guest or deleted account shares (`NO_AUTHOR`: "Guest",
"Anonymous", "[deleted]", ...; letter case, spaces and brackets around it aside). Where either post has
such an author, the time alone decides: the same time is the post known before (an account deleted
since), another time is another post (two guests, or a new post by nobody in particular).

`fingerprint` is the compact form a cursor keeps (the author hashed, the time in whole seconds).
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

TIME_ALLOWANCE = timedelta(minutes=10)

# authors that name nobody: what forums, Reddit and comment systems show for a guest or a deleted account
NO_AUTHOR = frozenset({
    "", "guest", "guest user", "anonymous", "anonymous user", "anon", "unknown", "unknown user", "unregistered",
    "deleted", "deleted user", "deleted member", "removed", "n/a", "none", "null",
})


def _author_key(author: str) -> str:
    return author.strip().casefold()


def _names_nobody(author: str) -> bool:
    """Whether `author` is empty or a placeholder ("[Deleted]", " guest ", "(anonymous)" included)."""
    return _author_key(author).strip(" \t[]()<>{}-_.*") in NO_AUTHOR


def _digest(author: str) -> str:
    return hashlib.sha256(_author_key(author).encode("utf-8", "replace")).hexdigest()[:12]


# a cursor keeps the author's digest alone: these are the digests of authors that name nobody, as a
# cursor written before this rule holds them too (the common spellings)
_NOBODY_DIGESTS = frozenset({_digest("")} | {_digest(a) for a in NO_AUTHOR}
                            | {_digest(f"[{a}]") for a in NO_AUTHOR if a})


def fingerprint(author: str, posted_at: datetime) -> tuple[str, int]:
    """(author digest, epoch seconds): what tells two posts under one id apart, small enough for a cursor."""
    return (_digest("") if _names_nobody(author) else _digest(author)), int(posted_at.timestamp())


def same_fingerprint(a: tuple[str, int] | list, b: tuple[str, int] | list) -> bool:
    """Whether two fingerprints are of one post: the same author, or times within `TIME_ALLOWANCE`; where
    either author names nobody, the times alone."""
    same_time = abs(int(a[1]) - int(b[1])) <= TIME_ALLOWANCE.total_seconds()
    if str(a[0]) in _NOBODY_DIGESTS or str(b[0]) in _NOBODY_DIGESTS:
        return same_time
    return str(a[0]) == str(b[0]) or same_time


def same_post(author_a: str, at_a: datetime, author_b: str, at_b: datetime) -> bool:
    """Whether two posts stored or read under one id are one post (see the module's docstring)."""
    return same_fingerprint(fingerprint(author_a, _aware(at_a)), fingerprint(author_b, _aware(at_b)))


def own_id(external_id: str, posted_at: datetime) -> str:
    """The id of a post that came under `external_id` after another post had it: the id and its time,
    ``host#102~2026-11-01T10:32:00Z`` (two posts under one id and time are one post, so it is free)."""
    return f"{external_id}~{_aware(posted_at).astimezone(timezone.utc):%Y-%m-%dT%H:%M:%SZ}"


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=timezone.utc)
