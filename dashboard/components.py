"""Shared pieces of the dashboard: config and store, the sign-in gate, safe text, times.

Everything a customer wrote (post text, titles, author names) is untrusted:
draw it with `st.text` (never interpreted) or pass it through `md_escape`
before it goes into any markdown string. No page uses unsafe_allow_html.
"""

from __future__ import annotations

import os
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import streamlit as st

from desk.config import HearkenConfig, load_config
from desk.db import Store, connect
from desk.sla import human_duration
from desk.users import Actor, actor_for_email, local_actor, sync_team, touch

PAGES = {"queue": "views/queue.py", "case": "views/case.py", "metrics": "views/metrics.py",
         "sources": "views/sources.py", "team": "views/team.py"}


@st.cache_resource(show_spinner=False)
def _config(path: str | None, mtime: float) -> HearkenConfig:
    return load_config(path)


def config() -> HearkenConfig:
    path = os.environ.get("HEARKEN_CONFIG")
    mtime = os.path.getmtime(path) if path and os.path.exists(path) else 0.0
    return _config(path, mtime)


@st.cache_resource(show_spinner=False)
def _store(url: str) -> Store:
    return connect(url)


def store() -> Store:
    cfg = config()
    url = os.environ.get("HEARKEN_DATABASE_URL") or cfg.database_url()
    s = _store(url)
    if not st.session_state.get("_team_synced"):
        sync_team(s, cfg)
        st.session_state["_team_synced"] = True
    return s


def _signed_in() -> Actor | None:
    cfg = config()
    if cfg.dashboard.auth == "local":
        return local_actor(cfg)
    if not st.user.get("is_logged_in"):
        return None
    return actor_for_email(cfg, st.user.get("email"))


def require_actor() -> Actor:
    """The signed-in team member; otherwise draw the sign-in screen and stop the page here."""
    actor = _signed_in()
    if actor is not None:
        if st.session_state.get("_seen_as") != actor.email:
            touch(store(), actor, how=config().dashboard.auth)
            st.session_state["_seen_as"] = actor.email
        return actor
    st.title("Hearken")
    if not _auth_configured():
        st.error("dashboard.auth is oidc, but Streamlit has no [auth] settings: add them to .streamlit/secrets.toml "
                 "(see the README, 'Sign-in and roles'), or use dashboard.auth: local on your own machine.")
    elif st.user.get("is_logged_in"):
        st.error("You are signed in, but your address is not on this team. Ask an admin to add you under team: "
                 "in the Hearken configuration.")
        st.text(f"Signed in as: {st.user.get('email') or '(no email given by the provider)'}")
        if st.button("Sign out", key="signout-unknown"):
            st.logout()
    else:
        st.write("Sign in with your company account to work the complaint queue.")
        if st.button("Sign in", key="signin", type="primary"):
            st.login()
    st.stop()
    raise AssertionError("unreachable")


def _auth_configured() -> bool:
    try:
        return "auth" in st.secrets
    except Exception:  # noqa: BLE001 - no secrets file at all
        return False


def sidebar(actor: Actor) -> None:
    cfg = config()
    with st.sidebar:
        st.caption(f"Signed in as **{md_escape(actor.name)}** ({actor.role})")
        if cfg.dashboard.auth == "local":
            st.caption("Local mode: one user on this machine, no sign-in.")
        elif st.button("Sign out", key="signout"):
            st.logout()


_MD_SPECIAL = re.compile(r"([!-/:-@\[-`{-~])")
_ZWSP = "\u200b"
_AUTOLINK = re.compile(r"(?i)(://|www\.|@)")


def md_escape(text: str | None) -> str:
    """Make untrusted text inert inside markdown: every ASCII punctuation mark escaped, lines joined, and
    bare addresses (https://…, www.…, a@b) broken with a zero-width space so GFM cannot autolink them."""
    if not text:
        return ""
    text = _AUTOLINK.sub(lambda m: m.group(0)[0] + _ZWSP + m.group(0)[1:], " ".join(str(text).split()))
    return _MD_SPECIAL.sub(r"\\\1", text)


def local_tz() -> ZoneInfo:
    return ZoneInfo(config().sla.timezone)


def fmt_time(dt: datetime | None, *, seconds: bool = False) -> str:
    if dt is None:
        return "—"
    return dt.astimezone(local_tz()).strftime("%d %b %H:%M:%S" if seconds else "%d %b %H:%M")


def fmt_span(td: timedelta) -> str:
    return human_duration(abs(td.total_seconds()))


def fmt_left(td: timedelta | None) -> str:
    if td is None:
        return "no SLA"
    return f"overdue by {fmt_span(td)}" if td < timedelta(0) else f"{fmt_span(td)} left"


SEVERITY = {1: "mild", 2: "moderate", 3: "serious", 4: "severe"}


def severity_label(sev: int | None) -> str:
    return f"S{sev} {SEVERITY.get(sev, '')}".strip() if sev else "S?"


def flash(key: str, kind: str, message: str) -> None:
    """Keep a message to show after the next rerun (a button's result survives st.rerun)."""
    st.session_state[f"_flash-{key}"] = (kind, message)


def show_flash(key: str) -> None:
    item = st.session_state.pop(f"_flash-{key}", None)
    if item:
        kind, message = item
        # errors and warnings can quote a platform's answer: never let it become markdown
        getattr(st, kind)(md_escape(message) if kind in ("error", "warning") else message)
