"""In a real browser: an ML engineer starts a project from the template, then finds it and its model."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import assert_no_exception, goto, main_text, sign_in, wait_idle


def _choose(page, label: str, option: str) -> None:  # noqa: ANN001
    box = page.get_by_test_id("stSelectbox").filter(has_text=label)
    box.locator("input").click()
    page.get_by_role("option").filter(has_text=option).first.click()
    wait_idle(page)


def _type(page, label: str, value: str) -> None:  # noqa: ANN001
    field = page.get_by_label(label, exact=True)
    field.fill(value)
    field.press("Enter")
    wait_idle(page)


@pytest.mark.e2e
def test_an_ml_engineer_creates_a_project_from_the_template_and_finds_it(page):
    sign_in(page, "maya")
    goto(page, "New project")
    assert "A binary classifier trained on a registered dataset" in main_text(page)

    _choose(page, "Data source", "card-transactions")
    assert "The model will learn from 10 features" in main_text(page)
    _type(page, "Project name", "Wallet payments fraud")
    _type(page, "Key", "WALLET")
    _type(page, "Sponsor", "Elena Fischer")
    _choose(page, "Risk level", "high")
    page.get_by_role("button", name="Create project").click()
    page.get_by_text("Project WALLET created from template").wait_for(timeout=120_000)
    wait_idle(page)
    assert_no_exception(page)
    shown = main_text(page)
    assert "blueprint High risk (stage Exploration), model wallet-model v1" in shown
    assert "scenario “Daily monitoring”" in shown

    page.get_by_role("link", name="Open the WALLET dashboard").click()
    wait_idle(page)
    page.get_by_text("Wallet payments fraud (WALLET)").first.wait_for()
    assert "wallet-model" in main_text(page)

    goto(page, "Catalog")
    _type(page, "Search names, descriptions, tags and owners", "wallet")
    assert "wallet-model" in main_text(page)
    assert_no_exception(page)
