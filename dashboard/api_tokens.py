"""The Team page's "Your API tokens": a person makes, lists and revokes their own tokens for the HTTP API.

It owns the session keys `api-token-*`. A new token is kept in the session only
until the run that shows it: the page shows it once, and only its hash is stored.
"""

from __future__ import annotations

import streamlit as st

from dashboard import components as ui
from desk.api.tokens import create_token, list_tokens, revoke_token
from desk.config.environment import api_url_from_env
from desk.config.schema import HearkenConfig
from desk.store.db import Store
from desk.team.users import Actor

NEW = "api-token-new"


def api_tokens(store: Store, cfg: HearkenConfig, actor: Actor) -> None:
    st.subheader("Your API tokens")
    served = api_url_from_env()
    where = (f"{served}/api/v1" if served else f"http://{cfg.api.host}:{cfg.api.port}/api/v1 when `hearken api` or "
             "`hearken up` serves it") if cfg.api.enabled or served else "`hearken api` (api.enabled is false)"
    st.caption(f"A token lets a script or another tool use Hearken's HTTP API (on {ui.md_escape(where)}, "
               f"README 'HTTP API') as you, {ui.md_escape(actor.name)}, with your role ({actor.role}). "
               "Send it as `Authorization: Bearer hk_…`.")
    ui.show_flash("api-tokens")
    made = st.session_state.pop(NEW, None)
    if made:
        name, token = made
        with st.container(border=True, key="api-token-shown"):
            st.warning(f"Your new token **{ui.md_escape(name)}**. Copy it now: it is shown only this once, and "
                       "Hearken keeps only a hash of it.", icon=":material/key:")
            st.code(token, language=None)
    with st.form("api-token-form", clear_on_submit=True, border=False):
        name = st.text_input("Name of a new token", key="api-token-name", placeholder="CRM sync",
                             help="Say where it will be used, to know which one to revoke later.")
        if st.form_submit_button("Create token"):
            with ui.refusals("api-tokens"):
                info, token = create_token(store, actor, name)
                st.session_state[NEW] = (info.name, token)
            st.rerun()
    tokens = list_tokens(store, actor)
    if not tokens:
        st.caption("You have no API tokens.")
        return
    st.dataframe([{"name": t.name, "token": f"{t.shown_prefix}…", "created": ui.fmt_time(t.created_at),
                   "last used": ui.fmt_time(t.last_used_at),
                   "state": "active" if t.active else f"revoked {ui.fmt_time(t.revoked_at)}"} for t in tokens],
                 hide_index=True, width="stretch", key="api-token-table")
    active = [t for t in tokens if t.active]
    if active:
        which = st.selectbox("Token to revoke", active, format_func=lambda t: f"{t.name} ({t.shown_prefix}…)",
                             key="api-token-which")
        if st.button("Revoke", key="api-token-revoke", help="A request with it is refused (401) from now on"):
            with ui.refusals("api-tokens"):
                revoke_token(store, actor, which.token_id)
                ui.flash("api-tokens", "success", f"Token {which.name} ({which.shown_prefix}…) is revoked.")
            st.rerun()
