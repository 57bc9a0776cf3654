"""A Watchtower version from an MLflow registered model version (`models:/NAME@ALIAS` or `models:/NAME/VERSION`).

Order of work, so that a refusal costs nothing and a failure writes nothing:
1. the permission (model.register) and the trust list: an untrusted tracking URI is refused, audited, before
   anything is fetched; the reference file is read and the Watchtower model looked up;
2. outside any transaction: the server's health, the alias resolved, the run's metrics and parameters read,
   the model downloaded and loaded through MLflow (scikit-learn flavour where present, else pyfunc);
3. the column mapping: the signature's inputs are the features (with kinds from their types), else the
   estimator's `feature_names_in_`, else the reference file's columns as `propose` infers them; the
   signature's named output, when the reference holds it, is the score or prediction column; the model scores
   the reference rows for whatever the file lacks;
4. one short unit of work: the model (for a new one, with its first mapping, version 1 active) or a candidate
   version of an existing one, lineage in the version's recipe (tracking URI, model URI, run id, flavour,
   the run's metrics) and the run's parameters.

What Watchtower scores with later never unpickles anything from MLflow again: a scikit-learn model is saved
with skops into Watchtower's artifact store (its types trusted for that one artifact, since it came from a
trusted server) and its sha256 is checked before every load, like any other version's. A pyfunc-only model is
not an estimator Watchtower can run (the scoring API and the validation lab need scikit-learn's interface): it
is monitored from the predictions it logs, like an external model, with its model URI kept in the lineage.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from sqlmodel import select
from threadpoolctl import threadpool_limits

from core import artifacts
from core.access import Actor, require
from core.db import session_scope
from core.entities import Model
from core.errors import Conflict, InvalidInput
from core.models import mapping_records, metrics, mlflow_client, mlflow_sources, registry
from core.models.column_mapping import Declared, Proposal, metadata_like, propose
from core.models.mappings import current_mapping
from core.models.mlflow_client import NUMERIC_TYPES, Loaded, MlflowVersion
from core.projects.projects import project_row

_SCORE_NAMES = ("score", "probability", "proba", "predict_proba", "prediction_proba")
KNOWN_METRICS = (*metrics.BINARY_METRICS, *metrics.REGRESSION_METRICS)


@dataclass(frozen=True)
class MlflowImport:
    """What an import did: the version, where it came from, and the mapping it used."""

    model: str
    version: registry.VersionInfo
    created_model: bool
    source: MlflowVersion
    tracking_uri: str
    flavor: str
    proposal: Proposal
    run_metrics: dict[str, float]
    mirror_metrics: bool


def _needs_reference(ref: mlflow_client.ModelRef) -> InvalidInput:
    return InvalidInput(
        f"importing {ref.uri} needs reference data: a CSV (--reference FILE) with the model's input columns and "
        "the target (labels), e.g. a sample of its training or validation data. Watchtower measures drift "
        "against it and takes the training baseline from it; an MLflow model carries no labelled data")


def _task_of(loaded: Loaded, given: str | None) -> str:
    if given:
        return given
    if loaded.flavor != "sklearn":
        raise InvalidInput("say whether the model is a binary classifier or a regressor with --task binary|regression "
                           "(a pyfunc model does not tell)")
    from sklearn.base import is_classifier, is_regressor

    est = loaded.model
    if is_classifier(est) or hasattr(est, "predict_proba"):
        classes = list(getattr(est, "classes_", []))
        if len(classes) != 2:
            raise InvalidInput(f"the model is a classifier of {len(classes)} classes; Watchtower monitors binary "
                               "classifiers and regressors")
        return "binary"
    if is_regressor(est):
        return "regression"
    raise InvalidInput("the model is neither a classifier nor a regressor: give --task binary|regression")


def _from_model(loaded: Loaded) -> Declared:
    """The features the model itself declares: its signature's inputs, else the estimator's feature names."""
    if loaded.inputs:
        return Declared(features=tuple(n for n, _ in loaded.inputs),
                        kinds={n: "numeric" if t in NUMERIC_TYPES else "categorical" for n, t in loaded.inputs})
    names = getattr(loaded.model, "feature_names_in_", None)
    return Declared(features=tuple(map(str, names))) if names is not None else Declared()


def _outputs(loaded: Loaded, frame: pd.DataFrame, task: str, declared: Declared) -> Declared:
    """The signature's named output as the score or prediction column, when the reference file holds it."""
    if declared.score_column or declared.prediction_column:
        return declared
    for name in loaded.outputs:
        if name in frame.columns:
            as_score = task == "binary" and (name.lower() in _SCORE_NAMES or
                                             pd.api.types.is_float_dtype(frame[name]) and frame[name].between(0, 1).all())
            return replace(declared, **({"score_column": name} if as_score else {"prediction_column": name}))
    return declared


def _target(frame: pd.DataFrame, declared: Declared) -> str:
    if declared.target:
        return declared.target
    roles = {declared.id_column, declared.timestamp_column, declared.score_column, declared.prediction_column}
    left = [str(c) for c in frame.columns if c not in (declared.features or ()) and c not in roles]
    left = [c for c in left if c not in metadata_like(frame, left)] or left
    if declared.features is not None and len(left) == 1:
        return left[0]
    raise InvalidInput("name the target column with --target" + (
        f": the reference file has {len(left)} columns the model does not read ({', '.join(left[:8])})"
        if declared.features is not None else ""))


def _scored(loaded: Loaded, frame: pd.DataFrame, *, features: list[str], task: str) -> pd.DataFrame:
    """The reference rows with the model's own score (binary) or prediction where the file has none."""
    x = frame[features]
    try:
        if loaded.flavor == "sklearn":
            if task == "binary" and "__score__" not in frame:
                frame = frame.assign(__score__=loaded.model.predict_proba(x)[:, 1])
            if task == "regression" and "__prediction__" not in frame:
                frame = frame.assign(__prediction__=np.asarray(loaded.model.predict(x), dtype=float))
            return frame
        if "__score__" in frame or "__prediction__" in frame:
            return frame
        out = np.asarray(loaded.model.predict(x), dtype=float).reshape(len(frame), -1)[:, -1]
    except Exception as exc:  # noqa: BLE001 - whatever the model raises on rows it cannot score
        reason = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise InvalidInput(f"the model cannot score the reference features ({reason})") from exc
    probability = task == "binary" and bool(((out >= 0) & (out <= 1)).all()) and not np.isin(out, (0, 1)).all()
    return frame.assign(**{"__score__" if probability else "__prediction__": out})


def _stored(loaded: Loaded, scored: pd.DataFrame, features: list[str]) -> tuple[str | None, str | None, bool]:
    """Save a scikit-learn model with skops, once the copy is seen to score the reference as the loaded model did."""
    if loaded.flavor != "sklearn":
        return None, None, False
    sample = scored[features].head(50)
    how = "predict_proba" if hasattr(loaded.model, "predict_proba") else "predict"

    def scores_the_same(back: object) -> None:
        if not np.allclose(getattr(back, how)(sample), getattr(loaded.model, how)(sample), equal_nan=True):
            raise InvalidInput("the model does not score the same once saved with skops; it cannot be imported")

    return artifacts.save_skops(loaded.model, check=scores_the_same)


def import_from_mlflow(*, actor: Actor, project_key: str, model_uri: str, tracking_uri: str,
                       reference: Path | str | None, name: str | None = None, task: str | None = None,
                       columns: Declared | None = None, decision_threshold: float = 0.5,
                       mirror_metrics: bool = False, notes: str = "") -> MlflowImport:
    """Register a Watchtower version from an MLflow registered model version; all or nothing.

    A new Watchtower model (named NAME, default the MLflow model's name) gets version 1, active; an existing
    one of the same project a candidate version, whose inputs must be the model's features. Opens its own
    units of work: nothing stays open while MLflow is asked and the model loaded.
    """
    require(actor, "model.register")
    ref = mlflow_client.parse_model_uri(model_uri)
    uri = mlflow_sources.require_trusted(actor=actor, tracking_uri=tracking_uri, model_uri=ref.uri)
    wt_name = (name or ref.name).strip()
    with session_scope() as s:
        project_id = project_row(s, project_key).id
        row = s.exec(select(Model).where(Model.name == wt_name)).first()
        existing = registry.model_info(row) if row is not None else None
        if existing is not None and existing.project_id != project_id:
            raise Conflict(f"a model named {wt_name!r} already exists in another project; choose a name with --name")
        in_force = current_mapping(session=s, model=wt_name).mapping if existing is not None else None
    if reference is None:
        raise _needs_reference(ref)
    frame = registry.read_reference_csv(reference)
    source = Path(reference).name

    mlflow_client.check_reachable(uri)
    found = mlflow_client.resolve(uri, ref)
    if mirror_metrics and not found.run_id:
        raise InvalidInput(f"{ref.uri} was not logged from an MLflow run, so there is no run to mirror metrics to")
    run_metrics, run_params = mlflow_client.run_facts(uri, found.run_id) if found.run_id else ({}, {})
    loaded = mlflow_client.load(uri, found)

    given, own = columns or Declared(), _from_model(loaded)
    if existing is not None and in_force is not None:
        if own.features is not None and set(own.features) != set(existing.feature_names):
            missing, extra = set(existing.feature_names) - set(own.features), set(own.features) - set(existing.feature_names)
            raise InvalidInput(f"{ref.uri} reads other inputs than {wt_name}'s features (missing: "
                               f"{', '.join(sorted(missing)) or '—'}; extra: {', '.join(sorted(extra)) or '—'})")
        task = existing.task
        declared = given.over(replace(in_force.declared(), score_column=None, prediction_column=None))
    else:
        task = _task_of(loaded, task)
        declared = given.over(own)
    declared = _outputs(loaded, frame, task, declared)
    declared = replace(declared, target=_target(frame, declared))
    proposal = propose(frame, declared, source=source)
    features = proposal.mapping.feature_names
    m = proposal.mapping
    renamed = frame.rename(columns={k: v for k, v in ((m.score_column, "__score__"),
                                                      (m.prediction_column, "__prediction__")) if k})
    with threadpool_limits(1):  # a reference sample: threads would cost more to start than they save
        scored = _scored(loaded, renamed, features=features, task=task)
        path, sha, new_file = _stored(loaded, scored, features)
    baseline = metrics.reference_baseline(scored, task=task, target=m.target, threshold=decision_threshold)
    baseline |= {k: float(v) for k, v in run_metrics.items() if k in KNOWN_METRICS}
    recipe = {"source": "mlflow", "tracking_uri": uri, "model_uri": ref.uri,
              "registered_model": found.name, "model_version": found.version, "alias": ref.alias,
              "run_id": found.run_id, "flavor": loaded.flavor, "mirror_metrics": bool(mirror_metrics),
              "run_metrics": run_metrics}
    try:
        with session_scope() as s:
            if existing is None:
                registry.create_model(session=s, actor=actor, project_key=project_key, name=wt_name, task=task,
                                      target=m.target, features=list(m.features), decision_threshold=decision_threshold,
                                      description=f"Imported from MLflow: {ref.uri} at {uri}")
                mapping_records.record(s, actor=actor, model=registry.model_row(s, wt_name), proposal=proposal,
                                       notes=f"from {ref.uri}" + (" (its signature)" if loaded.inputs else ""))
            version = registry.add_version(
                session=s, actor=actor, model=wt_name, reference=scored, artifact_path=path, artifact_sha256=sha,
                origin="imported", status="active" if existing is None else "candidate", recipe=recipe,
                params=run_params, training_metrics=baseline,
                notes=notes or f"Imported from MLflow {found.name} v{found.version} (run {found.run_id or '—'})")
    except Exception:
        if new_file and path:
            artifacts.resolve(path).unlink(missing_ok=True)
        raise
    return MlflowImport(model=wt_name, version=version, created_model=existing is None, source=found,
                        tracking_uri=uri, flavor=loaded.flavor, proposal=proposal, run_metrics=run_metrics,
                        mirror_metrics=bool(mirror_metrics))
