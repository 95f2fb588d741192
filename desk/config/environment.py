"""What Hearken reads from the environment, named in one place.

Every setting is a key of the config file (config/example.yaml, desk/config/sections.py). The environment
holds only what must not be written into a file: the secrets the config names by its `*_env` keys, and the
database URL (it may carry a password), which `HEARKEN_DATABASE_URL` sets over the config's database: keys.
Two more variables are no settings: HEARKEN_CONFIG says which file to load (`config_path_from_env`), and
HEARKEN_DASHBOARD_URL and HEARKEN_API_URL are how `hearken up` tells the dashboard where it and the API are served. Outside desk/:
HEARKEN_DATA (classifier/data.py) says where `hearken train` finds its data set, NO_COLOR (desk/cli/common.py)
turns off coloured errors, and HEARKEN_FAILPOINT (desk/failpoints.py) is a test hook.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

DATABASE_URL_ENV = "HEARKEN_DATABASE_URL"
CONFIG_ENV = "HEARKEN_CONFIG"
API_URL_ENV = "HEARKEN_API_URL"
SERVED_URL_ENV = "HEARKEN_DASHBOARD_URL"


def database_url_from_env(env: Mapping[str, str] | None = None) -> str | None:
    """The database URL in HEARKEN_DATABASE_URL (it wins over database.url and database.url_env), or None
    where it is unset or empty. The one place that reads it: everything else asks here or
    `HearkenConfig.database_url`."""
    env = os.environ if env is None else env
    return env.get(DATABASE_URL_ENV) or None


def config_path_from_env(env: Mapping[str, str] | None = None) -> str | None:
    """The config file HEARKEN_CONFIG names, or None where it is unset or empty (then the example is read)."""
    env = os.environ if env is None else env
    return env.get(CONFIG_ENV) or None


def api_url_from_env(env: Mapping[str, str] | None = None) -> str | None:
    """Where `hearken up` serves the HTTP API (http://host:port), for the dashboard that it starts; else None."""
    env = os.environ if env is None else env
    return env.get(API_URL_ENV) or None
