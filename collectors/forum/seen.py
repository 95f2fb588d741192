"""The posts one configured forum page has shown (the cursor's `seen` list): how a re-read page is recognised,
and how a post that was given a reused id is told apart from the one it replaced (collectors/identity.py)."""

from __future__ import annotations

from typing import Any

from collectors.identity import fingerprint, same_fingerprint


class Seen:
    """The posts one configured page has shown, oldest first: an id, with its author and time where read."""

    def __init__(self, entries: Any) -> None:
        self.marks: dict[str, tuple[str, int] | None] = {}
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, str):
                self.marks[entry] = None
            elif isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], str):
                try:
                    self.marks[entry[0]] = (str(entry[1]), int(entry[2]))
                except (TypeError, ValueError):
                    self.marks[entry[0]] = None

    @staticmethod
    def _mark(post: dict[str, Any]) -> tuple[str, int] | None:
        return None if "aside" in post else fingerprint(post["author"], post["posted_at"])

    def knows(self, post: dict[str, Any]) -> bool:
        """Whether this post was seen before: its id, and (where both are known) its author and time."""
        if post["id"] not in self.marks:
            return False
        known, mark = self.marks[post["id"]], self._mark(post)
        if known is None or mark is None:
            if known is None and mark is not None:
                self.marks[post["id"]] = mark  # an id remembered alone: remember its post from now on
            return True
        return same_fingerprint(known, mark)

    def add(self, post: dict[str, Any]) -> None:
        self.marks.pop(post["id"], None)
        self.marks[post["id"]] = self._mark(post)

    def to_cursor(self, limit: int) -> list[Any]:
        return [key if mark is None else [key, *mark] for key, mark in list(self.marks.items())[-limit:]]
