"""In a real browser: the business stakeholder follows the fraud-missed alert from her inbox to the project dashboard."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import TIMEOUT_MS, assert_no_exception, goto, main_text, sign_in, wait_idle


@pytest.mark.e2e
def test_bianca_follows_the_fraud_alert_to_the_project_dashboard(page, portal):
    sign_in(page, "bianca")
    sidebar = page.get_by_test_id("stSidebar")
    assert "unread alert" in sidebar.inner_text()

    goto(page, "alerts")
    text = main_text(page)
    assert "Credit card fraud: fraud missed amount needs attention" in text
    assert "Fraud missed in the week to" in text and "EUR we accept in a week" in text  # her words
    assert "fraud_missed_amount" not in text and "roc_auc" not in text
    assert "✅✅✅✅✅✅❌❌" in text  # the green weeks she saw before the red ones
    assert_no_exception(page)

    # her newest alerts also include a review to sign; she follows the fraud alert's link
    title = page.get_by_text("Credit card fraud: fraud missed amount needs attention").first
    title.locator("xpath=following::a[contains(., 'Open the page that explains it')][1]").click()
    page.get_by_text("Credit card fraud (FRAUD)").first.wait_for()
    wait_idle(page)
    assert "project=FRAUD" in page.url
    dashboard = main_text(page)
    assert "Sponsor:" in dashboard and "Checks and process" in dashboard
    # the process map's monitoring step, from the same checks; the graph is drawn after the page settles
    page.wait_for_function(
        """() => document.querySelector('[data-testid="stMain"]').innerText.includes('health: error')""",
        timeout=TIMEOUT_MS)
    assert "health: error" in main_text(page)
    assert_no_exception(page)
    # still signed in: the link navigated inside her session
    assert page.get_by_role("button", name="Sign out").is_visible()
