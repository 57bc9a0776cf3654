"""The project, model and version pickers the pages share."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st

from core.db import session_scope
from core.models import lineage
from core.projects import projects


def _index(options: Sequence[Any], wanted: Any, default: int = 0) -> int:  # noqa: ANN401 - any option
    return list(options).index(wanted) if wanted in options else default


def pick_project(keys: Sequence[str] | None = None, *, key: str, current: str | None = None,
                 query: str | None = None, stop: bool = True, where: Any = st) -> str | None:  # noqa: ANN401
    """'Project' select box over KEYS (every project when None), preselecting CURRENT or the ?QUERY= parameter.

    Without any project it says so and stops the page (or returns None when STOP is false).
    """
    if keys is None:
        with session_scope() as s:
            keys = projects.list_project_keys(session=s)
    if not keys:
        st.info("No projects yet.")
        if stop:
            st.stop()
        return None
    wanted = current or (st.query_params.get(query) if query else None)
    return where.selectbox("Project", keys, index=_index(keys, wanted), key=key)


def pick_model(names: Sequence[str] | None = None, *, key: str, current: str | None = None,
               query: str | None = "model", on_change: Callable[[], None] | None = None,
               where: Any = st) -> str:  # noqa: ANN401
    """'Model' select box over NAMES (every registered model when None), preselecting CURRENT or ?model=.

    Without any model it says so and stops the page.
    """
    if names is None:
        with session_scope() as s:
            names = lineage.model_names(session=s)
    if not names:
        st.info("No models registered yet.")
        st.stop()
    wanted = current or (st.query_params.get(query) if query else None)
    return where.selectbox("Model", names, index=_index(names, wanted), key=key, on_change=on_change)


def pick_version(numbers: Sequence[int], *, key: str, label: str = "Version", current: int | None = None,
                 query: str | None = None, describe: Callable[[int], str] | None = None,
                 where: Any = st) -> int | None:  # noqa: ANN401
    """A version number, shown as vN unless DESCRIBE says otherwise; preselects CURRENT, or ?QUERY= when it names one."""
    asked = st.query_params.get(query) if query else None
    if asked and asked.isdigit() and int(asked) in numbers:
        current = int(asked)
    return where.selectbox(label, numbers, index=_index(numbers, current), key=key,
                           format_func=describe or (lambda n: f"v{n}"))
