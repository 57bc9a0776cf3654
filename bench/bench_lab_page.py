"""Validation lab first render in AppTest over the seeded demo, as a ratio to an empty page in the same run.

Both are one AppTest run of app.py signed in as the ML engineer, with the page measured as the first page of
the navigation: the same app shell, then either the Validation lab (its findings read from what the demo seed
stored for the version) or an empty page that only checks the permission and shows a title. Streamlit's data
and resource caches are cleared before every run (cold). Median of interleaved runs. Target: at most 2x the empty page.
Exits 1 when the target is missed.

    .venv/bin/python bench/bench_lab_page.py   (BENCH_QUICK=1: 3 runs)
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

from common import empty_page, finish, open_first, report, sized  # noqa: E402

RUNS = sized(9, 3)
TARGET = 2.0
PERMISSION = "validation.view"
USER = {"username": "maya", "name": "Maya", "roles": ["ml_engineer"]}
PAGE = "pages/validation.py"


def _render(page: str, title: str) -> float:
    import streamlit as st

    st.cache_resource.clear()  # cold: a lab held in memory from an earlier run would hide the work of a first visit
    elapsed, at = open_first(page, PERMISSION, USER, clear_cache=True)
    if at.title[0].value != title:
        raise SystemExit(f"expected the page {title!r}, got {at.title[0].value!r}")
    if page == PAGE and "Champion / challenger" not in [h.value for h in at.subheader]:
        raise SystemExit("the lab did not show its stored findings")
    return elapsed


def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="wt-bench-"))
    os.environ.update(WATCHTOWER_HOME=str(home), WATCHTOWER_DATABASE_URL=f"sqlite:///{home / 'watchtower.db'}",
                      WATCHTOWER_DEMO="1")
    from core.demo import seed_demo

    t0 = time.perf_counter()
    seed_demo()
    print(f"demo seeded (with the lab's findings) in {time.perf_counter() - t0:.1f} s")
    empty = empty_page(str(home), PERMISSION)
    _render(PAGE, "Validation lab"), _render(empty, "Empty")  # imports and first-run costs out of the way
    page_times, empty_times = [], []
    for _ in range(RUNS):
        page_times.append(_render(PAGE, "Validation lab"))
        empty_times.append(_render(empty, "Empty"))
    page_ms, empty_ms = statistics.median(page_times) * 1000, statistics.median(empty_times) * 1000
    ratio = page_ms / empty_ms
    print(f"validation lab (demo seed, cold): {page_ms:.1f} ms   empty page, same shell: {empty_ms:.1f} ms   "
          f"(median of {RUNS})")
    report("validation lab page (first render) vs empty page", f"{ratio:.2f}x ({page_ms:.0f} ms vs {empty_ms:.0f} ms)",
           f"<= {TARGET:.0f}x", ratio <= TARGET)
    finish()


if __name__ == "__main__":
    main()
