"""The signed-in user (kept as primitives in session_state), sign-in, sidebar and navigation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NoReturn

import streamlit as st

from core.access import Actor, pages_for, require
from core.config import get_settings
from core.db import session_scope
from core.errors import WatchtowerError
from core.identity import oidc, users
from ui.inbox import unread_in_sidebar

ROLE_LABELS = {
    "business": "Business stakeholder",
    "data_scientist": "Data scientist",
    "ml_engineer": "ML engineer",
    "risk_manager": "Risk manager",
    "it_ops": "IT & operations",
    "admin": "Administrator",
}


@dataclass(frozen=True)
class SignedIn:
    username: str
    name: str
    roles: tuple[str, ...]

    @property
    def actor(self) -> Actor:
        return Actor(username=self.username, roles=self.roles)


def current_user() -> SignedIn | None:
    data = st.session_state.get("user")
    if not data:
        return None
    return SignedIn(username=data["username"], name=data["name"], roles=tuple(data["roles"]))


DEMO_BANNER = "Demo mode: anyone can sign in as anyone. Keep this portal on your own computer."


def _sign_in(user: users.UserRead, *, method: str) -> None:
    st.session_state["user"] = {"username": user.username, "name": user.name, "roles": list(user.roles),
                                "method": method}


def sign_out() -> NoReturn:
    """Forget who is signed in (audited) and end this run: back to the sign-in page, or out at the company."""
    data = st.session_state.get("user") or {}
    if data.get("username"):
        with session_scope() as s:
            users.record_sign_out(session=s, username=data["username"])
    for key in list(st.session_state.keys()):
        del st.session_state[key]
    if data.get("method") == "oidc" or _company_signed_in():
        # Forgets the identity cookie, else the next visit would sign straight back in. st.logout only queues
        # the browser's redirect: a rerun now would drop it, so this run ends here and delivers it.
        st.logout()
        st.stop()
    st.rerun()


def demo_banner() -> None:
    """Warn on every page that demo mode lets anyone act as anyone."""
    if get_settings().demo:
        st.warning(DEMO_BANNER, icon=":material/warning:")


def company_sign_in_configured() -> bool:
    """True when .streamlit/secrets.toml configures OpenID Connect ([auth])."""
    try:
        return "auth" in st.secrets
    except Exception:  # noqa: BLE001 - no secrets file at all
        return False


def _company_signed_in() -> bool:
    return company_sign_in_configured() and bool(st.user.is_logged_in)


def company_sign_in() -> str | None:
    """Sign in the person the identity cookie names (once per session); return why they have no access."""
    if "no_access" in st.session_state:
        return st.session_state["no_access"]
    if current_user() is not None or not _company_signed_in():
        return None
    try:
        with session_scope() as s:
            _sign_in(oidc.sign_in(session=s, claims=st.user.to_dict()), method="oidc")
    except WatchtowerError as exc:
        st.session_state["no_access"] = str(exc)
        return str(exc)
    return None


def no_access_page() -> None:
    st.title("No access")
    st.error(st.session_state.get("no_access", "No access."))
    if st.button("Sign out", key="sign_out"):
        sign_out()


def sign_in_page() -> None:
    st.title("Watchtower")
    st.caption("MLOps analytics and governance portal")
    settings = get_settings()
    with session_scope() as s:
        people = users.list_users(session=s)
    if settings.demo:
        st.subheader("Choose a persona")
        st.caption("Demo mode: personas sign in without a password.")
        if not people:
            st.warning("No users yet. Run `watchtower demo` to seed the story.")
            return
        labels = {u.username: f"{u.name} ({u.username}) — {', '.join(ROLE_LABELS.get(r, r) for r in u.roles)}"
                  for u in people}
        choice = st.selectbox("Persona", list(labels), format_func=labels.get, key="persona")
        if st.button("Sign in", key="sign_in", type="primary"):
            with session_scope() as s:
                _sign_in(users.authenticate(session=s, username=choice, password=None, demo=True), method="demo")
            st.rerun()
        return
    if company_sign_in_configured():
        if st.button("Sign in with your company account", key="company_sign_in", type="primary",
                     icon=":material/badge:"):
            st.login()
        st.caption("Or with a local account:")
    with st.form("sign_in_form"):
        username = st.text_input("Username", key="username")
        password = st.text_input("Password", type="password", key="password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        try:
            with session_scope() as s:
                _sign_in(users.authenticate(session=s, username=username, password=password), method="password")
        except WatchtowerError as exc:
            st.error(str(exc))
            return
        st.rerun()


def sidebar(user: SignedIn) -> None:
    with st.sidebar:
        st.markdown(f"**{user.name}**  \n{', '.join(ROLE_LABELS.get(r, r) for r in user.roles)}")
        unread_in_sidebar(user.username)
        if st.button("Sign out", key="sign_out"):
            sign_out()
            st.rerun()


def navigation_for(user: SignedIn) -> dict[str, list[st.Page]]:
    sections: dict[str, list[st.Page]] = {}
    for spec in pages_for(user.roles):
        sections.setdefault(spec.section, []).append(
            st.Page(spec.path, title=spec.title, icon=spec.icon or None, url_path=spec.path.split("/")[-1][:-3]))
    return sections


def require_page(permission: str) -> SignedIn:
    """Stop the page unless a signed-in user holds the permission (enforced by core.access)."""
    user = current_user()
    if user is None:
        st.error("Please sign in.")
        st.stop()
    try:
        require(user.actor, permission)
    except WatchtowerError as exc:
        st.error(str(exc))
        st.stop()
    return user
