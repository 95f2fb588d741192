"""The demo platform: a bundled replay of posts (collect.py) and a local file to post replies to (publish.py).

It is a platform package like any other (collectors/README.md uses it as the
worked example): nothing in Hearken treats it specially.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from collectors.demo.settings import DemoSource, reply_limit
from collectors.platform import Platform

PLATFORM = Platform(
    name="demo", label="demo", settings=DemoSource,
    collector="collectors.demo.collect:DemoCollector", publisher="collectors.demo.publish:build",
    reply_limit=reply_limit,
)
