"""Scoring a fitted estimator on a frame of features, and its standard and business metrics (core.models.metrics)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from core.models import metrics as store_metrics

SCORE_COLUMN = "__score__"
PREDICTION_COLUMN = "__prediction__"
BINARY_METRICS = store_metrics.BINARY_METRICS
REGRESSION_METRICS = store_metrics.REGRESSION_METRICS
METRIC_ORDER = BINARY_METRICS + REGRESSION_METRICS + tuple(f"train_{m}" for m in BINARY_METRICS + REGRESSION_METRICS)
# Which way is better; the positive rate is a property of the decisions, not a quality, so it has none.
DIRECTION = {k: "higher" if up else "lower" for k, up in store_metrics.HIGHER_IS_BETTER.items() if k != "positive_rate"}
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
    if task == "binary":
        values = store_metrics.binary(y_true=y, score=score, predicted=store_metrics.decide(score=score,
                                                                                           threshold=threshold))
    else:
        values = store_metrics.regression(y_true=y, predicted=score)
    return {k: _finite(v) for k, v in values.items()}


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


def business_metrics(specs: list[dict], *, frame: pd.DataFrame, y: np.ndarray,
                     predicted: np.ndarray) -> dict[str, float | None]:
    """The model's declared business metrics over a labelled frame: amount sums and cost matrices."""
    columns = {spec["column"]: pd.to_numeric(frame[spec["column"]], errors="coerce").to_numpy()
               for spec in specs if spec.get("column") in frame.columns}
    values = store_metrics.business(specs=specs, y_true=y, predicted=np.asarray(predicted, dtype=float),
                                    columns=columns)
    return {k: (None if v is None else round(v, 2)) for k, v in values.items()}
