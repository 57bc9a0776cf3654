"""Diagnostics of a version, each pass / warn / fail with a one-sentence reason.

Overfit (train vs held-out gap), leakage (a feature that alone predicts the target, or dominates importance),
class imbalance, too few rows for the number of model inputs, calibration (reliability curve, Brier score),
and the business metrics against the active version on the same data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import r2_score, roc_auc_score

from core.models import scoring
from core.validation.comparison import Importance, evaluate
from core.validation.lab import Lab, importance

# Thresholds, stated once so the page can show them.
OVERFIT_AUC_GAP = (0.05, 0.10)  # warn at, fail at (train − held-out ROC AUC)
OVERFIT_RMSE_GAP = (0.15, 0.30)  # relative: (held-out − train) / held-out RMSE
LEAK_SINGLE_FEATURE = 0.97  # ROC AUC (binary) or R² (regression) of one feature alone: fail at
LEAK_IMPORTANCE_SHARE = 0.75  # one feature's share of the total permutation importance: warn at
IMBALANCE_MINORITY = (0.10, 0.005)  # warn below, fail below (share of the rarer class)
ROWS_PER_INPUT = (50, 10)  # warn below, fail below
EVENTS_PER_INPUT = (10, 5)  # warn below, fail below (rarer-class rows per model input)
CALIBRATION_ECE = (0.02, 0.05)  # warn above, fail above
BUSINESS_TOLERANCE = 0.05  # worse by at most this share: warn; more: fail
CALIBRATION_BINS = 10


@dataclass(frozen=True)
class Diagnostic:
    name: str
    status: str  # pass | warn | fail
    reason: str
    value: float | None = None


@dataclass(frozen=True)
class Calibration:
    predicted: list[float]  # mean score per bin
    observed: list[float]  # observed positive rate per bin
    counts: list[int]
    brier: float
    ece: float  # expected calibration error: count-weighted mean |observed − predicted|


@dataclass(frozen=True)
class DiagnosticsReport:
    items: list[Diagnostic]
    calibration: Calibration | None
    data: str  # what the data-based diagnostics were computed on


def overfit(metrics: dict, task: str) -> Diagnostic:
    """The gap between the training split and the held-out split."""
    if task == "binary":
        train, held = metrics.get("train_roc_auc"), metrics.get("roc_auc")
        if train is None or held is None:
            return Diagnostic("Overfit", "warn", "No training-split ROC AUC was recorded for this version, so the "
                                                 "train vs held-out gap is unknown.")
        gap = train - held
        status = "fail" if gap >= OVERFIT_AUC_GAP[1] else "warn" if gap >= OVERFIT_AUC_GAP[0] else "pass"
        return Diagnostic("Overfit", status, f"ROC AUC is {train:.3f} on the training split and {held:.3f} held out "
                                             f"(gap {gap:+.3f}; warn at {OVERFIT_AUC_GAP[0]}, fail at "
                                             f"{OVERFIT_AUC_GAP[1]}).", gap)
    train, held = metrics.get("train_rmse"), metrics.get("rmse")
    if train is None or not held:
        return Diagnostic("Overfit", "warn", "No training-split RMSE was recorded, so the train vs held-out gap is "
                                             "unknown.")
    gap = (held - train) / held
    status = "fail" if gap >= OVERFIT_RMSE_GAP[1] else "warn" if gap >= OVERFIT_RMSE_GAP[0] else "pass"
    return Diagnostic("Overfit", status, f"RMSE is {train:.4g} on the training split and {held:.4g} held out "
                                         f"({gap:.0%} worse held out).", gap)


def single_feature_power(values: pd.Series, y: pd.Series, *, task: str, categorical: bool, seed: int = 0) -> float:
    """How well one feature alone predicts the target: ROC AUC (either direction) or R².

    Categories are encoded by their target mean learned on the other half of the rows, so that an id-like
    column cannot look predictive by memorizing its rows.
    """
    y = pd.Series(np.asarray(y, dtype=float), index=values.index)
    if categorical:
        rng = np.random.default_rng(seed)
        half = rng.random(len(values)) < 0.5
        text = values.astype(str)
        encoded = pd.Series(np.nan, index=values.index)
        prior = float(y.mean())
        for fit_part in (half, ~half):
            stats = y[fit_part].groupby(text[fit_part]).agg(["sum", "count"])
            rate = (stats["sum"] + prior * 10) / (stats["count"] + 10)
            encoded[~fit_part] = text[~fit_part].map(rate).fillna(prior).to_numpy()
        x = encoded
    else:
        x = pd.to_numeric(values, errors="coerce")
        x = x.fillna(x.median() if x.notna().any() else 0.0)
    if task == "binary":
        if y.nunique() < 2 or x.nunique() < 2:
            return 0.5
        auc = roc_auc_score(y.astype(int), x)
        return float(max(auc, 1 - auc))
    if x.nunique() < 2:
        return 0.0
    if categorical:
        return float(max(0.0, r2_score(y, x)))
    return float(np.corrcoef(x.rank(), y.rank())[0, 1] ** 2)


def leakage(data: pd.DataFrame, *, features: list[dict], target: str, task: str,
            importances: list[Importance] | None) -> Diagnostic:
    """A single feature that predicts the target almost perfectly fails; one that dominates importance warns."""
    kinds = {f["name"]: f["type"] for f in features}
    powers = {name: single_feature_power(data[name], data[target], task=task, categorical=kind == "categorical")
              for name, kind in kinds.items() if name in data.columns}
    what = "ROC AUC" if task == "binary" else "R²"
    top = max(powers, key=powers.get) if powers else None
    if top is not None and powers[top] >= LEAK_SINGLE_FEATURE:
        return Diagnostic("Leakage", "fail", f"{top} alone predicts {target} with {what} {powers[top]:.3f}: it "
                                             f"probably carries the answer (fail at {LEAK_SINGLE_FEATURE}).",
                          powers[top])
    positive = [i for i in importances or [] if i.mean > 0]
    total = sum(i.mean for i in positive)
    if positive and total > 0:
        lead = max(positive, key=lambda i: i.mean)
        share = lead.mean / total
        if share >= LEAK_IMPORTANCE_SHARE:
            return Diagnostic("Leakage", "warn", f"{lead.feature} carries {share:.0%} of the model's permutation "
                                                 f"importance: check that it is known at prediction time.", share)
    best = f"; the strongest single feature is {top} ({what} {powers[top]:.3f})" if top else ""
    return Diagnostic("Leakage", "pass", f"No feature alone predicts {target} almost perfectly and none dominates "
                                         f"the importance{best}.", powers.get(top) if top else None)


def imbalance(y: pd.Series, *, target: str) -> Diagnostic:
    """The share of the rarer class in the training data's held-out sample."""
    y = pd.Series(y).dropna().astype(int)
    if y.empty:
        return Diagnostic("Class imbalance", "warn", "The reference sample has no labels to measure the classes on.")
    share = float(min(y.mean(), 1 - y.mean()))
    rare = int((y == 1).sum() if y.mean() <= 0.5 else (y == 0).sum())
    label = 1 if y.mean() <= 0.5 else 0
    if share < IMBALANCE_MINORITY[1]:
        return Diagnostic("Class imbalance", "fail", f"Only {share:.2%} of rows have {target} = {label} ({rare:,}): "
                                                     f"too few examples of the rare class to learn from.", share)
    if share < IMBALANCE_MINORITY[0]:
        return Diagnostic("Class imbalance", "warn", f"{share:.2%} of rows have {target} = {label}: accuracy is "
                                                     f"misleading, judge the model on PR AUC, precision and recall.",
                          share)
    return Diagnostic("Class imbalance", "pass", f"The rarer class ({target} = {label}) is {share:.1%} of rows.", share)


def too_few_rows(*, rows: int, inputs: int, rare_rows: int | None) -> Diagnostic:
    """Training rows (and rare-class rows) per model input, after one-hot encoding."""
    per_input = rows / max(inputs, 1)
    events = None if rare_rows is None else rare_rows / max(inputs, 1)
    fail = per_input < ROWS_PER_INPUT[1] or (events is not None and events < EVENTS_PER_INPUT[1])
    warn = per_input < ROWS_PER_INPUT[0] or (events is not None and events < EVENTS_PER_INPUT[0])
    extra = f" and about {events:,.0f} rare-class rows per input" if events is not None else ""
    status = "fail" if fail else "warn" if warn else "pass"
    verdict = {"fail": "too few to trust", "warn": "on the thin side", "pass": "enough"}[status]
    return Diagnostic("Rows per feature", status, f"{rows:,} training rows for {inputs} model inputs: "
                                                  f"{per_input:,.0f} rows per input{extra}, {verdict}.", per_input)


def calibration_curve(y: np.ndarray, score: np.ndarray, *, bins: int = CALIBRATION_BINS) -> Calibration:
    """Reliability curve on equal-count bins of the score, with the Brier score and the calibration error."""
    y = np.asarray(y, dtype=float)
    score = np.asarray(score, dtype=float)
    edges = np.unique(np.quantile(score, np.linspace(0, 1, bins + 1)))
    which = np.clip(np.searchsorted(edges, score, side="right") - 1, 0, max(len(edges) - 2, 0))
    predicted, observed, counts = [], [], []
    for b in np.unique(which):
        mask = which == b
        predicted.append(float(score[mask].mean()))
        observed.append(float(y[mask].mean()))
        counts.append(int(mask.sum()))
    ece = float(sum(c * abs(o - p) for p, o, c in zip(predicted, observed, counts, strict=True)) / max(len(y), 1))
    return Calibration(predicted=predicted, observed=observed, counts=counts,
                       brier=float(np.mean((score - y) ** 2)), ece=ece)


def calibration(curve: Calibration, y: np.ndarray) -> Diagnostic:
    """Pass when the scores match the observed rates (expected calibration error), with the Brier skill."""
    base = float(np.mean(y))
    reference_brier = base * (1 - base)
    skill = 1 - curve.brier / reference_brier if reference_brier > 0 else 0.0
    status = "fail" if curve.ece > CALIBRATION_ECE[1] else "warn" if curve.ece > CALIBRATION_ECE[0] else "pass"
    mean_score = float(np.dot(curve.predicted, curve.counts) / max(sum(curve.counts), 1))
    return Diagnostic("Calibration", status, f"Scores are off the observed rates by {curve.ece:.4f} on average "
                                             f"(mean score {mean_score:.2%} vs observed {base:.2%}); Brier "
                                             f"{curve.brier:.4f}, {skill:+.0%} skill over always predicting the base "
                                             f"rate.", curve.ece)


def business_not_worse(lab: Lab) -> Diagnostic:
    """The declared business metrics against the active version, on the same data."""
    name = "Business metric vs active"
    number = lab.version.info.number
    if not lab.model.business_metrics:
        return Diagnostic(name, "warn", f"{lab.model.name} declares no business metric to compare on.")
    if lab.active is None:
        reason = (f"v{number} is the active version." if lab.version.info.status == "active"
                  else f"{lab.model.name} has no active version with an artifact to compare with.")
        return Diagnostic(name, "pass", reason)
    data = lab.evaluation_data
    mine, theirs = evaluate(lab.version, lab.model, data), evaluate(lab.active, lab.model, data)
    worst, worst_text = 0.0, ""
    for spec in lab.model.business_metrics:
        a, b = theirs.business.get(spec["name"]), mine.business.get(spec["name"])
        if a is None or b is None:
            continue
        loss = (b - a) if spec.get("better") == "lower" else (a - b)
        relative = loss / abs(a) if a else (1.0 if loss > 0 else 0.0)
        if relative > worst:
            label = spec.get("label_text") or spec["name"]
            worst, worst_text = relative, f"{label} is {b:,.2f} against {a:,.2f} for v{lab.active.info.number}"
    if worst <= 0:
        return Diagnostic(name, "pass", f"v{number} is no worse than active v{lab.active.info.number} on any business "
                                        f"metric, on {lab.evaluation_source}.", 0.0)
    status = "fail" if worst > BUSINESS_TOLERANCE else "warn"
    return Diagnostic(name, status, f"{worst_text} ({worst:.0%} worse), on {lab.evaluation_source}.", worst)


def _inputs(lab: Lab) -> int:
    final = lab.version.estimator.steps[-1][1] if hasattr(lab.version.estimator, "steps") else lab.version.estimator
    return int(getattr(final, "n_features_in_", len(lab.version.features)))


def diagnose(lab: Lab, *, importances: list[Importance] | None = None) -> DiagnosticsReport:
    """All diagnostics of the lab's version."""
    model, info, ref = lab.model, lab.version.info, lab.version.reference
    if importances is None:
        importances = importance(lab)
    leak_data = ref if model.target in ref.columns else lab.evaluation_data
    items = [overfit(info.training_metrics, model.task),
             leakage(leak_data, features=[f for f in model.features if f["name"] in lab.version.features],
                     target=model.target, task=model.task, importances=importances)]
    rows = int(info.training_metrics.get("rows") or info.reference_rows)
    rare = None
    if model.task == "binary" and model.target in ref.columns:
        items.append(imbalance(ref[model.target], target=model.target))
        y = ref[model.target].dropna()
        rare = int(round(rows * min(y.mean(), 1 - y.mean()))) if len(y) else None
    items.append(too_few_rows(rows=rows, inputs=_inputs(lab), rare_rows=rare))
    curve = None
    data = lab.evaluation_data
    if model.task == "binary" and model.target in data.columns and len(data):
        y = data[model.target].to_numpy(dtype=float)
        curve = calibration_curve(y, scoring.predict(lab.version.estimator, data[lab.version.features], task="binary"))
        items.append(calibration(curve, y))
    items.append(business_not_worse(lab))
    return DiagnosticsReport(items=items, calibration=curve, data=lab.evaluation_source)
