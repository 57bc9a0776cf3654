"""The Project dashboard of the fraud story, as the business stakeholder who followed an alert sees it."""

from __future__ import annotations

from tests.app.conftest import texts


def test_fraud_dashboard_shows_context_contacts_models_and_audit_trail(page_as):
    at = page_as(None, username="bianca")
    at.query_params["project"] = "FRAUD"
    at.switch_page("pages/project.py").run()
    assert not at.exception
    assert at.title[0].value == "Credit card fraud (FRAUD)"
    shown = texts(at)
    assert "Sponsor:** Elena Fischer, VP Card Payments" in shown
    assert "Business initiative:** Payments integrity" in shown
    assert "Risk level:** high" in shown
    assert "[Bianca Rossi](mailto:bianca@example.com)" in shown
    assert "[Omar Haddad](mailto:omar@example.com)" in shown
    assert "**fraud-detector**" in shown and "v2 in production" in shown
    versions = at.dataframe[0].value
    v2 = versions[versions["Version"] == "v2"].iloc[0]
    assert (v2["Status"], v2["Running in"]) == ("active", "production")
    assert versions[versions["Version"] == "v1"].iloc[0]["Status"] == "archived"
    assert v2["roc_auc"] > versions[versions["Version"] == "v1"].iloc[0]["roc_auc"]
    trail = at.dataframe[-1].value
    assert len(trail) > 0 and set(trail["Action"]) <= set(at.multiselect(key="trail_actions").options)
    at.multiselect(key="trail_actions").select("project.create").select("deployment.create").run()
    trail = at.dataframe[-1].value
    assert list(trail["Action"]) == ["deployment.create", "deployment.create", "project.create"]
    assert list(trail["Who"]) == ["omar", "omar", "rhea"]
    assert list(trail["Entity"]) == ["deployment fraud-detector:v2@production",
                                     "deployment fraud-detector:v1@production", "project FRAUD"]


def test_switching_project_shows_the_other_dashboard(page_as):
    at = page_as("pages/project.py", username="rhea")
    at.selectbox(key="project_key").select("DOCS").run()
    assert at.title[0].value == "Document routing (DOCS)"
    assert "No models registered yet." in texts(at)
    assert at.query_params["project"] == "DOCS"
