"""Training recipes and tracked training runs: fit on a held-out split, record, compare, promote to a version."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sqlmodel import Session, select

from core import artifacts, audit
from core.access import Actor, require
from core.entities import Model, ModelVersion, TrainingRun
from core.errors import Conflict, InvalidInput, NotFound
from core.models import scoring
from core.models.registry import ModelInfo, VersionInfo, add_version, model_info, model_row
from core.vocabulary import ALGORITHMS

ALGORITHM_LABELS = {"logistic_regression": "Logistic regression", "random_forest": "Random forest",
                    "hist_gradient_boosting": "Histogram gradient boosting"}
REFERENCE_ROWS = 20_000  # the held-out sample kept as the version's reference data
TRAIN_METRIC_ROWS = 20_000  # training-split rows scored for the overfit gap
MIN_ROWS = 20

Progress = Callable[[float, str], None]


def no_progress(_fraction: float, _message: str) -> None:
    """A progress callback that shows nothing."""
    return None


@dataclass(frozen=True)
class Recipe:
    """What to train: features, target, algorithm and its hyperparameters, and the training window."""

    algorithm: str
    features: tuple[str, ...] = ()  # empty: all of the model's features
    target: str = ""  # empty: the model's target
    params: dict = field(default_factory=dict)
    start: datetime | None = None
    end: datetime | None = None
    window_days: int | None = None  # a retrain's window length, ending at the newest labelled prediction
    holdout: float = 0.2
    seed: int = 7
    time_column: str = "ts"

    def to_dict(self) -> dict:
        return {"algorithm": self.algorithm, "features": list(self.features), "target": self.target,
                "params": dict(self.params), "start": self.start.isoformat() if self.start else None,
                "end": self.end.isoformat() if self.end else None, "window_days": self.window_days,
                "holdout": self.holdout, "seed": self.seed, "time_column": self.time_column}

    @classmethod
    def from_dict(cls, data: dict) -> Recipe:
        """Read a stored recipe; feature entries may be names or {"name": ...} dicts."""
        feats = tuple(f["name"] if isinstance(f, dict) else str(f) for f in data.get("features") or ())
        when = {k: datetime.fromisoformat(data[k]) if isinstance(data.get(k), str) else data.get(k)
                for k in ("start", "end")}
        return cls(algorithm=str(data.get("algorithm") or ""), features=feats, target=str(data.get("target") or ""),
                   params=dict(data.get("params") or {}), start=when["start"], end=when["end"],
                   window_days=data.get("window_days"), holdout=float(data.get("holdout", 0.2)),
                   seed=int(data.get("seed", 7)), time_column=str(data.get("time_column") or "ts"))


@dataclass(frozen=True)
class RunInfo:
    id: int
    model: str
    algorithm: str
    recipe: dict
    params: dict
    data_start: datetime | None
    data_end: datetime | None
    data_fingerprint: str
    rows: int
    metrics: dict
    duration_s: float
    status: str
    artifact_sha256: str | None
    created_by: str
    created_at: datetime
    promoted_version: int | None


@dataclass(frozen=True)
class Trained:
    """A fitted recipe, its held-out metrics and reference sample; nothing written to the database yet."""

    model: str
    recipe: Recipe
    rows: int
    data_start: datetime | None
    data_end: datetime | None
    fingerprint: str
    metrics: dict
    duration_s: float
    artifact_path: str
    artifact_sha256: str
    reference_path: str
    reference_sha256: str
    estimator: Any = field(repr=False)


# --- building and fitting -------------------------------------------------------------------

def build_pipeline(*, task: str, algorithm: str, numeric: list[str], categorical: list[str],
                   params: dict | None = None, seed: int = 7) -> Pipeline:
    """A Pipeline taking a DataFrame of the feature columns: one-hot categoricals, then the estimator."""
    params = dict(params or {})
    classifier = task == "binary"
    if algorithm == "logistic_regression":
        if not classifier:
            raise InvalidInput("logistic_regression predicts classes; a regression model needs random_forest "
                               "or hist_gradient_boosting")
        estimator: Any = LogisticRegression(max_iter=1000)
        numeric_step: Any = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    elif algorithm == "random_forest":
        estimator = RandomForestClassifier(n_estimators=200, min_samples_leaf=2) if classifier \
            else RandomForestRegressor(n_estimators=200, min_samples_leaf=2)
        numeric_step = SimpleImputer(strategy="median")
    elif algorithm == "hist_gradient_boosting":
        estimator = HistGradientBoostingClassifier() if classifier else HistGradientBoostingRegressor()
        numeric_step = "passthrough"  # missing values are handled natively
    else:
        raise InvalidInput(f"algorithm {algorithm!r} is not one of {', '.join(ALGORITHMS)}")
    if "random_state" in estimator.get_params():
        params.setdefault("random_state", seed)
    known = estimator.get_params()
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise InvalidInput(f"{algorithm} has no hyperparameter {', '.join(map(repr, unknown))}")
    estimator.set_params(**params)
    prepare = ColumnTransformer(
        [("numeric", numeric_step, numeric),
         ("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical)],
        sparse_threshold=0.0, verbose_feature_names_out=False)
    return Pipeline([("prepare", prepare), ("model", estimator)])


def _feature_types(model: ModelInfo, data: pd.DataFrame, names: list[str]) -> tuple[list[str], list[str]]:
    declared = {f["name"]: f["type"] for f in model.features}
    numeric, categorical = [], []
    for name in names:
        kind = declared.get(name)
        if kind is None:
            col = data[name]
            kind = "numeric" if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col) \
                else "categorical"
        (numeric if kind == "numeric" else categorical).append(name)
    return numeric, categorical


def _cut_window(recipe: Recipe, data: pd.DataFrame) -> tuple[pd.DataFrame, datetime | None, datetime | None]:
    if recipe.start is None and recipe.end is None:
        if recipe.time_column in data.columns:
            ts = pd.to_datetime(data[recipe.time_column])
            return data, ts.min().to_pydatetime(warn=False), ts.max().to_pydatetime(warn=False)
        return data, None, None
    if recipe.time_column not in data.columns:
        raise InvalidInput(f"the training data has no time column {recipe.time_column!r} to cut the window "
                           f"{recipe.start} – {recipe.end} from")
    ts = pd.to_datetime(data[recipe.time_column])
    keep = pd.Series(True, index=data.index)
    if recipe.start is not None:
        keep &= ts >= pd.Timestamp(recipe.start)
    if recipe.end is not None:
        keep &= ts < pd.Timestamp(recipe.end)
    return data[keep], recipe.start, recipe.end


def _validate(model: ModelInfo, recipe: Recipe, data: pd.DataFrame) -> None:
    wanted = [*recipe.features, recipe.target]
    missing = [c for c in wanted if c not in data.columns]
    if missing:
        raise InvalidInput(f"the recipe names column(s) {', '.join(map(repr, missing))} that the training data "
                           f"does not have (columns: {', '.join(map(str, data.columns))})")
    if recipe.target in recipe.features:
        raise InvalidInput(f"the target {recipe.target!r} cannot also be a feature")
    if not 0.05 <= recipe.holdout <= 0.5:
        raise InvalidInput(f"the held-out share {recipe.holdout} must lie between 0.05 and 0.5")
    window = f" between {recipe.start} and {recipe.end}" if recipe.start or recipe.end else ""
    if data.empty:
        raise InvalidInput(f"no labelled rows for {model.name}{window}: nothing to train on")
    y = data[recipe.target]
    if y.isna().any():
        raise InvalidInput(f"target {recipe.target!r} is empty in {int(y.isna().sum())} row(s)")
    if len(data) < MIN_ROWS:
        raise InvalidInput(f"only {len(data)} labelled rows{window}; training needs at least {MIN_ROWS}")
    if model.task == "binary":
        classes = sorted(pd.unique(y).tolist())
        if not set(classes) <= {0, 1}:
            raise InvalidInput(f"target {recipe.target!r} must hold 0/1 labels, found {classes[:5]}")
        if len(classes) < 2:
            raise InvalidInput(f"target {recipe.target!r} has a single class ({classes[0]}) in the training "
                               f"data{window}: a classifier needs both 0 and 1")
        counts = y.value_counts()
        if counts.min() < 2:
            raise InvalidInput(f"target {recipe.target!r} has only {int(counts.min())} row of class "
                               f"{counts.idxmin()}; at least 2 are needed to hold one out")
    elif not pd.api.types.is_numeric_dtype(y):
        raise InvalidInput(f"target {recipe.target!r} must be numeric for a regression model")


def resolve_recipe(model: ModelInfo, recipe: Recipe) -> Recipe:
    """Fill the model's features and target where the recipe leaves them out."""
    if recipe.algorithm not in ALGORITHMS:
        raise InvalidInput(f"algorithm {recipe.algorithm!r} is not one of {', '.join(ALGORITHMS)}")
    if recipe.start and recipe.end and recipe.start >= recipe.end:
        raise InvalidInput(f"the training window starts ({recipe.start}) after it ends ({recipe.end})")
    build_pipeline(task=model.task, algorithm=recipe.algorithm, numeric=[], categorical=[], params=recipe.params)
    return replace(recipe, features=tuple(recipe.features or model.feature_names), target=recipe.target or model.target)


def _fit(pipeline: Pipeline, x: pd.DataFrame, y: pd.Series, *, progress: Progress, chunks: int = 5) -> None:
    """Fit; a forest grows in chunks (warm start, the same trees as one fit) so that progress can be shown."""
    final = pipeline.named_steps["model"]
    if not isinstance(final, RandomForestClassifier | RandomForestRegressor) or final.n_estimators < 4 * chunks:
        pipeline.fit(x, y)
        return
    total, warm = final.n_estimators, final.warm_start
    for i in range(1, chunks + 1):
        final.set_params(n_estimators=round(total * i / chunks), warm_start=True)
        pipeline.fit(x, y)
        progress(0.15 + 0.6 * i / chunks, f"grown {final.n_estimators} of {total} trees")
    final.set_params(warm_start=warm)


def fit_recipe(*, model: ModelInfo, recipe: Recipe, data: pd.DataFrame, progress: Progress = no_progress) -> Trained:
    """Fit the recipe on its window's held-out split and score it; store the artifact and reference files."""
    started = time.perf_counter()
    recipe = resolve_recipe(model, recipe)
    progress(0.05, "checking the training data")
    data, data_start, data_end = _cut_window(recipe, data)
    _validate(model, recipe, data)
    features = list(recipe.features)
    frame = data[[*features, recipe.target]].reset_index(drop=True)
    # Row identity travels with the held-out sample, so later comparisons can skip rows the model learned from.
    keys = data[[c for c in ("prediction_id", recipe.time_column) if c in data.columns]].reset_index(drop=True)
    numeric, categorical = _feature_types(model, frame, features)
    pipeline = build_pipeline(task=model.task, algorithm=recipe.algorithm, numeric=numeric,
                              categorical=categorical, params=recipe.params, seed=recipe.seed)
    fingerprint = artifacts.fingerprint_frame(frame)
    y = frame[recipe.target].astype(int) if model.task == "binary" else frame[recipe.target].astype(float)
    train_idx, test_idx = train_test_split(np.arange(len(frame)), test_size=recipe.holdout, random_state=recipe.seed,
                                           stratify=y if model.task == "binary" else None)
    progress(0.15, f"fitting {ALGORITHM_LABELS[recipe.algorithm]} on {len(train_idx):,} rows")
    try:
        _fit(pipeline, frame.iloc[train_idx][features], y.iloc[train_idx], progress=progress)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"{recipe.algorithm} could not be fitted: {str(exc).splitlines()[0]}") from exc
    progress(0.75, f"scoring {len(test_idx):,} held-out rows")
    held_out = pd.concat([frame.iloc[test_idx].reset_index(drop=True), keys.iloc[test_idx].reset_index(drop=True)],
                         axis=1)
    held_scores = scoring.predict(pipeline, held_out[features], task=model.task)
    metrics = scoring.metrics(task=model.task, y=y.iloc[test_idx].to_numpy(), score=held_scores,
                              threshold=model.decision_threshold)
    rng = np.random.default_rng(recipe.seed)
    train_sample = train_idx if len(train_idx) <= TRAIN_METRIC_ROWS else rng.choice(train_idx, TRAIN_METRIC_ROWS,
                                                                                     replace=False)
    train_scores = scoring.predict(pipeline, frame.iloc[train_sample][features], task=model.task)
    train_metrics = scoring.metrics(task=model.task, y=y.iloc[train_sample].to_numpy(), score=train_scores,
                                    threshold=model.decision_threshold)
    metrics.update({f"train_{k}": v for k, v in train_metrics.items()})
    metrics.update(rows=int(len(train_idx)), held_out_rows=int(len(test_idx)))
    progress(0.9, "storing the artifact and the reference sample")
    held_out[scoring.SCORE_COLUMN if model.task == "binary" else scoring.PREDICTION_COLUMN] = held_scores
    if len(held_out) > REFERENCE_ROWS:
        held_out = held_out.sample(n=REFERENCE_ROWS, random_state=recipe.seed).reset_index(drop=True)
    artifact_path, artifact_sha = artifacts.save_estimator(pipeline)
    reference_path, reference_sha = artifacts.save_reference(held_out)
    duration = time.perf_counter() - started
    progress(1.0, f"trained in {duration:.1f}s")
    return Trained(model=model.name, recipe=recipe, rows=len(frame), data_start=data_start, data_end=data_end,
                   fingerprint=fingerprint, metrics=metrics, duration_s=duration, artifact_path=artifact_path,
                   artifact_sha256=artifact_sha, reference_path=reference_path, reference_sha256=reference_sha,
                   estimator=pipeline)


# --- tracking -------------------------------------------------------------------------------

def _run_info(run: TrainingRun, model: str, promoted: int | None) -> RunInfo:
    return RunInfo(id=run.id, model=model, algorithm=run.algorithm, recipe=dict(run.recipe), params=dict(run.params),
                   data_start=run.data_start, data_end=run.data_end, data_fingerprint=run.data_fingerprint,
                   rows=run.rows, metrics=dict(run.metrics), duration_s=run.duration_s, status=run.status,
                   artifact_sha256=run.artifact_sha256, created_by=run.created_by, created_at=run.created_at,
                   promoted_version=promoted)


def record_run(*, session: Session, actor: Actor, trained: Trained) -> RunInfo:
    """Track a fitted recipe as a training run (parameters, metrics, duration, window, fingerprint, who)."""
    require(actor, "experiments.run")
    m = model_row(session, trained.model)
    run = TrainingRun(model_id=m.id, algorithm=trained.recipe.algorithm, recipe=trained.recipe.to_dict(),
                      params=scoring.jsonable(trained.estimator.named_steps["model"].get_params()),
                      data_start=trained.data_start, data_end=trained.data_end, data_fingerprint=trained.fingerprint,
                      rows=trained.rows, metrics=trained.metrics, duration_s=round(trained.duration_s, 3),
                      status="succeeded", artifact_path=trained.artifact_path, artifact_sha256=trained.artifact_sha256,
                      reference_path=trained.reference_path, reference_sha256=trained.reference_sha256,
                      created_by=actor.username)
    session.add(run)
    session.flush()
    audit.record(session, actor=actor.username, action="training.run", entity_type="training_run", entity_id=run.id,
                 project_id=m.project_id, details={"model": m.name, "algorithm": run.algorithm, "rows": run.rows,
                                                   "data_fingerprint": run.data_fingerprint})
    return _run_info(run, m.name, None)


def _promoted(session: Session, run_ids: list[int]) -> dict[int, int]:
    rows = session.exec(select(ModelVersion.training_run_id, ModelVersion.number)
                        .where(ModelVersion.training_run_id.in_(run_ids))).all() if run_ids else []
    return {rid: number for rid, number in rows}


def _run_row(session: Session, run_id: int) -> TrainingRun:
    run = session.get(TrainingRun, run_id)
    if run is None:
        raise NotFound(f"no training run {run_id}")
    return run


def get_run(*, session: Session, run_id: int) -> RunInfo:
    """One training run, with the version it was promoted to (if any)."""
    run = _run_row(session, run_id)
    return _run_info(run, session.get(Model, run.model_id).name, _promoted(session, [run.id]).get(run.id))


def list_runs(*, session: Session, model: str) -> list[RunInfo]:
    """A model's training runs, newest first, each with the version it was promoted to (if any)."""
    m = model_row(session, model)
    runs = session.exec(select(TrainingRun).where(TrainingRun.model_id == m.id)
                        .order_by(TrainingRun.id.desc())).all()
    promoted = _promoted(session, [r.id for r in runs])
    return [_run_info(r, m.name, promoted.get(r.id)) for r in runs]


@dataclass(frozen=True)
class RunComparison:
    runs: list[RunInfo]
    metrics: list[str]  # held-out metric names, in display order
    best: dict[str, int]  # metric -> id of the best run on it


def compare_runs(*, session: Session, run_ids: list[int]) -> RunComparison:
    """Runs side by side: held-out metrics, the best run per metric."""
    if not run_ids:
        raise InvalidInput("pick at least one training run to compare")
    runs = [get_run(session=session, run_id=rid) for rid in run_ids]
    if len({r.model for r in runs}) > 1:
        raise InvalidInput(f"runs {', '.join(map(str, run_ids))} belong to different models")
    names = [k for k in scoring.METRIC_ORDER if any(k in r.metrics for r in runs)]
    best: dict[str, int] = {}
    for name in names:
        direction = scoring.DIRECTION.get(name)
        scored = [(r.metrics[name], r.id) for r in runs if r.metrics.get(name) is not None]
        if direction and scored:
            best[name] = (max(scored) if direction == "higher" else min(scored))[1]
    return RunComparison(runs=runs, metrics=names, best=best)


def promote_run(*, session: Session, actor: Actor, run_id: int, notes: str = "", origin: str = "manual",
                triggered_by_check_result_id: int | None = None) -> VersionInfo:
    """Register a training run as a new candidate version (artifact, reference sample, recipe, metrics)."""
    require(actor, "experiments.run")
    run = _run_row(session, run_id)
    if run.status != "succeeded" or not run.artifact_path or not run.reference_path:
        raise InvalidInput(f"training run {run_id} has no fitted model to promote")
    already = _promoted(session, [run.id]).get(run.id)
    if already is not None:
        raise Conflict(f"training run {run_id} is already version {already}")
    m = session.get(Model, run.model_id)
    reference = artifacts.load_reference(path=run.reference_path, sha256=run.reference_sha256,
                                         what=f"training run {run_id}")
    return add_version(session=session, actor=actor, model=m.name, reference=reference,
                       artifact_path=run.artifact_path, artifact_sha256=run.artifact_sha256, origin=origin,
                       status="candidate", training_start=run.data_start, training_end=run.data_end,
                       recipe=dict(run.recipe), params=dict(run.params), training_metrics=dict(run.metrics),
                       training_run_id=run.id, triggered_by_check_result_id=triggered_by_check_result_id,
                       notes=notes, data_fingerprint=run.data_fingerprint)


# --- orchestration (each opens its own short units of work around the long fit) --------------

def train(*, actor: Actor, model: str, recipe: Recipe, data: pd.DataFrame | Path | str | None = None,
          progress: Progress = no_progress) -> RunInfo:
    """Train a recipe on a DataFrame, a CSV, or (by default) the evaluation store's labelled window; track the run."""
    from core.db import session_scope
    from core.models.labelled_data import labelled_window, latest_labelled_ts, read_training_csv

    require(actor, "experiments.run")
    with session_scope() as s:  # read, fit outside any transaction, then record in a short one
        info = model_info(model_row(s, model))
        resolve_recipe(info, recipe)  # refuse a bad recipe before reading any data
        if data is None:
            progress(0.0, "reading the labelled window from the evaluation store")
            if recipe.start is None and recipe.end is None:
                latest = latest_labelled_ts(session=s, model=model)
                if latest is None:
                    raise InvalidInput(f"no labelled predictions for {model} yet: nothing to train on")
                end = latest.replace(microsecond=0) + timedelta(seconds=1)
                recipe = replace(recipe, start=end - timedelta(days=recipe.window_days or 60), end=end)
            data = labelled_window(session=s, model=model, start=recipe.start, end=recipe.end)
    if isinstance(data, (str, Path)):
        data = read_training_csv(data, time_column=recipe.time_column)
    trained = fit_recipe(model=info, recipe=recipe, data=data, progress=progress)
    with session_scope() as s:
        return record_run(session=s, actor=actor, trained=trained)
