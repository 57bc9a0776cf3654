"""The signed-in person's unread alerts in the sidebar, and links from an alert to the page explaining it."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import streamlit as st
from streamlit.errors import StreamlitAPIException

from core.access import pages_for
from core.alerting import alerts
from core.db import session_scope


def unread_in_sidebar(username: str) -> None:
    """'🔔 N unread alerts' in the sidebar, linking to the Alerts page once the navigation knows it."""
    with session_scope() as s:
        count = alerts.unread_count(session=s, username=username)
    label = f"🔔 {count} unread alert{'s' if count != 1 else ''}" if count else "🔔 No unread alerts"
    try:
        st.sidebar.page_link("pages/alerts.py", label=label)
    except StreamlitAPIException:  # the first run after signing in, before st.navigation registered the pages
        st.sidebar.markdown(label)


def link_to(link: str, *, roles: tuple[str, ...], label: str) -> None:
    """A link that keeps the signed-in session: to the page of the portal that `link` (a /path?query) names."""
    parts = urlsplit(link)
    wanted = parts.path.strip("/")
    page = next((p.path for p in pages_for(roles) if p.path.split("/")[-1][:-3] == wanted), None)
    params = dict(parse_qsl(parts.query))
    if page is None and params.get("project"):
        page, params = "pages/project.py", {"project": params["project"]}
    if page is None:
        st.caption(f"See {link}")
        return
    st.page_link(page, label=label, query_params=params or None, icon=":material/arrow_forward:")
