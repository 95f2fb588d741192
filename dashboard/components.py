"""Shared pieces of the dashboard: config and store, the sign-in gate, the health banner, safe text, times.

Everything a customer wrote (post text, titles, author names) is untrusted:
draw it with `st.text` (never interpreted) or pass it through `md_escape`
before it goes into any markdown string. No page uses unsafe_allow_html.
Links are drawn only for http(s) addresses (`desk.untrusted.web_url`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from dashboard.configuration import check_command, config, logged_once, problems, version
from desk.config.schema import HearkenConfig, is_loopback, key_location, local_mode_exposure
from desk.store.db import Store, connect
from desk.errors import HearkenError
from desk.notify.channel_health import channel_trouble
from desk.notify.health import email_trouble, runner_trouble, source_trouble
from desk.notify import case_events
from desk.cases.sla import human_duration
from desk.team.users import Actor, SignInRefused, local_actor, sign_in, sign_out, sync_team, touch

PAGES = {"queue": "views/queue.py", "case": "views/case.py", "metrics": "views/metrics.py",
         "sources": "views/sources.py", "team": "views/team.py"}


@st.cache_resource(show_spinner=False)
def _store(url: str) -> Store:
    return connect(url)


@st.cache_resource(show_spinner=False, max_entries=4)
def _synced(url: str, path: str | None, mtime: float) -> int:
    return sync_team(_store(url), config())


def store() -> Store:
    cfg = config()
    url = cfg.database_url()
    try:
        s = case_events.attach(_store(url), cfg)  # the config as it is now: its case_events channels
        _synced(url, *version())  # once per version of the team: removed members' sessions end
    except (SQLAlchemyError, ValueError, ImportError, OSError) as exc:
        database_down(exc)
    return s


def database_down(exc: BaseException) -> None:
    """The database cannot be opened or stopped answering: one clear message instead of a traceback. Where
    its URL comes from is said to everyone; why it failed (host, user) only in local mode, and in the
    dashboard's own output."""
    from desk.config.preflight import database_origin, database_problem

    cfg = config()
    line = database_problem(cfg, exc)
    logged_once(line)
    origin, _ = database_origin(cfg)
    st.title("Hearken")
    st.error(f"**The dashboard cannot reach its database** (its address comes from {md_escape(origin)}), so "
             "nobody can sign in or work the queue until it answers. Reload the page to try again.",
             icon=":material/database:")
    if cfg.dashboard.auth == "local":
        st.text(line)
    else:
        st.caption("The reason is in this dashboard's own output; `hearken check-config` checks the database too.")
    st.stop()


def _local_refusal(cfg: HearkenConfig) -> str | None:
    """Local mode answers only on this machine unless dashboard.insecure_local_on_network says otherwise."""
    address = st.get_option("server.address")
    why = local_mode_exposure(cfg.dashboard, address) if address else None
    client = st.context.ip_address  # None for a browser on this machine
    client = client if isinstance(client, str) else None  # AppTest has no real connection
    if why is None and client and not is_loopback(client) and not cfg.dashboard.insecure_local_on_network:
        why = (f"this dashboard runs without sign-in (dashboard.auth: local), so it answers only browsers on "
               f"its own machine, and yours connects from {client}")
    return why


def require_actor() -> Actor:
    """The signed-in team member; otherwise draw the sign-in screen and stop the page here.

    Every page calls this on every run, so a session ended elsewhere (sign-out, removal from the team)
    stops at its next click."""
    cfg = config()
    if cfg.dashboard.auth == "local":
        why = _local_refusal(cfg)
        if why:
            st.title("Hearken")
            st.error(f"Refused: {md_escape(why)}. See the README, 'Sign-in and roles'.")
            st.stop()
        actor = local_actor(cfg)
        if st.session_state.get("_seen_as") != actor.email:
            touch(store(), actor, how="local")
            st.session_state["_seen_as"] = actor.email
        return actor
    refusal = None
    if st.user.get("is_logged_in"):
        try:
            return sign_in(store(), cfg, st.user.to_dict())
        except SignInRefused as exc:
            refusal = str(exc)
    st.title("Hearken")
    if not _auth_configured():
        st.error("dashboard.auth is oidc, but Streamlit has no [auth] settings: add them to .streamlit/secrets.toml "
                 "(see the README, 'Sign-in and roles'), or use dashboard.auth: local on your own machine.")
    elif refusal:
        st.error(f"You cannot use Hearken with this sign-in: {md_escape(refusal)}")
        st.text(f"Signed in as: {st.user.get('email') or '(no email given by the provider)'}")
        with st.container(horizontal=True):
            if st.button("Sign in again", key="signin-again", type="primary"):
                st.login()
            if st.button("Sign out", key="signout-unknown"):
                st.logout()
    else:
        config_banner(None)
        st.write("Sign in with your company account to work the complaint queue.")
        if st.button("Sign in", key="signin", type="primary"):
            st.login()
    st.stop()
    raise AssertionError("unreachable")


def recheck() -> Actor:
    """For a fragment that reruns on its own: if the sign-in has ended meanwhile, rerun the whole page."""
    cfg = config()
    if cfg.dashboard.auth == "local":
        return local_actor(cfg)
    try:
        return sign_in(store(), cfg, st.user.to_dict())
    except SignInRefused:
        st.rerun(scope="app")
        raise


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
        elif st.button("Sign out", key="signout", help="Ends your sign-in in every browser at once"):
            sign_out(store(), actor)
            st.logout()


def config_banner(actor: Actor | None) -> None:
    """While the file has mistakes, on every page (the sign-in screen too): the dashboard runs on the version
    that last loaded. Each mistake whole (file, line, key, what is wrong) in local mode and to managers and
    admins; a message can quote the team's addresses, so others are told only that there are mistakes."""
    broken = problems()
    if broken is None or broken.kept is None:
        return
    n = len(broken.error.problems)
    head = (f"**THE CONFIGURATION HAS {n} PROBLEM{'S' if n > 1 else ''}**: this dashboard keeps running on the "
            f"version that loaded at {fmt_time(broken.kept.at, seconds=True)}; changes to the file take effect "
            "once it loads again.")
    parts = [head]
    if config().dashboard.auth == "local" or (actor is not None and actor.at_least("manager")):
        parts += ["\n".join(f"- {md_escape(str(p))}" for p in broken.error.problems),
                  f"Fix the file (`{check_command(broken.path)}` checks it), then reload this page."]
    elif actor is not None:
        parts.append(f"A manager or admin sees what they are here; `{check_command(broken.path)}` lists them.")
    with st.container(key="config-banner"):
        st.error("\n\n".join(parts), icon=":material/settings_alert:")


def health_banner(actor: Actor, *, on_sources_page: bool = False) -> None:
    """What is broken right now, on every page: no sign-in on a network, email delivery, sources.

    Each item says what is wrong and where to fix it; the error texts themselves are printed once, on the
    Sources page, where the banner only names what the page below details."""
    cfg = config()
    config_banner(actor)
    with st.container(key="health-banner"):
        if cfg.dashboard.auth == "local" and cfg.dashboard.insecure_local_on_network:
            st.error("NO SIGN-IN ON A NETWORK: dashboard.insecure_local_on_network is true, so anyone who can reach "
                     f"this address acts as {md_escape(actor.name)} ({actor.role}) and can post public replies. "
                     f"Set it to false, or use auth: oidc ({md_escape(key_location(cfg, 'dashboard'))}).",
                     icon=":material/lock_open:")
        email = email_trouble(store(), cfg)
        chats = channel_trouble(store(), cfg)
        sources = source_trouble(store(), cfg)
        for t in runner_trouble(store(), cfg):  # on every page, the Sources page too: nothing below details it
            st.error(f"**RUNNER AND DATABASE**  \n{md_escape(t.headline)}"
                     + (f"  \nLast error: {md_escape(t.detail)}" if t.detail else "") + f"  \nFix: {md_escape(t.fix)}",
                     icon=":material/database:")
        plural = "S" if len(sources) > 1 else ""
        if on_sources_page:
            if email:
                st.error("**EMAIL NOT DELIVERED**: see the outbox below.", icon=":material/mail:")
            if chats:
                st.error("**ALERT CHANNEL NOT DELIVERING**: " + ", ".join(md_escape(t.name) for t in chats)
                         + " (see the channels below).", icon=":material/forum:")
            if sources:
                st.warning(f"**SOURCE{plural} NEEDING ATTENTION**: " + ", ".join(md_escape(t.name) for t in sources)
                           + " (below).", icon=":material/sensors_off:")
            return
        if email:
            st.error(f"**EMAIL NOT DELIVERED**  \n{md_escape(email.headline)}  \nFix: {md_escape(email.fix)}",
                     icon=":material/mail:")
        for t in chats:
            st.error(f"**ALERT CHANNEL NOT DELIVERING**  \n{md_escape(t.headline)}"
                     + (f"  \n{md_escape(t.detail)}" if t.detail else "") + f"  \nFix: {md_escape(t.fix)}",
                     icon=":material/forum:")
        if sources:
            lines = [f"**SOURCE{plural} NEEDING ATTENTION**"]
            lines += [f"- {md_escape(t.headline)}  \n  Fix: {md_escape(t.fix)}" for t in sources]
            st.warning("\n".join(lines), icon=":material/sensors_off:")
        if email or chats or sources:
            st.page_link(PAGES["sources"], label="Open the Sources page (outbox and each source's state)",
                         icon=":material/arrow_forward:")


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


def confirmed(label: str, key: str, *, confirm: str, about: object = "", help: str | None = None) -> bool:
    """A button whose action takes a second click: the first one (`key`) turns it into `confirm`
    (`{key}-confirm`, True when clicked) beside Cancel (`{key}-cancel`). It owns `_asked-{key}-{about}`:
    `about` names what it acts on where one key serves many (a case page), so a question asked about one
    case is never answered on another."""
    asked = f"_asked-{key}-{about}"
    if not st.session_state.get(asked):
        st.button(label, key=key, help=help, on_click=st.session_state.__setitem__, args=(asked, True))
        return False
    go = st.button(confirm, key=f"{key}-confirm", type="primary", help=help)
    st.button("Cancel", key=f"{key}-cancel", on_click=st.session_state.__setitem__, args=(asked, False))
    if go:
        st.session_state[asked] = False
    return go


def score_or_language(score: float | None, language: str | None) -> str:
    """The classifier's view in one phrase (markdown): the score and the language, or that it was not scored."""
    lang = md_escape(language) if language else "?"
    if score is None:
        return f":orange[**{lang}: not scored, for a reader**]"
    return f"score {score:.2f}" + (f" · {lang}" if language and language not in ("en", "und") else "")


def flash(key: str, kind: str, message: str) -> None:
    """Keep a message to show after the next rerun (a button's result survives st.rerun)."""
    st.session_state[f"_flash-{key}"] = (kind, message)


@contextmanager
def refusals(key: str) -> Iterator[None]:
    """Around what a person asked for: whatever desk/ refuses (a `HearkenError`: a role, a case's state, a
    platform that would not take the reply...) is kept as an error message for the next rerun, with `flash`.
    The rest of the block does not run; anything else raised is a bug and is shown as one."""
    try:
        yield
    except HearkenError as exc:
        flash(key, "error", str(exc))


def show_flash(key: str) -> None:
    item = st.session_state.pop(f"_flash-{key}", None)
    if item:
        kind, message = item
        # any message can quote a platform (a URL, a topic slug, an error): never let it become markdown
        getattr(st, kind)(md_escape(message))
