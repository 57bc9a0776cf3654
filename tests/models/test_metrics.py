"""The store's metrics equal scikit-learn's on the same data; business metrics add up what the business sees."""

import numpy as np
import pytest
from sklearn import metrics as sk

from core.models import metrics


def _scored(n: int, *, seed: int, ties: bool = False):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.1).astype(int)
    score = np.clip(0.25 * rng.random(n) + 0.5 * y * rng.random(n), 0, 1)
    if ties:
        score = np.round(score, 2)  # many equal scores: the curve must treat ties as scikit-learn does
    return y, score


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("threshold", [0.3, 0.5])
def test_binary_metrics_equal_scikit_learn(ties, threshold):
    y, score = _scored(5000, seed=3, ties=ties)
    predicted = metrics.decide(score=score, threshold=threshold)
    got = metrics.binary(y_true=y, score=score, predicted=predicted)
    expected = {
        "roc_auc": sk.roc_auc_score(y, score),
        "pr_auc": sk.average_precision_score(y, score),
        "precision": sk.precision_score(y, predicted),
        "recall": sk.recall_score(y, predicted),
        "f1": sk.f1_score(y, predicted),
        "accuracy": sk.accuracy_score(y, predicted),
        "log_loss": sk.log_loss(y, y_proba=score, labels=[0, 1]),
        "brier": sk.brier_score_loss(y, score),
        "positive_rate": predicted.mean(),
    }
    assert set(got) == set(metrics.BINARY_METRICS)
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, rel=1e-9, abs=1e-12), name


def test_scores_at_the_extremes_do_not_break_log_loss():
    y = np.array([0, 1, 1, 0])
    score = np.array([0.0, 1.0, 0.0, 1.0])
    got = metrics.binary(y_true=y, score=score, predicted=metrics.decide(score=score, threshold=0.5))
    assert got["log_loss"] == pytest.approx(sk.log_loss(y, y_proba=score, labels=[0, 1]), rel=1e-6)


def test_undefined_metrics_are_none_not_invented():
    y = np.zeros(50)
    score = np.linspace(0, 0.4, 50)
    got = metrics.binary(y_true=y, score=score, predicted=metrics.decide(score=score, threshold=0.5))
    assert got["roc_auc"] is None and got["pr_auc"] is None, "a single class has no ROC or PR curve"
    assert got["precision"] is None, "nothing predicted positive: precision is undefined"
    assert got["accuracy"] == 1.0 and got["positive_rate"] == 0.0


def test_without_scores_only_decision_metrics_are_computed():
    y = np.array([1, 0, 1, 1, 0])
    predicted = np.array([1, 0, 0, 1, 1])
    got = metrics.binary(y_true=y, score=None, predicted=predicted)
    assert got["roc_auc"] is None and got["log_loss"] is None
    assert got["recall"] == pytest.approx(sk.recall_score(y, predicted))
    assert got["precision"] == pytest.approx(sk.precision_score(y, predicted))


@pytest.mark.parametrize("constant", [False, True])
def test_regression_metrics_equal_scikit_learn(constant):
    rng = np.random.default_rng(5)
    y = np.full(300, 7.0) if constant else rng.normal(100, 20, 300)
    y[:3] = 0.0 if not constant else 7.0  # zeros in the target: MAPE divides by machine epsilon like sklearn
    predicted = y + rng.normal(0, 5, 300)
    got = metrics.regression(y_true=y, predicted=predicted)
    assert got["mae"] == pytest.approx(sk.mean_absolute_error(y, predicted))
    assert got["rmse"] == pytest.approx(sk.root_mean_squared_error(y, predicted))
    assert got["r2"] == pytest.approx(sk.r2_score(y, predicted))
    assert got["mape"] == pytest.approx(sk.mean_absolute_percentage_error(y, predicted))


def test_fraud_missed_amount_sums_the_frauds_the_model_let_through():
    specs = [{"name": "fraud_missed_amount", "kind": "amount_sum", "column": "amount", "label": 1, "prediction": 0},
             {"name": "net_value", "kind": "cost_matrix", "tp": 100, "fp": -5, "fn": -100, "tn": 0}]
    y = np.array([1, 1, 0, 0, 1])
    predicted = np.array([1, 0, 1, 0, 0])
    amount = np.array([500.0, 120.0, 30.0, 10.0, 80.0])
    got = metrics.business(specs=specs, y_true=y, predicted=predicted, columns={"amount": amount})
    assert got["fraud_missed_amount"] == 200.0  # the two frauds predicted legitimate
    assert got["net_value"] == 100 * 1 - 5 * 1 - 100 * 2 + 0 * 1


def test_a_business_metric_over_a_column_that_was_not_logged_is_none():
    specs = [{"name": "fraud_missed_amount", "kind": "amount_sum", "column": "amount", "label": 1, "prediction": 0}]
    got = metrics.business(specs=specs, y_true=np.array([1]), predicted=np.array([0]), columns={})
    assert got == {"fraud_missed_amount": None}
