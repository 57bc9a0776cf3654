"""The evaluation store: windows of realized and estimated metrics, business metrics, quality and drift; append-only."""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as sk

from core import audit
from core.access import Actor
from core.db import session_scope
from core.errors import Conflict, Forbidden, InvalidInput
from core.models import registry
from core.monitoring import evaluation_store
from tests.support import evaluation_world as world


def stored(**kw) -> list[evaluation_store.EvaluationRead]:
    with session_scope() as s:
        return evaluation_store.list_evaluations(session=s, actor=world.MAYA, model=world.MODEL, **kw)


def test_daily_windows_measure_what_happened_and_estimate_what_is_not_labelled_yet(backend):
    world.build()
    days = world.three_days()
    evaluated = evaluation_store.evaluate(actor=world.MAYA, model=world.MODEL, every="1D")
    assert [(e.window_start, e.window_end) for e in evaluated] == [
        (world.DAY0 + timedelta(days=d), world.DAY0 + timedelta(days=d + 1)) for d in range(3)]
    first, second, third = stored()
    assert (first.rows, first.labelled_rows, third.rows, third.labelled_rows) == (600, 600, 600, 0)
    assert first.granularity == "1D" and first.created_by == "maya"

    # Realized metrics are the model's at its threshold on the labelled rows, as scikit-learn computes them.
    day = days[1]
    predicted = (day.score >= 0.5).astype(int)
    assert second.metrics["roc_auc"] == pytest.approx(sk.roc_auc_score(day.is_fraud, day.score))
    assert second.metrics["recall"] == pytest.approx(sk.recall_score(day.is_fraud, predicted))
    assert second.metrics["positive_rate"] == pytest.approx(predicted.mean())
    missed = day.amount[(day.is_fraud == 1) & (predicted == 0)].sum()
    assert second.business_metrics["fraud_missed_amount"] == pytest.approx(missed)

    # Before labels arrive, CBPE estimates stand in; they land near what the labelled days turned out to be.
    assert third.metrics == {} and third.business_metrics == {}
    assert set(third.estimated_metrics) >= {"precision", "recall", "f1", "accuracy", "roc_auc", "net_value"}
    assert second.estimated_metrics["roc_auc"] == pytest.approx(second.metrics["roc_auc"], abs=0.05)

    # The day of new cards drifted on card_age_days, with Evidently's method for a 2000-row reference.
    drifted = {f["field"]: f for f in third.field_drift}
    assert drifted["card_age_days"]["drifted"] and drifted["card_age_days"]["method"] == "wasserstein"
    assert drifted["card_age_days"]["threshold"] == 0.1
    assert not any(f["drifted"] for f in first.field_drift)
    assert third.drifted_fields >= 1 and third.drift_share == pytest.approx(third.drifted_fields / 3)
    assert third.prediction_drift["field"] == "__score__"
    assert first.data_quality == {"missing_rate": {"amount": 0.0, "merchant": 0.0, "card_age_days": 0.0}, "rows": 600}


def test_windows_are_append_only_and_an_overwrite_is_audited(backend):
    world.build()
    world.three_days(200)
    evaluation_store.evaluate(actor=world.MAYA, model=world.MODEL, every="7D")
    (week,) = stored()
    assert (week.window_start, week.window_end, week.rows) == (world.DAY0, world.DAY0 + timedelta(days=7), 600)
    with pytest.raises(Conflict, match="append-only, use --overwrite"):
        evaluation_store.evaluate(actor=world.MAYA, model=world.MODEL, every="7D")
    assert stored()[0].id == week.id

    (again,) = evaluation_store.evaluate(actor=world.MAYA, model=world.MODEL, every="7D", overwrite=True)
    assert again.id == week.id, "the window keeps its identity (check results point at it)"
    with session_scope() as s:
        trail = audit.events(session=s, entity_type="model_version")
    overwrite = next(e for e in trail if e.action == "evaluations.overwrite")
    assert overwrite.actor == "maya" and overwrite.details["replaced"][0]["before"]["labelled_rows"] == 400


def test_scheduled_runs_redo_only_windows_whose_labels_arrived(backend):
    world.build()
    days = world.three_days(200)
    first = evaluation_store.evaluate_new(actor=world.MAYA, model=world.MODEL, every="1D")
    assert len(first) == 3
    assert evaluation_store.evaluate_new(actor=world.MAYA, model=world.MODEL, every="1D") == []
    world.label(days[2])
    redone = evaluation_store.evaluate_new(actor=world.MAYA, model=world.MODEL, every="1D")
    assert redone == [first[2]]
    third = stored()[2]
    assert third.labelled_rows == 200 and third.metrics["recall"] is not None


def test_one_custom_window_and_refusals(backend):
    world.build()
    days = world.three_days(100)
    end = world.DAY0 + timedelta(hours=36)
    (window,) = evaluation_store.evaluate(actor=world.MAYA, model=world.MODEL, start=world.DAY0, end=end)
    assert window.granularity == "custom" and window.rows == 100 + int((days[1].ts < end).sum())
    with pytest.raises(InvalidInput, match="no predictions between 2026-06-01"):
        evaluation_store.evaluate(actor=world.MAYA, model=world.MODEL, start=world.DAY0 + timedelta(days=28),
                                  end=world.DAY0 + timedelta(days=30))
    with pytest.raises(InvalidInput, match="is not one of 1D, 7D, 1M"):
        evaluation_store.evaluate(actor=world.MAYA, model=world.MODEL, every="2W")
    with pytest.raises(Forbidden):
        evaluation_store.evaluate(actor=Actor("bianca", ("business",)), model=world.MODEL, every="1D")


def test_months_and_weeks_follow_the_calendar():
    got = evaluation_store.windows(start=world.DAY0 + timedelta(days=2, hours=5),
                                   end=world.DAY0 + timedelta(days=40), every="1M")
    assert [(a.month, a.day, b.month, b.day) for a, b in got] == [(5, 1, 6, 1), (6, 1, 7, 1)]
    weeks = evaluation_store.windows(start=world.DAY0 + timedelta(days=3), end=world.DAY0 + timedelta(days=9),
                                     every="7D")
    assert [a.weekday() for a, _ in weeks] == [0, 0] and weeks[0][0] == world.DAY0


def test_export_as_csv_and_json(backend):
    world.build()
    world.three_days(100)
    evaluation_store.evaluate(actor=world.MAYA, model=world.MODEL, every="1D")
    with session_scope() as s:
        text = evaluation_store.export_evaluations(session=s, actor=world.MAYA, model=world.MODEL, fmt="csv")
        full = json.loads(evaluation_store.export_evaluations(session=s, actor=world.MAYA, model=world.MODEL, fmt="json"))
    from io import StringIO

    table = pd.read_csv(StringIO(text))
    assert len(table) == 3 and {"roc_auc", "est_roc_auc", "fraud_missed_amount", "drift_share"} <= set(table.columns)
    assert table.loc[2, "most_drifted_field"] == "card_age_days"
    assert np.isnan(table.loc[2, "roc_auc"]) and table.loc[2, "labelled_rows"] == 0
    assert full[2]["field_drift"][0]["field"] == "amount" and len(full) == 3


def test_an_external_model_gets_its_training_baseline_from_the_reference_scores(backend):
    world.build()
    with session_scope() as s:
        baseline = registry.get_version(session=s, model=world.MODEL).training_metrics
    reference = world.traffic(2000, seed=100)
    predicted = (reference.score >= 0.5).astype(int)
    assert baseline["roc_auc"] == pytest.approx(sk.roc_auc_score(reference.is_fraud, reference.score))
    assert baseline["recall"] == pytest.approx(sk.recall_score(reference.is_fraud, predicted))


def test_a_regression_model_is_measured_by_its_errors(backend):
    from core.access import SYSTEM
    from core.monitoring import ingest
    from core.projects import projects

    rng = np.random.default_rng(4)
    frame = pd.DataFrame({"rooms": rng.integers(1, 8, 1500).astype(float), "area": rng.normal(80, 25, 1500).round(1),
                          "city": rng.choice(["north", "south"], 1500)})
    frame["price"] = 1000 * frame.area + 5000 * frame.rooms + rng.normal(0, 8000, 1500)
    frame["predicted"] = 1000 * frame.area + 5000 * frame.rooms
    with session_scope() as s:
        projects.create_project(session=s, actor=SYSTEM, key="HOMES", name="Home prices")
        registry.create_model(session=s, actor=SYSTEM, project_key="HOMES", name="prices", task="regression",
                              target="price", features=[{"name": "rooms", "type": "numeric"},
                                                        {"name": "area", "type": "numeric"},
                                                        {"name": "city", "type": "categorical"}])
        registry.add_version(session=s, actor=SYSTEM, model="prices", status="active",
                             reference=frame.head(1000).rename(columns={"predicted": "__prediction__"}))
    window = frame.tail(500).assign(id=[f"h{i}" for i in range(500)], ts=pd.Timestamp(2026, 5, 4, 12))
    with session_scope() as s:
        ingest.ingest_predictions(session=s, actor=world.MAYA, model="prices", source=window, id_col="id",
                                  ts_col="ts", prediction_col="predicted")
        ingest.ingest_ground_truth(session=s, actor=world.MAYA, model="prices", source=window, id_col="id",
                                   label_col="price")
    (e,) = evaluation_store.evaluate(actor=world.MAYA, model="prices", every="1D")
    assert e.metrics["mae"] == pytest.approx(sk.mean_absolute_error(window.price, window.predicted))
    assert e.metrics["r2"] == pytest.approx(sk.r2_score(window.price, window.predicted))
    assert e.estimated_metrics == {} and e.prediction_drift["field"] == "__prediction__"
    assert {f["method"] for f in e.field_drift} == {"ks", "z"}, "a 1000-row reference: the small-sample tests"
