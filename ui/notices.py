"""Notices that survive the rerun after an action: stored in session_state, shown on the next render."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

KEY = "notice"


@dataclass(frozen=True)
class Notice:
    """What to tell the person after an action; `kind` is success, warning or info."""

    text: str
    kind: str = "success"


def say(notice: Notice) -> None:
    """Show a notice now."""
    getattr(st, notice.kind)(notice.text)


def keep(notice: Notice) -> None:
    """Keep a notice for the next render of the page (after st.rerun)."""
    st.session_state[KEY] = (notice.kind, notice.text)


def show() -> None:
    """Show, once, the notice an action kept for this render."""
    if KEY in st.session_state:
        kind, text = st.session_state.pop(KEY)
        say(Notice(text, kind))
