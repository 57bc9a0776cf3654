"""One evaluation aggregate over 1,000,000 logged predictions, on Spark `local[2]` against DuckDB in process.

The lake is written by the product's own ingest (predictions over four days, with a numeric and a categorical
feature, and labels for one prediction in four) into a temporary home. The query is the kind an evaluation plan
runs: the predictions of a time window LEFT JOINed with their labels, grouped by day bucket and amount bin, with
confusion counts at the decision threshold and sums of scores. Each engine runs it twice and the faster run
counts (Spark's first run also pays for its start, reported apart). Target: Spark completes and gives the same
rows in the same types as DuckDB (doubles to 1e-9); the time ratio is reported. Exits 1 when the results differ.

Usage: .venv/bin/python bench/bench_spark.py [ROWS]   (default 1,000,000, BENCH_QUICK=1: 100,000)
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from common import finish, report, sized  # noqa: E402

START = datetime(2026, 5, 1)


def build_lake(home: str, rows: int) -> int:
    """A fresh home with a fraud model whose lake holds `rows` predictions and labels for a quarter of them."""
    os.environ.update(WATCHTOWER_HOME=home, WATCHTOWER_DATABASE_URL=f"sqlite:///{home}/watchtower.db")
    for setting in ("WATCHTOWER_SPARK_REMOTE", "WATCHTOWER_SPARK_MASTER", "WATCHTOWER_LAKE_URL"):
        os.environ.pop(setting, None)
    from core.access import SYSTEM, Actor
    from core.db import session_scope
    from core.models import registry
    from core.monitoring import ingest
    from core.projects import projects

    maya = Actor(username="maya", roles=("ml_engineer",))
    reference = pd.DataFrame({"amount": [12.5, 80.0, 431.0, 9.9] * 25, "merchant type": ["fuel", "web"] * 50,
                              "is_fraud": [0, 0, 1, 0] * 25, "__score__": [0.1, 0.2, 0.9, 0.05] * 25})
    with session_scope() as s:
        projects.create_project(session=s, actor=SYSTEM, key="CARDS", name="Card payments")
        registry.create_model(session=s, actor=SYSTEM, project_key="CARDS", name="fraud", task="binary",
                              target="is_fraud", decision_threshold=0.5,
                              features=[{"name": "amount", "type": "numeric"},
                                        {"name": "merchant type", "type": "categorical"}])
        registry.add_version(session=s, actor=SYSTEM, model="fraud", reference=reference, status="active")
    rng = np.random.default_rng(7)
    step = 4 * 86_400 / rows
    for first in range(0, rows, 250_000):
        n = min(250_000, rows - first)
        amount = rng.lognormal(4, 1, n).round(2)
        amount[rng.random(n) < 0.03] = np.nan
        frame = pd.DataFrame({"id": [f"p{first + i:08d}" for i in range(n)],
                              "ts": pd.Timestamp(START) + pd.to_timedelta((np.arange(first, first + n) * step)
                                                                          .astype("int64"), unit="s"),
                              "score": rng.random(n).round(4), "amount": amount,
                              "merchant type": rng.choice(["grocery", "fuel", "travel", "online"], n)})
        with session_scope() as s:
            ingest.ingest_predictions(session=s, actor=maya, model="fraud", source=frame, id_col="id", ts_col="ts",
                                      score_col="score")
        labelled = frame.iloc[::4]
        with session_scope() as s:
            ingest.ingest_ground_truth(session=s, actor=maya, model="fraud", id_col="id", label_col="y",
                                       source=pd.DataFrame({"id": labelled["id"],
                                                            "y": (labelled["score"] > 0.7).astype(int)}))
    with session_scope() as s:
        return registry.model_row(s, "fraud").id


def query() -> str:
    from core.lake.engines import identifier, literal
    from core.lake.tables import feature_column

    amount = identifier(feature_column("amount"))
    merchant = identifier(feature_column("merchant type"))
    t = literal(0.5)
    return f"""
        SELECT bucket, bin, COUNT(*) AS n, COUNT(label) AS labelled, SUM(score) AS scores,
               SUM(CASE WHEN score >= {t} AND label = 1 THEN 1 ELSE 0 END) AS tp,
               SUM(CASE WHEN score >= {t} AND label = 0 THEN 1 ELSE 0 END) AS fp,
               SUM(CASE WHEN score < {t} AND label = 1 THEN 1 ELSE 0 END) AS fn,
               SUM(CASE WHEN merchant = {literal("fuel")} THEN 1 ELSE 0 END) AS fuel,
               MIN(ts) AS first, MAX(ts) AS last
        FROM (SELECT CAST(FLOOR(CAST(EXTRACT(HOUR FROM p.ts) AS DOUBLE) * {literal(0.25)}) AS BIGINT) AS bucket,
                     CAST(FLOOR({amount} * {literal(0.01)}) AS BIGINT) AS bin, p.score AS score, p.ts AS ts,
                     {merchant} AS merchant, l.label AS label
              FROM predictions AS p LEFT JOIN labels AS l ON p.prediction_id = l.prediction_id
              WHERE p.ts >= {literal(START + timedelta(hours=6))} AND p.ts < {literal(START + timedelta(days=3))})
             AS w
        GROUP BY bucket, bin ORDER BY bucket, bin NULLS FIRST"""


def timed(engine, sql: str, files: dict, schemas: dict) -> tuple[float, object]:
    started = time.perf_counter()
    result = engine.query(sql, views=files, schemas=schemas)
    return time.perf_counter() - started, result


def same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return a == b and type(a) is type(b)


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else sized(1_000_000, 100_000)
    with tempfile.TemporaryDirectory(prefix="bench-spark-") as home:
        started = time.perf_counter()
        model_id = build_lake(home, rows)
        print(f"lake of {rows:,} predictions written in {time.perf_counter() - started:.1f}s")
        from core.lake import spark, tables
        from core.lake.engines import DuckDBEngine, snapshot_files

        files, schemas = {}, {}
        for name in ("predictions", "labels"):
            files[name], schemas[name] = snapshot_files(model_id, name, version=tables.table(model_id, name).version())
        sql = query()
        duck = DuckDBEngine()
        duck_times = []
        for _ in range(2):
            seconds, on_duckdb = timed(duck, sql, files, schemas)
            duck_times.append(seconds)
        engine = spark.SparkEngine(master="local[2]")
        started = time.perf_counter()
        engine.session()
        start_seconds = time.perf_counter() - started
        spark_times = []
        try:
            for _ in range(2):
                seconds, on_spark = timed(engine, sql, files, schemas)
                spark_times.append(seconds)
        finally:
            spark.stop()
        duck_rows, spark_rows = on_duckdb.to_pylist(), on_spark.to_pylist()
        equal = (on_duckdb.schema == on_spark.schema and len(duck_rows) == len(spark_rows)
                 and all(same(d[c], s[c]) for d, s in zip(duck_rows, spark_rows) for c in d))
        print(f"{len(duck_rows)} result rows over {sum(r['n'] for r in duck_rows):,} predictions in the window; "
              f"Spark started in {start_seconds:.1f}s; runs: DuckDB {duck_times}, Spark {spark_times}")
        best_duck, best_spark = min(duck_times), min(spark_times)
        report(f"spark local[2] vs DuckDB, one evaluation aggregate over {rows:,} predictions",
               f"Spark {best_spark:.2f}s, DuckDB {best_duck:.2f}s, {best_spark / best_duck:.1f}x DuckDB",
               "the same rows on both", equal and len(duck_rows) > 0)
    finish()


if __name__ == "__main__":
    main()
