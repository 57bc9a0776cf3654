"""The Catalog and New project pages, as the demo personas use them."""

from __future__ import annotations

import pytest

from core.alerting import alerts
from core.db import session_scope
from core.projects import projects
from tests.app.conftest import texts


def _table(at, index: int = 0):  # noqa: ANN001, ANN202
    return at.dataframe[index].value


def test_a_data_scientist_starting_on_review_text_finds_the_finance_recipe_and_who_to_ask(page_as):
    at = page_as("pages/catalog.py", username="maya")
    assert not at.exception
    assert at.title[0].value == "Catalog"
    at.text_input(key="q").input("customer review text").run()
    hits = _table(at)
    assert list(hits["Name"]) == ["Customer text classifier"]
    row = hits.iloc[0]
    assert (row["Kind"], row["Owner"], row["Used by"]) == ("Training recipe", "Dario Conti", "DOCS")
    shown = texts(at)
    assert "Owner to contact: [Dario Conti](mailto:dario@example.com)" in shown
    assert "built in project **DOCS**" in shown
    assert "TF-IDF words and word pairs" in shown


def test_filters_by_kind_tag_and_owner_and_trust_from_production_use(page_as):
    at = page_as("pages/catalog.py", username="bianca")
    at.selectbox(key="f_kind").select("business_metric")
    at.selectbox(key="f_tag").select("finance").run()
    hits = _table(at)
    assert set(hits["Name"]) == {"Fraud missed amount", "Net value of decisions"}
    assert set(hits["Trust"]) == {"✅ trusted"} and set(hits["Why"]) == {"in use by production project FRAUD"}
    at.selectbox(key="f_kind").select("All")
    at.selectbox(key="f_tag").select("All")
    at.selectbox(key="f_owner").select("rhea").run()
    assert list(_table(at)["Name"]) == ["High-risk release gate"]
    at.selectbox(key="f_owner").select("All")
    at.selectbox(key="f_project").select("AML").run()
    recipe = _table(at).iloc[0]
    assert (recipe["Name"], recipe["Trust"]) == ("Card fraud gradient boosting", "✅ trusted")
    assert recipe["Why"].startswith("used by production model fraud-detector v2")
    # a business stakeholder reads and tags, but registers no datasets
    assert at.text_area(key="reg_spec") is not None
    assert not [w for w in at.text_input if w.key == "ds_name"]


def test_a_dataset_shows_its_schema_profile_and_freshness(page_as):
    at = page_as(None, username="omar")
    at.query_params.update({"kind": "dataset", "name": "churn-history"})
    at.switch_page("pages/catalog.py").run()
    assert not at.exception
    shown = texts(at)
    assert "**Version 1** · 3,000 rows · 6 columns" in shown
    profile = at.dataframe[-1].value
    assert list(profile["Column"]) == ["tenure_months", "monthly_fees", "support_calls_90d", "products_held",
                                       "contract", "churned"]
    contract = profile[profile["Column"] == "contract"].iloc[0]
    assert (contract["Type"], contract["Missing"]) == ("categorical", "0.0%")
    assert contract["Distribution"].startswith("3 distinct: basic")
    assert not [w for w in at.text_input if w.key == "reg_name"]  # IT & operations registers nothing


def test_registering_a_component_and_a_duplicate_name_refused(page_as):
    at = page_as("pages/catalog.py", username="dario")
    at.selectbox(key="reg_kind").select("business_metric")
    at.text_input(key="reg_name").input("Churned customer value")
    at.text_area(key="reg_description").input("Yearly fees of the customers who left")
    at.text_input(key="reg_tags").input("churn, Finance")
    at.text_area(key="reg_spec").input('{"kind": "amount_sum", "column": "monthly_fees", "label": 1}')
    at.button(key="reg_submit").click().run()
    assert not at.exception
    assert "Business metric Churned customer value registered." in texts(at)
    at.text_input(key="q").input("yearly fees").run()
    assert list(_table(at)["Name"]) == ["Churned customer value"]
    assert _table(at).iloc[0]["Tags"] == "churn, finance"

    at.selectbox(key="reg_kind").select("business_metric")
    at.text_input(key="reg_name").input("churned CUSTOMER value")
    at.text_area(key="reg_spec").input('{"kind": "amount_sum", "column": "monthly_fees"}')
    at.button(key="reg_submit").click().run()
    assert "a business metric named 'Churned customer value' is already in the catalog (owner dario)" in texts(at)


def test_changing_a_recipe_other_projects_use_warns_and_alerts_their_owners(page_as):
    at = page_as(None, username="maya")
    at.query_params.update({"kind": "recipe", "name": "Card fraud gradient boosting"})
    at.switch_page("pages/catalog.py").run()
    at.text_area(key="change_description").input("Gradient boosting on card features, now with monotone amounts")
    at.button(key="change_submit").click().run()
    assert not at.exception
    assert ("Saved. Training recipe Card fraud gradient boosting is used by other projects: AML (owner dario, "
            "starting point for the laundering model); their owners were alerted.") in texts(at)
    with session_scope() as s:
        inbox = alerts.inbox(session=s, username="dario")
    assert inbox[0].title == "Training recipe Card fraud gradient boosting changed (description)"


def test_registering_a_dataset_from_a_query_on_the_watchtower_database(page_as):
    at = page_as("pages/catalog.py", username="dario")
    at.text_input(key="ds_name").input("project-register")
    at.text_area(key="ds_query").input("select key, risk_level, stage from project order by key")
    at.button(key="ds_submit").click().run()
    assert not at.exception
    assert "Dataset project-register v1 registered: 7 rows, 3 columns." in texts(at)


def test_a_project_from_the_template_through_the_form(page_as):
    at = page_as("pages/new_project.py", username="maya")
    assert not at.exception
    at.selectbox(key="np_dataset").select("card-transactions").run()
    assert at.selectbox(key="np_target").value == "is_fraud"
    assert "The model will learn from 10 features: amount, merchant_category" in texts(at)
    at.text_input(key="np_name").input("Card-not-present fraud")
    at.text_input(key="np_key").input("CNP")
    at.text_input(key="np_sponsor").input("Elena Fischer")
    at.text_input(key="np_initiative").input("Payments integrity")
    at.selectbox(key="np_risk").select("high")
    at.button(key="np_create").click().run()
    assert not at.exception, at.exception
    shown = texts(at)
    assert "Project CNP created from template “Binary classifier with ground-truth monitoring”: blueprint High risk" \
        in shown
    assert "model cnp-model v1" in shown and "scenario “Daily monitoring”" in shown
    drawn = at.get("graphviz_chart")[0].proto.spec
    assert "on a failed check" in drawn and "final approval: risk manager" in drawn
    with session_scope() as s:
        project = projects.get_project(session=s, key="CNP")
    assert (project.blueprint, project.sponsor, project.initiative) == ("High risk", "Elena Fischer",
                                                                       "Payments integrity")


def test_a_saved_template_refuses_a_dataset_without_its_columns(page_as):
    at = page_as("pages/new_project.py", username="rhea")
    assert "a data scientist, an ML engineer or an administrator does it" in texts(at)
    at.selectbox(key="st_project").select("FRAUD")
    at.text_input(key="st_name").input("Card fraud monitoring")
    at.button(key="st_submit").click().run()
    assert "Template “Card fraud monitoring” saved from FRAUD" in texts(at)

    at = page_as("pages/new_project.py", username="dario")
    at.selectbox(key="np_template").select("Card fraud monitoring")
    at.selectbox(key="np_dataset").select("churn-history").run()
    assert ("template 'Card fraud monitoring' names column 'amount' (a feature of the model), which dataset "
            "churn-history v1 does not have") in texts(at)
    assert at.button(key="np_create").disabled


def test_business_stakeholders_do_not_start_projects(page_as):
    at = page_as(None, username="bianca")
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("pages/new_project.py")
