"""Each persona signs in through the picker and opens every page of their navigation in a real browser."""

from __future__ import annotations

import pytest

from core.access import pages_for
from tests.e2e.conftest import (
    TIMEOUT_MS,
    assert_no_exception,
    goto,
    main_text,
    nav_titles,
    sign_in,
    wait_idle,
)

PERSONAS = {"bianca": ("Bianca Rossi", "business", "Business stakeholder"),
            "dario": ("Dario Conti", "data_scientist", "Data scientist"),
            "maya": ("Maya Lindqvist", "ml_engineer", "ML engineer"),
            "rhea": ("Rhea Okafor", "risk_manager", "Risk manager"),
            "omar": ("Omar Haddad", "it_ops", "IT & operations"),
            "admin": ("Alex Morgan", "admin", "Administrator")}
# Text a page shows of its own when its heading is not its navigation title.
OWN_TEXT = {"pages/project.py": "Anti-money laundering monitoring (AML)"}


@pytest.mark.e2e
@pytest.mark.parametrize("username", list(PERSONAS))
def test_persona_visits_every_page_of_their_navigation(page, username):
    from playwright.sync_api import expect

    sign_in(page, username)
    name, role, role_label = PERSONAS[username]
    sidebar = page.get_by_test_id("stSidebar").inner_text()
    assert name in sidebar and role_label in sidebar
    specs = pages_for((role,))
    assert specs, f"{username} has no pages"
    assert sorted(nav_titles(page)) == sorted(spec.title for spec in specs), "the navigation holds exactly the persona's pages"
    for spec in specs:
        goto(page, spec.title)
        expected = OWN_TEXT.get(spec.path, spec.title)
        # On a busy machine the page's run may start after goto saw the previous one finish: wait for its text.
        expect(page.get_by_test_id("stMain")).to_contain_text(expected, timeout=TIMEOUT_MS)
        wait_idle(page)
        assert_no_exception(page)
        assert expected in main_text(page), f"{username} on {spec.title}: {expected!r} not shown"


@pytest.mark.e2e
def test_signing_out_returns_to_the_persona_picker(page):
    sign_in(page, "rhea")
    page.get_by_role("button", name="Sign out").click()
    page.get_by_text("Choose a persona").wait_for()
    wait_idle(page)
    assert "Rhea Okafor" not in page.get_by_test_id("stApp").inner_text()
    assert page.get_by_test_id("stSidebarNavLink").count() == 0
