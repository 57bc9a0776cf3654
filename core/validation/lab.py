"""The validation lab for one version: what-if scoring, explanations, importance, champion/challenger.

`open_lab` reads everything in one short unit of work (the verified estimators, the reference sample and
the recent labelled data); the other functions compute on the returned Lab without touching the database.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
from sqlmodel import Session, select

from core.access import Actor, require
from core.entities import Evaluation, ModelVersion, SliceFinding
from core.errors import InvalidInput
from core.models import scoring
from core.models.labelled_data import bounded, recent_labelled
from core.models.registry import ModelInfo, model_info, model_row
from core.monitoring import slices
from core.validation import explanations
from core.validation.comparison import (
    Evaluated,
    Importance,
    LoadedVersion,
    evaluate,
    load_version,
    permutation_importances,
    unseen_by,
)

MIN_EVALUATION_ROWS = 50
RECORD_CHOICES = 100
PRIMARY_MARGIN = {"roc_auc": 0.005, "rmse": 0.0}


@dataclass(frozen=True)
class Lab:
    model: ModelInfo
    version: LoadedVersion
    active: LoadedVersion | None  # the champion, when it is another version
    recent: pd.DataFrame  # recent labelled predictions neither version trained on: features, target, ts, ...
    window_start: datetime | None
    window_end: datetime | None
    segments: tuple[dict, ...] = ()  # the top segments of the champion's recent windows (conditions, text)

    @property
    def evaluation_data(self) -> pd.DataFrame:
        """Recent labelled data when there is enough of it, else the version's reference sample."""
        if self._recent_usable:
            return self.recent
        return self.version.reference

    @property
    def evaluation_source(self) -> str:
        if self._recent_usable:
            return (f"{len(self.recent):,} recent labelled predictions not used in training "
                    f"({self.window_start:%Y-%m-%d} – {self.window_end:%Y-%m-%d})")
        return f"the version's reference sample ({len(self.version.reference):,} rows)"

    @property
    def _recent_usable(self) -> bool:
        y = self.recent[self.model.target] if self.model.target in self.recent else pd.Series(dtype=float)
        return len(self.recent) >= MIN_EVALUATION_ROWS and (self.model.task != "binary" or y.nunique() == 2)


def open_lab(*, session: Session, actor: Actor, model: str, version: int | None = None) -> Lab:
    """Load a version (and the active one, its champion) with the recent labelled data, for the lab."""
    require(actor, "validation.view")
    m = model_row(session, model)
    row = load_version(session=session, actor=actor, model=model, version=version)
    active_row = session.exec(select(ModelVersion).where(ModelVersion.model_id == m.id,
                                                         ModelVersion.status == "active")).first()
    active = None
    if active_row is not None and active_row.number != row.info.number and active_row.artifact_path:
        active = load_version(session=session, actor=actor, model=model, version=active_row.number)
    recent, start, end = recent_labelled(session=session, model=model)
    recent = bounded(unseen_by(recent, [row, *([active] if active else [])])).reset_index(drop=True)
    champion_id = active_row.id if active_row is not None else None
    return Lab(model=model_info(m), version=row, active=active, recent=recent, window_start=start,
               window_end=end, segments=_champion_segments(session, champion_id) if champion_id else ())


SEGMENTS = 5


def _champion_segments(session: Session, version_id: int, windows: int = 8) -> tuple[dict, ...]:
    """The first segments stored for the champion's latest windows, newest first, each once."""
    rows = session.exec(select(SliceFinding).join(Evaluation, SliceFinding.evaluation_id == Evaluation.id)
                        .where(Evaluation.model_version_id == version_id, SliceFinding.status == "found",
                               SliceFinding.loss != "false_alarms")  # compared on recall: where cases were missed
                        .order_by(Evaluation.window_start.desc(), SliceFinding.id)).all()
    seen: dict[str, dict] = {}
    for rank in (1, 2):  # every window's first segment before any second one
        for row in rows[:windows * 4]:
            for seg in row.segments:
                if seg["rank"] == rank and seg["text"] not in seen and len(seen) < SEGMENTS:
                    seen[seg["text"]] = {"text": seg["text"], "conditions": seg["conditions"]}
    return tuple(seen.values())


# --- what-if --------------------------------------------------------------------------------

@dataclass(frozen=True)
class FeatureRange:
    name: str
    type: str  # numeric | categorical
    low: float | None
    high: float | None
    typical: float | str | None  # median or most frequent value
    categories: list[str]


def feature_ranges(lab: Lab) -> list[FeatureRange]:
    """Widget bounds for each feature the version reads, from its reference sample."""
    declared = {f["name"]: f["type"] for f in lab.model.features}
    ref = lab.version.reference
    out = []
    for name in lab.version.features:
        col = ref[name] if name in ref else pd.Series(dtype=float)
        kind = declared.get(name) or ("numeric" if pd.api.types.is_numeric_dtype(col) else "categorical")
        if kind == "numeric":
            values = pd.to_numeric(col, errors="coerce").dropna()
            out.append(FeatureRange(name=name, type=kind, low=float(values.min()) if len(values) else 0.0,
                                    high=float(values.max()) if len(values) else 1.0,
                                    typical=float(values.median()) if len(values) else 0.0, categories=[]))
        else:
            counts = col.dropna().astype(str).value_counts()
            out.append(FeatureRange(name=name, type=kind, low=None, high=None,
                                    typical=str(counts.index[0]) if len(counts) else None,
                                    categories=sorted(counts.index.tolist())))
    return out


def record_choices(lab: Lab) -> pd.DataFrame:
    """Logged predictions to start a what-if from: the most recent, and every labelled positive among the recent."""
    recent = lab.recent
    if recent.empty:
        return recent
    newest = recent.sort_values("ts").tail(RECORD_CHOICES)
    chosen = newest
    if lab.model.task == "binary":
        positives = recent[recent[lab.model.target] == 1].sort_values("ts").tail(RECORD_CHOICES)
        chosen = pd.concat([positives, newest]).drop_duplicates("prediction_id")
    return chosen.sort_values("ts", ascending=False).reset_index(drop=True)


def typical_record(lab: Lab) -> dict:
    """A starting record: the median of each numeric feature and the most frequent category."""
    return {r.name: r.typical for r in feature_ranges(lab)}


def record_frame(lab: Lab, record: dict) -> pd.DataFrame:
    """One record as the estimator's input, with each value checked against its feature's type."""
    missing = [f for f in lab.version.features if f not in record]
    if missing:
        raise InvalidInput(f"the record has no value for feature(s) {', '.join(missing)}")
    declared = {f["name"]: f["type"] for f in lab.model.features}
    row = {}
    for name in lab.version.features:
        value = record[name]
        if declared.get(name, "numeric") == "numeric" and not isinstance(value, str | type(None)):
            row[name] = float(value)
        elif declared.get(name, "numeric") == "numeric":
            try:
                row[name] = float(value) if value not in (None, "") else np.nan
            except ValueError as exc:
                raise InvalidInput(f"feature {name} needs a number, got {value!r}") from exc
        else:
            row[name] = None if value is None else str(value)
    return pd.DataFrame([row], columns=lab.version.features)


@dataclass(frozen=True)
class WhatIf:
    score: float
    threshold: float
    flagged: bool
    decision: str


def what_if(lab: Lab, record: dict) -> WhatIf:
    """Score one (edited) record and state the decision at the model's threshold."""
    frame = record_frame(lab, record)
    score = float(scoring.predict(lab.version.estimator, frame, task=lab.model.task)[0])
    if lab.model.task != "binary":
        return WhatIf(score=score, threshold=math.nan, flagged=False,
                      decision=f"predicted {lab.model.target}: {score:,.3f}")
    flagged = score >= lab.model.decision_threshold
    word = "at or above" if flagged else "below"
    return WhatIf(score=score, threshold=lab.model.decision_threshold, flagged=flagged,
                  decision=f"{'positive' if flagged else 'negative'} ({lab.model.target} = {int(flagged)}): "
                           f"score {score:.4f} is {word} the threshold {lab.model.decision_threshold:g}")


def explain(lab: Lab, record: dict, *, seed: int = 0) -> explanations.Explanation:
    """Each feature's contribution to this record's score (the method is named on the result)."""
    frame = record_frame(lab, record)
    return explanations.explain(lab.version.estimator, frame, lab.version.reference, lab.version.features,
                                task=lab.model.task, seed=seed)


def importance(lab: Lab) -> list[Importance]:
    """Permutation importance on the lab's evaluation data (recent labelled data when there is enough)."""
    return permutation_importances(lab.version, lab.model, lab.evaluation_data)


# --- champion / challenger ------------------------------------------------------------------

@dataclass(frozen=True)
class SegmentResult:
    """Champion and challenger on one segment where the champion lost most in its recent windows."""

    segment: str
    rows: int
    metric: str
    champion: float | None
    challenger: float | None
    outcome: str  # repaired | better | same | worse | too few rows


def _segment_metric(task: str, y: np.ndarray, score: np.ndarray, threshold: float) -> float | None:
    from core.models import metrics

    if task == "binary":
        return metrics.binary(y_true=y, score=None, predicted=metrics.decide(score=score, threshold=threshold))["recall"]
    return float(np.mean(np.abs(score - y))) if y.size else None


def segment_comparison(lab: Lab) -> tuple[SegmentResult, ...]:
    """Champion and challenger, segment by segment, on the lab's evaluation data: recall for a classifier
    (the segments explain missed cases), MAE for a regression."""
    if lab.active is None or not lab.segments:
        return ()
    data = lab.evaluation_data
    y = data[lab.model.target].to_numpy(float)
    champ = scoring.predict(lab.active.estimator, data[lab.active.features], task=lab.model.task)
    chall = scoring.predict(lab.version.estimator, data[lab.version.features], task=lab.model.task)
    metric, higher = ("recall", True) if lab.model.task == "binary" else ("mae", False)
    out = []
    for seg in lab.segments:
        inside = slices.mask(data, [slices.Condition.from_dict(c) for c in seg["conditions"]])
        rows = int(inside.sum())
        a = _segment_metric(lab.model.task, y[inside], champ[inside], lab.model.decision_threshold)
        b = _segment_metric(lab.model.task, y[inside], chall[inside], lab.model.decision_threshold)
        if a is None or b is None or rows < MIN_EVALUATION_ROWS:
            outcome = "too few rows"
        else:
            gain = (b - a) if higher else (a - b)
            outcome = "same" if abs(gain) < 0.02 else "worse" if gain < 0 else \
                "repaired" if (higher and a < 0.5 <= b) else "better"
        out.append(SegmentResult(segment=seg["text"], rows=rows, metric=metric, champion=a, challenger=b,
                                 outcome=outcome))
    return tuple(out)


@dataclass(frozen=True)
class ChallengerVerdict:
    champion: int | None
    challenger: int
    rows: int
    data: str
    metrics: list[tuple[str, float | None, float | None]]  # (metric, champion, challenger)
    business: list[tuple[str, float | None, float | None, str]]  # (label, champion, challenger, better direction)
    verdict: str  # challenger_wins | champion_holds | no_clear_winner | is_champion
    reason: str
    segments: tuple[SegmentResult, ...] = ()  # champion and challenger on the champion's weak segments


def _worse_business(champion: Evaluated, challenger: Evaluated, specs: list[dict]) -> list[str]:
    worse = []
    for spec in specs:
        a, b = champion.business.get(spec["name"]), challenger.business.get(spec["name"])
        if a is None or b is None:
            continue
        if (spec.get("better") == "lower" and b > a) or (spec.get("better", "higher") == "higher" and b < a):
            worse.append(spec.get("label_text") or spec["name"])
    return worse


def champion_challenger(lab: Lab) -> ChallengerVerdict:
    """The lab's version (challenger) against the active version (champion) on the same recent labelled data."""
    number = lab.version.info.number
    if lab.active is None:
        status = lab.version.info.status
        verdict = "is_champion" if status == "active" else "no_clear_winner"
        reason = (f"v{number} is the active version: it is the champion." if status == "active"
                  else f"{lab.model.name} has no active version with an artifact to compare v{number} with.")
        return ChallengerVerdict(champion=number if status == "active" else None, challenger=number, rows=0,
                                 data="", metrics=[], business=[], verdict=verdict, reason=reason)
    data = lab.evaluation_data
    champ, chall = evaluate(lab.active, lab.model, data), evaluate(lab.version, lab.model, data)
    names = scoring.BINARY_METRICS if lab.model.task == "binary" else scoring.REGRESSION_METRICS
    metrics = [(k, champ.metrics.get(k), chall.metrics.get(k)) for k in names]
    business = [(s.get("label_text") or s["name"], champ.business.get(s["name"]), chall.business.get(s["name"]),
                 s.get("better", "higher")) for s in lab.model.business_metrics if s["name"] in champ.business]
    primary = scoring.PRIMARY[lab.model.task]
    a, b = champ.metrics.get(primary), chall.metrics.get(primary)
    worse = _worse_business(champ, chall, lab.model.business_metrics)
    c, n = lab.active.info.number, number
    if a is None or b is None:
        verdict, reason = "no_clear_winner", f"{primary} cannot be computed on {lab.evaluation_source}."
    else:
        gain = (b - a) if scoring.DIRECTION[primary] == "higher" else (a - b)
        margin, where = PRIMARY_MARGIN[primary], f"on {lab.evaluation_source}"
        if gain > margin and not worse:
            verdict = "challenger_wins"
            reason = f"v{n} beats v{c} on {primary} ({b:.4f} vs {a:.4f}) and is worse on no business metric, {where}."
        elif gain > margin:
            verdict = "no_clear_winner"
            reason = f"v{n} beats v{c} on {primary} ({b:.4f} vs {a:.4f}) but is worse on {', '.join(worse)}, {where}."
        elif gain < -margin or worse:
            verdict = "champion_holds"
            reason = (f"v{c} stays ahead: {primary} {a:.4f} vs {b:.4f}"
                      + (f", and v{n} is worse on {', '.join(worse)}" if worse else "") + f", {where}.")
        else:
            verdict = "no_clear_winner"
            reason = f"v{n} and v{c} are within {margin} {primary} of each other ({b:.4f} vs {a:.4f}), {where}."
    return ChallengerVerdict(champion=c, challenger=n, rows=len(data), data=lab.evaluation_source, metrics=metrics,
                             business=business, verdict=verdict, reason=reason, segments=segment_comparison(lab))
