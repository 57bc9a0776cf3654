"""The Checks page: the ML engineer applies the standard AI quality checks and defines a business check."""

from __future__ import annotations

from core.db import session_scope
from core.monitoring import checks
from tests.app.conftest import texts


def _open(page_as, username="maya"):
    at = page_as("pages/checks.py", username=username)
    at.selectbox(key="checks_project").select("CHURN").run()
    assert not at.exception
    return at


def test_the_standard_template_is_applied_to_a_model_in_one_click(page_as):
    at = _open(page_as)
    with session_scope() as s:
        before = {c.name for c in checks.list_checks(session=s, project_key="CHURN")}
    model = at.selectbox(key="template_model").options[0]
    at.button(key="apply_template").click().run()
    assert not at.exception
    with session_scope() as s:
        after = {c.name for c in checks.list_checks(session=s, project_key="CHURN")}
    assert not {"data drift", "missing values"} & before and {"data drift", "missing values"} <= after
    table = at.dataframe[0].value
    assert "data drift" in set(table["Check"]) and model in set(table["Model"])


def test_a_bad_threshold_is_refused_with_its_reason(page_as):
    at = _open(page_as)
    at.text_input(key="check_name").input("too many rows")
    at.selectbox(key="check_kind").select("volume")
    at.text_input(key="check_threshold").input("lots")
    at.button(key="define_check").click().run()
    assert "threshold 'lots' is not a number" in texts(at)
    with session_scope() as s:
        assert "too many rows" not in {c.name for c in checks.list_checks(session=s, project_key="CHURN")}
