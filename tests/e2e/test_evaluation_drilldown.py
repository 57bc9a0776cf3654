"""The ML engineer walks from the evaluation store to the drift drill-down and finds card_age_days on top."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import TIMEOUT_MS, assert_no_exception, goto, main_text, sign_in, wait_idle


@pytest.mark.e2e
def test_maya_drills_from_the_store_into_the_drift_of_a_window(page):
    sign_in(page, "maya")
    goto(page, "Evaluation store")
    assert_no_exception(page)
    text = main_text(page)
    assert "AUC, latest window" in text and "Estimated AUC" in text
    # The trend charts are drawn (AUC, recall, precision, business metrics, drift share, field drift).
    page.get_by_test_id("stVegaLiteChart").nth(4).wait_for()
    assert page.get_by_test_id("stVegaLiteChart").count() >= 6

    # The newest window (the last week of October) is offered first; open its drift drill-down.
    window = page.get_by_test_id("stSelectbox").filter(has_text="Window to drill into")
    assert window.locator("input").input_value() == "2026-10-26 00:00"
    page.get_by_role("button", name="Drift drill-down").click()
    wait_idle(page)
    page.get_by_role("heading", name="Drift drill-down").wait_for()
    # The page streams in as its script runs: wait for the window's line rather than read the text once.
    expect(page.get_by_test_id("stMain")).to_contain_text("fraud-detector v2", timeout=TIMEOUT_MS)
    wait_idle(page)
    assert_no_exception(page)
    assert "week 2026-10-26" in page.get_by_test_id("stSelectbox").first.locator("input").input_value()

    # The fields table puts the most drifted field on top, with its method and threshold.
    cells = page.get_by_test_id("stDataFrame").locator("[role=gridcell]")
    cells.first.wait_for(state="attached")  # the grid draws on a canvas and keeps its cells for screen readers
    assert [cells.nth(i).text_content() for i in range(4)] == [
        "card_age_days", "numeric", "Wasserstein distance (normed)", "0.1"]
    # Its distribution, reference against current, is the one drawn first.
    field = page.get_by_test_id("stSelectbox").filter(has_text="Distribution of")
    assert field.locator("input").input_value() == "card_age_days"
    page.get_by_test_id("stVegaLiteChart").first.wait_for()
