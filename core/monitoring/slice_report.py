"""What the segments of one window say: a loss per row, the top slices, and each slice's figures.

Pure functions on one window's labelled rows. The loss is what a failed check is about: frauds missed
(recall), false alarms (precision), errors (accuracy), log loss (AUC and the score metrics), absolute error
(regression), or a declared business metric (an amount such as the fraud amount missed, or a cost matrix).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from core.models import metrics
from core.monitoring import slices

NOT_ENOUGH = "not_enough_data"
GROWTH_RATIO, GROWTH_SE = 1.5, 2.0  # a segment grew: 1.5× its reference share, by two standard errors or more
HARM_RATIO = 1.25  # a segment hurts: loss rate inside at least 1.25× the rate outside
PER = 1000  # business amounts are compared per 1,000 rows


@dataclass(frozen=True)
class Window:
    """One window's labelled rows, decided as the model decides, with what they are compared against."""

    task: str
    features: list[dict]
    business: list[dict]
    frame: pd.DataFrame  # aligned features of the labelled rows
    y: np.ndarray
    decision: np.ndarray
    score: np.ndarray | None
    reference: pd.DataFrame
    rows: int  # all rows of the window, labelled or not
    granularity: str = "custom"


@dataclass(frozen=True)
class Report:
    loss: str
    loss_label: str
    metric_label: str
    status: str  # found | none | not_enough_data
    reason: str
    rows: int
    segments: list[dict] = field(default_factory=list)
    grown: list[dict] = field(default_factory=list)


def losses(*, task: str, business: list[dict], has_score: bool) -> dict[str, str]:
    """The losses a window can be explained by: name -> what it counts."""
    if task == "binary":
        out = {"missed": "missed positives", "false_alarms": "false alarms", "errors": "wrong decisions"}
        if has_score:
            out["log_loss"] = "log loss"
    else:
        out = {"abs_error": "absolute error"}
    for spec in business:
        if spec.get("kind") in ("amount_sum", "cost_matrix"):
            out[spec["name"]] = spec.get("label_text") or spec["name"].replace("_", " ")
    return out


def loss_for_check(*, kind: str, metric: str, task: str, has_score: bool = True) -> str | None:
    """The loss that explains a failed metric or business check; None for other kinds."""
    if kind == "business":
        return metric
    if kind not in ("metric", "metric_drop", "estimated"):
        return None
    if task != "binary":
        return "abs_error"
    if metric == "recall":
        return "missed"
    if metric == "precision":
        return "false_alarms"
    if metric in ("roc_auc", "pr_auc", "log_loss", "brier") and has_score:
        return "log_loss"
    return "errors"


def _spec(window: Window, loss: str) -> dict | None:
    return next((b for b in window.business if b["name"] == loss), None)


def row_loss(window: Window, loss: str) -> np.ndarray:
    """Each labelled row's share of the loss (≥ 0)."""
    y, p = window.y, window.decision
    if loss == "missed":
        return ((y == 1) & (p == 0)).astype(float)
    if loss == "false_alarms":
        return ((y == 0) & (p == 1)).astype(float)
    if loss == "errors":
        return (y != p).astype(float)
    if loss == "log_loss":
        s = np.clip(window.score, 1e-15, 1 - 1e-15)
        return -(y * np.log(s) + (1 - y) * np.log(1 - s))
    if loss == "abs_error":
        return np.abs(p - y)
    spec = _spec(window, loss)
    if spec is None:
        raise KeyError(loss)
    if spec["kind"] == "amount_sum":
        values = pd.to_numeric(window.frame.get(spec["column"]), errors="coerce")
        values = np.nan_to_num(np.asarray(values, dtype=float)) if values is not None else np.zeros(len(y))
        hit = (y == float(spec.get("label", 1))) & (p == float(spec.get("prediction", 0)))
        value = np.where(hit, values, 0.0)
    else:
        cells = {(1, 1): spec.get("tp", 0), (0, 1): spec.get("fp", 0), (1, 0): spec.get("fn", 0),
                 (0, 0): spec.get("tn", 0)}
        value = np.select([(y == a) & (p == b) for a, b in cells], list(cells.values()), 0.0).astype(float)
        right = np.where(y == 1, cells[(1, 1)], cells[(0, 0)])
        # A row's loss is what its decision cost against the right decision for it.
        regret = (right - value) if spec.get("better", "higher") == "higher" else (value - right)
        return np.maximum(regret, 0.0)
    return value if spec.get("better", "lower") == "lower" else np.max(value) - value


def metric_label(business: list[dict], loss: str) -> str:
    """What the metric inside and outside a segment is, for a loss."""
    names = {"missed": "recall", "false_alarms": "precision", "errors": "accuracy", "log_loss": "log loss",
             "abs_error": "MAE"}
    if loss in names:
        return names[loss]
    spec = next((b for b in business if b["name"] == loss), {})
    return f"{spec.get('label_text') or loss.replace('_', ' ')} per {PER:,} rows"


def metric_on(window: Window, loss: str, rows: np.ndarray) -> float | None:
    """The metric the loss stands for, on some of the window's rows (a boolean mask)."""
    y, p = window.y[rows], window.decision[rows]
    if not y.size:
        return None
    if loss in ("missed", "false_alarms", "errors"):
        m = metrics.from_confusion(*metrics.confusion(y, p))
        return m["recall" if loss == "missed" else "precision" if loss == "false_alarms" else "accuracy"]
    if loss == "log_loss":
        return float(row_loss(window, loss)[rows].mean())
    if loss == "abs_error":
        return float(np.abs(p - y).mean())
    spec = _spec(window, loss)
    columns = {spec["column"]: pd.to_numeric(window.frame[spec["column"]], errors="coerce").to_numpy(float)[rows]} \
        if spec.get("column") in window.frame else {}
    value = metrics.business(specs=[spec], y_true=y, predicted=p, columns=columns).get(loss)
    return None if value is None else float(value) / y.size * PER


def _not_enough(window: Window, loss: str, reason: str) -> Report:
    return Report(loss=loss, loss_label=losses(task=window.task, business=window.business,
                                               has_score=window.score is not None).get(loss, loss),
                  metric_label=metric_label(window.business, loss), status=NOT_ENOUGH, reason=reason, rows=len(window.y))


def report(window: Window, loss: str, *, k: int = 5, alpha: float = slices.ALPHA) -> Report:
    """The top-k segments of a window for one loss, and the segments that grew most since the reference."""
    known = losses(task=window.task, business=window.business, has_score=window.score is not None)
    if loss not in known:
        return _not_enough(window, loss, f"{loss!r} is not a loss of this model (losses: {', '.join(known)})")
    n = len(window.y)
    if n == 0:
        return _not_enough(window, loss, "no labels in this window yet: segments need the ground truth")
    least = 2 * slices.MIN_ROWS
    if n < least:
        return _not_enough(window, loss, f"only {n} labelled row(s) in this window; segments need at least {least}")
    if window.task == "binary" and np.unique(window.y).size < 2:
        return _not_enough(window, loss, f"all {n} labels in this window are one class ({int(window.y[0])})")
    values = row_loss(window, loss)
    binning = slices.fit_binning(window.reference, window.features)
    codes = binning.codes(window.frame)
    spec = _spec(window, loss)
    # An amount is not sliced on itself: big amounts lose big amounts, which explains nothing.
    found = slices.find(codes, values, binning, k=k, alpha=alpha,
                        exclude=(spec["column"],) if spec and spec.get("kind") == "amount_sum" else ())
    label = metric_label(window.business, loss)
    figures = _Figures(window, loss, values, binning)
    segments = [figures.of(tuple(binning.conditions[c] for c in f.columns), slices.members(codes, binning, f.columns),
                           rank=i, score=f.score) for i, f in enumerate(found, 1)]
    grown = _grown(figures, codes, binning)
    if float(values.sum()) <= 0:
        status, reason = "none", f"no {known[loss]} in this window: nothing to explain"
    elif not segments:
        status, reason = "none", f"no segment stands out: the {known[loss]} are spread over the window"
    else:
        status, reason = "found", ""
    return Report(loss=loss, loss_label=known[loss], metric_label=label, status=status, reason=reason, rows=n,
                  segments=segments, grown=grown)


def _grew(share: float, rows: int, ref_share: float, ref_rows: int) -> bool:
    """Whether a segment's share grew beyond chance: 1.5× the reference's, and by two standard errors."""
    spread = np.sqrt(ref_share * (1 - ref_share) / max(ref_rows, 1) + share * (1 - share) / max(rows, 1))
    return share >= GROWTH_RATIO * ref_share and share - ref_share > GROWTH_SE * spread


class _Figures:
    """The figures of any segment of the window: size, shares, metric and loss inside and outside."""

    def __init__(self, window: Window, loss: str, values: np.ndarray, binning: slices.Binning) -> None:
        self.window, self.loss, self.values, self.total = window, loss, values, float(values.sum())
        self.ref_codes = binning.codes(window.reference) if len(window.reference) else None

    def of(self, conditions: tuple[slices.Condition, ...], rows: np.ndarray, *, rank: int = 0,
           score: float | None = None) -> dict:
        w, n = self.window, len(self.window.y)
        inside = np.zeros(n, dtype=bool)
        inside[rows] = True
        size = int(inside.sum())
        rate_in = float(self.values[inside].mean()) if size else 0.0
        rate_out = float(self.values[~inside].mean()) if size < n else 0.0
        ref = w.reference
        ref_share = float(slices.mask(ref, conditions).mean()) if len(ref) else None
        share = size / n
        grew = ref_share is not None and _grew(share, n, ref_share, len(ref))
        return {"rank": rank, "conditions": [c.as_dict() for c in conditions], "text": slices.describe(conditions),
                "words": slices.in_words(conditions), "rows": size, "share": share, "reference_share": ref_share,
                "grew": bool(grew), "harmful": bool(rate_in >= HARM_RATIO * rate_out and rate_in > 0),
                "metric": metric_label(w.business, self.loss), "inside": metric_on(w, self.loss, inside),
                "outside": metric_on(w, self.loss, ~inside), "loss_rate_inside": rate_in,
                "loss_rate_outside": rate_out,
                "loss_share": float(self.values[inside].sum() / self.total) if self.total > 0 else 0.0,
                "score": score}


def _grown(figures: _Figures, codes: np.ndarray, binning: slices.Binning, *, k: int = 5) -> list[dict]:
    """Single conditions whose share of rows grew most against the reference, harmful or not."""
    if figures.ref_codes is None:
        return []
    n, r = codes.shape[0], figures.ref_codes.shape[0]
    now = slices.column_rows(codes, binning) / n
    then = slices.column_rows(figures.ref_codes, binning) / r
    growth = now - then
    picked: list[tuple[int, np.ndarray]] = []
    for c in np.argsort(-growth, kind="stable"):
        if len(picked) == k or growth[c] <= 0:
            break
        if not _grew(float(now[c]), n, float(then[c]), r):
            continue
        rows = slices.members(codes, binning, (int(c),))
        if any(slices.overlap(rows, other) >= 0.8 for _c, other in picked):
            continue
        picked.append((int(c), rows))
    return [figures.of((binning.conditions[c],), rows) for c, rows in picked]
