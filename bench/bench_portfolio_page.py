"""Portfolio page render time in AppTest over the seeded demo, as a ratio to an empty page in the same run.

Both are one AppTest run of app.py signed in as the risk manager, with the page measured as the first page
of the navigation: the same app shell (page config, demo banner, sidebar with the inbox, navigation), then
either the Portfolio or an empty page that only checks the permission and shows a title (no data work).
Median of several interleaved runs. Target: at most 5x the empty page. Exits 1 when the target is missed.

    .venv/bin/python bench/bench_portfolio_page.py   (BENCH_QUICK=1: 3 runs)
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
TARGET = 5.0
PERMISSION = "portfolio.view"
USER = {"username": "rhea", "name": "Rhea Okafor", "roles": ["risk_manager"]}


def _render(page: str, title: str) -> float:
    elapsed, at = open_first(page, PERMISSION, USER, clear_cache=False)
    if at.title[0].value != title:
        raise SystemExit(f"expected the page {title!r}, got {at.title[0].value!r}")
    return elapsed


def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="wt-bench-"))
    os.environ.update(WATCHTOWER_HOME=str(home), WATCHTOWER_DATABASE_URL=f"sqlite:///{home / 'watchtower.db'}",
                      WATCHTOWER_DEMO="1")
    from core.demo import seed_demo

    t0 = time.perf_counter()
    seed_demo()
    print(f"demo seeded in {time.perf_counter() - t0:.1f} s")
    empty = empty_page(str(home), PERMISSION)
    _render("pages/portfolio.py", "Portfolio"), _render(empty, "Empty")  # warm imports and caches
    page_times, empty_times = [], []
    for _ in range(RUNS):
        page_times.append(_render("pages/portfolio.py", "Portfolio"))
        empty_times.append(_render(empty, "Empty"))
    page_ms, empty_ms = statistics.median(page_times) * 1000, statistics.median(empty_times) * 1000
    ratio = page_ms / empty_ms
    print(f"portfolio page (demo seed): {page_ms:.1f} ms   empty page, same shell: {empty_ms:.1f} ms   "
          f"(median of {RUNS})")
    report("portfolio page vs empty page", f"{ratio:.2f}x ({page_ms:.0f} ms vs {empty_ms:.0f} ms)",
           f"<= {TARGET:.0f}x", ratio <= TARGET)
    finish()


if __name__ == "__main__":
    main()
