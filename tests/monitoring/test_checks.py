"""Checks on a model's evaluation windows: definition, validation, results, history, the standard template."""

from __future__ import annotations

import pytest
from sqlmodel import func, select

from core.access import SYSTEM, Actor
from core.db import session_scope
from core.entities import AuditEvent, Check, CheckResult
from core.errors import Conflict, Forbidden, InvalidInput
from core.monitoring import checks
from core.projects import projects
from tests.support import monitoring_world as world

MAYA = Actor(username="maya", roles=("ml_engineer",))


@pytest.fixture
def version_id(backend, tmp_path):
    return world.build(tmp_path)


def _define(**kw):
    base = {"project_key": "FRAUD", "model": "fraud-detector", "audience_roles": ["ml_engineer"]}
    with session_scope() as s:
        return checks.define_check(session=s, actor=MAYA, **{**base, **kw})


def _run(evaluation_id):
    with session_scope() as s:
        return {r.check_name: r for r in checks.run_checks(session=s, actor=SYSTEM, evaluation_id=evaluation_id)}


def test_weeks_of_green_then_red_show_as_ticks_and_turn_the_project_red(version_id):
    _define(name="auc", kind="metric", metric="roc_auc", threshold=0.85)
    with session_scope() as s:
        evs = [world.evaluation(s, version_id, w, auc=auc) for w, auc in enumerate([0.91, 0.90, 0.89, 0.82])]
    for ev in evs:
        _run(ev)
    with session_scope() as s:
        (hist,) = checks.project_histories(session=s, project_key="FRAUD")
        health = projects.get_project(session=s, key="FRAUD").health
    assert hist.icons == "✅✅✅❌"
    assert hist.latest == "error"
    assert "AUC 0.820" in hist.ticks[-1].message and "roc_auc" not in hist.ticks[-1].message
    assert health == "error"


def test_a_drop_against_the_training_baseline_is_relative(version_id):
    _define(name="auc drop", kind="metric_drop", metric="roc_auc", threshold=0.05)
    _define(name="log loss drop", kind="metric_drop", metric="log_loss", threshold=0.5)
    with session_scope() as s:
        small, large = world.evaluation(s, version_id, 0, auc=0.88), world.evaluation(s, version_id, 1, auc=0.84)
    ok, bad = _run(small)["auc drop"], _run(large)["auc drop"]
    assert ok.passed and ok.value == pytest.approx(0.02 / 0.90)
    assert not bad.passed and bad.value == pytest.approx(0.06 / 0.90)
    assert "0.840 against 0.900 at training (6.7% worse)" in bad.message
    assert _run(large)["log loss drop"].status == "pass"  # same log loss as at training


def test_business_drift_quality_volume_and_estimate_checks_read_their_part_of_the_window(version_id):
    _define(name="fraud missed amount", kind="business", metric="fraud_missed_amount", threshold=5000,
            audience_roles=["business"], business_wording="Fraud missed: {value:,.0f} EUR (limit {threshold:,.0f})")
    _define(name="drift", kind="drift_share", threshold=0.3, severity="warning")
    _define(name="card age", kind="field_drift", field="card_age_days")
    _define(name="missing", kind="missing_rate", threshold=0.05)
    _define(name="volume", kind="volume", threshold=4000)
    _define(name="estimated auc", kind="estimated", metric="roc_auc", threshold=0.85)
    with session_scope() as s:
        calm = world.evaluation(s, version_id, 0)
        storm = world.evaluation(s, version_id, 1, missed=12_500, drift_share=0.67, card_age_drifted=True,
                                 rows=1200, missing=0.2, auc=0.8)
    assert {n: r.status for n, r in _run(calm).items()} == dict.fromkeys(
        ["fraud missed amount", "drift", "card age", "missing", "volume", "estimated auc"], "pass")
    bad = _run(storm)
    assert {n: r.status for n, r in bad.items()} == {
        "fraud missed amount": "error", "drift": "warning", "card age": "error", "missing": "error",
        "volume": "error", "estimated auc": "error"}
    assert bad["fraud missed amount"].value == 12_500
    assert "card_age_days drifted" in bad["card age"].message
    assert "missing values in amount: 20.0%" in bad["missing"].message
    assert "1,200 rows" in bad["volume"].message


def test_running_checks_twice_on_a_window_records_each_result_once(version_id):
    _define(name="auc", kind="metric", metric="roc_auc", threshold=0.85)
    with session_scope() as s:
        ev = world.evaluation(s, version_id, 0)
    first, again = _run(ev), _run(ev)
    assert first["auc"].id == again["auc"].id
    with session_scope() as s:
        assert s.exec(select(func.count()).select_from(CheckResult)).one() == 1


def test_a_window_without_labels_has_no_data_rather_than_a_failure(version_id):
    _define(name="recall", kind="metric", metric="recall", threshold=0.7)
    with session_scope() as s:
        ev_id = world.evaluation(s, version_id, 0)
        from core.entities import Evaluation

        ev = s.get(Evaluation, ev_id)
        ev.metrics, ev.labelled_rows = {}, 0
        s.add(ev)
    result = _run(ev_id)["recall"]
    assert result.status == "no_data" and result.passed is None


def _counts():
    with session_scope() as s:
        return (s.exec(select(func.count()).select_from(Check)).one(),
                s.exec(select(func.count()).select_from(AuditEvent)).one())


@pytest.mark.parametrize("kw, message", [
    ({"kind": "metric", "metric": "mae", "threshold": 1}, "fraud-detector has no metric 'mae'"),
    ({"kind": "metric", "metric": "churn", "threshold": 1}, "has no metric 'churn'"),
    ({"kind": "business", "metric": "churn_cost", "threshold": 1}, "has no business metric 'churn_cost'"),
    ({"kind": "metric", "metric": "roc_auc", "threshold": "high"}, "threshold 'high' is not a number"),
    ({"kind": "metric", "metric": "roc_auc", "threshold": float("nan")}, "is not a finite number"),
    ({"kind": "metric_drop", "metric": "roc_auc", "threshold": 5}, "must lie between 0 and 1"),
    ({"kind": "field_drift", "field": "postcode"}, "field 'postcode' is not a feature"),
    ({"kind": "metric", "metric": "roc_auc", "threshold": 0.8, "audience_roles": ["ceo"]}, "unknown audience role"),
    ({"kind": "metric", "metric": "roc_auc", "threshold": 0.8, "audience_roles": [], "audience_users": ["zed"]},
     "unknown audience user(s) zed"),
    ({"kind": "metric", "metric": "roc_auc", "threshold": 0.8, "channels": ["#nowhere"]}, "unknown channel(s) #nowhere"),
    ({"kind": "business", "metric": "fraud_missed_amount", "threshold": 1, "business_wording": "Missed {amount}"},
     "unknown placeholder"),
    ({"kind": "sentiment", "threshold": 1}, "check kind 'sentiment' is not one of"),
])
def test_bad_definitions_are_refused_naming_the_problem_and_write_nothing(version_id, kw, message):
    before = _counts()
    with pytest.raises(InvalidInput) as err:
        _define(name="bad", **kw)
    assert message in str(err.value)
    assert _counts() == before


def test_only_people_who_manage_monitoring_define_checks_and_names_are_unique(version_id):
    with pytest.raises(Forbidden):
        with session_scope() as s:
            checks.define_check(session=s, actor=Actor("bianca", ("business",)), project_key="FRAUD", name="x",
                                kind="drift_share", threshold=0.3, audience_roles=["business"])
    _define(name="auc", kind="metric", metric="roc_auc", threshold=0.85)
    with pytest.raises(Conflict, match="already has a check named 'auc'"):
        _define(name="auc", kind="metric", metric="roc_auc", threshold=0.8)


def test_the_standard_template_applies_in_one_action_strict_for_high_risk_and_only_once(version_id):
    with session_scope() as s:
        applied = checks.apply_template(session=s, actor=MAYA, model="fraud-detector")
    by_name = {c.name: c for c in applied}
    assert set(by_name) == {"auc", "recall", "precision", "estimated auc", "data drift", "missing values"}
    assert by_name["auc"].kind == "metric_drop" and by_name["auc"].threshold == pytest.approx(0.03)
    assert by_name["estimated auc"].threshold == pytest.approx(0.90 * 0.97)
    assert {c.severity for c in applied} == {"error"}  # high risk: every failure is an error
    with session_scope() as s:
        again = checks.apply_template(session=s, actor=MAYA, model="fraud-detector")
        assert [c.id for c in again] == [c.id for c in applied]
        assert s.exec(select(func.count()).select_from(Check)).one() == 6


def test_a_window_re_evaluated_after_late_labels_updates_its_result(version_id):
    _define(name="auc", kind="metric", metric="roc_auc", threshold=0.85)
    with session_scope() as s:
        ev_id = world.evaluation(s, version_id, 0, auc=0.90)
    first = _run(ev_id)["auc"]
    with session_scope() as s:
        from core.entities import Evaluation

        ev = s.get(Evaluation, ev_id)
        ev.metrics = {**ev.metrics, "roc_auc": 0.80}  # more labels came in: the window now scores worse
        s.add(ev)
    again = _run(ev_id)["auc"]
    assert again.id == first.id and (first.status, again.status) == ("pass", "error")
    assert "AUC 0.800" in again.message
