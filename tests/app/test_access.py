"""Each persona's navigation holds only the pages they may open; opening another page anyway is refused."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from core.access import PAGES, PERMISSIONS, Actor, pages_for
from tests.app.conftest import ROOT, open_page, texts

PERSONAS = {"bianca": "business", "dario": "data_scientist", "maya": "ml_engineer", "rhea": "risk_manager",
            "omar": "it_ops", "admin": "admin"}
# (page, a persona whose role does not grant it): one case per restricted page.
REFUSED = {spec.path: (spec, user) for spec in PAGES for user, role in reversed(PERSONAS.items())
           if not Actor(username=user, roles=(role,)).has(spec.permission)}


def test_every_page_is_open_to_someone_and_the_administrator_sees_them_all():
    assert pages_for(("admin",)) == list(PAGES)
    for spec in PAGES:
        assert any(spec in pages_for((role,)) for role in PERSONAS.values() if role != "admin"), spec.path
    business = [p.path for p in pages_for(("business",))]
    assert business[:2] == ["pages/portfolio.py", "pages/project.py"]
    assert REFUSED, "some page must be restricted to some roles"


@pytest.mark.parametrize("path", sorted(REFUSED))
def test_a_page_outside_the_persona_navigation_cannot_be_reached_and_refuses_to_run(demo_home, path):
    spec, username = REFUSED[path]
    at = open_page(None, username=username)
    with pytest.raises(ValueError, match="not a registered page|Could not find a navigation page"):
        at.switch_page(path)
    for allowed in pages_for((PERSONAS[username],)):
        at.switch_page(allowed.path)  # every page of their own navigation is registered

    direct = AppTest.from_file(str(ROOT / path), default_timeout=60)
    direct.session_state["user"] = {"username": username, "name": username, "roles": [PERSONAS[username]]}
    direct.run()
    assert not direct.exception
    assert [e.value for e in direct.error] == [
        f"{username} may not {spec.permission.replace('.', ' ')} "
        f"(allowed roles: {', '.join(sorted(PERMISSIONS[spec.permission]))})"]
    assert not direct.title, "nothing of the page is shown"


def test_a_visitor_signs_in_through_the_persona_picker(demo_home):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    assert at.title[0].value == "Watchtower"
    assert "Choose a persona" in texts(at)
    persona = at.selectbox(key="persona")
    assert set(persona.options) >= {"Bianca Rossi (bianca) — Business stakeholder", "Alex Morgan (admin) — Administrator"}
    persona.select("rhea")
    at.button(key="sign_in").click().run()
    assert at.title[0].value == "Portfolio"
    assert "Rhea Okafor" in " ".join(m.value for m in at.sidebar.markdown)
