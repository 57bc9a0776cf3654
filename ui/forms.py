"""Reading what people type into forms: comma-separated lists and JSON."""

from __future__ import annotations

import json
from typing import Any

import streamlit as st

INVALID = object()  # what parse_json returns for text that is not JSON (after saying why)


def split_list(text: object) -> list[str]:
    """'a, b,,c' → ['a', 'b', 'c']."""
    return [x.strip() for x in str(text or "").split(",") if x.strip()]


def parse_json(text: str, *, problem: str, empty: Any = None) -> Any:  # noqa: ANN401 - any JSON value
    """TEXT as JSON (EMPTY when blank); when it is not JSON, show '<problem>: <why>' and return INVALID."""
    if not text.strip():
        return empty
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        st.error(f"{problem}: {exc}")
        return INVALID
