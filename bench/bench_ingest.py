"""Ingest 1,000,000 predictions with 20 features from CSV, against a raw bulk insert of the same rows.

Target: ≤ 2× the raw insert into the same database (sqlite3 `executemany` on SQLite, psycopg `COPY` on
PostgreSQL) and a peak memory ≤ 1.5 GB. Each measured run is a subprocess on a fresh database, and the
ingest's peak resident memory is read there with `resource.getrusage`. The raw insert gets its rows
ready-made in memory (ids, timestamps, scores and the features as JSON text) and only its insert and commit
are timed; the ingest starts from the CSV file, so its figure includes reading, validating and encoding.

PostgreSQL runs in private schemas of the benchmarks' database (bench/common.py). Exits 1 when a target is missed.

Usage: .venv/bin/python bench/bench_ingest.py [ROWS]   (default 1,000,000, BENCH_QUICK=1: 100,000; PostgreSQL
when reachable)
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from common import finish, postgres_url, private_schema, report, sized  # noqa: E402

TARGET_RATIO = 2.0
TARGET_PEAK_MB = 1536
NUMERIC = [f"x{i:02d}" for i in range(18)]
CATEGORICAL = ["merchant", "channel"]
FEATURES = [{"name": n, "type": "numeric"} for n in NUMERIC] + [{"name": n, "type": "categorical"} for n in CATEGORICAL]


def make_csv(path: Path, rows: int) -> None:
    """Scored predictions with 18 numeric and 2 categorical features, written in slices to bound memory."""
    rng = np.random.default_rng(3)
    start = pd.Timestamp("2026-05-01")
    with path.open("w") as out:
        for first in range(0, rows, 200_000):
            n = min(200_000, rows - first)
            frame = pd.DataFrame({"prediction_id": [f"p{first + i:08d}" for i in range(n)],
                                  "ts": (start + pd.to_timedelta(np.arange(first, first + n) * 15, unit="s"))
                                  .strftime("%Y-%m-%dT%H:%M:%S"),
                                  "score": rng.random(n).round(6)})
            for i, name in enumerate(NUMERIC):
                values = rng.normal(100 * i, 10 + i, n)
                frame[name] = values.round(3) if i % 3 else rng.integers(0, 5000, n)
            frame["merchant"] = rng.choice(["grocery", "fuel", "travel", "online", "fashion"], n)
            frame["channel"] = rng.choice(["pos", "web", "atm"], n)
            frame.to_csv(out, index=False, header=first == 0)


def setup(url: str, home: str) -> tuple[int, int]:
    """A fresh Watchtower database with the model and its version 1; returns (model id, version id)."""
    os.environ.update(WATCHTOWER_HOME=home, WATCHTOWER_DATABASE_URL=url)
    from core.access import SYSTEM
    from core.db import session_scope
    from core.models import registry
    from core.projects import projects

    rng = np.random.default_rng(1)
    reference = pd.DataFrame({n: rng.normal(size=500) for n in NUMERIC})
    reference["merchant"], reference["channel"] = "fuel", "pos"
    reference["y"] = rng.integers(0, 2, 500)
    with session_scope() as s:
        projects.create_project(session=s, actor=SYSTEM, key="BENCH", name="Bench")
        registry.create_model(session=s, actor=SYSTEM, project_key="BENCH", name="bench", task="binary", target="y",
                              features=FEATURES)
        v = registry.add_version(session=s, actor=SYSTEM, model="bench", reference=reference, status="active")
        return v.model_id, v.id


def child_ours(url: str, home: str, csv: str) -> dict:
    setup(url, home)
    from core.access import SYSTEM
    from core.db import session_scope
    from core.monitoring import ingest

    started = time.perf_counter()
    with session_scope() as s:
        done = ingest.ingest_predictions(session=s, actor=SYSTEM, model="bench", source=csv, id_col="prediction_id",
                                         ts_col="ts", score_col="score")
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows": done.rows,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def child_raw(url: str, home: str, csv: str) -> dict:
    model_id, version_id = setup(url, home)
    from core.db import get_engine

    frame = pd.read_csv(csv, dtype={"prediction_id": str, "merchant": str, "channel": str})
    ts = pd.to_datetime(frame.ts).dt.strftime("%Y-%m-%d %H:%M:%S.%f").tolist()
    features = frame[[f["name"] for f in FEATURES]].to_json(orient="records", lines=True).splitlines()
    rows = list(zip([model_id] * len(frame), [version_id] * len(frame), [None] * len(frame),
                    frame.prediction_id.tolist(), ts, frame.score.tolist(), [None] * len(frame), features, strict=True))
    del frame
    columns = "model_id, model_version_id, environment_id, prediction_id, ts, score, predicted, features"
    raw = get_engine().raw_connection()
    driver = raw.driver_connection
    started = time.perf_counter()
    if url.startswith("sqlite"):
        driver.executemany(f"INSERT INTO prediction ({columns}) VALUES (?,?,?,?,?,?,?,?)", rows)
    else:
        with driver.cursor() as cur, cur.copy(f"COPY prediction ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    driver.commit()
    seconds = time.perf_counter() - started
    raw.close()
    return {"seconds": seconds, "rows": len(rows)}


def run_child(kind: str, url: str, csv: Path) -> dict:
    with tempfile.TemporaryDirectory() as home:
        if url == "sqlite":
            url = f"sqlite:///{home}/watchtower.db"
        out = subprocess.run([sys.executable, __file__, "--child", kind, url, home, str(csv)], capture_output=True,
                             text=True, check=False)
        if out.returncode:
            raise SystemExit(f"{kind} run failed:\n{out.stderr[-3000:]}")
        return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else sized(1_000_000, 100_000)
    work = Path(tempfile.gettempdir()) / "watchtower-bench"
    work.mkdir(exist_ok=True)
    csv = work / f"predictions-{rows}.csv"
    if not csv.exists():
        print(f"writing {rows:,} predictions × {len(FEATURES)} features to {csv} …")
        make_csv(csv, rows)
    print(f"{csv.name}: {csv.stat().st_size / 1e6:,.0f} MB, {rows:,} rows, {len(FEATURES)} features")
    measure("SQLite (executemany)", "sqlite", csv, rows)
    base = postgres_url()
    if base is None:
        print("SQLite only")
    else:
        measure("PostgreSQL (COPY)", base, csv, rows)
    finish()


def measure(label: str, database: str, csv: Path, rows: int) -> None:
    """The raw insert, then the ingest, each into a fresh database (a new SQLite file or a new schema)."""
    results = {}
    for kind in ("raw", "ours"):
        if database == "sqlite":
            results[kind] = run_child(kind, "sqlite", csv)
        else:
            with private_schema(database, "bench_ingest") as url:
                results[kind] = run_child(kind, url, csv)
    raw, ours = results["raw"], results["ours"]
    ratio = ours["seconds"] / raw["seconds"]
    print(f"{label}: raw insert {raw['seconds']:.1f} s, ingest from CSV {ours['seconds']:.1f} s "
          f"→ ratio {ratio:.2f}× (target ≤ {TARGET_RATIO}×); peak memory {ours['peak_mb']:,.0f} MB "
          f"(target ≤ {TARGET_PEAK_MB} MB)")
    report(f"ingest {rows:,} rows vs raw insert ({label})", f"{ratio:.2f}x ({ours['seconds']:.1f} s vs "
           f"{raw['seconds']:.1f} s)", f"<= {TARGET_RATIO}x", ratio <= TARGET_RATIO)
    report(f"ingest {rows:,} rows, peak memory ({label})", f"{ours['peak_mb']:,.0f} MB", f"<= {TARGET_PEAK_MB} MB",
           ours["peak_mb"] <= TARGET_PEAK_MB)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        kind, url, home, csv_path = sys.argv[2:6]
        result = (child_ours if kind == "ours" else child_raw)(url, home, csv_path)
        print(json.dumps(result))
    else:
        main()
