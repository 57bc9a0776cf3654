"""The Portfolio page, as the risk manager and the business stakeholder see it."""

from __future__ import annotations

from tests.app.conftest import texts


def test_risk_manager_sees_every_project_with_initiative_risk_stage_and_what_runs_where(page_as):
    at = page_as("pages/portfolio.py", username="rhea")
    assert not at.exception
    assert at.title[0].value == "Portfolio"
    table = at.dataframe[0].value
    assert {"FRAUD", "CHURN", "CASH", "CREDIT", "AML", "DOCS"} <= set(table["Project"])
    fraud = table[table["Project"] == "FRAUD"].iloc[0]
    assert fraud["Initiative"] == "Payments integrity"
    assert fraud["Risk"] == "high"
    assert fraud["Stage"] in {"Production", "Review"}  # Review once v3 asks for production
    assert fraud["Active in production"] == "fraud-detector v2"
    assert fraud["Health"].split()[-1] in {"error", "warning", "pass", "data"}
    docs = table[table["Project"] == "DOCS"].iloc[0]
    assert docs["Health"] == "⚪ no data" and docs["Active in production"] == "—"
    assert set(table["Risk"]) == {"low", "medium", "high"}


def test_filters_narrow_the_portfolio_to_one_initiative_and_risk(page_as):
    at = page_as("pages/portfolio.py", username="bianca")
    everything = at.dataframe[0].value
    payments = set(everything[everything["Initiative"] == "Payments integrity"]["Project"])
    assert {"FRAUD", "AML"} <= payments
    at.selectbox(key="f_init").select("Payments integrity").run()
    assert set(at.dataframe[0].value["Project"]) == payments
    assert f"{len(payments)} of {len(everything)} projects" in texts(at)
    at.selectbox(key="f_risk").select("low").run()
    assert not at.dataframe
    assert "No project matches these filters." in texts(at)
    at.selectbox(key="f_init").select("All").run()
    assert {"CASH", "DOCS"} <= set(at.dataframe[0].value["Project"])
    assert set(at.dataframe[0].value["Risk"]) == {"low"}
    at.selectbox(key="f_risk").select("All")
    at.selectbox(key="f_stage").select("Exploration").run()
    assert "DOCS" in set(at.dataframe[0].value["Project"])
    assert set(at.dataframe[0].value["Stage"]) == {"Exploration"}
