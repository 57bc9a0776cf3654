"""A team monitors the fraud model it already registers in MLflow: import by alias or version, trust, mirroring."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from sqlmodel import func, select

from core import artifacts, audit
from core.access import Actor
from core.db import session_scope
from core.entities import Model, ModelVersion, TrustedMlflowSource
from core.errors import Forbidden, InvalidInput, NotFound, Unavailable
from core.models import lineage, mappings, mlflow_import, mlflow_mirror, mlflow_sources, registry
from core.monitoring import evaluation_store, ingest
from tests.support import external_logs
from tests.support import mlflow_world as world

pytestmark = pytest.mark.xdist_group("mlflow")
MAYA = Actor(username="maya", roles=("ml_engineer",))


def _import(server_uri: str, model_uri: str, reference, **kwargs):  # noqa: ANN001, ANN202
    return mlflow_import.import_from_mlflow(actor=MAYA, project_key="FRAUD", model_uri=model_uri,
                                            tracking_uri=server_uri, reference=reference, **kwargs)


def _nothing_written() -> bool:
    from core.config import get_settings

    store = get_settings().artifacts_dir
    with session_scope() as s:
        rows = s.exec(select(func.count()).select_from(Model)).one() + \
            s.exec(select(func.count()).select_from(ModelVersion)).one()
    return rows == 0 and not (store.is_dir() and any(store.iterdir()))


def _audited(action: str) -> list:
    with session_scope() as s:
        return [e for e in audit.events(session=s) if e.action == action]


@pytest.mark.slow
def test_the_champion_is_imported_by_alias_with_its_signature_as_the_mapping(backend, mlflow_server, tmp_path):
    import mlflow.sklearn

    external_logs.create_project()
    world.trust(mlflow_server.uri)
    name = world.unique("card-fraud")
    run_id, number = world.log_and_register(mlflow_server.uri, name)

    done = _import(mlflow_server.uri, f"models:/{name}@champion", world.reference_csv(tmp_path))

    v = done.version
    assert (done.model, v.number, v.status, v.origin, done.flavor) == (name, 1, "active", "imported", "sklearn")
    assert done.source.version == number and done.source.run_id == run_id
    with session_scope() as s:
        mapping = mappings.current_mapping(session=s, model=name).mapping
        story = lineage.lineage(session=s, actor=MAYA, model=name, version=1)
        intact = lineage.verify_artifact(session=s, actor=MAYA, model=name, version=1)
    # The signature's inputs are the features, with kinds from their types; id and timestamp are never features.
    assert mapping.features == ({"name": "amount", "type": "numeric"}, {"name": "merchant", "type": "categorical"},
                                {"name": "card_age_days", "type": "numeric"}, {"name": "region_code", "type": "numeric"})
    assert (mapping.target, mapping.id_column, mapping.timestamp_column) == ("is_fraud", "id", "timestamp")
    # Lineage links back to the run and the model URI; the run's metrics are the training baseline.
    recipe = story.version.recipe
    assert (recipe["source"], recipe["run_id"], recipe["model_uri"], recipe["tracking_uri"]) == \
        ("mlflow", run_id, f"models:/{name}@champion", mlflow_server.uri)
    assert recipe["run_metrics"] == {"roc_auc": 0.912, "training_accuracy": 0.98}
    assert v.training_metrics["roc_auc"] == 0.912 and 0 < v.training_metrics["pr_auc"] <= 1  # the rest: the reference
    assert v.params == {"n_estimators": "30", "min_samples_leaf": "5"}
    # Watchtower scores with its own skops copy, which scores exactly as MLflow's load_model does.
    assert intact and v.artifact_path.endswith(".skops")
    ours = artifacts.load_estimator(path=v.artifact_path, sha256=v.artifact_sha256)
    theirs = mlflow.sklearn.load_model(f"models:/{name}/{number}")
    sample = world.data(200, seed=5)[world.FEATURES]
    np.testing.assert_allclose(ours.predict_proba(sample), theirs.predict_proba(sample))


@pytest.mark.slow
def test_a_numbered_version_joins_the_model_as_a_candidate(backend, mlflow_server, tmp_path):
    external_logs.create_project()
    world.trust(mlflow_server.uri)
    name = world.unique("card-fraud")
    world.log_and_register(mlflow_server.uri, name)
    _, second = world.log_and_register(mlflow_server.uri, name, alias=None, metrics={"roc_auc": 0.93})
    reference = world.reference_csv(tmp_path)
    _import(mlflow_server.uri, f"models:/{name}@champion", reference)

    done = _import(mlflow_server.uri, f"models:/{name}/{second}", reference)

    assert (done.version.number, done.version.status, done.created_model) == (2, "candidate", False)
    assert done.version.recipe["model_uri"] == f"models:/{name}/2" and done.version.training_metrics["roc_auc"] == 0.93
    with session_scope() as s:
        assert [x.status for x in registry.list_versions(session=s, model=name)] == ["active", "candidate"]


@pytest.mark.slow
def test_a_model_logged_without_signature_gets_its_mapping_from_the_reference_file(backend, mlflow_server, tmp_path):
    external_logs.create_project()
    world.trust(mlflow_server.uri)
    name = world.unique("legacy-fraud")
    world.log_and_register(mlflow_server.uri, name, signature=False, serialization="cloudpickle")

    done = _import(mlflow_server.uri, f"models:/{name}@champion", world.reference_csv(tmp_path))

    m = done.proposal.mapping
    assert m.feature_names == world.FEATURES and (m.id_column, m.timestamp_column, m.target) == \
        ("id", "timestamp", "is_fraud")
    assert {f["name"]: f["type"] for f in m.features}["merchant"] == "categorical"  # inferred from the file's text
    assert "id column 'id': unique per row" in done.proposal.inferred
    assert any("region_code" in w and "categorical" in w for w in done.proposal.warnings)
    assert done.version.artifact_path.endswith(".skops")  # the pickle was read once, from a trusted server


@pytest.mark.slow
def test_a_model_only_pyfunc_can_load_is_monitored_from_its_logged_predictions(backend, mlflow_server, tmp_path):
    external_logs.create_project()
    world.trust(mlflow_server.uri)
    name = world.unique("pyfunc-fraud")
    run_id, _ = world.log_pyfunc_and_register(mlflow_server.uri, name)
    reference = world.reference_csv(tmp_path)

    with pytest.raises(InvalidInput, match="--task binary"):  # a pyfunc model does not say what it predicts
        _import(mlflow_server.uri, f"models:/{name}@champion", reference)
    assert _nothing_written()
    done = _import(mlflow_server.uri, f"models:/{name}@champion", reference, task="binary")

    v = done.version
    assert (done.flavor, v.number, v.status) == ("python_function", 1, "active")
    assert v.artifact_path is None  # nothing Watchtower would unpickle later: it watches the logged predictions
    assert done.proposal.mapping.feature_names == world.FEATURES
    assert (v.recipe["run_id"], v.recipe["model_uri"], v.recipe["flavor"]) == \
        (run_id, f"models:/{name}@champion", "python_function")
    assert v.training_metrics["roc_auc"] == 0.9 and 0 < v.training_metrics["pr_auc"] <= 1  # scored by the model


@pytest.mark.slow
def test_an_untrusted_tracking_server_is_refused_before_anything_is_loaded(backend, mlflow_server, tmp_path):
    external_logs.create_project()
    name = world.unique("card-fraud")
    world.log_and_register(mlflow_server.uri, name)

    with pytest.raises(Forbidden, match=f"{mlflow_server.uri} is not a trusted MLflow source"):
        _import(mlflow_server.uri, f"models:/{name}@champion", world.reference_csv(tmp_path))

    assert _nothing_written()
    refused = _audited("mlflow.refused")
    assert len(refused) == 1 and refused[0].actor == "maya" and refused[0].entity_id == mlflow_server.uri
    assert refused[0].details["model_uri"] == f"models:/{name}@champion"


def test_a_tracking_server_that_is_down_is_named_and_nothing_is_written(backend, tmp_path):
    external_logs.create_project()
    down = world.dead_uri()
    world.trust(down)

    with pytest.raises(Unavailable, match=f"the MLflow tracking server at {down} is not reachable"):
        _import(down, "models:/card-fraud@champion", world.reference_csv(tmp_path))
    assert _nothing_written()


@pytest.mark.slow
def test_an_unknown_model_or_alias_is_named(backend, mlflow_server, tmp_path):
    external_logs.create_project()
    world.trust(mlflow_server.uri)
    name = world.unique("card-fraud")
    world.log_and_register(mlflow_server.uri, name)
    reference = world.reference_csv(tmp_path)

    with pytest.raises(NotFound, match=f"alias @challenger of model '{name}' does not exist"):
        _import(mlflow_server.uri, f"models:/{name}@challenger", reference)
    with pytest.raises(NotFound, match="models:/no-such-model/1 does not exist"):
        _import(mlflow_server.uri, "models:/no-such-model/1", reference)
    with pytest.raises(InvalidInput, match="use models:/NAME@ALIAS or models:/NAME/VERSION"):
        _import(mlflow_server.uri, f"runs:/{name}/model", reference)
    with pytest.raises(InvalidInput, match="needs reference data: a CSV .* the model's input columns and the target"):
        _import(mlflow_server.uri, f"models:/{name}@champion", None)
    assert _nothing_written()


def test_only_an_administrator_trusts_a_tracking_server(backend):
    with session_scope() as s, pytest.raises(Forbidden, match="maya may not settings manage"):
        mlflow_sources.trust_source(session=s, actor=MAYA, tracking_uri="http://mlflow.internal:5000")
    with session_scope() as s:
        assert s.exec(select(func.count()).select_from(TrustedMlflowSource)).one() == 0
        added = mlflow_sources.trust_source(session=s, actor=world.ADMIN, tracking_uri="HTTP://MLflow.internal:5000/")
    assert added.tracking_uri == "http://mlflow.internal:5000"
    assert [e.details["tracking_uri"] for e in _audited("mlflow.trust")] == ["http://mlflow.internal:5000"]
    with session_scope() as s:
        assert mlflow_sources.distrust_source(session=s, actor=world.ADMIN, tracking_uri="http://mlflow.internal:5000")
        assert mlflow_sources.list_sources(session=s, actor=MAYA) == []


def _log_two_weeks(model: str) -> None:
    later = world.data(1400, seed=7).assign(
        timestamp=[(external_logs.START + timedelta(minutes=14 * i)).isoformat() for i in range(1400)])
    later["score"] = world.fitted(world.data(seed=11)).predict_proba(later[world.FEATURES])[:, 1]  # as served
    with session_scope() as s:
        ingest.ingest_predictions(session=s, actor=MAYA, model=model, source=later.drop(columns=[world.TARGET]),
                                  id_col="id", ts_col="timestamp", score_col="score")
        ingest.ingest_ground_truth(session=s, actor=MAYA, model=model, source=later[["id", world.TARGET]],
                                   id_col="id", label_col=world.TARGET)


@pytest.mark.slow
def test_window_evaluations_are_mirrored_to_the_run_with_their_end_as_step(backend, mlflow_server, tmp_path):
    from mlflow import MlflowClient

    external_logs.create_project()
    world.trust(mlflow_server.uri)
    name = world.unique("card-fraud")
    run_id, _ = world.log_and_register(mlflow_server.uri, name)
    _import(mlflow_server.uri, f"models:/{name}@champion", world.reference_csv(tmp_path), mirror_metrics=True)
    _log_two_weeks(name)

    windows = evaluation_store.evaluate(actor=MAYA, model=name, every="7D")

    assert len(windows) >= 2
    history = MlflowClient(tracking_uri=mlflow_server.uri).get_metric_history(run_id, "watchtower/roc_auc")
    got = sorted((m.step, round(m.value, 9)) for m in history)
    assert got == sorted((mlflow_world_step(w), round(w.metrics["roc_auc"], 9)) for w in windows)
    rows = MlflowClient(tracking_uri=mlflow_server.uri).get_metric_history(run_id, "watchtower/rows")
    assert sorted(int(m.value) for m in rows) == sorted(w.rows for w in windows)

    # A source no longer trusted: the evaluation still succeeds, the mirroring is skipped and audited.
    with session_scope() as s:
        mlflow_sources.distrust_source(session=s, actor=world.ADMIN, tracking_uri=mlflow_server.uri)
    again = evaluation_store.evaluate(actor=MAYA, model=name, every="7D", overwrite=True)
    assert len(again) == len(windows)
    failed = _audited("mlflow.mirror_failed")
    assert len(failed) == 1 and "no longer a trusted MLflow source" in failed[0].details["reason"]


def mlflow_world_step(window: evaluation_store.EvaluationRead) -> int:
    """The step a window is mirrored at: its end as epoch milliseconds (UTC)."""
    end = pd.Timestamp(window.window_end, tz="UTC")
    return int(end.value // 1_000_000)


def test_a_tracking_server_that_is_down_never_fails_the_evaluation(backend):
    class Window:
        window_end = external_logs.START
        metrics, estimated_metrics, business_metrics = {"roc_auc": 0.9}, {}, {}
        drift_share, rows, labelled_rows = 0.0, 10, 5

    down = world.dead_uri()
    external_logs.create_project()
    world.trust(down)
    # A version imported with --mirror-metrics from a server that is down now: logged, audited, nothing raised.
    with session_scope() as s:
        registry.create_model(session=s, actor=world.ADMIN, project_key="FRAUD", name="m", task="binary", target="y",
                              features=[{"name": "x", "type": "numeric"}])
        info = registry.add_version(session=s, actor=world.ADMIN, model="m", reference=pd.DataFrame({"x": [1.0, 2.0],
                                                                                                 "y": [0, 1]}),
                                    recipe={"source": "mlflow", "tracking_uri": down, "run_id": "abc",
                                            "mirror_metrics": True})
    assert mlflow_mirror.evaluations_stored(actor="maya", version_id=info.id, evaluations=[Window()]) == 0
    failed = _audited("mlflow.mirror_failed")
    assert len(failed) == 1 and down in failed[0].details["reason"]
