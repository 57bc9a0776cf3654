"""Real-browser tests: the portal served headless over a copy of the seeded demo, driven by Chromium.

How to write one:

    import pytest
    from tests.e2e.conftest import assert_no_exception, goto, sign_in, wait_idle

    @pytest.mark.e2e
    def test_maya_sees_the_registry(page, portal):
        sign_in(page, "maya")                    # through the persona picker
        goto(page, "Registry")                   # a page's navigation title (or its url_path)
        page.get_by_text("fraud-detector").first.wait_for()
        assert_no_exception(page)

Fixtures:
- `portal` (session): a `Portal` with `url` and `home`: `streamlit run app.py` on a free port, headless,
  with WATCHTOWER_HOME / WATCHTOWER_DATABASE_URL pointing at a private copy of the `demo_template` home
  and WATCHTOWER_DEMO=1; ready once `/_stcore/health` answers. Tests share it: a test that changes data
  should use names of its own or assert on what it added, not on totals.
- `browser` (session): Debian's /usr/bin/chromium launched through Playwright (Playwright's own browser
  download is not used).
- `page`: a fresh browser context and page per test (own cookies and session), closed afterwards.

Helpers: `wait_idle(page)` waits until the app is connected and the script has finished running (the
signal Streamlit's own browser tests use), `sign_in(page, username)`, `goto(page, url_path)`,
`assert_no_exception(page)`, `main_text(page)`, `nav_titles(page)`.

After every test, the log of the portal it used must hold no traceback (`clean_server_log`).

Run them alone with `pytest -m e2e`; `make test-fast` leaves them out.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("WATCHTOWER_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Generous: heavy pages on a busy 2-core machine take tens of seconds; a quiet one needs a fraction.
TIMEOUT_MS = int(os.environ.get("WATCHTOWER_E2E_TIMEOUT_MS", "90000"))


@dataclass(frozen=True)
class Portal:
    url: str
    home: Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, *, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the portal exited with status {proc.returncode} before answering")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"the portal did not answer {url}/_stcore/health within {timeout:.0f} s")


@pytest.fixture(scope="session")
def portal(demo_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    """The portal served headless over a private copy of the seeded demo."""
    home = tmp_path_factory.mktemp("e2e") / "home"
    shutil.copytree(demo_template, home)
    port = free_port()
    env = {**os.environ, "WATCHTOWER_HOME": str(home), "WATCHTOWER_DATABASE_URL": f"sqlite:///{home / 'watchtower.db'}",
           "WATCHTOWER_DEMO": "1", "WATCHTOWER_BASE_URL": f"http://127.0.0.1:{port}"}
    log = (home / "streamlit.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc)
        yield Portal(url=url, home=home)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


# What a script that raised leaves in the server log: Python's traceback and Streamlit's own line for it.
LOG_ERROR_MARKERS = ("Traceback (most recent call last)", "Uncaught app exception")


@pytest.fixture(autouse=True)
def clean_server_log(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test after which the portal it used wrote a traceback to its log (`<home>/streamlit.log`)."""
    logs = [request.getfixturevalue(name).home / "streamlit.log"
            for name in request.fixturenames if name.endswith("portal")]
    sizes = {log: log.stat().st_size if log.exists() else 0 for log in logs}
    yield
    for log, size in sizes.items():
        with log.open(errors="replace") as f:
            f.seek(size)
            new = f.read()
        hits = [new.find(marker) for marker in LOG_ERROR_MARKERS if marker in new]
        if hits:
            start = min(hits)
            pytest.fail(f"the portal logged an error during this test ({log}):\n{new[max(0, start - 300):start + 3000]}",
                        pytrace=False)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Debian's Chromium, headless, driven by Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, portal: Portal) -> Iterator[object]:  # noqa: ANN001 - playwright Browser
    """A fresh context (own cookies and Streamlit session) opened on the portal's sign-in page."""
    context = browser.new_context(base_url=portal.url, viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(TIMEOUT_MS)
    pg = context.new_page()
    pg.goto(portal.url)
    wait_idle(pg)
    yield pg
    context.close()


def wait_idle(page, *, timeout: int = TIMEOUT_MS) -> None:  # noqa: ANN001
    """Wait until the app is connected and its script has finished running, then for skeletons to go."""
    from playwright.sync_api import expect

    page.locator("[data-testid='stApp'][data-test-connection-state='CONNECTED']").wait_for(
        state="attached", timeout=timeout)
    # A run that was just triggered may not have flipped the state yet: let the frontend catch up first.
    page.wait_for_timeout(150)
    page.locator("[data-testid='stApp'][data-test-script-state='notRunning']").wait_for(
        state="attached", timeout=timeout)
    expect(page.get_by_test_id("stSkeleton")).to_have_count(0, timeout=timeout)


def sign_in(page, username: str) -> None:  # noqa: ANN001
    """Choose a persona in the demo picker and sign in; waits for the first page to be idle."""
    wait_idle(page)
    box = page.get_by_test_id("stSelectbox").filter(has_text="Persona")
    box.locator("input").click()
    page.get_by_role("option").filter(has_text=f"({username})").first.click()
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Sign out").wait_for()
    wait_idle(page)


def goto(page, target: str) -> None:  # noqa: ANN001
    """Open a page of the navigation by its title ("Portfolio") or url_path ("portfolio") in the same session.

    It clicks the sidebar link, as a user would: loading a URL instead would start a new Streamlit session,
    which is signed out.
    """
    from playwright.sync_api import expect

    _expand_navigation(page)
    links = page.get_by_test_id("stSidebarNavLink")
    link = page.locator(f"[data-testid='stSidebarNavLink'][href$='/{target}']")
    if not link.count():
        link = links.filter(has=page.locator(f"span[label='{target}']"))
    if not link.count():
        shown = ", ".join(nav_titles(page))
        raise AssertionError(f"no page {target!r} in the navigation (it has: {shown})")
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    link.first.click()
    expect(link.first).to_have_attribute("aria-current", "page")
    try:
        wait_idle(page)
    except PlaywrightTimeout as exc:
        raise AssertionError(f"page {target!r} did not finish running within {TIMEOUT_MS / 1000:.0f} s") from exc


def _expand_navigation(page) -> None:  # noqa: ANN001
    """Show every page link: a long navigation hides some behind a "View N more" button."""
    more = page.get_by_test_id("stSidebarNavViewButton")
    if more.count() and "more" in more.inner_text():
        more.click()


def nav_titles(page) -> list[str]:  # noqa: ANN001
    """The titles of the pages in the sidebar navigation, in order."""
    _expand_navigation(page)
    labels = page.locator("[data-testid='stSidebarNavLink'] span[label]")
    return [labels.nth(i).get_attribute("label") for i in range(labels.count())]


def assert_no_exception(page) -> None:  # noqa: ANN001
    """No exception box on the page (the script did not raise)."""
    boxes = page.get_by_test_id("stException")
    if boxes.count():
        raise AssertionError(f"exception on {page.url}: {boxes.first.inner_text()[:800]}")


def main_text(page) -> str:  # noqa: ANN001
    """The visible text of the main area."""
    return page.get_by_test_id("stMain").inner_text()
