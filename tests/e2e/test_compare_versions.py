"""The ML engineer compares v2 (in production) with v3 (retrained after the alert), then opens v3 in the lab."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import assert_no_exception, goto, main_text, sign_in, wait_idle

SLOW_MS = 180_000  # scoring both versions, permutation importance and drift on a busy machine


def _cells(page) -> list[str]:  # noqa: ANN001
    """The text of every data-grid cell on the page (the grids keep their cells for screen readers).

    Each grid is scrolled into view first: a grid below the fold has not drawn its cells yet. Grids in a
    closed expander are skipped.
    """
    texts: list[str] = []
    grids = page.get_by_test_id("stDataFrame")
    for g in range(grids.count()):
        grid = grids.nth(g)
        if not grid.is_visible():
            continue
        grid.scroll_into_view_if_needed()
        cells = grid.locator("[role=gridcell]")
        cells.first.wait_for(state="attached")
        texts.extend(cells.nth(i).text_content() for i in range(cells.count()))
    return texts


@pytest.mark.e2e
def test_maya_compares_v2_and_v3_and_opens_the_candidate_in_the_validation_lab(page):
    sign_in(page, "maya")
    goto(page, "Registry")
    assert_no_exception(page)
    model = page.get_by_test_id("stSelectbox").filter(has_text="Model")
    assert model.locator("input").input_value() == "fraud-detector"  # the model with a candidate waiting
    page.get_by_test_id("stDataFrame").first.locator("[role=gridcell]").first.wait_for(state="attached")
    versions = _cells(page)
    assert "🟡 candidate" in versions and "scheduled retrain" in versions and "production" in versions

    text = main_text(page)
    assert "Retrained after the failed check auc" in text and "(verified)" in text

    a = page.get_by_test_id("stSelectbox").filter(has_text="Version A")
    b = page.get_by_test_id("stSelectbox").filter(has_text="Version B")
    assert (a.locator("input").input_value(), b.locator("input").input_value()) == ("v2", "v3")
    page.get_by_role("button", name="Compare").click()
    wait_idle(page, timeout=SLOW_MS)
    page.get_by_text("Drift between their training data").wait_for(timeout=SLOW_MS)
    assert_no_exception(page)
    text = main_text(page)
    assert "that neither version was trained on" in text and "field(s) drifted" in text
    cells = _cells(page)
    roc = cells.index("roc_auc")
    assert cells[roc + 3] == "v3", cells[roc:roc + 4]  # Metric, v2, v3, Better
    missed = cells.index("Fraud missed (amount)")
    assert cells[missed + 3] == "v3"
    # The page also lists the column mapping's roles; the drift table is the one saying whether a field drifted.
    rows = [cells[i:i + 5] for i, c in enumerate(cells) if c == "card_age_days"]
    assert any("yes" in row for row in rows), rows
    assert page.get_by_test_id("stVegaLiteChart").count() >= 1  # the importances of both, side by side

    page.get_by_role("link", name="Open v3 in the validation lab").click()
    wait_idle(page, timeout=SLOW_MS)
    page.get_by_role("heading", name="Champion / challenger").wait_for(timeout=SLOW_MS)
    assert_no_exception(page)
    text = main_text(page)
    assert "Validation lab" in text and "v3 beats v2 on roc_auc" in text
    page.get_by_text("Score and explain a record").click()  # the what-if opens on demand
    page.get_by_text("Decision:").first.wait_for(timeout=SLOW_MS)
    wait_idle(page, timeout=SLOW_MS)
    text = main_text(page)
    assert "method: Shapley sampling" in text and "Decision:" in text
