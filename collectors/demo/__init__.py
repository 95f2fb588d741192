"""The demo platform: a bundled replay of posts (collect.py) and a local file to post replies to (publish.py).

It is a platform package like any other (collectors/README.md uses it as the
worked example): nothing in Hearken treats it specially.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from collectors.demo.settings import DemoSource
from collectors.platform import Platform

X_STYLE_LIMIT = 280  # a demo post written in X's style takes X's limit
OTHER_LIMIT = 10000


def reply_limit(extra: Mapping[str, Any]) -> int:
    return X_STYLE_LIMIT if (extra or {}).get("style") == "x" else OTHER_LIMIT


PLATFORM = Platform(
    name="demo", label="demo", settings=DemoSource,
    collector="collectors.demo.collect:DemoCollector", publisher="collectors.demo.publish:build",
    reply_limit=reply_limit,
)
