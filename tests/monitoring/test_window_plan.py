"""A window measured by the lake's engine from aggregates equals Evidently's DataDriftPreset on the whole window,
and its metrics equal scikit-learn's, in small windows (grouped by value) and large ones (fine bins)."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from evidently import Report
from evidently.presets import DataDriftPreset
from sklearn import metrics as sk

from core.access import SYSTEM
from core.db import session_scope
from core.models import registry
from core.monitoring import evaluation_store, ingest, window_plan
from core.projects import projects

DAY = datetime(2026, 3, 2)
FEATURES = [{"name": "amount", "type": "numeric"}, {"name": "card_age_days", "type": "numeric"},
            {"name": "hour", "type": "numeric"}, {"name": "segment", "type": "numeric"},
            {"name": "rating", "type": "numeric"}, {"name": "flag", "type": "categorical"},
            {"name": "channel", "type": "categorical"}]
NAMES = [f["name"] for f in FEATURES]


def _frame(n: int, *, seed: int, shifted: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "amount": rng.lognormal(3.5 + (0.15 if shifted else 0.0), 0.8, n),  # continuous, with missing values
        "card_age_days": rng.integers(1, 600, n) if shifted else rng.integers(1, 3000, n),  # integer-coded
        "hour": rng.integers(0, 24, n),
        "segment": rng.integers(0, 4, n),  # few integers: Evidently types it as categorical
        "rating": rng.choice([1.0, 2.0, 3.0, 4.0], n, p=[0.1, 0.2, 0.3, 0.4] if shifted else None),
        "flag": rng.choice(["yes", "no"], n, p=[0.45, 0.55] if shifted else [0.5, 0.5]),  # binary
        "channel": rng.choice(["pos", "online", "atm"], n),
    })
    frame["score"] = 1 / (1 + np.exp(-(frame.hour - 12) / 4 - rng.normal(0, 1, n)))
    frame["is_fraud"] = (rng.random(n) < frame.score).astype(int)
    frame.loc[frame.sample(frac=0.05, random_state=seed).index, "amount"] = np.nan
    return frame


def _model(reference: pd.DataFrame) -> None:
    with session_scope() as s:
        projects.create_project(session=s, actor=SYSTEM, key="CARDS", name="Cards")
        registry.create_model(session=s, actor=SYSTEM, project_key="CARDS", name="fraud", task="binary",
                              target="is_fraud", features=FEATURES)
        registry.add_version(session=s, actor=SYSTEM, model="fraud", status="active",
                             reference=reference.rename(columns={"score": "__score__"}))


def _log(current: pd.DataFrame) -> None:
    window = current.assign(id=[f"p{i}" for i in range(len(current))],
                            ts=DAY + pd.to_timedelta(np.arange(len(current)) % 86_000, unit="s"))
    with session_scope() as s:
        ingest.ingest_predictions(session=s, actor=SYSTEM, model="fraud", source=window, id_col="id", ts_col="ts",
                                  score_col="score")
    with session_scope() as s:
        ingest.ingest_ground_truth(session=s, actor=SYSTEM, model="fraud", source=window, id_col="id",
                                   label_col="is_fraud")


def _evidently(reference: pd.DataFrame, current: pd.DataFrame) -> dict:
    data = Report([DataDriftPreset()], include_tests=True).run(current[NAMES], reference[NAMES]).dict()
    decisions = {t["name"].removeprefix("Value Drift for column "): str(t["status"]).endswith("FAIL")
                 for t in data["tests"] if t["name"].startswith("Value Drift for column ")}
    return {m["config"]["column"]: (m["value"], m["config"]["method"], decisions[m["config"]["column"]])
            for m in data["metrics"] if m["config"]["type"].endswith("ValueDrift")}


@pytest.mark.parametrize(("ref_rows", "cur_rows", "shifted", "exact_rows"), [
    (800, 20_000, True, window_plan.EXACT_ROWS),  # grouped by value; K-S, chi-squared, Z-test
    (3000, 20_000, False, window_plan.EXACT_ROWS),  # grouped by value; Wasserstein, Jensen-Shannon
    (800, 20_000, False, 1_000),  # fine bins
    (3000, 20_000, True, 1_000),
    # A window past EXACT_ROWS at its real size (the binned cases above take the same path at a lower bar).
    pytest.param(800, 200_000, False, window_plan.EXACT_ROWS, marks=pytest.mark.slow),
    pytest.param(3000, 200_000, True, window_plan.EXACT_ROWS, marks=pytest.mark.slow),
], ids=["small-ref-exact-drifted", "large-ref-exact", "small-ref-binned", "large-ref-binned-drifted",
        "small-ref-200k", "large-ref-200k-drifted"])
def test_drift_from_aggregates_equals_evidently_on_the_whole_window(sqlite_home, monkeypatch, ref_rows, cur_rows,
                                                                     shifted, exact_rows):
    monkeypatch.setattr(window_plan, "EXACT_ROWS", exact_rows)
    reference = _frame(ref_rows, seed=1, shifted=False)
    current = _frame(cur_rows, seed=2, shifted=shifted)
    _model(reference)
    _log(current)
    (e,) = evaluation_store.evaluate(actor=SYSTEM, model="fraud", start=DAY, end=DAY + timedelta(days=1))

    with session_scope() as s:
        ctx = evaluation_store.context_for(model=registry.model_row(s, "fraud"),
                                           version=registry.version_row(s, registry.model_row(s, "fraud")))
    aligned = evaluation_store.align(current, ctx.reference, FEATURES)
    expected = _evidently(ctx.reference, aligned)
    got = {f["field"]: f for f in e.field_drift}
    assert set(got) == set(expected)
    for name, (score, method, drifted) in expected.items():
        assert got[name]["score"] == pytest.approx(score, abs=1e-3), name
        assert (got[name]["method_label"], got[name]["drifted"]) == (method, drifted), name
    assert e.drifted_fields == sum(d for _s, _m, d in expected.values())
    methods = {f["method"] for f in e.field_drift}
    assert methods == ({"ks", "chisquare", "z"} if ref_rows <= 1000 else {"wasserstein", "jensenshannon"})
    if shifted:
        assert got["card_age_days"]["drifted"]

    # Metrics over the whole window, as scikit-learn computes them.
    predicted = (current.score >= 0.5).astype(int)
    assert e.rows == e.labelled_rows == cur_rows
    assert e.metrics["roc_auc"] == pytest.approx(sk.roc_auc_score(current.is_fraud, current.score), abs=1e-5)
    assert e.metrics["pr_auc"] == pytest.approx(sk.average_precision_score(current.is_fraud, current.score), abs=1e-4)
    assert e.metrics["log_loss"] == pytest.approx(sk.log_loss(current.is_fraud, current.score), rel=1e-9)
    assert e.metrics["brier"] == pytest.approx(sk.brier_score_loss(current.is_fraud, current.score), rel=1e-9)
    assert e.metrics["recall"] == pytest.approx(sk.recall_score(current.is_fraud, predicted), rel=1e-12)
    assert e.data_quality["missing_rate"]["amount"] == pytest.approx(current.amount.isna().mean())
    assert e.prediction_drift["field"] == "__score__"


def test_a_regression_window_in_fine_bins_keeps_its_errors_exact(sqlite_home, monkeypatch):
    monkeypatch.setattr(window_plan, "EXACT_ROWS", 100)
    rng = np.random.default_rng(7)
    frame = pd.DataFrame({"area": rng.normal(80, 25, 6000), "rooms": rng.integers(1, 8, 6000).astype(float),
                          "city": rng.choice(["north", "south", "east"], 6000)})
    frame["price"] = 1000 * frame.area + 5000 * frame.rooms + rng.normal(0, 8000, 6000)
    frame["predicted"] = 1000 * frame.area + 5000 * frame.rooms
    features = [{"name": "area", "type": "numeric"}, {"name": "rooms", "type": "numeric"},
                {"name": "city", "type": "categorical"}]
    with session_scope() as s:
        projects.create_project(session=s, actor=SYSTEM, key="HOMES", name="Home prices")
        registry.create_model(session=s, actor=SYSTEM, project_key="HOMES", name="prices", task="regression",
                              target="price", features=features)
        registry.add_version(session=s, actor=SYSTEM, model="prices", status="active",
                             reference=frame.head(2000).rename(columns={"predicted": "__prediction__"}))
    window = frame.tail(4000).assign(id=[f"h{i}" for i in range(4000)], ts=DAY + timedelta(hours=3))
    with session_scope() as s:
        ingest.ingest_predictions(session=s, actor=SYSTEM, model="prices", source=window, id_col="id",
                                  ts_col="ts", prediction_col="predicted")
        ingest.ingest_ground_truth(session=s, actor=SYSTEM, model="prices", source=window, id_col="id",
                                   label_col="price")
    (e,) = evaluation_store.evaluate(actor=SYSTEM, model="prices", every="1D")
    assert e.metrics["mae"] == pytest.approx(sk.mean_absolute_error(window.price, window.predicted), rel=1e-9)
    assert e.metrics["rmse"] == pytest.approx(np.sqrt(sk.mean_squared_error(window.price, window.predicted)), rel=1e-9)
    assert e.metrics["r2"] == pytest.approx(sk.r2_score(window.price, window.predicted), rel=1e-9)
    assert e.metrics["mape"] == pytest.approx(sk.mean_absolute_percentage_error(window.price, window.predicted),
                                              rel=1e-9)
    reference = frame.head(2000).rename(columns={"predicted": "__prediction__"})
    reference["city"] = reference.city.astype(object)
    data = Report([DataDriftPreset()]).run(window[["area", "rooms", "city"]].reset_index(drop=True),
                                           reference[["area", "rooms", "city"]]).dict()
    expected = {m["config"]["column"]: m["value"] for m in data["metrics"] if m["config"]["type"].endswith("ValueDrift")}
    got = {f["field"]: f["score"] for f in e.field_drift}
    assert got == pytest.approx(expected, abs=1e-3)
    assert e.prediction_drift["field"] == "__prediction__" and e.prediction_drift["method"] == "wasserstein"
