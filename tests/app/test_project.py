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


def test_the_dashboard_says_when_the_audit_trail_was_last_verified_against_a_checkpoint(page_as, tmp_path):
    from sqlalchemy import text

    from core import audit, db
    from core.db import session_scope
    from tests.app.conftest import open_page

    def shown() -> str:
        at = open_page(None, username="bianca")
        at.query_params["project"] = "FRAUD"
        at.switch_page("pages/project.py").run()
        assert not at.exception
        return texts(at)

    page_as(None, username="bianca")  # the private demo copy
    assert "The audit trail has not been verified against a checkpoint yet." in shown()
    rhea = audit.Actor(username="rhea", roles=("risk_manager",))
    cp = tmp_path / "cp.jsonl"
    with session_scope() as s:
        audit.write_checkpoint(session=s, actor=rhea, destination=str(cp))
    with session_scope() as s:
        audit.verify_against_checkpoints(session=s, actor=rhea, checkpoints=audit.read_checkpoints(cp))
    assert "Audit trail last verified against a checkpoint on" in shown()
    assert "by rhea: intact" in shown()

    with db.get_engine().begin() as conn:
        conn.execute(text("UPDATE auditevent SET actor = 'mallory' WHERE seq = 5"))
    with session_scope() as s:
        audit.verify_against_checkpoints(session=s, actor=rhea, checkpoints=audit.read_checkpoints(cp))
    assert "by rhea: **broken** (first wrong event: 5)" in shown()
