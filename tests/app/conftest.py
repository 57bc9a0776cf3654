"""AppTest helpers: open a page of the portal signed in as a persona."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import pytest
from streamlit.components.v2 import manifest_scanner
from streamlit.testing.v1 import AppTest

from core.db import session_scope
from core.identity import users

ROOT = Path(__file__).resolve().parents[2]

# Each AppTest scans every installed package's metadata for Streamlit components before its first run, about a
# third of a page test's time. The installed packages do not change while the tests run: scan once per process.
manifest_scanner.scan_component_manifests = functools.cache(manifest_scanner.scan_component_manifests)


def open_page(page: str | None, *, username: str, timeout: float = 120) -> AppTest:
    """Run app.py signed in as `username`, then switch to `page` (e.g. "pages/portfolio.py")."""
    with session_scope() as s:
        user = users.get_user(session=s, username=username)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout)
    at.session_state["user"] = {"username": user.username, "name": user.name, "roles": list(user.roles)}
    at.run()
    if page:
        at.switch_page(page)
        at.run()
    return at


@pytest.fixture
def page_as(demo_home: Path) -> Callable[..., AppTest]:
    """open_page against a private copy of the seeded demo."""
    return open_page


def texts(at: AppTest) -> str:
    """All visible text of a run (titles, markdown, captions, alerts, tables' headers), for assertions."""
    parts: list[str] = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "text", "info", "warning", "error",
                 "success", "metric"):
        for el in getattr(at, kind, []):
            parts.append(str(getattr(el, "value", "")) + " " + str(getattr(el, "label", "")))
    for df in at.dataframe:
        parts.append(" ".join(map(str, df.value.columns)) + " " + df.value.to_string())
    return "\n".join(parts)
