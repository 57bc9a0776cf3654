"""Scoring a fitted estimator on a frame of features, and the standard metrics of its scores."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

SCORE_COLUMN = "__score__"
PREDICTION_COLUMN = "__prediction__"
BINARY_METRICS = ("roc_auc", "pr_auc", "precision", "recall", "f1", "accuracy", "log_loss", "brier", "positive_rate")
REGRESSION_METRICS = ("mae", "rmse", "r2", "mape")
METRIC_ORDER = BINARY_METRICS + REGRESSION_METRICS + tuple(f"train_{m}" for m in BINARY_METRICS + REGRESSION_METRICS)
DIRECTION = {"roc_auc": "higher", "pr_auc": "higher", "precision": "higher", "recall": "higher", "f1": "higher",
             "accuracy": "higher", "log_loss": "lower", "brier": "lower", "mae": "lower", "rmse": "lower",
             "r2": "higher", "mape": "lower"}
PRIMARY = {"binary": "roc_auc", "regression": "rmse"}


def predict(estimator: Any, features: pd.DataFrame, *, task: str) -> np.ndarray:
    """The positive-class probability (binary) or the predicted value (regression)."""
    if task == "binary":
        if hasattr(estimator, "predict_proba"):
            return np.asarray(estimator.predict_proba(features))[:, 1].astype(float)
        return np.asarray(estimator.predict(features), dtype=float)
    return np.asarray(estimator.predict(features), dtype=float)


def _finite(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), 6)


def metrics(*, task: str, y: np.ndarray, score: np.ndarray, threshold: float = 0.5) -> dict[str, float | None]:
    """Binary: ROC/PR AUC and the threshold metrics; regression: MAE, RMSE, R², MAPE. None where undefined."""
    return _own_metrics(task=task, y=y, score=score, threshold=threshold)


def _own_metrics(*, task: str, y: np.ndarray, score: np.ndarray, threshold: float) -> dict[str, float | None]:
    y = np.asarray(y, dtype=float)
    score = np.asarray(score, dtype=float)
    if task != "binary":
        return {"mae": _finite(skm.mean_absolute_error(y, score)),
                "rmse": _finite(skm.root_mean_squared_error(y, score)),
                "r2": _finite(skm.r2_score(y, score)) if len(y) > 1 else None,
                "mape": _finite(skm.mean_absolute_percentage_error(y, score))}
    y = y.astype(int)
    predicted = (score >= threshold).astype(int)
    two = len(np.unique(y)) == 2
    clipped = np.clip(score, 1e-15, 1 - 1e-15)
    return {"roc_auc": _finite(skm.roc_auc_score(y, score)) if two else None,
            "pr_auc": _finite(skm.average_precision_score(y, score)) if two else None,
            "precision": _finite(skm.precision_score(y, predicted, zero_division=0)),
            "recall": _finite(skm.recall_score(y, predicted, zero_division=0)),
            "f1": _finite(skm.f1_score(y, predicted, zero_division=0)),
            "accuracy": _finite(skm.accuracy_score(y, predicted)),
            "log_loss": _finite(skm.log_loss(y, clipped, labels=[0, 1])),
            "brier": _finite(skm.brier_score_loss(y, score, pos_label=1)) if two or len(y) else None,
            "positive_rate": _finite(predicted.mean()) if len(y) else None}


def jsonable(params: dict[str, Any]) -> dict[str, Any]:
    """Hyperparameters as JSON values (anything else by its repr)."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, (np.integer, np.floating)):
            value = value.item()
        if isinstance(value, float) and not math.isfinite(value):
            value = str(value)
        out[key] = value if isinstance(value, (int, float, str, bool, type(None))) else repr(value)
    return out


def business_metrics(specs: list[dict], *, frame: pd.DataFrame, y: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """The model's declared business metrics over a labelled frame: amount sums and cost matrices."""
    y = np.asarray(y).astype(int)
    predicted = np.asarray(predicted).astype(int)
    out: dict[str, float] = {}
    for spec in specs:
        if spec.get("kind") == "amount_sum" and spec.get("column") in frame.columns:
            hit = (y == int(spec.get("label", 1))) & (predicted == int(spec.get("prediction", 0)))
            out[spec["name"]] = round(float(pd.to_numeric(frame[spec["column"]], errors="coerce").to_numpy()[hit].sum()), 2)
        elif spec.get("kind") == "cost_matrix":
            cells = {"tp": (y == 1) & (predicted == 1), "fp": (y == 0) & (predicted == 1),
                     "fn": (y == 1) & (predicted == 0), "tn": (y == 0) & (predicted == 0)}
            out[spec["name"]] = round(sum(float(spec.get(k, 0.0)) * int(mask.sum()) for k, mask in cells.items()), 2)
    return out
