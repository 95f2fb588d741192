"""Hearken's dashboard: page config, the sign-in gate, navigation by role, and the health banner.

The pages live in views/, not pages/: Streamlit runs a file in pages/ by
itself on a deep link such as /case?id=3, around this file and its gate.
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st
from sqlalchemy.exc import InterfaceError, OperationalError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `streamlit run` does not add the project root

from dashboard import components  # noqa: E402

st.set_page_config(page_title="Hearken", page_icon="👂", layout="wide")


def main() -> None:
    actor = components.require_actor()
    components.sidebar(actor)
    pages = [
        st.Page(components.PAGES["queue"], title="Queue", icon=":material/inbox:", url_path="queue", default=True),
        st.Page(components.PAGES["case"], title="Case", icon=":material/forum:", url_path="case"),
        st.Page(components.PAGES["metrics"], title="Metrics", icon=":material/monitoring:", url_path="metrics"),
        st.Page(components.PAGES["sources"], title="Sources", icon=":material/rss_feed:", url_path="sources"),
        # agents are not shown a page only to be refused on it; a link to it says whom it is for
        st.Page(components.PAGES["team"], title="Team", icon=":material/group:", url_path="team",
                visibility="visible" if actor.at_least("manager") else "hidden"),
    ]
    page = st.navigation(pages)
    if not actor.at_least("manager"):  # the Team page is not in an agent's navigation; their API tokens are on it
        st.sidebar.page_link(pages[-1], label="Your API tokens", icon=":material/key:")
    components.health_banner(actor, on_sources_page=page.url_path == "sources")
    page.run()


try:
    main()
except (OperationalError, InterfaceError) as exc:  # the database stopped answering while the page was drawn
    components.database_down(exc)
