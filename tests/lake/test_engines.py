"""A team with a Spark cluster gets the same evaluation answers as one running DuckDB in process: the queries an
evaluation plan runs over a model's logged predictions and labels give equal results on both engines, and the
engine is chosen by the settings alone.

Spark runs as `local[2]`, started once for the module's tests (they stay together on one test worker), or on the
Spark Connect server that WATCHTOWER_SPARK_REMOTE names."""

from __future__ import annotations

import math
import os
from datetime import date, datetime, timedelta

import pandas as pd
import pyarrow as pa
import pytest

from core.access import SYSTEM, Actor
from core.db import session_scope
from core.lake import engines
from core.lake import spark as spark_engine
from core.lake import tables as lake
from core.lake.engines import identifier, literal, snapshot_files
from core.models import registry
from core.monitoring import ingest
from core.projects import projects

MAYA = Actor(username="maya", roles=("ml_engineer",))
FEATURES = [{"name": "amount", "type": "numeric"}, {"name": "merchant type", "type": "categorical"},
            {"name": 'card "tier"', "type": "categorical"}]
DAY = datetime(2026, 5, 4)


@pytest.fixture(scope="session")
def spark() -> spark_engine.SparkEngine:
    """Spark local[2], started once; a Spark Connect server instead when WATCHTOWER_SPARK_REMOTE names one."""
    remote = os.environ.get(spark_engine.REMOTE_SETTING)
    engine = spark_engine.SparkEngine(remote=remote) if remote else spark_engine.SparkEngine(master="local[2]")
    engine.session()
    yield engine
    spark_engine.stop()


def traffic(n: int, *, first: int, day: datetime) -> pd.DataFrame:
    """n card payments from `first` on, a minute apart: scores on a grid, an amount missing every 7th payment, a
    merchant type missing every 11th."""
    return pd.DataFrame({
        "id": [f"tx-{first + i}" for i in range(n)],
        "ts": [day + timedelta(minutes=7 * i, microseconds=i) for i in range(n)],
        "score": [round(((first + i) % 20) / 20 + 0.01, 2) for i in range(n)],
        "amount": [None if (first + i) % 7 == 0 else (first + i) * 3.7 - 40 for i in range(n)],
        "merchant type": [None if (first + i) % 11 == 0 else ["fuel", "web", "travel"][(first + i) % 3]
                          for i in range(n)],
        'card "tier"': ["gold" if (first + i) % 4 == 0 else "plain" for i in range(n)],
    })


def a_fraud_model_with_two_versions_of_traffic_and_some_labels(*, reference_rows: int = 100) -> dict[str, int]:
    """Model `fraud`: v1 with two days of traffic, v2 with one; REFERENCE_ROWS decide Evidently's drift tests
    (up to 1,000: K-S, chi-squared, Z; above: Wasserstein, Jensen-Shannon)."""
    n = reference_rows // 4
    reference = pd.DataFrame({"amount": [12.5, 80.0, 431.0, 9.9] * n, "merchant type": ["fuel", "web"] * 2 * n,
                              'card "tier"': ["gold", "plain"] * 2 * n, "is_fraud": [0, 0, 1, 0] * n,
                              "__score__": [0.1, 0.2, 0.9, 0.05] * n})
    with session_scope() as s:
        projects.create_project(session=s, actor=SYSTEM, key="CARDS", name="Card payments")
        registry.create_model(session=s, actor=SYSTEM, project_key="CARDS", name="fraud", task="binary",
                              target="is_fraud", features=FEATURES, decision_threshold=0.5)
        first = registry.add_version(session=s, actor=SYSTEM, model="fraud", reference=reference, status="active")
        second = registry.add_version(session=s, actor=SYSTEM, model="fraud", reference=reference)
    for version, frame in ((1, traffic(150, first=0, day=DAY)), (1, traffic(100, first=150, day=DAY + timedelta(days=1))),
                           (2, traffic(80, first=250, day=DAY + timedelta(days=1)))):
        with session_scope() as s:
            ingest.ingest_predictions(session=s, actor=MAYA, model="fraud", source=frame, id_col="id", ts_col="ts",
                                      score_col="score", version=version)
    ids = [f"tx-{i}" for i in range(0, 330, 2)]  # every other payment got its label
    with session_scope() as s:
        ingest.ingest_ground_truth(session=s, actor=MAYA, model="fraud", id_col="id", label_col="y",
                                   source=pd.DataFrame({"id": ids, "y": [int(i % 5 == 0 or i % 20 > 14)
                                                                         for i in range(0, 330, 2)]}))
    with session_scope() as s:
        model_id = registry.model_row(s, "fraud").id
    return {"model": model_id, "v1": first.id, "v2": second.id}


def views(model_id: int, *, day_from: date | None = None, day_to: date | None = None
          ) -> tuple[dict[str, list[str]], dict[str, pa.Schema]]:
    files, schemas = {}, {}
    for name in ("predictions", "labels"):
        snapshot = snapshot_files(model_id, name, version=lake.table(model_id, name).version(),
                                  day_from=day_from if name == "predictions" else None,
                                  day_to=day_to if name == "predictions" else None)
        files[name], schemas[name] = snapshot
    return files, schemas


def same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return a == b and type(a) is type(b)


def answer(spark: spark_engine.SparkEngine, sql: str, model_id: int, **days: date) -> list[dict]:
    """The query's rows on DuckDB, after checking that Spark gives the same rows in the same types (doubles to
    1e-9)."""
    files, schemas = views(model_id, **days)
    on_duckdb = engines.DuckDBEngine().query(sql, views=files, schemas=schemas)
    on_spark = spark.query(sql, views=files, schemas=schemas)
    assert on_spark.schema == on_duckdb.schema, "the same columns in the same types"
    duck_rows, spark_rows = on_duckdb.to_pylist(), on_spark.to_pylist()
    assert len(spark_rows) == len(duck_rows), (spark_rows, duck_rows)
    for d, s in zip(duck_rows, spark_rows, strict=True):
        assert all(same(d[c], s[c]) for c in d), f"DuckDB {d} != Spark {s}"
    return duck_rows


@pytest.mark.slow
@pytest.mark.xdist_group("spark")
def test_counts_and_sums_at_the_decision_threshold_agree(spark, sqlite_home):
    ids = a_fraud_model_with_two_versions_of_traffic_and_some_labels()
    rows = answer(spark, f"""
        SELECT COUNT(*) AS n, COUNT(score) AS scored,
               SUM(CASE WHEN score >= {literal(0.5)} THEN 1 ELSE 0 END) AS flagged,
               SUM(score) AS total, MIN(score) AS lowest, MAX(score) AS highest,
               SUM(CASE WHEN score >= {literal(0.5)} THEN score ELSE {literal(0.0)} END) AS flagged_total
        FROM predictions""", ids["model"])
    assert rows[0]["n"] == 330 and rows[0]["flagged"] == sum(1 for i in range(330) if i % 20 >= 10)
    assert rows[0]["total"] == pytest.approx(sum(round((i % 20) / 20 + 0.01, 2) for i in range(330)))


@pytest.mark.slow
@pytest.mark.xdist_group("spark")
def test_predictions_joined_with_their_labels_give_the_same_confusion_counts(spark, sqlite_home):
    ids = a_fraud_model_with_two_versions_of_traffic_and_some_labels()
    t = literal(0.5)
    rows = answer(spark, f"""
        SELECT p.version_id AS version_id, COUNT(*) AS n, COUNT(l.label) AS labelled,
               SUM(CASE WHEN p.score >= {t} AND l.label = 1 THEN 1 ELSE 0 END) AS tp,
               SUM(CASE WHEN p.score >= {t} AND l.label = 0 THEN 1 ELSE 0 END) AS fp,
               SUM(CASE WHEN p.score < {t} AND l.label = 1 THEN 1 ELSE 0 END) AS fn,
               SUM(CASE WHEN p.score < {t} AND l.label = 0 THEN 1 ELSE 0 END) AS tn,
               MAX(l.arrived_at) AS last_label
        FROM predictions AS p LEFT JOIN labels AS l ON p.prediction_id = l.prediction_id
        GROUP BY p.version_id ORDER BY p.version_id""", ids["model"])
    assert [(r["version_id"], r["n"], r["labelled"]) for r in rows] == [(ids["v1"], 250, 125), (ids["v2"], 80, 40)]
    assert sum(r["tp"] + r["fp"] + r["fn"] + r["tn"] for r in rows) == 165


@pytest.mark.slow
@pytest.mark.xdist_group("spark")
def test_a_histogram_of_a_numeric_field_with_missing_values_has_the_same_bins(spark, sqlite_home):
    ids = a_fraud_model_with_two_versions_of_traffic_and_some_labels()
    amount = identifier(lake.feature_column("amount"))
    rows = answer(spark, f"""
        SELECT bin, COUNT(*) AS n, MIN(amount) AS low, MAX(amount) AS high
        FROM (SELECT CAST(FLOOR(({amount} - {literal(-40.0)}) * {literal(0.01)}) AS BIGINT) AS bin,
                     {amount} AS amount FROM predictions) AS b
        GROUP BY bin ORDER BY bin NULLS FIRST""", ids["model"])
    assert rows[0]["bin"] is None and rows[0]["n"] == len([i for i in range(330) if i % 7 == 0])
    assert [r["bin"] for r in rows[1:]] == list(range(13)) and sum(r["n"] for r in rows) == 330


@pytest.mark.slow
@pytest.mark.xdist_group("spark")
def test_categorical_fields_whose_names_needed_escaping_or_quoting_count_their_values_alike(spark, sqlite_home):
    ids = a_fraud_model_with_two_versions_of_traffic_and_some_labels()
    column = lake.feature_column("merchant type")
    assert column == "f_merchant%20type"
    rows = answer(spark, f"""
        SELECT {identifier(column)} AS value, COUNT(*) AS n FROM predictions
        GROUP BY {identifier(column)} ORDER BY n DESC, value NULLS LAST""", ids["model"])
    assert {r["value"] for r in rows} == {"fuel", "web", "travel", None}
    assert sum(r["n"] for r in rows) == 330 and rows[-1]["value"] is None
    tier = identifier(lake.feature_column('card "tier"'))
    assert tier == '"f_card ""tier"""'.replace(" ", "%20")
    rows = answer(spark, f"SELECT {tier} AS value, COUNT(*) AS n FROM predictions GROUP BY {tier} ORDER BY value",
                  ids["model"])
    assert rows == [{"value": "gold", "n": 83}, {"value": "plain", "n": 247}]


@pytest.mark.slow
@pytest.mark.xdist_group("spark")
def test_a_time_window_and_a_version_select_the_same_predictions(spark, sqlite_home):
    ids = a_fraud_model_with_two_versions_of_traffic_and_some_labels()
    # the bounds are the times of two payments, to the microsecond: the first is in the window, the last is not
    start = DAY + timedelta(minutes=7 * 30, microseconds=30)
    end = DAY + timedelta(days=1, minutes=7 * 17, microseconds=17)
    rows = answer(spark, f"""
        SELECT version_id, COUNT(*) AS n, MIN(ts) AS first, MAX(ts) AS last
        FROM predictions
        WHERE ts >= {literal(start)} AND ts < {literal(end)} AND version_id = {literal(ids["v1"])}
        GROUP BY version_id""", ids["model"])
    expected = [DAY + timedelta(minutes=7 * i, microseconds=i) for i in range(150)]
    expected += [DAY + timedelta(days=1, minutes=7 * i, microseconds=i) for i in range(100)]
    inside = [t for t in expected if start <= t < end]
    assert rows == [{"version_id": ids["v1"], "n": len(inside), "first": start, "last": max(inside)}]
    assert len(inside) == 120 + 17


@pytest.mark.slow
@pytest.mark.xdist_group("spark")
def test_each_distinct_score_counts_the_same_positives_and_negatives(spark, sqlite_home):
    ids = a_fraud_model_with_two_versions_of_traffic_and_some_labels()
    rows = answer(spark, f"""
        SELECT p.score AS score, SUM(CASE WHEN l.label = {literal(1.0)} THEN 1 ELSE 0 END) AS positives,
               SUM(CASE WHEN l.label = {literal(0.0)} THEN 1 ELSE 0 END) AS negatives
        FROM predictions AS p JOIN labels AS l ON p.prediction_id = l.prediction_id
        WHERE p.score IS NOT NULL
        GROUP BY p.score ORDER BY p.score DESC""", ids["model"])
    assert len(rows) == 10 and sum(r["positives"] + r["negatives"] for r in rows) == 165


@pytest.mark.slow
@pytest.mark.xdist_group("spark")
def test_a_window_with_no_files_is_an_empty_view_on_both_engines(spark, sqlite_home):
    ids = a_fraud_model_with_two_versions_of_traffic_and_some_labels()
    later = date(2026, 6, 1)
    files, _schemas = views(ids["model"], day_from=later, day_to=later)
    assert files["predictions"] == []
    rows = answer(spark, f"""
        SELECT COUNT(*) AS n, SUM(score) AS total, MAX(ts) AS last, COUNT(l.label) AS labelled,
               MIN({identifier(lake.feature_column("merchant type"))}) AS merchant
        FROM predictions AS p LEFT JOIN labels AS l ON p.prediction_id = l.prediction_id""",
                  ids["model"], day_from=later, day_to=later)
    assert rows == [{"n": 0, "total": None, "last": None, "labelled": 0, "merchant": None}]


def test_the_settings_choose_spark_or_duckdb(monkeypatch):
    monkeypatch.setattr(engines, "_spark", None)
    monkeypatch.delenv("WATCHTOWER_SPARK_REMOTE", raising=False)
    monkeypatch.delenv("WATCHTOWER_SPARK_MASTER", raising=False)
    assert isinstance(engines.current(), engines.DuckDBEngine)
    monkeypatch.setenv("WATCHTOWER_SPARK_MASTER", "local[2]")
    chosen = engines.current()
    assert isinstance(chosen, spark_engine.SparkEngine) and chosen.name == "spark" and chosen.master == "local[2]"
    assert engines.current() is chosen, "one Spark engine per process"


def test_spark_without_java_says_which_setting_needs_it(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(spark_engine.SparkUnavailable, match="WATCHTOWER_SPARK_MASTER=local\\[2\\].*Java 17"):
        spark_engine.SparkEngine(master="local[2]")


def test_spark_without_pyspark_says_which_setting_needs_it_and_the_extra(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pyspark", None)
    with pytest.raises(spark_engine.SparkUnavailable, match="WATCHTOWER_SPARK_REMOTE.*watchtower\\[spark\\]"):
        spark_engine.SparkEngine(remote="sc://127.0.0.1:15102")


def _equal(duck: object, spark_value: object, where: str) -> None:
    if isinstance(duck, dict):
        assert duck.keys() == spark_value.keys(), where
        for k in duck:
            _equal(duck[k], spark_value[k], f"{where}.{k}")
    elif isinstance(duck, list):
        assert len(duck) == len(spark_value), where
        for i, (d, s) in enumerate(zip(duck, spark_value, strict=True)):
            _equal(d, s, f"{where}[{i}]")
    elif isinstance(duck, float) and isinstance(spark_value, float):
        assert math.isclose(duck, spark_value, rel_tol=1e-9, abs_tol=1e-9), f"{where}: {duck} != {spark_value}"
    else:
        assert duck == spark_value, f"{where}: {duck!r} != {spark_value!r}"


@pytest.mark.slow
@pytest.mark.xdist_group("spark")
@pytest.mark.parametrize("reference_rows", [100, 2000])
@pytest.mark.parametrize("exact_rows", [None, 10], ids=["grouped by value", "in fine bins"])
def test_a_window_evaluated_on_spark_equals_the_same_window_on_duckdb(spark, sqlite_home, reference_rows, exact_rows):
    from dataclasses import asdict

    from core.entities import Model, ModelVersion
    from core.monitoring import evaluation_store, window_plan

    ids = a_fraud_model_with_two_versions_of_traffic_and_some_labels(reference_rows=reference_rows)
    with session_scope() as s:
        ctx = evaluation_store.context_for(model=s.get(Model, ids["model"]), version=s.get(ModelVersion, ids["v1"]))
    window = {"model_id": ids["model"], "version_id": ids["v1"], "start": DAY, "end": DAY + timedelta(days=2),
              "granularity": "custom", "exact_rows": exact_rows}
    on_duckdb = asdict(window_plan.measure(ctx, engine=engines.DuckDBEngine(), **window))
    on_spark = asdict(window_plan.measure(ctx, engine=spark, **window))
    assert on_duckdb["rows"] == 250 and on_duckdb["labelled_rows"] == 125 and on_duckdb["metrics"]
    assert len(on_duckdb["field_drift"]) == len(FEATURES) and any(f["method"] for f in on_duckdb["field_drift"])
    _equal(on_duckdb, on_spark, "window")
