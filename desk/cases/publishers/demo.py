"""The demo platform's reply file, found the way the desk finds it (beside the SQLite database).

The publisher itself is collectors/demo/publish.py; the tests and the dashboard's
demo read back what it "posted" through these two names.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from collectors.demo.publish import platform_file as _platform_file
from collectors.demo.publish import read_posts
from desk.config.schema import HearkenConfig
from desk.cases.publishers import data_dir

__all__ = ["platform_file", "read_posts"]


def platform_file(cfg: HearkenConfig, env: Mapping[str, str]) -> Path:
    """The file the demo platform keeps its replies in for this config (HEARKEN_DEMO_PLATFORM_FILE if set)."""
    return _platform_file(data_dir(cfg, env), env)
