"""The validation lab: what-if, explanations that add up, importance, diagnostics, champion/challenger."""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import pytest

from core import validation
from core.db import session_scope
from core.models import training
from core.validation import diagnostics, explanations
from core.validation.comparison import Importance
from tests.support import lab_world as world


def _pipeline(algorithm: str, data, **params):  # noqa: ANN001, ANN202
    numeric = [f["name"] for f in world.FEATURES if f["type"] == "numeric"]
    pipe = training.build_pipeline(task="binary", algorithm=algorithm, numeric=numeric, categorical=["channel"],
                                   params=params)
    return pipe.fit(data[world.NAMES], data[world.TARGET])


def test_linear_explanations_are_exact_in_log_odds():
    data = world.traffic(3000, seed=11)
    model = _pipeline("logistic_regression", data)
    record = data[world.NAMES].iloc[[7]].copy()
    first = explanations.explain(model, record, data, world.NAMES)
    assert first.method == explanations.LINEAR_METHOD and first.space == "log-odds"
    assert first.residual < 1e-9
    assert first.score == pytest.approx(model.predict_proba(record)[0, 1])
    # Changing one feature moves only that feature's contribution, by exactly the change in log-odds.
    changed = record.assign(channel="online" if record.iloc[0]["channel"] != "online" else "pos")
    second = explanations.explain(model, changed, data, world.NAMES)
    before = {c.feature: c.contribution for c in first.contributions}
    after = {c.feature: c.contribution for c in second.contributions}
    assert all(after[f] == pytest.approx(before[f]) for f in world.NAMES if f != "channel")
    assert after["channel"] - before["channel"] == pytest.approx(second.score_in_space - first.score_in_space)


def test_tree_explanations_add_up_to_the_score_minus_the_baseline_with_a_fixed_seed():
    data = world.traffic(3000, seed=12)
    model = _pipeline("hist_gradient_boosting", data, max_iter=80)
    for i in (3, 50, 400):
        record = data[world.NAMES].iloc[[i]]
        result = explanations.explain(model, record, data, world.NAMES)
        assert result.method == explanations.SAMPLING_METHOD and result.space == "probability"
        total = sum(c.contribution for c in result.contributions)
        assert total == pytest.approx(result.score - result.baseline, abs=result.tolerance)
        assert result.residual <= result.tolerance
        assert result.score == pytest.approx(model.predict_proba(record)[0, 1])
        again = explanations.explain(model, record, data, world.NAMES)
        assert [c.contribution for c in again.contributions] == [c.contribution for c in result.contributions]
    assert [c.feature for c in result.contributions] == sorted(
        world.NAMES, key=lambda f: -abs(next(c.contribution for c in result.contributions if c.feature == f)))


def _lab(number: int | None = None) -> validation.Lab:
    with session_scope() as s:
        return validation.open_lab(session=s, actor=world.actor("maya"), model=world.MODEL, version=number)


def test_what_if_changes_the_score_and_the_decision_at_once(backend):
    world.build()
    world.train_version(world.traffic(3000, seed=13))
    lab = _lab()
    quiet = {**validation.typical_record(lab), "channel": "pos", "hour": 14, "amount": 20.0, "card_age_days": 2000}
    risky = {**quiet, "channel": "online", "hour": 2, "amount": 900.0, "card_age_days": 3}
    calm, alarm = validation.what_if(lab, quiet), validation.what_if(lab, risky)
    assert calm.score < lab.model.decision_threshold <= alarm.score
    assert (calm.flagged, alarm.flagged) == (False, True)
    assert alarm.decision.startswith("positive (is_fraud = 1)") and "at or above the threshold 0.3" in alarm.decision
    with pytest.raises(Exception, match="feature amount needs a number, got 'lots'"):
        validation.what_if(lab, {**quiet, "amount": "lots"})
    explained = validation.explain(lab, risky)
    assert explained.method == explanations.LINEAR_METHOD and explained.residual < 1e-9


def test_leakage_fires_on_a_planted_leaking_feature(backend):
    world.build(leak=True)
    data = world.traffic(3000, seed=14, leak=True)
    world.train_version(data, algorithm="hist_gradient_boosting", params={"max_iter": 40})
    report = diagnostics.diagnose(_lab())
    leak = next(d for d in report.items if d.name == "Leakage")
    assert leak.status == "fail" and leak.reason.startswith("chargeback_filed alone predicts is_fraud")
    assert leak.value >= diagnostics.LEAK_SINGLE_FEATURE


def test_leakage_stays_quiet_on_the_demo_model(demo_home):
    from core.access import Actor
    from core.validation import lab_results

    with session_scope() as s:  # what the worker found when v2 was registered, as the lab page shows it
        kept = lab_results.stored(session=s, actor=Actor("maya", ("ml_engineer",)), model="fraud-detector", version=2)
    assert kept.status == "done"
    report = kept.findings.report
    leak = next(d for d in report.items if d.name == "Leakage")
    assert leak.status == "pass", leak.reason
    assert {d.name for d in report.items} == {"Overfit", "Leakage", "Class imbalance", "Rows per feature",
                                              "Calibration", "Business metric vs active"}
    imbalance = next(d for d in report.items if d.name == "Class imbalance")
    assert imbalance.status == "warn" and "accuracy is misleading" in imbalance.reason


def test_each_diagnostic_passes_warns_or_fails_with_a_reason():
    assert diagnostics.overfit({"train_roc_auc": 0.99, "roc_auc": 0.80}, "binary").status == "fail"
    assert diagnostics.overfit({"train_roc_auc": 0.91, "roc_auc": 0.90}, "binary").status == "pass"
    assert diagnostics.overfit({"roc_auc": 0.90}, "binary").status == "warn"
    rng = np.random.default_rng(0)
    assert diagnostics.imbalance((rng.random(10_000) < 0.30).astype(int), target="y").status == "pass"
    assert diagnostics.imbalance((rng.random(10_000) < 0.02).astype(int), target="y").status == "warn"
    assert diagnostics.imbalance((rng.random(10_000) < 0.001).astype(int), target="y").status == "fail"
    assert diagnostics.too_few_rows(rows=150, inputs=20, rare_rows=30).status == "fail"
    assert diagnostics.too_few_rows(rows=50_000, inputs=20, rare_rows=5_000).status == "pass"
    score = rng.random(20_000)
    truthful = (rng.random(20_000) < score).astype(float)
    curve = diagnostics.calibration_curve(truthful, score)
    assert diagnostics.calibration(curve, truthful).status == "pass" and len(curve.counts) == 10
    overconfident = np.clip(score ** 0.25, 0, 1)
    bad = diagnostics.calibration(diagnostics.calibration_curve(truthful, overconfident), truthful)
    assert bad.status == "fail" and bad.reason.startswith("Scores are off the observed rates by")
    dominant = [Importance("amount", 0.30, 0.01), Importance("hour", 0.01, 0.01)]
    data = world.traffic(2000, seed=15)
    leak = diagnostics.leakage(data, features=world.FEATURES, target=world.TARGET, task="binary",
                               importances=dominant)
    assert leak.status == "warn" and leak.reason.startswith("amount carries 97% of the model's permutation importance")


def test_champion_challenger_and_business_on_the_same_recent_data(backend):
    world.build()
    champion = world.train_version(world.traffic(3000, seed=16, days=20))
    recent = world.traffic(4000, seed=17, start=world.START + timedelta(days=60), days=40, shift=0.3)
    world.log_traffic(recent, version=champion)
    challenger = world.train_version(recent.iloc[:2000], algorithm="hist_gradient_boosting",
                                     params={"max_iter": 60}, status="candidate")
    # A version that learned from shuffled labels flags no one: it misses every fraud.
    shuffled = recent.iloc[:2000][world.TARGET].sample(frac=1, random_state=0).to_numpy()
    blind = recent.iloc[:2000].assign(**{world.TARGET: shuffled})
    weak = world.train_version(blind, status="candidate")

    lab = _lab(challenger)
    verdict = validation.champion_challenger(lab)
    assert (verdict.champion, verdict.challenger, verdict.verdict) == (champion, challenger, "challenger_wins")
    assert verdict.rows == len(lab.recent) and 1000 < verdict.rows < len(recent)  # rows it trained on are left out
    metrics = dict((m, (a, b)) for m, a, b in verdict.metrics)
    assert metrics["roc_auc"][1] > metrics["roc_auc"][0]
    assert [b[0] for b in verdict.business] == ["Fraud missed (amount)", "Net value"]
    business = next(d for d in diagnostics.diagnose(lab).items if d.name == "Business metric vs active")
    assert business.status == "pass"

    weak_lab = _lab(weak)
    assert validation.champion_challenger(weak_lab).verdict == "champion_holds"
    worse = next(d for d in diagnostics.diagnose(weak_lab).items if d.name == "Business metric vs active")
    assert worse.status in ("warn", "fail") and f"for v{champion}" in worse.reason

    own = validation.champion_challenger(_lab(champion))
    assert own.verdict == "is_champion" and own.reason == f"v{champion} is the active version: it is the champion."


def test_permutation_importance_ranks_what_the_model_uses(backend):
    world.build()
    number = world.train_version(world.traffic(3000, seed=18), algorithm="hist_gradient_boosting",
                                 params={"max_iter": 60})
    ranked = validation.importance(_lab(number))
    assert sorted(i.feature for i in ranked) == sorted(world.NAMES)
    assert [i.mean for i in ranked] == sorted((i.mean for i in ranked), reverse=True)
    assert ranked[0].feature in ("channel", "amount") and ranked[0].mean > 0.02
    assert all(math.isfinite(i.std) for i in ranked)
