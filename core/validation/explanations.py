"""Individual explanations: each feature's contribution to one score, and how they add up.

- Linear models (a Pipeline ending in LogisticRegression): exact. Contribution of feature j =
  Σ coef_k · (x_k − mean_k) over the model inputs k that feature j produces (one-hot columns grouped back),
  with mean_k taken over the version's reference sample, in **log-odds** space. The contributions add up
  exactly to logit(score) − logit(baseline), where the baseline is the score of the reference-mean input.
- Any other estimator: Shapley sampling (Štrumbelj & Kononenko, 2014), model-agnostic, in **probability**
  space, with a fixed seed. Each sampled path starts from a background row z of the reference sample and
  switches features from z to x in a random order (each order paired with its reverse); a feature's
  contribution is the mean change in score when it switches. On every path the changes add up to
  f(x) − f(z), so the contributions add up to score − baseline, the baseline being the mean score over
  the background rows used, up to floating-point rounding (ADDITIVITY_TOLERANCE).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder
from threadpoolctl import threadpool_limits

from core.models.scoring import predict

ADDITIVITY_TOLERANCE = 1e-6
LINEAR_METHOD = "Exact linear attribution: coefficient × (value − reference mean), in log-odds"
SAMPLING_METHOD = "Shapley sampling (Štrumbelj & Kononenko), model-agnostic, fixed seed, in probability"
BACKGROUND_ROWS = 100
PATHS_PER_ROW = 10  # five orders and their reverses per background row


@dataclass(frozen=True)
class Contribution:
    feature: str
    value: Any
    contribution: float
    std_error: float  # sampling standard error (0 for exact methods)


@dataclass(frozen=True)
class Explanation:
    method: str
    space: str  # "log-odds" | "probability" | "prediction"
    score: float
    baseline: float  # the baseline score, in score units
    baseline_in_space: float  # the baseline in the contributions' space
    score_in_space: float
    contributions: list[Contribution]  # largest absolute contribution first
    tolerance: float

    @property
    def residual(self) -> float:
        """How far the contributions are from adding up to score − baseline, in their space."""
        total = sum(c.contribution for c in self.contributions)
        return abs(total - (self.score_in_space - self.baseline_in_space))


def _logit(p: float) -> float:
    p = min(max(p, 1e-15), 1 - 1e-15)
    return math.log(p / (1 - p))


def _input_groups(prepare: ColumnTransformer) -> list[tuple[str, int]] | None:
    """(feature, number of model inputs it produces) in output order; None if the layout is not readable."""
    groups: list[tuple[str, int]] = []
    for _name, transformer, cols in prepare.transformers_:
        if transformer == "drop" or len(cols) == 0:
            continue
        final = transformer.steps[-1][1] if isinstance(transformer, Pipeline) else transformer
        if isinstance(final, OneHotEncoder):
            if final.drop_idx_ is not None:
                return None
            groups.extend((str(c), len(cats)) for c, cats in zip(cols, final.categories_, strict=True))
        elif transformer == "passthrough" or len(final.get_feature_names_out(list(cols))) == len(cols):
            groups.extend((str(c), 1) for c in cols)
        else:
            return None
    return groups


def linear_layout(estimator: Any) -> tuple[ColumnTransformer, LogisticRegression, list[tuple[str, int]]] | None:
    """The preparation, the logistic regression and the input groups, if the estimator is explained exactly."""
    if not isinstance(estimator, Pipeline) or len(estimator.steps) != 2:
        return None
    prepare, final = estimator.steps[0][1], estimator.steps[-1][1]
    if not isinstance(final, LogisticRegression) or not isinstance(prepare, ColumnTransformer) \
            or final.coef_.shape[0] != 1 or prepare.remainder != "drop":
        return None
    groups = _input_groups(prepare)
    if groups is None or sum(n for _, n in groups) != final.coef_.shape[1]:
        return None
    return prepare, final, groups


def explain_linear(estimator: Any, record: pd.DataFrame, reference: pd.DataFrame, features: list[str]) -> Explanation:
    """Exact log-odds attribution for a Pipeline ending in LogisticRegression."""
    layout = linear_layout(estimator)
    if layout is None:
        raise ValueError("not a linear pipeline")
    prepare, final, groups = layout
    x = np.asarray(prepare.transform(record[features]), dtype=float)[0]
    mean = np.asarray(prepare.transform(reference[features]), dtype=float).mean(axis=0)
    coef = final.coef_[0]
    parts = coef * (x - mean)
    contributions, k = [], 0
    for name, n in groups:
        contributions.append(Contribution(feature=name, value=record.iloc[0][name],
                                          contribution=float(parts[k:k + n].sum()), std_error=0.0))
        k += n
    score = float(predict(estimator, record[features], task="binary")[0])
    base_logit = float(coef @ mean + final.intercept_[0])
    contributions.sort(key=lambda c: -abs(c.contribution))
    return Explanation(method=LINEAR_METHOD, space="log-odds", score=score, baseline=1 / (1 + math.exp(-base_logit)),
                       baseline_in_space=base_logit, score_in_space=_logit(score), contributions=contributions,
                       tolerance=ADDITIVITY_TOLERANCE)


def explain_sampling(estimator: Any, record: pd.DataFrame, reference: pd.DataFrame, features: list[str], *,
                     task: str = "binary", seed: int = 0, background_rows: int = BACKGROUND_ROWS,
                     paths_per_row: int = PATHS_PER_ROW) -> Explanation:
    """Shapley sampling with antithetic orders over a fixed-seed background sample of the reference data."""
    rng = np.random.default_rng(seed)
    d = len(features)
    background = reference[features]
    if len(background) > background_rows:
        background = background.iloc[np.sort(rng.choice(len(background), background_rows, replace=False))]
    background = background.reset_index(drop=True)
    half = max(1, paths_per_row // 2)
    orders = [rng.permutation(d) for _ in range(len(background) * half)]
    orders = [o for pair in zip(orders, [o[::-1] for o in orders], strict=True) for o in pair]
    z_index = np.repeat(np.arange(len(background)), 2 * half)
    position = np.empty((len(orders), d), dtype=int)  # position[m, j]: when feature j switches on path m
    for m, order in enumerate(orders):
        position[m, order] = np.arange(d)
    steps = np.arange(d + 1)
    take_x = steps[None, :, None] > position[:, None, :]  # (paths, d + 1, features)
    columns = {}
    for j, name in enumerate(features):
        z_values = background[name].to_numpy()[z_index]
        x_value = record.iloc[0][name]
        columns[name] = np.where(take_x[:, :, j], x_value, z_values[:, None]).reshape(-1)
    frame = pd.DataFrame(columns)
    for name in features:  # np.where over mixed values yields objects; restore the reference dtypes
        if pd.api.types.is_numeric_dtype(background[name]):
            frame[name] = pd.to_numeric(frame[name], errors="coerce")
    with threadpool_limits(limits=1):  # small batches: extra threads only contend on a busy machine
        scores = predict(estimator, frame, task=task).reshape(len(orders), d + 1)
        score = float(predict(estimator, record[features], task=task)[0])
    changes = np.diff(scores, axis=1)  # (paths, d): change at each step of the path
    per_feature = np.take_along_axis(changes, position, axis=1)  # (paths, features)
    phi = per_feature.mean(axis=0)
    se = per_feature.std(axis=0, ddof=1) / math.sqrt(len(orders)) if len(orders) > 1 else np.zeros(d)
    baseline = float(scores[:, 0].mean())
    contributions = sorted((Contribution(feature=name, value=record.iloc[0][name], contribution=float(phi[j]),
                                         std_error=float(se[j])) for j, name in enumerate(features)),
                           key=lambda c: -abs(c.contribution))
    space = "probability" if task == "binary" else "prediction"
    return Explanation(method=SAMPLING_METHOD.replace("probability", space), space=space, score=score, baseline=baseline, baseline_in_space=baseline, score_in_space=score,
                       contributions=contributions, tolerance=ADDITIVITY_TOLERANCE)


def explain(estimator: Any, record: pd.DataFrame, reference: pd.DataFrame, features: list[str], *,
            task: str = "binary", seed: int = 0) -> Explanation:
    """Exact for linear models, Shapley sampling otherwise."""
    if task == "binary" and linear_layout(estimator) is not None:
        return explain_linear(estimator, record, reference, features)
    return explain_sampling(estimator, record, reference, features, task=task, seed=seed)
