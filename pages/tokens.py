"""Tokens: personal access tokens for scripts, the command line and the scoring API."""

from datetime import timedelta

import pandas as pd
import streamlit as st

from core.db import session_scope
from core.identity import tokens
from ui import notices
from ui.actions import act, attempt
from ui.session import require_page

user = require_page("tokens.manage")
actor = user.actor

st.title("Tokens")
st.caption("A token lets a script act as you within its scopes: `cli` for the command line, "
           "`predict:ENV/MODEL`, `read:ENV/MODEL` or `deploy:ENV/MODEL` for the scoring API (`*` matches any). "
           "Only a hash of its secret is kept.")

# The secret of a token created in the previous run: shown this once, then gone from the session.
fresh = st.session_state.pop("token_secret", None)
if fresh:
    name, secret = fresh
    st.warning(f"Copy the secret of token **{name}** now: it is shown only this once and cannot be recovered.")
    st.code(secret, language=None)
    st.caption("Command line: `export WATCHTOWER_TOKEN=…` · scoring API: `Authorization: Bearer …`")
notices.show()

everyone = actor.has("users.manage") and st.toggle("Everyone's tokens", key="tokens_all")
with session_scope() as s:
    listed = attempt(tokens.list_tokens, session=s, actor=actor, everyone=everyone)
if listed is None:
    st.stop()


def _when(moment) -> str:  # noqa: ANN001 - datetime | None
    return f"{moment:%Y-%m-%d %H:%M}" if moment else "never"


if listed:
    st.dataframe(pd.DataFrame([{"Id": t.id, "User": t.username, "Name": t.name, "Scopes": ", ".join(t.scopes),
                                "Created": _when(t.created_at), "Last used": _when(t.last_used_at),
                                "Expires": _when(t.expires_at), "Status": t.status} for t in listed]),
                 hide_index=True, use_container_width=True)
else:
    st.info("No tokens yet.")

st.subheader("Create a token")
c1, c2, c3 = st.columns([2, 4, 1])
c1.text_input("Name", key="token_name", placeholder="ci")
c2.text_input("Scopes, comma-separated", key="token_scopes", value="cli",
              placeholder="predict:production/fraud-detector")
c3.number_input("Days", min_value=1, max_value=366, value=90, key="token_days")
if st.button("Create token", key="token_create", type="primary"):
    act(tokens.create_token, actor=actor, name=st.session_state["token_name"],
        scopes=[p for p in st.session_state["token_scopes"].split(",") if p.strip()],
        expires_in=timedelta(days=int(st.session_state["token_days"])),
        after=lambda made: st.session_state.update(token_secret=(made[0].name, made[1])))

active = [t for t in listed if t.status == "active"]
if active:
    st.subheader("Revoke a token")
    labels = {t.id: f"{t.name} of {t.username} (#{t.id}; {', '.join(t.scopes)})" for t in active}
    chosen = st.selectbox("Token", list(labels), format_func=labels.get, key="token_revoke_id")
    if st.button("Revoke", key="token_revoke"):
        act(tokens.revoke_token, actor=actor, token_id=chosen,
            success=lambda gone: f"Token {gone.name} of {gone.username} revoked: it never works again.")
