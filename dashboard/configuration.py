"""The dashboard's configuration as a server reloading its config keeps it: the file is read again whenever it
changes, and a version with mistakes does not replace the last one that loaded in this process.

- `config()` is the configuration to work with: the file's, or, while the file has mistakes, the last
  version that loaded (the dashboard keeps serving; `problems()` says what is wrong, for the banner).
- Only when no version of the file has loaded in this process is the dashboard closed (`_closed`).

Who may read a problem's message (it can quote the team's addresses): anyone in local mode, which serves only
this machine; under sign-in, managers and admins. Everyone else is told that the file has problems, and where
the whole text is (the dashboard's own output, `hearken check-config`).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import streamlit as st
import yaml

from desk import logs
from desk.config.environment import config_path_from_env
from desk.config.schema import DEFAULT_CONFIG, ConfigError, HearkenConfig, is_loopback, load_config
from desk.store.models import now_utc

log = logging.getLogger("hearken")


@dataclass(frozen=True)
class Loaded:
    """A version of the file that loaded, and when this process loaded it."""

    cfg: HearkenConfig
    at: datetime


@dataclass(frozen=True)
class Broken:
    """The file as it is now, when it does not load: its problems, and the version the dashboard keeps using."""

    error: ConfigError
    path: str
    kept: Loaded | None


@st.cache_resource(show_spinner=False)
def _logging() -> bool:
    logs.setup(verbose=False)  # Streamlit's own loggers keep their handlers (they do not propagate)
    return True


@st.cache_resource(show_spinner=False, max_entries=8)
def _load(path: str | None, mtime: float) -> HearkenConfig | ConfigError:
    """One version of the file, loaded once; a version with mistakes is kept as its error (read once too)."""
    try:
        cfg = load_config(path)
    except ConfigError as exc:
        return exc
    _logging()
    logs.protect(cfg)  # what desk/ logs in this process (a publisher's failure) holds no secret either
    return cfg


@st.cache_resource(show_spinner=False)
def _last_good() -> dict[str, Loaded]:
    """Per file, the last version that loaded in this process (shared by every session)."""
    return {}


def version() -> tuple[str | None, float]:
    """The file the dashboard reads (HEARKEN_CONFIG, else the default) and its modification time."""
    path = config_path_from_env()
    return path, os.path.getmtime(path) if path and os.path.exists(path) else 0.0


def _current() -> HearkenConfig | Broken:
    path, mtime = version()
    name = str(Path(path or DEFAULT_CONFIG).resolve())
    loaded = _load(path, mtime)
    good = _last_good()
    if isinstance(loaded, HearkenConfig):
        if good.get(name) is None or good[name].cfg is not loaded:
            good[name] = Loaded(loaded, now_utc())
        return loaded
    broken = Broken(loaded, path or str(DEFAULT_CONFIG), good.get(name))
    logged_once(*_log_lines(broken))
    return broken


def config() -> HearkenConfig:
    """The configuration to work with: the file's, or the last version that loaded while it has mistakes.
    Where no version has loaded in this process, the page says the dashboard is closed, and stops."""
    now = _current()
    if isinstance(now, HearkenConfig):
        return now
    if now.kept is None:
        _closed(now)
    return now.kept.cfg  # type: ignore[union-attr]


def problems() -> Broken | None:
    """The file's mistakes while the dashboard keeps serving an earlier version of it; None when it loads."""
    now = _current()
    return now if isinstance(now, Broken) else None


@st.cache_resource(show_spinner=False, max_entries=4)
def logged_once(*lines: str) -> bool:
    """Log these lines (one record each: a record is one line) the first time they are seen, not per click."""
    for line in lines:
        log.error("%s", line)
    return True


def _log_lines(b: Broken) -> list[str]:
    n = len(b.error.problems)
    if b.kept is None:
        head = f"the configuration {b.path} has {n} problem(s); the dashboard is closed until they are fixed:"
    else:
        head = (f"the configuration {b.path} has {n} problem(s); the dashboard keeps using the version loaded "
                f"at {b.kept.at:%Y-%m-%d %H:%M:%S} UTC until they are fixed:")
    return [head, *(str(p) for p in b.error.problems)]


def check_command(path: str) -> str:
    return f"hearken check-config --config {path}".replace("`", "'")


def _raw_local(path: str) -> bool:
    """Whether a file that does not load asks for local mode (dashboard.auth absent or local), and the page
    is served to this machine only: then whoever reads it may read the file too."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    dash = data.get("dashboard") if isinstance(data, dict) else None
    auth = dash.get("auth", "local") if isinstance(dash, dict) else "local"
    address = st.get_option("server.address")
    client = st.context.ip_address
    client = client if isinstance(client, str) else None  # None: a browser on this machine (or AppTest)
    return auth == "local" and (not address or is_loopback(address)) and (not client or is_loopback(client))


def _closed(b: Broken) -> None:
    """Nobody can be let in on a configuration that has never loaded (the team is unknown): say so, and where.
    A stranger is shown each mistake's place, not its text, which can quote the team's addresses; a browser
    on this machine in local mode is shown the text too."""
    n = len(b.error.problems)
    st.title("Hearken")
    st.error(f"**The dashboard is closed: its configuration has {n} problem(s).** Nobody can sign in or work "
             "the queue until the file is fixed; this page opens again at the next click after that.",
             icon=":material/settings_alert:")
    if _raw_local(b.path):
        st.text("\n".join(str(p) for p in b.error.problems))
    else:
        st.text("\n".join(f"{p.file}:{p.line}: {p.key or '(the file)'}" if p.line else f"{p.file}: {p.key or '(the file)'}"
                          for p in b.error.problems))
    st.caption(f"`{check_command(b.path)}` says what is wrong with each, as does this dashboard's own output.")
    st.stop()
