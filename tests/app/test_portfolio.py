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
    assert fraud["Stage"] == "Production"
    assert fraud["Active in production"] == "fraud-detector v2"
    assert "no data" in fraud["Health"]
    assert set(table["Risk"]) == {"low", "medium", "high"}


def test_filters_narrow_the_portfolio_to_one_initiative_and_risk(page_as):
    at = page_as("pages/portfolio.py", username="bianca")
    at.selectbox(key="f_init").select("Payments integrity").run()
    assert set(at.dataframe[0].value["Project"]) == {"FRAUD", "AML"}
    assert "2 of 6 projects" in texts(at)
    at.selectbox(key="f_risk").select("low").run()
    assert not at.dataframe
    assert "No project matches these filters." in texts(at)
    at.selectbox(key="f_init").select("All").run()
    assert set(at.dataframe[0].value["Project"]) == {"CASH", "DOCS"}
    at.selectbox(key="f_risk").select("All")
    at.selectbox(key="f_stage").select("Exploration").run()
    assert list(at.dataframe[0].value["Project"]) == ["DOCS"]
