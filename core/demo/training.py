"""Training for the seeded models: scikit-learn pipelines that take a DataFrame of the model's features.

Kept apart from the seeding so that training never runs inside a transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    brier_score_loss,
    f1_score,
    log_loss,
    mean_absolute_error,
    mean_squared_error,
    precision_score,
    r2_score,
    recall_score,
    roc_auc_score,
)
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

SCORE = "__score__"
PREDICTION = "__prediction__"


@dataclass(frozen=True)
class Trained:
    """A fitted estimator with its held-out metrics and the reference sample to register with it."""

    estimator: Any
    algorithm: str
    params: dict
    metrics: dict
    reference: pd.DataFrame
    training_start: datetime | None
    training_end: datetime | None


def preprocessor(features: list[dict], *, scale: bool) -> ColumnTransformer:
    """Numeric columns (scaled for linear models) and one-hot categoricals, selected by name."""
    numeric = [f["name"] for f in features if f["type"] == "numeric"]
    categorical = [f["name"] for f in features if f["type"] == "categorical"]
    return ColumnTransformer([
        ("numeric", StandardScaler() if scale else "passthrough", numeric),
        ("categorical", OneHotEncoder(handle_unknown="ignore"), categorical),
    ])


def classification_metrics(y: np.ndarray, score: np.ndarray, *, threshold: float) -> dict[str, float]:
    """The standard binary metrics of a score at a decision threshold."""
    y = np.asarray(y).astype(int)
    score = np.clip(np.asarray(score, dtype=float), 1e-7, 1 - 1e-7)
    pred = (score >= threshold).astype(int)
    return {
        "roc_auc": float(roc_auc_score(y, score)),
        "pr_auc": float(average_precision_score(y, score)),
        "precision": float(precision_score(y, pred, zero_division=0)),
        "recall": float(recall_score(y, pred, zero_division=0)),
        "f1": float(f1_score(y, pred, zero_division=0)),
        "accuracy": float(accuracy_score(y, pred)),
        "log_loss": float(log_loss(y, score, labels=[0, 1])),
        "brier": float(brier_score_loss(y, score)),
        "positive_rate": float(pred.mean()),
    }


def regression_metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """The standard regression metrics."""
    return {
        "mae": float(mean_absolute_error(y, pred)),
        "rmse": float(np.sqrt(mean_squared_error(y, pred))),
        "r2": float(r2_score(y, pred)),
    }


def train(frame: pd.DataFrame, *, features: list[dict], target: str, task: str, estimator: Any, scale: bool,
          threshold: float = 0.5, reference_rows: int = 4000, seed: int = 0,
          window: tuple[datetime, datetime] | None = None) -> Trained:
    """Fit `estimator` behind the preprocessor on 70% of `frame`; measure and sample the reference on the rest.

    `window` is the period the rows were drawn from, [start, end), recorded as the training window.
    """
    names = [f["name"] for f in features]
    stratify = frame[target] if task == "binary" else None
    fit_part, held_out = train_test_split(frame, test_size=0.3, random_state=seed, stratify=stratify)
    pipeline = Pipeline([("prepare", preprocessor(features, scale=scale)), ("model", estimator)])
    pipeline.fit(fit_part[names], fit_part[target])
    reference = held_out.sample(n=min(reference_rows, len(held_out)), random_state=seed)[[*names, target]].copy()
    if task == "binary":
        metrics = classification_metrics(held_out[target].to_numpy(),
                                          pipeline.predict_proba(held_out[names])[:, 1], threshold=threshold)
        reference[SCORE] = pipeline.predict_proba(reference[names])[:, 1]
    else:
        metrics = regression_metrics(held_out[target].to_numpy(), pipeline.predict(held_out[names]))
        reference[PREDICTION] = pipeline.predict(reference[names])
    metrics["rows"] = int(len(fit_part))
    metrics["held_out_rows"] = int(len(held_out))
    start, end = window or (None, None)
    return Trained(estimator=pipeline, algorithm=type(estimator).__name__, params=estimator.get_params(),
                   metrics=metrics, reference=reference.reset_index(drop=True), training_start=start,
                   training_end=end)
