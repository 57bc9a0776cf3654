"""Validation lab first render in a real browser (Debian's Chromium), as a ratio to an empty page in the same run.

The portal is served over the seeded demo with one extra page in its navigation: an empty page that checks the
lab's permission and shows a title, in the same app shell. Each measurement opens a fresh browser context (its
own Streamlit session), signs in as the ML engineer, then clicks the page's link and waits until the page is
drawn and the script idle: the lab until its stored champion / challenger section shows. The two pages are
measured alternately; the first visit of each after the server starts (cold process) is reported apart from
the median of the later ones. Target: the lab's median at most 2x the empty page's.
Exits 1 when the target is missed.

    .venv/bin/python bench/bench_lab_browser.py   (BENCH_QUICK=1: 3 runs)
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import EMPTY_PAGE, finish, report, sized  # noqa: E402

from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, _wait_healthy, free_port, goto, sign_in, wait_idle  # noqa: E402

RUNS = sized(7, 3)
TARGET = 2.0
PERMISSION = "validation.view"

# The portal's own app.py, with the empty page added to the navigation (page paths made absolute, since this
# script is not beside the pages).
APP = """import sys
from dataclasses import replace

sys.path.insert(0, {root!r})
from core import access

if not any(p.path == {empty!r} for p in access.PAGES):
    access.PAGES = (*(replace(p, path={root!r} + "/" + p.path) for p in access.PAGES),
                    access.PageSpec({empty!r}, "Empty", "Bench", {permission!r}))
exec(compile(open({app!r}).read(), {app!r}, "exec"), {{"__name__": "__main__", "__file__": {app!r}}})
"""


def _visit(browser, url: str, target: str, ready: str) -> float:  # noqa: ANN001 - playwright Browser
    context = browser.new_context(base_url=url, viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(180_000)
    page = context.new_page()
    try:
        page.goto(url)
        sign_in(page, "maya")
        started = time.perf_counter()
        goto(page, target)
        page.get_by_text(ready, exact=True).first.wait_for()
        wait_idle(page)
        return time.perf_counter() - started
    finally:
        context.close()


def main() -> None:
    from playwright.sync_api import sync_playwright

    home = Path(tempfile.mkdtemp(prefix="wt-bench-"))
    env = {**os.environ, "WATCHTOWER_HOME": str(home), "WATCHTOWER_DATABASE_URL": f"sqlite:///{home / 'watchtower.db'}",
           "WATCHTOWER_DEMO": "1"}
    os.environ.update(env)
    from core.demo import seed_demo

    t0 = time.perf_counter()
    seed_demo()
    print(f"demo seeded (with the lab's findings) in {time.perf_counter() - t0:.1f} s")
    empty = home / "bench_empty.py"
    empty.write_text(EMPTY_PAGE.format(permission=PERMISSION))
    app = home / "bench_app.py"
    app.write_text(APP.format(root=str(ROOT), empty=str(empty), permission=PERMISSION, app=str(ROOT / "app.py")))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (home / "streamlit.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(app), "--server.port", str(port), "--server.address",
         "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_healthy(url, server)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            first_lab = _visit(browser, url, "validation", "Champion / challenger")
            first_empty = _visit(browser, url, "bench_empty", "Empty")
            lab_times, empty_times = [], []
            for _ in range(RUNS):
                lab_times.append(_visit(browser, url, "validation", "Champion / challenger"))
                empty_times.append(_visit(browser, url, "bench_empty", "Empty"))
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()
    lab_ms, empty_ms = statistics.median(lab_times) * 1000, statistics.median(empty_times) * 1000
    print(f"first visits after the server started: lab {first_lab * 1000:.0f} ms, empty page {first_empty * 1000:.0f} ms")
    print(f"later visits (median of {RUNS}, fresh session each): lab {lab_ms:.0f} ms, empty page {empty_ms:.0f} ms")
    ratio = lab_ms / empty_ms
    report("validation lab page in Chromium vs empty page", f"{ratio:.2f}x ({lab_ms:.0f} ms vs {empty_ms:.0f} ms)",
           f"<= {TARGET:.0f}x", ratio <= TARGET)
    finish()


if __name__ == "__main__":
    main()
