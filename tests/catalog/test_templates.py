"""New projects from templates: blueprint, model, checks and daily scenario in one transaction; saved templates."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sqlmodel import func, select

from core import audit, catalog
from core.automation import scenarios
from core.catalog import datasets, templates
from core.db import session_scope
from core.demo import story
from core.demo.foundation import ensure_environments, ensure_people
from core.entities import AuditEvent, Check, Model, ModelVersion, Project, Scenario
from core.errors import Conflict, Forbidden, InvalidInput
from core.identity import users
from core.monitoring import checks
from core.projects import blueprints

BINARY = "Binary classifier with ground-truth monitoring"


def _actor(username: str):  # noqa: ANN202
    with session_scope() as s:
        return users.get_user(session=s, username=username).actor


def _world(tmp_path: Path, *, drop: list[str] = ()) -> None:
    """Personas, the standard blueprints and environments, and a dataset of card payments."""
    with session_scope() as s:
        ensure_people(s)
        blueprints.ensure_standard_blueprints(session=s)
        ensure_environments(s)
    frame = story.transactions(start=story.STORY_START, days=10, per_day=150, seed=3).drop(columns=list(drop))
    frame.to_csv(tmp_path / "payments.csv", index=False)
    with session_scope() as s:
        datasets.register_dataset(session=s, actor=_actor("dario"), name="card-payments",
                                  csv_path=tmp_path / "payments.csv", description="Card payments with fraud labels",
                                  tags=["fraud"])


def _counts() -> dict[str, int]:
    with session_scope() as s:
        return {t.__name__: s.exec(select(func.count()).select_from(t)).one()
                for t in (Project, Model, ModelVersion, Check, Scenario, AuditEvent)}


def test_a_project_from_the_template_has_its_blueprint_model_checks_and_daily_scenario(backend, tmp_path):
    _world(tmp_path)
    created = templates.create_project_from_template(
        actor=_actor("maya"), template=BINARY, key="online", name="Online payments fraud", dataset="card-payments",
        target="is_fraud", risk_level="medium", sponsor="Elena Fischer", initiative="Payments integrity")

    project = created.project
    assert (project.key, project.sponsor, project.initiative, project.owner) == (
        "ONLINE", "Elena Fischer", "Payments integrity", "maya")
    with session_scope() as s:
        medium = blueprints.blueprint_for_risk(session=s, risk_level="medium")
        model = s.exec(select(Model).where(Model.name == "online-model")).one()
        version = s.exec(select(ModelVersion).where(ModelVersion.model_id == model.id)).one()
        defined = checks.list_checks(session=s, project_key="ONLINE")
        scenario = scenarios.get_scenario(session=s, project_key="ONLINE", name="Daily monitoring")
        dataset = catalog.get_component(session=s, kind="dataset", name="card-payments")
        event = audit.events(session=s, project_id=project.id, limit=1)[0]
    assert project.blueprint == medium.name and project.stage == medium.stages[0].name
    # ids and timestamps are not features; the model was trained and is the active version
    assert [f["name"] for f in model.features] == [
        "amount", "merchant_category", "hour", "card_age_days", "distance_from_home_km", "foreign", "tx_last_24h",
        "channel", "customer_age", "amount_vs_avg"]
    assert (version.number, version.status, version.origin) == (1, "active", "manual")
    assert version.artifact_sha256 and version.training_metrics["roc_auc"] > 0.5
    assert {"auc", "recall", "data drift", "missing values"} <= {c.name for c in defined}
    assert sorted(created.checks) == sorted(c.name for c in defined)
    assert [st["kind"] for st in scenario.steps] == ["ingest", "evaluate", "checks", "retrain", "review"]
    assert [st["when"] for st in scenario.steps][-2:] == ["checks_failed", "checks_failed"]
    assert scenario.steps[0]["params"] == {"id_col": "transaction_id", "ts_col": "ts"}  # files look like the dataset
    assert (scenario.trigger_kind, scenario.trigger_value) == ("cron", "0 6 * * *")
    assert [(u.project_key, u.how) for u in dataset.used_by] == [("ONLINE", "data source of online-model (v1)")]
    assert (event.action, event.details["template"]) == ("project.from_template", BINARY)
    links = {(link.label, link.automated) for link in created.process_map.links}
    assert {("scheduled evaluation and checks", True), ("on a failed check", True), ("new candidate version", True),
            ("sign-off: data scientist, business; final approval: risk manager", False)} <= links


def test_a_template_naming_a_missing_column_is_refused_with_the_column_named_and_nothing_is_created(
        backend, tmp_path):
    _world(tmp_path)
    templates.create_project_from_template(actor=_actor("maya"), template=BINARY, key="ONLINE", name="Online",
                                           dataset="card-payments", target="is_fraud")
    with session_scope() as s:
        saved = templates.save_as_template(session=s, actor=_actor("rhea"), project_key="ONLINE",
                                           name="Card fraud monitoring")
    assert ("card_age_days", "a feature of the model") in saved.required_columns

    thin = story.transactions(start=story.STORY_START, days=5, per_day=100, seed=4).drop(columns=["card_age_days"])
    thin.to_csv(tmp_path / "thin.csv", index=False)
    with session_scope() as s:
        datasets.register_dataset(session=s, actor=_actor("dario"), name="branch-payments", csv_path=tmp_path / "thin.csv")
    before = _counts()
    with pytest.raises(InvalidInput, match="template 'Card fraud monitoring' names column 'card_age_days' "
                                           r"\(a feature of the model\), which dataset branch-payments v1 does not have"):
        templates.create_project_from_template(actor=_actor("maya"), template="card fraud monitoring", key="BRANCH",
                                               name="Branch fraud", dataset="branch-payments", target="is_fraud")
    with pytest.raises(InvalidInput, match="target column 'fraud' is not in dataset card-payments v1"):
        templates.create_project_from_template(actor=_actor("maya"), template=BINARY, key="BRANCH",
                                               name="Branch fraud", dataset="card-payments", target="fraud")
    assert _counts() == before


def test_a_failure_late_in_the_setup_leaves_nothing_half_created(backend, tmp_path):
    _world(tmp_path)
    with session_scope() as s:  # the catalog already holds a model entry under the name the new model would take
        templates.create_project_from_template(actor=_actor("maya"), template=BINARY, key="ONLINE", name="Online",
                                               dataset="card-payments", target="is_fraud")
        catalog.register_component(session=s, actor=_actor("maya"), kind="model", name="branch-model",
                                   ref="online-model")
    before = _counts()
    with pytest.raises(Conflict, match="a model named 'branch-model' is already in the catalog"):
        templates.create_project_from_template(actor=_actor("maya"), template=BINARY, key="BRANCH",
                                               name="Branch fraud", dataset="card-payments", target="is_fraud")
    assert _counts() == before
    with session_scope() as s:
        assert s.exec(select(Project).where(Project.key == "BRANCH")).first() is None


def test_a_flagged_dataset_version_or_a_person_without_the_rights_is_refused(backend, tmp_path):
    _world(tmp_path, drop=["foreign"])
    before = _counts()
    with pytest.raises(Forbidden, match="rhea may not template use"):
        templates.create_project_from_template(actor=_actor("rhea"), template=BINARY, key="ONLINE", name="Online",
                                               dataset="card-payments", target="is_fraud")
    changed = story.transactions(start=story.STORY_START, days=10, per_day=150, seed=5)
    changed.to_csv(tmp_path / "v2.csv", index=False)
    with session_scope() as s:
        v2 = datasets.register_dataset(session=s, actor=_actor("dario"), name="card-payments", csv_path=tmp_path / "v2.csv")
    assert v2.flagged
    with pytest.raises(Conflict, match=r"card-payments v2 changed schema \(added foreign\) and is not accepted yet"):
        templates.create_project_from_template(actor=_actor("maya"), template=BINARY, key="ONLINE", name="Online",
                                               dataset="card-payments", target="is_fraud")
    assert {k: v for k, v in _counts().items() if k != "AuditEvent"} == {
        k: v for k, v in before.items() if k != "AuditEvent"}


def test_a_project_saved_as_a_template_starts_the_next_project_with_its_metrics_checks_and_scenario(backend, tmp_path):
    _world(tmp_path)
    maya = _actor("maya")
    templates.create_project_from_template(actor=maya, template=BINARY, key="ONLINE", name="Online", dataset="card-payments",
                                           target="is_fraud", risk_level="medium")
    with session_scope() as s:
        checks.define_check(session=s, actor=maya, project_key="ONLINE", name="card age drift", kind="field_drift",
                            model="online-model", field="card_age_days", threshold=0.1, severity="warning",
                            audience_roles=["ml_engineer"])
        saved = templates.save_as_template(session=s, actor=_actor("rhea"), project_key="ONLINE",
                                           name="Card fraud monitoring", description="Fraud on card payments")
    with session_scope() as s, pytest.raises(Conflict, match="a project template named 'card fraud monitoring'"):
        templates.save_as_template(session=s, actor=maya, project_key="ONLINE", name="card fraud monitoring")
    assert (saved.source_project, saved.spec["model"]["algorithm"]) == ("ONLINE", "logistic_regression")
    assert ("card_age_days", "check card age drift") in saved.required_columns

    created = templates.create_project_from_template(actor=maya, template="Card fraud monitoring", key="ATM",
                                                     name="ATM fraud", dataset="card-payments", target="is_fraud",
                                                     risk_level="high")
    with session_scope() as s:
        high = blueprints.blueprint_for_risk(session=s, risk_level="high")
        model = s.exec(select(Model).where(Model.name == "atm-model")).one()
        listed = [t.name for t in templates.list_templates(session=s)]
    assert created.project.blueprint == high.name
    assert "card age drift" in created.checks and "auc" in created.checks
    assert [b["name"] for b in model.business_metrics] == ["net_value"]
    assert created.scenario == "Daily monitoring"
    assert listed == [BINARY, "Card fraud monitoring"]


def _drop_scored_traffic(model: str, frame) -> None:  # noqa: ANN001
    """Score the traffic with the model's active version and drop it, with its labels, where the scenario reads."""
    from core import artifacts
    from core.automation.steps import drop_folder
    from core.models import registry

    with session_scope() as s:
        version = registry.get_version(session=s, model=model)
        features = [f["name"] for f in registry.get_model(session=s, name=model).features]
    estimator = artifacts.load_estimator(path=version.artifact_path, sha256=version.artifact_sha256)
    folder = drop_folder(model)
    folder.mkdir(parents=True, exist_ok=True)
    frame.assign(score=estimator.predict_proba(frame[features])[:, 1]).to_csv(folder / "week.csv", index=False)


def test_the_first_scenario_run_of_a_project_from_the_template_works_end_to_end(backend, tmp_path):
    from core import governance
    from core.automation import runner
    from core.models import registry

    _world(tmp_path)
    created = templates.create_project_from_template(
        actor=_actor("maya"), template=BINARY, key="ONLINE", name="Online payments fraud", dataset="card-payments",
        target="is_fraud", risk_level="medium")
    # A week of traffic from the wave of new customers, scored by v1, with its ground truth
    _drop_scored_traffic("online-model", story.transactions(start=story.WAVE_START + pd.Timedelta(days=21), days=7,
                                                            per_day=300, seed=9))
    with session_scope() as s:
        run = scenarios.request_run(session=s, actor=_actor("maya"), scenario_id=created.scenario_id)
    assert runner.execute_run(run_id=run.id, worker_id="test-worker") == "succeeded"

    with session_scope() as s:
        done = scenarios.get_run(session=s, run_id=run.id)
        versions = registry.list_versions(session=s, model="online-model")
        review = governance.find_review(session=s, model="online-model", version=2)
        failed = checks.get_result(session=s, result_id=versions[-1].triggered_by_check_result_id)
    steps = {st.kind: st for st in done.steps}
    assert [st.status for st in done.steps] == ["succeeded"] * 5, [(st.kind, st.error) for st in done.steps]
    assert "1 file(s): 2,100 predictions, 2,100 labels" in steps["ingest"].log
    assert "7 new or changed window(s) evaluated" in steps["evaluate"].log
    assert "failed" in steps["checks"].log and failed.status in ("warning", "error")
    assert (versions[-1].number, versions[-1].origin, versions[-1].status) == (2, "scheduled_retrain", "candidate")
    assert (review.state, review.required_roles) == ("WAITING_FOR_FEEDBACK", ("data_scientist", "business"))
    assert f"review #{review.id} of online-model v2 requested" in steps["review"].log
