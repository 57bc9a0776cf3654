"""CBPE: before labels arrive, a well-calibrated model's performance is estimated close to what it turns out to be."""

import numpy as np
import pytest

from core.models import metrics
from core.monitoring import estimation

TOLERANCE = {"precision": 0.03, "recall": 0.03, "f1": 0.03, "accuracy": 0.01, "roc_auc": 0.02}


def _traffic(n: int, *, seed: int, shift: float = 0.0):
    """Scores from a calibrated model on the log-odds scale; labels drawn with exactly that probability."""
    rng = np.random.default_rng(seed)
    logit = rng.normal(-2.0 + shift, 1.5, n)
    probability = 1 / (1 + np.exp(-logit))
    y = (rng.random(n) < probability).astype(int)
    return probability, y


@pytest.mark.parametrize("shift", [0.0, 0.8])
def test_estimates_land_within_tolerance_of_the_realized_metrics(shift):
    ref_score, ref_y = _traffic(20_000, seed=1)
    calibration = estimation.calibrate(score=ref_score, y_true=ref_y)
    # The current window holds more high scores than the reference (covariate shift, no concept drift).
    score, y = _traffic(20_000, seed=2, shift=shift)
    estimated = estimation.estimate(calibration=calibration, score=score, threshold=0.5)
    realized = metrics.binary(y_true=y, score=score, predicted=metrics.decide(score=score, threshold=0.5))
    for name, tolerance in TOLERANCE.items():
        assert estimated[name] == pytest.approx(realized[name], abs=tolerance), name


def test_estimated_business_metrics_follow_the_expected_confusion_matrix():
    ref_score, ref_y = _traffic(20_000, seed=3)
    calibration = estimation.calibrate(score=ref_score, y_true=ref_y)
    score, y = _traffic(30_000, seed=4)
    amount = np.random.default_rng(5).lognormal(3.5, 0.8, score.size)
    specs = [{"name": "fraud_missed_amount", "kind": "amount_sum", "column": "amount", "label": 1, "prediction": 0},
             {"name": "net_value", "kind": "cost_matrix", "tp": 100, "fp": -5, "fn": -100, "tn": 0}]
    estimated = estimation.estimate(calibration=calibration, score=score, threshold=0.5, business_specs=specs,
                                    columns={"amount": amount})
    predicted = metrics.decide(score=score, threshold=0.5)
    realized = metrics.business(specs=specs, y_true=y, predicted=predicted, columns={"amount": amount})
    assert estimated["fraud_missed_amount"] == pytest.approx(realized["fraud_missed_amount"], rel=0.06)
    assert estimated["net_value"] == pytest.approx(realized["net_value"], rel=0.06)


def test_a_reference_without_both_classes_cannot_calibrate():
    assert estimation.calibrate(score=np.linspace(0, 1, 100), y_true=np.zeros(100)) is None


def test_a_miscalibrated_score_is_corrected_by_the_reference():
    """Scores twice too confident: the raw score would overstate precision; the calibration fixes it."""
    ref_score, ref_y = _traffic(20_000, seed=6)
    squash = np.sqrt  # monotone distortion of the probability
    calibration = estimation.calibrate(score=squash(ref_score), y_true=ref_y)
    score, y = _traffic(20_000, seed=7)
    estimated = estimation.estimate(calibration=calibration, score=squash(score), threshold=0.5)
    realized = metrics.binary(y_true=y, score=score, predicted=metrics.decide(score=squash(score), threshold=0.5))
    assert estimated["precision"] == pytest.approx(realized["precision"], abs=0.03)
    assert estimated["recall"] == pytest.approx(realized["recall"], abs=0.03)
