"""HTML forums of any software, read from their pages with CSS selectors (collect.py; presets.py names the
selectors of common forum engines). Hearken reads them but cannot post there: staff reply on the forum and
record it as "replied elsewhere"."""

from __future__ import annotations

from collectors.forum.settings import ForumSource
from collectors.platform import Platform

PLATFORM = Platform(name="forum", label="forum", settings=ForumSource, collector="collectors.forum.collect:ForumCollector",
                    ids_can_be_reused=True)  # a board restored from a backup gives lost posts' ids to new ones
