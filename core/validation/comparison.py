"""Versions side by side on the same recent labelled data: metrics, business metrics, importance, drift."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sklearn.inspection import permutation_importance
from sqlmodel import Session
from threadpoolctl import threadpool_limits

from core import artifacts
from core.access import Actor, require
from core.errors import InvalidInput
from core.models import scoring
from core.models.labelled_data import bounded, recent_labelled
from core.models.registry import ModelInfo, VersionInfo, model_info, model_row, version_info, version_row

IMPORTANCE_ROWS = 5_000
IMPORTANCE_REPEATS = 5


@dataclass(frozen=True)
class LoadedVersion:
    """A version with its verified estimator, the feature columns it reads, and its reference sample."""

    info: VersionInfo
    estimator: Any
    features: list[str]
    reference: pd.DataFrame


def version_features(info: VersionInfo, model: ModelInfo, estimator: Any) -> list[str]:
    """The columns a version reads: its recipe's features, else what the estimator saw, else the model's."""
    recipe = [f["name"] if isinstance(f, dict) else str(f) for f in info.recipe.get("features") or []]
    if recipe:
        return recipe
    seen = getattr(estimator, "feature_names_in_", None)
    return [str(c) for c in seen] if seen is not None else model.feature_names


def load_version(*, session: Session, actor: Actor, model: str, version: int | None = None) -> LoadedVersion:
    """A version ready to score: its artifact verified by sha256 before loading."""
    m = model_row(session, model)
    info = version_info(version_row(session, m, version))
    if not info.artifact_path:
        raise InvalidInput(f"{model} v{info.number} is an external model with no artifact: there is nothing to run")
    estimator = artifacts.load_estimator(path=info.artifact_path, sha256=info.artifact_sha256 or "",
                                         actor=actor.username, what=f"{model} v{info.number}")
    reference = artifacts.load_reference(path=info.reference_path, sha256=info.reference_sha256,
                                         what=f"{model} v{info.number}")
    return LoadedVersion(info=info, estimator=estimator, features=version_features(info, model_info(m), estimator),
                         reference=reference)


def unseen_by(data: pd.DataFrame, versions: list[LoadedVersion]) -> pd.DataFrame:
    """The labelled rows none of the versions trained on: outside its training window, or in its held-out sample.

    A retrained version's window overlaps the recent data; scoring it on rows it learned from would flatter it.
    """
    keep = pd.Series(True, index=data.index)
    if "ts" not in data.columns:
        return data
    ts = pd.to_datetime(data["ts"])
    for v in versions:
        start, end = v.info.training_start, v.info.training_end
        if start is None or end is None:
            continue
        seen = (ts >= pd.Timestamp(start)) & (ts <= pd.Timestamp(end))
        if "prediction_id" in v.reference.columns and "prediction_id" in data.columns:
            seen &= ~data["prediction_id"].isin(set(v.reference["prediction_id"]))
        keep &= ~seen
    return data[keep]


@dataclass(frozen=True)
class Evaluated:
    number: int
    metrics: dict[str, float | None]
    business: dict[str, float]


def evaluate(version: LoadedVersion, model: ModelInfo, data: pd.DataFrame) -> Evaluated:
    """A version's standard and business metrics on labelled data (features + the model's target)."""
    y = data[model.target].to_numpy()
    score = scoring.predict(version.estimator, data[version.features], task=model.task)
    metrics = scoring.metrics(task=model.task, y=y, score=score, threshold=model.decision_threshold)
    business = scoring.business_metrics(model.business_metrics, frame=data, y=y,
                                        predicted=score >= model.decision_threshold) if model.task == "binary" else {}
    return Evaluated(number=version.info.number, metrics=metrics, business=business)


@dataclass(frozen=True)
class Importance:
    feature: str
    mean: float
    std: float


def importance_sample(data: pd.DataFrame, model: ModelInfo, *, rows: int = IMPORTANCE_ROWS,
                      seed: int = 0) -> pd.DataFrame:
    """A bounded sample keeping every positive (up to half): ROC AUC does not change when negatives are thinned."""
    if len(data) <= rows:
        return data
    if model.task != "binary":
        return data.sample(n=rows, random_state=seed)
    positives = data[data[model.target] == 1]
    positives = positives.sample(n=min(len(positives), rows // 2), random_state=seed)
    negatives = data[data[model.target] != 1]
    negatives = negatives.sample(n=min(len(negatives), rows - len(positives)), random_state=seed)
    return pd.concat([positives, negatives]).sort_index()


def permutation_importances(version: LoadedVersion, model: ModelInfo, data: pd.DataFrame, *,
                            seed: int = 0) -> list[Importance]:
    """Drop in ROC AUC (binary) or R² (regression) when each feature is shuffled, largest first."""
    sample = importance_sample(data, model, seed=seed)
    y = sample[model.target]
    if model.task == "binary" and y.nunique() < 2:
        raise InvalidInput("permutation importance needs labelled data with both classes")
    # Many small predictions: one thread each avoids OpenMP oversubscription on a busy machine.
    with threadpool_limits(limits=1):
        result = permutation_importance(version.estimator, sample[version.features], y,
                                        scoring="roc_auc" if model.task == "binary" else "r2",
                                        n_repeats=IMPORTANCE_REPEATS, random_state=seed, n_jobs=1)
    items = [Importance(feature=f, mean=float(result.importances_mean[i]), std=float(result.importances_std[i]))
             for i, f in enumerate(version.features)]
    return sorted(items, key=lambda it: -it.mean)


@dataclass(frozen=True)
class FieldShift:
    field: str
    method: str
    score: float | None
    threshold: float | None
    drifted: bool


@dataclass(frozen=True)
class VersionComparison:
    model: str
    a: VersionInfo
    b: VersionInfo
    window_start: datetime | None
    window_end: datetime | None
    rows: int
    metrics: list[tuple[str, float | None, float | None, str | None]]  # (metric, a, b, better: "a"|"b"|None)
    business: list[tuple[str, str, float | None, float | None, str | None]]  # (name, label, a, b, better)
    importance_a: list[Importance]
    importance_b: list[Importance]
    drift: list[FieldShift]  # b's training data against a's
    drifted_fields: int


def _better(name: str, a: float | None, b: float | None, direction: str | None) -> str | None:
    if a is None or b is None or direction is None or np.isclose(a, b):
        return None
    return ("b" if b > a else "a") if direction == "higher" else ("b" if b < a else "a")


def compare_versions(*, actor: Actor, model: str, a: int, b: int) -> VersionComparison:
    """Two versions on the same recent labelled data, with their importances and their training-data drift.

    Reads in one short unit of work of its own, then scores outside it (this takes seconds).
    """
    from core.db import session_scope
    from core.monitoring import drift

    require(actor, "registry.view")
    if a == b:
        raise InvalidInput(f"pick two different versions of {model} to compare (both are v{a})")
    with session_scope() as session:  # read, then score both versions outside any transaction
        info = model_info(model_row(session, model))
        va = load_version(session=session, actor=actor, model=model, version=a)
        vb = load_version(session=session, actor=actor, model=model, version=b)
        recent, start, end = recent_labelled(session=session, model=model)
    data = bounded(unseen_by(recent, [va, vb]))
    if data.empty:
        raise InvalidInput(f"{model} has no recent labelled predictions that neither v{a} nor v{b} was trained on: "
                           f"there is no common data to compare on")
    ea, eb = evaluate(va, info, data), evaluate(vb, info, data)
    metric_rows = [(k, ea.metrics.get(k), eb.metrics.get(k), _better(k, ea.metrics.get(k), eb.metrics.get(k),
                                                                     scoring.DIRECTION.get(k)))
                   for k in (scoring.BINARY_METRICS if info.task == "binary" else scoring.REGRESSION_METRICS)]
    business_rows = [(spec["name"], spec.get("label_text") or spec["name"], ea.business.get(spec["name"]),
                      eb.business.get(spec["name"]),
                      _better(spec["name"], ea.business.get(spec["name"]), eb.business.get(spec["name"]),
                              spec.get("better")))
                     for spec in info.business_metrics if spec["name"] in ea.business]
    columns = [c for c in info.feature_names if c in va.reference.columns and c in vb.reference.columns]
    shift = drift.data_drift(reference=va.reference, current=vb.reference, columns=columns)
    fields = sorted((FieldShift(field=f.field, method=f.method_label or f.method, score=f.score, threshold=f.threshold,
                                drifted=f.drifted) for f in shift.fields),
                    key=lambda f: (not f.drifted, -(f.score or 0.0)))
    return VersionComparison(model=model, a=va.info, b=vb.info, window_start=start, window_end=end, rows=len(data),
                             metrics=metric_rows, business=business_rows,
                             importance_a=permutation_importances(va, info, data),
                             importance_b=permutation_importances(vb, info, data), drift=fields,
                             drifted_fields=shift.drifted_fields)
