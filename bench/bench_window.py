"""Evaluate one large window through the product (`evaluation_store.evaluate`: the lake's engine running the
window plan's SQL aggregates, drift from their counts, the Evaluation row written) in bounded memory.

A synthetic model's lake tables are written on disk (20 fields: 14 continuous, 2 integer-coded, 4 categorical;
a binary score and labels for every prediction; one week of day partitions) at 1M and 10M rows (100M with
`--huge`, ~6 GB of disk). Each measurement runs in its own process, so its peak RSS is its own:
- the product: `evaluate` over the week, DuckDB limited by WATCHTOWER_LAKE_MEMORY (1GB here unless set);
- the baseline: a hand-written DuckDB query over the same Parquet files (read_parquet) computing the same
  aggregates (outcomes by score bin, decision and label; per-field fine histograms; category counts), nothing else;
- at 1M rows, Evidently's `Report([DataDriftPreset()])` on the same window read whole into pandas.
Imports are made before timing (a service has them warm). Targets: product ≤ 1.5× the baseline's time; peak RSS ≤ 2 GB; time 1M → 10M ≤ 13× (close to linear).

Usage: .venv/bin/python bench/bench_window.py [--huge]   (BENCH_QUICK=1: 100k and 1M rows, Evidently at 100k;
the time ratio is a target from 1M rows, below it an evaluation's fixed cost dominates).
Exits 1 when a target is missed.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402
from common import finish, quick, report  # noqa: E402

TARGET_RATIO = 1.5
TARGET_RSS_GB = 2.0
TARGET_GROWTH = 13.0
CONTINUOUS = [f"x{i:02d}" for i in range(14)]
INTEGERS = {"hour": 24, "items": 9}
CATEGORIES = {"merchant": ["grocery", "fuel", "travel", "online", "other"], "channel": ["pos", "web", "atm"],
              "country": [f"c{i:02d}" for i in range(20)], "card": ["debit", "credit"]}
FEATURES = ([{"name": n, "type": "numeric"} for n in [*CONTINUOUS, *INTEGERS]]
            + [{"name": n, "type": "categorical"} for n in CATEGORIES])
START = datetime(2026, 6, 1)
DAYS = 7
CHUNK = 1_000_000
SCORE_BINS = 2**18


def traffic(n: int, *, seed: int, shifted: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({name: rng.normal(50 + 3 * i + (6 if shifted and i % 5 == 0 else 0), 10 + i, n).round(3)
                          for i, name in enumerate(CONTINUOUS)})
    frame.loc[rng.random(n) < 0.02, "x03"] = np.nan
    for name, top in INTEGERS.items():
        frame[name] = rng.integers(0, top + (3 if shifted and name == "items" else 0), n)
    for name, values in CATEGORIES.items():
        weights = np.linspace(1.0, 2.0 if shifted and name == "merchant" else 1.0, len(values))
        frame[name] = rng.choice(values, n, p=weights / weights.sum())
    logit = -2.5 + 0.08 * (frame.x01.fillna(53) - 53) + 1.0 * (frame.merchant == "online")
    frame["score"] = (1 / (1 + np.exp(-logit))).round(6)
    frame["y"] = (rng.random(n) < frame.score).astype(float)
    return frame


# --- the child processes --------------------------------------------------------------------------------------

def _environment(home: str) -> None:
    os.environ.update(WATCHTOWER_HOME=home, WATCHTOWER_DATABASE_URL=f"sqlite:///{home}/watchtower.db")
    os.environ.setdefault("WATCHTOWER_LAKE_MEMORY", "1GB")


def generate(home: str, rows: int) -> None:
    """The model, its version and its reference in SQL; its predictions and labels written as Delta tables."""
    _environment(home)
    from deltalake import write_deltalake

    from core.access import SYSTEM
    from core.db import session_scope
    from core.lake import tables as lake
    from core.models import registry
    from core.projects import projects

    reference = traffic(20_000, seed=1, shifted=False).rename(columns={"score": "__score__"})
    with session_scope() as s:
        projects.create_project(session=s, actor=SYSTEM, key="BENCH", name="Bench")
        registry.create_model(session=s, actor=SYSTEM, project_key="BENCH", name="bench", task="binary", target="y",
                              features=FEATURES)
        registry.add_version(session=s, actor=SYSTEM, model="bench", reference=reference, status="active")
    with session_scope() as s:
        m = registry.model_row(s, "bench")
        model_id, version_id = m.id, registry.version_row(s, m).id
    where = lake.location()
    step = DAYS * 86_400 * 1_000_000 // rows  # microseconds between predictions
    for offset in range(0, rows, CHUNK):
        n = min(CHUNK, rows - offset)
        frame = traffic(n, seed=100 + offset // CHUNK, shifted=True)
        ts = np.datetime64(START, "us") + (np.arange(offset, offset + n, dtype=np.int64) * step).astype("timedelta64[us]")
        ids = pa.array([f"p{i}" for i in range(offset, offset + n)], pa.string())
        columns = {"prediction_id": ids, "version_id": pa.array(np.full(n, version_id, np.int64)),
                   "environment_id": pa.nulls(n, pa.int64()), "ts": pa.array(ts), "day": pa.array(ts.astype("datetime64[D]")),
                   "score": pa.array(frame.score.to_numpy(float)), "predicted": pa.nulls(n, pa.float64()),
                   "logged_by": pa.nulls(n, pa.string()), "batch": pa.array(["bench"] * n, pa.string())}
        for f in FEATURES:
            values = frame[f["name"]]
            columns[lake.feature_column(f["name"])] = pa.array(values.to_numpy(float), from_pandas=True) \
                if f["type"] == "numeric" else pa.array(values.astype(str).tolist(), pa.string())
        write_deltalake(where.table(model_id, "predictions"), pa.table(columns), mode="append", partition_by=["day"])
        write_deltalake(where.table(model_id, "labels"), pa.table({
            "prediction_id": ids, "label": pa.array(frame.y.to_numpy(float)),
            "arrived_at": pa.array(ts + np.timedelta64(1, "D"))}), mode="append")
    print(json.dumps({"model_id": model_id, "version_id": version_id}))


def product(home: str) -> dict:
    _environment(home)
    from evidently.legacy.calculations import stattests  # noqa: F401 - a running service has its imports warm
    from scipy import stats  # noqa: F401

    from core.access import SYSTEM
    from core.monitoring import evaluation_store

    started = time.perf_counter()
    (e,) = evaluation_store.evaluate(actor=SYSTEM, model="bench", start=START, end=START + timedelta(days=DAYS),
                                     overwrite=True)
    return {"seconds": time.perf_counter() - started, "rows": e.rows, "drifted": e.drifted_fields,
            "fields": {f["field"]: [f["method"], f["score"], f["drifted"]] for f in e.field_drift}}


def baseline(home: str) -> dict:
    """The same aggregates, hand-written over read_parquet of the same files."""
    _environment(home)
    from core.db import session_scope
    from core.lake import tables as lake
    from core.models import registry

    with session_scope() as s:
        m = registry.model_row(s, "bench")
        model_id, version_id = m.id, registry.version_row(s, m).id
    reference = traffic(20_000, seed=1, shifted=False)
    started = time.perf_counter()
    preds = [f.removeprefix("file://") for f in lake.table(model_id, "predictions").file_uris()]
    labels = [f.removeprefix("file://") for f in lake.table(model_id, "labels").file_uris()]
    where = f"version_id = {version_id} AND ts >= TIMESTAMP '{START}' AND ts < TIMESTAMP '{START + timedelta(days=DAYS)}'"
    numeric = []
    for i, name in enumerate([*CONTINUOUS, *INTEGERS]):
        values = reference[name].dropna().to_numpy(float)
        low, high, per = float(values.min()), float(values.max()), 2000 / max(float(values.std()), 0.001)
        x = f'"{lake.feature_column(name)}"'
        numeric.append(f"SELECT {i} AS field, count(*) AS n, min({x}) AS low, max({x}) AS high, sum({x}) AS total, "
                       f"sum(CASE WHEN {x} = floor({x}) THEN 0 ELSE 1 END) AS fractional FROM p WHERE {where} "
                       f"AND {x} IS NOT NULL GROUP BY CASE WHEN {x} < {low!r} THEN -1 WHEN {x} > {high!r} THEN -2 "
                       f"ELSE CAST(floor(({x} - {low!r}) * {per!r}) AS BIGINT) END")
    text = [f'SELECT {i} AS field, "{lake.feature_column(n)}" AS value, count(*) AS n FROM p WHERE {where} '
            f'AND "{lake.feature_column(n)}" IS NOT NULL GROUP BY 2' for i, n in enumerate(CATEGORIES)]
    with lake.duck() as con:
        con.execute(f"CREATE VIEW p AS SELECT * FROM read_parquet({preds!r}, hive_partitioning = true)")
        con.execute(f"CREATE VIEW l AS SELECT * FROM read_parquet({labels!r})")
        n = con.execute(f"SELECT count(*) FROM p WHERE {where}").fetchall()[0][0]
        outcomes = con.sql(
            f"SELECT CAST(floor(p.score * {SCORE_BINS}) AS BIGINT) AS k, p.score >= 0.5 AS d, l.label AS y, count(*), "
            "sum(p.score), sum(ln(greatest(least(p.score, 1 - 2.2e-16), 2.2e-16))), sum((p.score - l.label) ^ 2) "
            f"FROM p LEFT JOIN l ON l.prediction_id = p.prediction_id WHERE {where} GROUP BY 1, 2, 3").to_arrow_table()
        hist = con.sql(" UNION ALL ".join(numeric)).to_arrow_table()
        counts = con.sql(" UNION ALL ".join(text)).to_arrow_table()
    return {"seconds": time.perf_counter() - started, "rows": n,
            "groups": outcomes.num_rows + hist.num_rows + counts.num_rows}


def evidently(home: str) -> dict:
    """Evidently's Report on the window read whole into pandas (as evaluations were computed before)."""
    _environment(home)
    from evidently import Report
    from evidently.presets import DataDriftPreset

    from core.db import session_scope
    from core.lake.predictions import window_rows
    from core.models import registry

    with session_scope() as s:
        version_id = registry.version_row(s, registry.model_row(s, "bench")).id
    started = time.perf_counter()
    with session_scope() as s:
        rows = window_rows(s, version_id=version_id, start=START, end=START + timedelta(days=DAYS))
    reference = traffic(20_000, seed=1, shifted=False)
    current = rows.features
    for name in INTEGERS:
        current[name] = current[name].astype("int64")
    names = [f["name"] for f in FEATURES]
    snapshot = Report([DataDriftPreset()], include_tests=True).run(current[names], reference[names])
    decisions = {t["name"].removeprefix("Value Drift for column "): str(t["status"]).endswith("FAIL")
                 for t in snapshot.dict()["tests"] if t["name"].startswith("Value Drift for column ")}
    return {"seconds": time.perf_counter() - started, "rows": len(rows), "decisions": decisions}


def child(kind: str, home: str, *args: str) -> dict:
    """Run one measurement in its own process; its result with its peak RSS (GB)."""
    out = subprocess.run([sys.executable, __file__, "--child", kind, home, *args], capture_output=True, text=True,
                         check=False)
    if out.returncode:
        raise SystemExit(f"{kind} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        kind, home, *args = sys.argv[2:]
        if kind == "generate":
            generate(home, int(args[0]))
            return
        result = {"product": product, "baseline": baseline, "evidently": evidently}[kind](home)
        result["rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        print(json.dumps(result))
        return
    sizes = [100_000, 1_000_000] if quick() else [1_000_000, 10_000_000]
    if "--huge" in sys.argv:
        sizes.append(100_000_000)
    report_at = sizes[0]
    root = Path(tempfile.mkdtemp(prefix="bench_window_"))
    figures = {}
    try:
        for rows in sizes:
            home = str(root / f"rows{rows}")
            os.makedirs(home)
            started = time.perf_counter()
            child("generate", home, str(rows))
            size_gb = sum(f.stat().st_size for f in Path(home, "lake").rglob("*") if f.is_file()) / 2**30
            print(f"{rows:,} rows × {len(FEATURES)} fields written in {time.perf_counter() - started:.0f} s "
                  f"({size_gb:.2f} GB on disk)", flush=True)
            child("product", home)  # warm the file cache and the imports' bytecode alike for both sides
            ours = child("product", home)
            base = child("baseline", home)
            assert ours["rows"] == base["rows"] == rows, (ours["rows"], base["rows"])
            figures[rows] = ours
            print(f"  product (evaluate): {ours['seconds']:.2f} s, peak RSS {ours['rss_gb']:.2f} GB, "
                  f"{ours['drifted']} drifted fields")
            print(f"  baseline (hand-written DuckDB): {base['seconds']:.2f} s, peak RSS {base['rss_gb']:.2f} GB")
            ratio = ours["seconds"] / base["seconds"]
            if rows < 1_000_000:  # the fixed cost of an evaluation (reference, calibration, write) dominates
                print(f"  ratio {ratio:.2f}x (informative below 1M rows)")
            else:
                report(f"evaluate a {rows:,}-row window vs hand-written DuckDB", f"{ratio:.2f}x "
                       f"({ours['seconds']:.2f} s vs {base['seconds']:.2f} s)", f"<= {TARGET_RATIO}x",
                       ratio <= TARGET_RATIO)
            report(f"peak RSS evaluating {rows:,} rows", f"{ours['rss_gb']:.2f} GB", f"<= {TARGET_RSS_GB} GB",
                   ours["rss_gb"] <= TARGET_RSS_GB)
            if rows == report_at:
                theirs = child("evidently", home)
                mine = {k: v[2] for k, v in ours["fields"].items()}
                same = mine == theirs["decisions"]
                print(f"  Evidently Report on the window in pandas: {theirs['seconds']:.2f} s, peak RSS "
                      f"{theirs['rss_gb']:.2f} GB (product: {ours['seconds']:.2f} s, {ours['rss_gb']:.2f} GB)")
                report(f"drift decisions at {rows:,} rows same as Evidently Report",
                       f"{'same' if same else 'different'} on {len(mine)} fields", "same on every field", same)
            shutil.rmtree(home, ignore_errors=True)
        for small, large in zip(sizes, sizes[1:]):
            growth = figures[large]["seconds"] / figures[small]["seconds"]
            report(f"time growth {small:,} → {large:,} rows", f"{growth:.1f}x for {large // small}x the rows "
                   f"(RSS {figures[small]['rss_gb']:.2f} → {figures[large]['rss_gb']:.2f} GB)",
                   f"<= {TARGET_GROWTH * large / small / 10:.0f}x", growth <= TARGET_GROWTH * large / small / 10)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    finish()


if __name__ == "__main__":
    main()
