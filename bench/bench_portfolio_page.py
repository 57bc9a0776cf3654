"""Portfolio page render time in AppTest over the seeded demo, as a ratio to an empty page in the same run.

Both are rendered by AppTest the same way: a fresh run of a router script with st.navigation, signed in as
the risk manager, whose first page is the Portfolio; the empty page is the only page of a router and holds
only a title. Median of several interleaved runs. Target: at most 5x the empty page.

    .venv/bin/python bench/bench_portfolio_page.py
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RUNS = 9
TARGET = 5.0
EMPTY_APP = """
import streamlit as st

def empty():
    st.title("Empty")

st.navigation([st.Page(empty, title="Empty")]).run()
"""


def _render(make) -> float:  # noqa: ANN001
    at = make()
    at.session_state["user"] = {"username": "rhea", "name": "Rhea Okafor", "roles": ["risk_manager"]}
    start = time.perf_counter()
    at.run()
    elapsed = time.perf_counter() - start
    if at.exception:
        raise SystemExit(f"the page raised: {at.exception[0].value}")
    if at.title[0].value not in ("Portfolio", "Empty"):
        raise SystemExit(f"unexpected page {at.title[0].value!r}")
    return elapsed


def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="wt-bench-"))
    os.environ.update(WATCHTOWER_HOME=str(home), WATCHTOWER_DATABASE_URL=f"sqlite:///{home / 'watchtower.db'}",
                      WATCHTOWER_DEMO="1")
    from streamlit.testing.v1 import AppTest

    from core.demo import seed_demo

    t0 = time.perf_counter()
    seed_demo()
    print(f"demo seeded in {time.perf_counter() - t0:.1f} s")
    portfolio = lambda: AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)  # noqa: E731
    empty = lambda: AppTest.from_string(EMPTY_APP, default_timeout=60)  # noqa: E731
    _render(portfolio), _render(empty)  # warm imports and caches
    page_times, empty_times = [], []
    for _ in range(RUNS):
        page_times.append(_render(portfolio))
        empty_times.append(_render(empty))
    page_ms, empty_ms = statistics.median(page_times) * 1000, statistics.median(empty_times) * 1000
    ratio = page_ms / empty_ms
    print(f"portfolio page (demo seed): {page_ms:.1f} ms   empty page: {empty_ms:.1f} ms   (median of {RUNS})")
    print(f"ratio: {ratio:.2f}x the empty page   target: <= {TARGET:.0f}x   {'OK' if ratio <= TARGET else 'MISSED'}")


if __name__ == "__main__":
    main()
