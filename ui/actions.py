"""One way to act from a page: run a core service, show its refusal, or tell what it did."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import streamlit as st

from core.db import session_scope
from core.errors import WatchtowerError
from ui.notices import Notice, keep, say

T = TypeVar("T")
Success = str | Notice | Callable[[Any], "str | Notice"] | None


def _notice(success: Success, result: Any) -> Notice | None:  # noqa: ANN401 - whatever the service returned
    if callable(success):
        success = success(result)
    if isinstance(success, str):
        return Notice(success)
    return success


def attempt(service: Callable[..., T], *args: Any, refused: str = "", show: Callable[[str], Any] = st.error,
            **kwargs: Any) -> T | None:
    """Call SERVICE as is (a read, or work that opens its own unit of work); on a refusal show it, return None."""
    try:
        return service(*args, **kwargs)
    except WatchtowerError as exc:
        show(f"{refused}{exc}")
        return None


def act(service: Callable[..., T], *, success: Success = None, refused: str = "", rerun: bool = True,
        after: Callable[[T], Any] | None = None, **kwargs: Any) -> T | None:
    """Call SERVICE in one unit of work (it gets `session`), so it commits or rolls back as a whole.

    A refusal (WatchtowerError) is shown as an error, prefixed by REFUSED, and None returned. On success AFTER runs
    (clearing caches, say), then the SUCCESS notice is kept and the page reruns; with rerun=False it is shown now.
    """
    try:
        with session_scope() as s:
            result = service(session=s, **kwargs)
    except WatchtowerError as exc:
        st.error(f"{refused}{exc}")
        return None
    if after is not None:
        after(result)
    notice = _notice(success, result)
    if not rerun:
        if notice is not None:
            say(notice)
        return result
    if notice is not None:
        keep(notice)
    st.rerun()
