"""Failpoints: named places where a test can make a Hearken process stop, to kill it there or let it go on late.

With HEARKEN_FAILPOINT=NAME:FILE[:SECONDS] in the environment, the process that reaches
`failpoint(NAME)` touches FILE (so the test knows it got there) and sleeps SECONDS (default an
hour). Without it, or with another name, a failpoint does nothing.
"""

from __future__ import annotations

import os
import time
from pathlib import Path


def failpoint(name: str) -> None:
    spec = os.environ.get("HEARKEN_FAILPOINT", "")
    if not spec.startswith(name + ":"):
        return
    rest = spec.split(":", 1)[1]
    path, _, seconds = rest.rpartition(":")
    try:
        wait = float(seconds)
    except ValueError:
        path, wait = rest, 3600.0
    Path(path).touch()
    time.sleep(wait)
