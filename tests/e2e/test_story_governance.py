"""In a real browser: v3 cannot skip governance. The ML engineer asks for production and is blocked, the risk
manager finds it in her inbox, IT & operations, risk and the business give their feedback as three different
people, the risk manager approves, and production runs v3.

This story changes what runs in production, so it plays on a portal of its own over a private copy of the demo.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import (
    ROOT,
    Portal,
    _wait_healthy,
    assert_no_exception,
    free_port,
    goto,
    main_text,
    sign_in,
    wait_idle,
)


@pytest.fixture(scope="module")
def story_portal(demo_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    home = tmp_path_factory.mktemp("governance-story") / "home"
    shutil.copytree(demo_template, home)
    port = free_port()
    env = {**os.environ, "WATCHTOWER_HOME": str(home), "WATCHTOWER_DATABASE_URL": f"sqlite:///{home / 'watchtower.db'}",
           "WATCHTOWER_DEMO": "1", "WATCHTOWER_BASE_URL": f"http://127.0.0.1:{port}"}
    with (home / "streamlit.log").open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port", str(port),
             "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_healthy(f"http://127.0.0.1:{port}", proc)
            yield Portal(url=f"http://127.0.0.1:{port}", home=home)
        finally:
            proc.terminate()
            proc.wait(timeout=20)


@pytest.fixture
def story_page(browser, story_portal: Portal):  # noqa: ANN001, ANN201 - playwright objects
    context = browser.new_context(base_url=story_portal.url, viewport={"width": 1400, "height": 1100})
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.goto(story_portal.url)
    wait_idle(page)
    yield page
    context.close()


def open_page(page, target: str) -> None:  # noqa: ANN001
    """Open a page of the navigation, unfolding the sidebar's "View more" first when the list is folded."""
    more = page.get_by_test_id("stSidebarNavViewButton")
    if more.count() and "more" in more.inner_text().lower():
        more.click()
    goto(page, target)


def choose(page, key: str, option: str) -> None:  # noqa: ANN001
    """Pick an option of the selectbox whose widget key is `key`, and wait for the page to follow."""
    box = page.locator(f".st-key-{key} input")
    box.scroll_into_view_if_needed()  # a box at the window's lower edge opens no list
    box.click()
    page.get_by_role("option").filter(has_text=option).first.click()
    expect(page.locator(f".st-key-{key} input")).to_have_value(re.compile(re.escape(option)))
    wait_idle(page)


def switch_to(page, username: str) -> None:  # noqa: ANN001
    page.get_by_role("button", name="Sign out").click()
    wait_idle(page)
    sign_in(page, username)


def give_feedback(page, verdict_label: str, comment: str) -> None:  # noqa: ANN001
    form = page.get_by_test_id("stForm").filter(has_text="Your feedback")
    form.get_by_text(verdict_label, exact=True).click()
    form.locator("textarea").fill(comment)
    form.get_by_role("button", name="Give feedback").click()
    page.get_by_text("feedback on fraud-detector v3 is recorded").wait_for()
    wait_idle(page)  # the notice comes first; wait for the rest of the page too


@pytest.mark.e2e
def test_v3_reaches_production_only_through_its_review(story_page):
    page = story_page

    # The ML engineer asks for production on the Deployer page: refused, with the reason.
    sign_in(page, "maya")
    open_page(page, "deployer")
    choose(page, "dep_model", "fraud-detector")
    assert "fraud-detector v2" in main_text(page) and "fraud-detector v3" in main_text(page)
    choose(page, "dep_version", "v3")
    choose(page, "dep_env", "production")
    page.locator(".st-key-dep_submit button").click()
    refusal = page.get_by_test_id("stAlert").filter(has_text="Deployment refused")
    refusal.wait_for()
    wait_idle(page)
    assert "production requires an approved review (policy block): fraud-detector v3 is waiting for feedback " \
           "from risk_manager, business" in refusal.inner_text()
    assert_no_exception(page)

    # The risk manager finds the blocked attempt in her inbox and follows it to the review.
    switch_to(page, "rhea")
    open_page(page, "alerts")
    inbox = main_text(page)
    assert "Deployment blocked: fraud-detector v3 to production" in inbox
    assert "Review requested: fraud-detector v3" in inbox
    link = page.get_by_role("link", name="Open the page that explains it")
    blocked = page.get_by_test_id("stVerticalBlock").filter(
        has_text="Deployment blocked: fraud-detector v3 to production").filter(has=link).last
    blocked.get_by_role("link", name="Open the page that explains it").click()
    page.get_by_text("Credit card fraud (FRAUD)").first.wait_for()
    wait_idle(page)
    review = main_text(page)
    assert "Where it stands: Review" in review and "🟡 waiting for feedback" in review
    assert "rollback to v2 rehearsed" in review  # IT & operations' feedback from the seed
    give_feedback(page, "🟡 minor issue", "Document the card-age feature and its drift in the model documentation.")

    # IT & operations confirms after a last look; the business signs off.
    switch_to(page, "omar")
    open_page(page, "governance")
    give_feedback(page, "✅ approved", "Confirmed after the staging load test: p99 within budget.")
    switch_to(page, "bianca")
    open_page(page, "governance")
    give_feedback(page, "✅ approved", "Fewer missed frauds on new cards; customers are not held more often.")
    assert "🟠 waiting for approval" in main_text(page)
    assert page.get_by_test_id("stForm").filter(has_text="Final decision").count() == 0, "not hers to decide"

    # The risk manager approves: the high-risk blueprint deploys v3 to production at once.
    switch_to(page, "rhea")
    open_page(page, "alerts")
    assert "Ready for your decision: fraud-detector v3" in main_text(page)
    open_page(page, "governance")
    decision = page.get_by_test_id("stForm").filter(has_text="Final decision")
    decision.locator("textarea").fill("Approved; documentation follow-up tracked.")
    decision.get_by_role("button", name="Approve").click()
    page.get_by_text("fraud-detector v3 approved — deployed to production automatically").wait_for()
    wait_idle(page)
    assert "Where it stands: Production" in main_text(page)
    assert_no_exception(page)

    # Production runs v3.
    switch_to(page, "maya")
    open_page(page, "deployer")
    choose(page, "dep_model", "fraud-detector")
    production = page.get_by_test_id("stVerticalBlock").filter(has_text="production · higher · policy block").last
    assert "fraud-detector v3 since" in production.inner_text()
    assert "deployed by rhea" in production.inner_text(), "the automatic deployment acts as the approver"
    assert_no_exception(page)
