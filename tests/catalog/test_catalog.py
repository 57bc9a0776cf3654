"""The catalog: register, tag, search, dependency warnings and trust status of reusable components."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sqlmodel import select

from core import audit, catalog
from core.alerting import alerts
from core.db import session_scope
from core.entities import AuditEvent, Component, Deployment, Environment, ModelVersion, Review
from core.errors import Conflict, Forbidden, InvalidInput, NotFound
from core.identity import users
from core.models import registry
from core.projects import projects
from tests.support.people import ADMINISTRATOR

PEOPLE = (("bianca", "business"), ("dario", "data_scientist"), ("maya", "ml_engineer"), ("rhea", "risk_manager"),
          ("omar", "it_ops"), ("admin", "admin"))
TFIDF = {"name": "complaint-tfidf", "algorithm": "logistic_regression", "text_column": "complaint",
         "vectorizer": {"kind": "tfidf", "ngram_range": [1, 2]}, "params": {"C": 1.0}}


def _world(tmp_path: Path) -> dict[str, users.UserRead]:
    """Personas; FRAUD (maya) with a registered model; CHURN (bianca's, for marketing)."""
    reference = pd.DataFrame({"amount": [10.0, 250.0, 31.5, 980.0] * 3, "is_fraud": [0, 0, 0, 1] * 3})
    reference.to_csv(tmp_path / "ref.csv", index=False)
    with session_scope() as s:
        people = {u: users.create_user(session=s, actor=ADMINISTRATOR, username=u, name=u.title(), email=f"{u}@bank.example", roles=[r])
                  for u, r in PEOPLE}
        projects.create_project(session=s, actor=people["maya"].actor, key="FRAUD", name="Card fraud", owner="maya")
        projects.create_project(session=s, actor=people["dario"].actor, key="CHURN", name="Churn", owner="bianca")
        registry.register_model(session=s, actor=people["maya"].actor, project_key="FRAUD", name="fraud-detector",
                                task="binary", target="is_fraud", reference_csv=tmp_path / "ref.csv")
    return people


def _seed_components(people: dict[str, users.UserRead]) -> None:
    with session_scope() as s:
        catalog.register_component(
            session=s, actor=people["dario"].actor, kind="recipe", name="Complaint text classifier",
            description="TF-IDF and logistic regression over free-text customer complaints; built for finance "
                        "disputes, works on any short review text", tags=["nlp", "finance"], project_key="FRAUD",
            spec=TFIDF)
        catalog.register_component(
            session=s, actor=people["maya"].actor, kind="check_template", name="AI quality checks",
            description="AUC, recall and drift share with thresholds for binary classifiers",
            tags=["monitoring"], project_key="FRAUD", spec={"checks": ["roc_auc", "recall", "drift_share"]})
        catalog.register_component(
            session=s, actor=people["bianca"].actor, kind="business_metric", name="Fraud missed amount",
            description="Sum of amounts of frauds the model let through", tags=["fraud", "finance"],
            spec={"kind": "amount_sum", "column": "amount", "label": 1, "prediction": 0})
        catalog.register_component(session=s, actor=people["maya"].actor, kind="model", name="fraud-detector",
                                   description="Card fraud scores", tags=["fraud"])


def _names(result: catalog.SearchResult) -> list[str]:
    return [h.name for h in result.hits]


def test_search_finds_components_by_tag_description_word_and_owner(backend, tmp_path):
    people = _world(tmp_path)
    _seed_components(people)
    with session_scope() as s:
        # a marketing data scientist starting on customer-review text finds the finance recipe
        found = catalog.search(session=s, query="customer review text")
        assert _names(found) == ["Complaint text classifier"]
        hit = found.hits[0]
        assert (hit.owner, hit.owner_email, hit.project) == ("dario", "dario@bank.example", "FRAUD")
        assert [(u.project_key, u.how) for u in hit.used_by] == [("FRAUD", "built here")]

        assert _names(catalog.search(session=s, query="finance")) == ["Fraud missed amount",
                                                                       "Complaint text classifier"]
        assert _names(catalog.search(session=s, query="bianca")) == ["Fraud missed amount"]
        assert _names(catalog.search(session=s, query="DRIFT share")) == ["AI quality checks"]
        assert catalog.search(session=s, query="drift recall nlp").total == 0
        assert catalog.search(session=s, query="100%_").total == 0  # wildcards are taken literally
        # the name matches first, then the rest
        assert _names(catalog.search(session=s, query="fraud"))[:2] == ["fraud-detector", "Fraud missed amount"]


def test_filters_by_kind_tag_owner_and_project_narrow_the_search(backend, tmp_path):
    people = _world(tmp_path)
    _seed_components(people)
    with session_scope() as s:
        catalog.record_use(session=s, actor=people["dario"].actor, kind="recipe", name="Complaint text classifier",
                           project_key="CHURN", how="recipe of churn-reviews")
    with session_scope() as s:
        assert _names(catalog.search(session=s, tag="finance", kind="recipe")) == ["Complaint text classifier"]
        assert _names(catalog.search(session=s, tag="Finance", owner="bianca")) == ["Fraud missed amount"]
        assert _names(catalog.search(session=s, project="churn")) == ["Complaint text classifier"]
        assert set(_names(catalog.search(session=s, project="FRAUD"))) == {
            "Complaint text classifier", "AI quality checks", "fraud-detector"}
        assert catalog.search(session=s, query="fraud", owner="dario").total == 0
        facets = catalog.facets(session=s)
        assert facets.kinds["recipe"] == 1 and facets.kinds["dataset"] == 0
        assert facets.tags == ["finance", "fraud", "monitoring", "nlp"]
        assert facets.owners == ["bianca", "dario", "maya"] and facets.projects == ["CHURN", "FRAUD"]
        with pytest.raises(InvalidInput, match="kind 'widget' is not one of"):
            catalog.search(session=s, kind="widget")


def test_a_duplicate_name_within_a_kind_is_refused_and_nothing_is_written(backend, tmp_path):
    people = _world(tmp_path)
    _seed_components(people)
    with session_scope() as s:
        before = s.exec(select(AuditEvent.id)).all()
    with session_scope() as s, pytest.raises(Conflict, match="a training recipe named 'Complaint text classifier' "
                                                             r"is already in the catalog \(owner dario\)"):
        catalog.register_component(session=s, actor=people["maya"].actor, kind="recipe",
                                   name="complaint TEXT classifier", spec={"algorithm": "random_forest"})
    with session_scope() as s:
        assert s.exec(select(AuditEvent.id)).all() == before
        # the same name in another kind is another component
        catalog.register_component(session=s, actor=people["maya"].actor, kind="scenario_template",
                                   name="Complaint text classifier", spec={"steps": ["ingest", "evaluate"]})
        assert len(s.exec(select(Component).where(Component.name.ilike("complaint text%"))).all()) == 2


def test_changing_a_component_other_projects_use_warns_naming_who_depends_on_it(backend, tmp_path):
    people = _world(tmp_path)
    _seed_components(people)
    dario = people["dario"].actor
    with session_scope() as s:
        quiet = catalog.update_component(session=s, actor=dario, kind="recipe", name="Complaint text classifier",
                                         description="TF-IDF over complaint text")
    assert quiet.warning == "" and quiet.dependents == ()  # only its own project uses it

    with session_scope() as s:
        catalog.record_use(session=s, actor=dario, kind="recipe", name="Complaint text classifier",
                           project_key="CHURN", how="recipe of churn-reviews")
    with session_scope() as s:
        change = catalog.update_component(session=s, actor=dario, kind="recipe", name="Complaint text classifier",
                                          spec={**TFIDF, "params": {"C": 0.1}})
    assert change.warning == ("training recipe Complaint text classifier is used by other projects: "
                              "CHURN (owner bianca, recipe of churn-reviews)")
    assert [u.project_key for u in change.dependents] == ["CHURN"]
    assert change.component.revision == 3 and change.component.spec["params"] == {"C": 0.1}
    with session_scope() as s:
        event = audit.events(session=s, entity_type="recipe", limit=1)[0]
        inbox = alerts.inbox(session=s, username="bianca")
        assert alerts.inbox(session=s, username="maya") == []
    assert (event.action, event.actor, event.details["dependents"]) == ("component.change", "dario", ["CHURN"])
    assert "CHURN (owner bianca" in event.details["warning"]
    assert [(a.title, a.project_key) for a in inbox] == [
        ("Training recipe Complaint text classifier changed (definition)", "CHURN")]
    assert "dario changed training recipe Complaint text classifier" in inbox[0].message
    assert inbox[0].link == "/catalog?kind=recipe&name=Complaint%20text%20classifier"


def test_only_the_owner_or_an_administrator_changes_a_component_but_anyone_may_tag_it(backend, tmp_path):
    people = _world(tmp_path)
    _seed_components(people)
    with session_scope() as s, pytest.raises(Forbidden, match="only dario .* or an administrator may change"):
        catalog.update_component(session=s, actor=people["maya"].actor, kind="recipe",
                                 name="Complaint text classifier", description="mine now")
    with session_scope() as s:
        tagged = catalog.tag_component(session=s, actor=people["maya"].actor, kind="recipe",
                                       name="complaint text classifier", add=["Customer Reviews", "nlp"],
                                       remove=["finance"])
        assert tagged.tags == ("nlp", "customer-reviews")
        moved = catalog.update_component(session=s, actor=people["admin"].actor, kind="recipe",
                                         name="Complaint text classifier", owner="maya")
        assert moved.component.owner == "maya"
    with session_scope() as s:
        assert _names(catalog.search(session=s, tag="customer-reviews")) == ["Complaint text classifier"]
        assert catalog.search(session=s, tag="finance", kind="recipe").total == 0
        with pytest.raises(Forbidden, match="omar may not catalog register"):
            catalog.tag_component(session=s, actor=people["omar"].actor, kind="model", name="fraud-detector",
                                  add=["ops"])


def test_trust_comes_from_reviews_and_production_use(backend, tmp_path):
    people = _world(tmp_path)
    _seed_components(people)
    maya = people["maya"].actor
    with session_scope() as s:
        catalog.register_component(session=s, actor=maya, kind="model_version", name="fraud-detector v1",
                                   ref="fraud-detector:v1")
        catalog.record_use(session=s, actor=people["bianca"].actor, kind="business_metric",
                           name="Fraud missed amount", project_key="FRAUD", how="weekly KPI")
    with session_scope() as s:
        trust = {h.name: h.trust for h in catalog.search(session=s).hits}
    assert trust["fraud-detector v1"] == catalog.Trust("unverified", "not reviewed")
    assert trust["fraud-detector"] == catalog.Trust("unverified", "no version in production")
    assert trust["Complaint text classifier"].status == "unverified"

    with session_scope() as s:  # v1 trained with the recipe, approved, and running in production
        version = s.exec(select(ModelVersion)).one()
        version.recipe = dict(TFIDF)
        env = Environment(name="production", tier="higher", policy="block")
        s.add_all([version, env])
        s.flush()
        s.add(Deployment(environment_id=env.id, model_version_id=version.id, model_id=version.model_id,
                         deployed_by="omar"))
        s.add(Review(model_version_id=version.id, state="APPROVED", requested_by="maya", decided_by="rhea"))
    with session_scope() as s:
        trust = {h.name: h.trust for h in catalog.search(session=s).hits}
    assert trust["fraud-detector v1"] == catalog.Trust("trusted", "passed review (approved)")
    assert trust["fraud-detector"] == catalog.Trust("trusted", "v1 in production")
    assert trust["Complaint text classifier"] == catalog.Trust("trusted", "used by production model fraud-detector v1")
    assert trust["Fraud missed amount"] == catalog.Trust("trusted", "in use by production project FRAUD")


def test_what_a_component_points_at_must_exist(backend, tmp_path):
    people = _world(tmp_path)
    maya = people["maya"].actor
    with session_scope() as s:
        with pytest.raises(NotFound, match="no registered model named 'ghost'"):
            catalog.register_component(session=s, actor=maya, kind="model", name="ghost")
        with pytest.raises(InvalidInput, match="referenced as MODEL:vN"):
            catalog.register_component(session=s, actor=maya, kind="model_version", name="v1", ref="fraud-detector")
        with pytest.raises(NotFound, match="model fraud-detector has no version 7"):
            catalog.register_component(session=s, actor=maya, kind="model_version", name="v7", ref="fraud-detector:v7")
        with pytest.raises(InvalidInput, match="a training recipe needs its definition"):
            catalog.register_component(session=s, actor=maya, kind="recipe", name="empty")
        with pytest.raises(InvalidInput, match="owner 'nobody' is not a Watchtower user"):
            catalog.register_component(session=s, actor=maya, kind="model", name="fraud-detector", owner="nobody")
        with pytest.raises(NotFound, match="no registered dataset named 'reviews'"):
            catalog.register_component(session=s, actor=maya, kind="dataset", name="reviews")
        # a model's component belongs to the model's project
        entry = catalog.register_component(session=s, actor=maya, kind="model", name="fraud-detector")
        assert entry.project == "FRAUD" and entry.ref == "fraud-detector"


def test_the_command_line_registers_searches_and_refuses_a_duplicate_in_one_line(backend, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from core.cli import main

    _world(tmp_path)
    monkeypatch.setenv("WATCHTOWER_DEMO", "1")  # personas act without a password
    cli = CliRunner()
    spec = tmp_path / "recipe.json"
    spec.write_text('{"algorithm": "random_forest", "params": {"n_estimators": 200}}')
    done = cli.invoke(main, ["catalog", "register", "recipe", "Churn forest", "--spec-file", str(spec), "--tag", "churn",
                             "--description", "Random forest over tenure and fees", "--project", "CHURN",
                             "--as", "dario"])
    assert done.exit_code == 0, done.output
    assert "training recipe Churn forest registered (owner dario, trust unverified)" in done.output

    found = cli.invoke(main, ["catalog", "search", "tenure", "--format", "json", "--as", "maya"])
    assert found.exit_code == 0 and '"name": "Churn forest"' in found.output and '"used_by": [\n        "CHURN"' in found.output

    twice = cli.invoke(main, ["catalog", "register", "recipe", "churn FOREST", "--spec", "{}", "--as", "maya"])
    assert twice.exit_code == 1
    assert twice.output.strip() == "error: a training recipe named 'Churn forest' is already in the catalog (owner dario)"
    with session_scope() as s:
        assert catalog.search(session=s, kind="recipe").total == 1
