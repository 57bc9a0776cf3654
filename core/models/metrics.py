"""Standard and business metrics of a model on labelled rows, in numpy (equal to scikit-learn's definitions).

Computed with one sort and a few vector sums instead of scikit-learn's validated functions, because the
evaluation store computes them for every window. A metric that is undefined on the data (a single class,
no predicted positives) is None rather than a made-up number.
"""

from __future__ import annotations

import numpy as np

BINARY_METRICS = ("roc_auc", "pr_auc", "precision", "recall", "f1", "accuracy", "log_loss", "brier",
                  "positive_rate")
REGRESSION_METRICS = ("mae", "rmse", "r2", "mape")
# Whether a larger value is better, for charts and checks.
HIGHER_IS_BETTER = {"roc_auc": True, "pr_auc": True, "precision": True, "recall": True, "f1": True,
                    "accuracy": True, "log_loss": False, "brier": False, "positive_rate": True, "mae": False,
                    "rmse": False, "r2": True, "mape": False}


def _ratio(num: float, den: float) -> float | None:
    return float(num / den) if den else None


def _curve(y_true: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """True and false positives at each distinct score, highest first (scikit-learn's binary curve)."""
    order = np.argsort(score, kind="mergesort")[::-1]
    s, y = score[order], y_true[order]
    distinct = np.flatnonzero(np.diff(s))
    ends = np.r_[distinct, y.size - 1]
    tps = np.cumsum(y)[ends]
    fps = 1 + ends - tps
    return tps.astype(float), fps.astype(float)


def roc_auc(y_true: np.ndarray, score: np.ndarray) -> float | None:
    """Area under the ROC curve; None with a single class."""
    tps, fps = _curve(y_true, score)
    if tps[-1] == 0 or fps[-1] == 0:
        return None
    tpr = np.r_[0.0, tps / tps[-1]]
    fpr = np.r_[0.0, fps / fps[-1]]
    return float(np.trapezoid(tpr, fpr))


def pr_auc(y_true: np.ndarray, score: np.ndarray) -> float | None:
    """Average precision (scikit-learn's area under the precision-recall curve); None without positives."""
    tps, fps = _curve(y_true, score)
    if tps[-1] == 0:
        return None
    precision = tps / (tps + fps)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def confusion(y_true: np.ndarray, predicted: np.ndarray) -> tuple[int, int, int, int]:
    """(tp, fp, fn, tn) for 0/1 arrays."""
    y = y_true.astype(bool)
    p = predicted.astype(bool)
    tp = int(np.count_nonzero(y & p))
    fp = int(np.count_nonzero(~y & p))
    fn = int(np.count_nonzero(y & ~p))
    return tp, fp, fn, int(y.size - tp - fp - fn)


def from_confusion(tp: float, fp: float, fn: float, tn: float) -> dict[str, float | None]:
    """Precision, recall, F1 and accuracy from (possibly expected) confusion counts."""
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    f1 = _ratio(2 * tp, 2 * tp + fp + fn)
    return {"precision": precision, "recall": recall, "f1": f1, "accuracy": _ratio(tp + tn, tp + fp + fn + tn)}


def binary(*, y_true: np.ndarray, score: np.ndarray | None, predicted: np.ndarray) -> dict[str, float | None]:
    """Binary classification metrics; score-based ones are None when there is no score."""
    y = np.asarray(y_true, dtype=float)
    pred = np.asarray(predicted, dtype=float)
    out: dict[str, float | None] = dict.fromkeys(BINARY_METRICS)
    if y.size == 0:
        return out
    out.update(from_confusion(*confusion(y, pred)))
    out["positive_rate"] = float(pred.mean())
    if score is not None:
        s = np.asarray(score, dtype=float)
        out["roc_auc"] = roc_auc(y, s)
        out["pr_auc"] = pr_auc(y, s)
        eps = np.finfo(float).eps
        clipped = np.clip(s, eps, 1 - eps)
        out["log_loss"] = float(-np.mean(y * np.log(clipped) + (1 - y) * np.log(1 - clipped)))
        out["brier"] = float(np.mean((s - y) ** 2))
    return out


def regression(*, y_true: np.ndarray, predicted: np.ndarray) -> dict[str, float | None]:
    """MAE, RMSE, R² and MAPE (scikit-learn's definitions, including its R² for a constant target)."""
    y = np.asarray(y_true, dtype=float)
    p = np.asarray(predicted, dtype=float)
    if y.size == 0:
        return dict.fromkeys(REGRESSION_METRICS)
    err = p - y
    ss_res = float(np.sum(err ** 2))
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    r2 = (1.0 - ss_res / ss_tot) if ss_tot else (1.0 if ss_res == 0 else 0.0)
    eps = np.finfo(np.float64).eps
    return {"mae": float(np.mean(np.abs(err))), "rmse": float(np.sqrt(np.mean(err ** 2))), "r2": float(r2),
            "mape": float(np.mean(np.abs(err) / np.maximum(np.abs(y), eps)))}


def business(*, specs: list[dict], y_true: np.ndarray, predicted: np.ndarray,
             columns: dict[str, np.ndarray]) -> dict[str, float | None]:
    """The model's declared business metrics: `amount_sum` over a column, or a `cost_matrix` value."""
    y = np.asarray(y_true, dtype=float)
    p = np.asarray(predicted, dtype=float)
    out: dict[str, float | None] = {}
    for spec in specs:
        if spec.get("kind") == "amount_sum":
            values = columns.get(spec["column"])
            if values is None:
                out[spec["name"]] = None
                continue
            mask = (y == float(spec.get("label", 1))) & (p == float(spec.get("prediction", 0)))
            out[spec["name"]] = float(np.nansum(np.asarray(values, dtype=float)[mask]))
        elif spec.get("kind") == "cost_matrix":
            tp, fp, fn, tn = confusion(y, p) if y.size else (0, 0, 0, 0)
            out[spec["name"]] = float(spec.get("tp", 0) * tp + spec.get("fp", 0) * fp
                                      + spec.get("fn", 0) * fn + spec.get("tn", 0) * tn)
    return out


def decide(*, score: np.ndarray, threshold: float) -> np.ndarray:
    """The model's decision: positive when the score reaches the threshold."""
    return (np.asarray(score, dtype=float) >= threshold).astype(float)


def reference_baseline(frame, *, task: str, target: str, threshold: float) -> dict[str, float]:  # noqa: ANN001
    """The metrics of a reference sample's own scores (`__score__`) or predictions (`__prediction__`)."""
    if target not in frame:
        return {}
    y = np.asarray(frame[target], dtype=float)
    if task == "binary" and "__score__" in frame:
        s = np.asarray(frame["__score__"], dtype=float)
        ok = np.isfinite(y) & np.isfinite(s)
        out = binary(y_true=y[ok], score=s[ok], predicted=decide(score=s[ok], threshold=threshold))
    elif "__prediction__" in frame:
        p = np.asarray(frame["__prediction__"], dtype=float)
        ok = np.isfinite(y) & np.isfinite(p)
        out = binary(y_true=y[ok], score=None, predicted=p[ok]) if task == "binary" else \
            regression(y_true=y[ok], predicted=p[ok])
    else:
        return {}
    return {k: v for k, v in out.items() if v is not None}
