"""Performance estimated before labels arrive: confidence-based performance estimation (CBPE).

The model's scores are calibrated on the reference set (isotonic regression of the target on the score),
so each prediction carries a probability of being positive. Summing those probabilities gives the expected
confusion matrix at the decision threshold, hence expected precision, recall, F1 and accuracy; the expected
ROC curve gives the estimated ROC AUC. It holds while the relation between features and target stays as in
the reference (no concept drift), which is why realized metrics take over as labels come in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.isotonic import IsotonicRegression

from core.models import metrics

ESTIMATED_METRICS = ("precision", "recall", "f1", "accuracy", "roc_auc")


@dataclass(frozen=True)
class Calibration:
    """A fitted map from score to the probability that the label is positive."""

    _model: IsotonicRegression

    def probability(self, score: np.ndarray) -> np.ndarray:
        return np.clip(self._model.predict(np.asarray(score, dtype=float)), 0.0, 1.0)


def calibrate(*, score: np.ndarray, y_true: np.ndarray) -> Calibration | None:
    """Fit the calibration on reference scores and labels; None when the reference cannot support it."""
    s = np.asarray(score, dtype=float)
    y = np.asarray(y_true, dtype=float)
    keep = np.isfinite(s) & np.isfinite(y)
    s, y = s[keep], y[keep]
    if s.size < 20 or np.unique(y).size < 2:
        return None
    model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip", increasing=True)
    model.fit(s, y)
    return Calibration(model)


def expected_roc_auc(probability: np.ndarray, score: np.ndarray) -> float | None:
    """Area under the expected ROC curve: each row counts p positive and 1 - p negative at its score."""
    order = np.argsort(score, kind="mergesort")[::-1]
    s, p = score[order], probability[order]
    ends = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]
    tps = np.cumsum(p)[ends]
    fps = np.cumsum(1.0 - p)[ends]
    if tps[-1] <= 0 or fps[-1] <= 0:
        return None
    return float(np.trapezoid(np.r_[0.0, tps / tps[-1]], np.r_[0.0, fps / fps[-1]]))


def estimate(*, calibration: Calibration, score: np.ndarray, threshold: float, business_specs: list[dict] = (),
             columns: dict[str, np.ndarray] | None = None) -> dict[str, float | None]:
    """Estimated precision, recall, F1, accuracy, ROC AUC (and business metrics) of scored, unlabelled rows."""
    s = np.asarray(score, dtype=float)
    if s.size == 0:
        return dict.fromkeys(ESTIMATED_METRICS)
    p = calibration.probability(s)
    decided = metrics.decide(score=s, threshold=threshold).astype(bool)
    tp = float(p[decided].sum())
    fp = float((1.0 - p[decided]).sum())
    fn = float(p[~decided].sum())
    tn = float((1.0 - p[~decided]).sum())
    out = metrics.from_confusion(tp, fp, fn, tn)
    out["roc_auc"] = expected_roc_auc(p, s)
    for spec in business_specs:
        if spec.get("kind") == "cost_matrix":
            out[spec["name"]] = (spec.get("tp", 0) * tp + spec.get("fp", 0) * fp + spec.get("fn", 0) * fn
                                 + spec.get("tn", 0) * tn)
        elif spec.get("kind") == "amount_sum" and columns and spec["column"] in columns:
            label_p = p if float(spec.get("label", 1)) == 1.0 else 1.0 - p
            mask = decided if float(spec.get("prediction", 0)) == 1.0 else ~decided
            values = np.asarray(columns[spec["column"]], dtype=float)
            out[spec["name"]] = float(np.nansum(values[mask] * label_p[mask]))
    return out
