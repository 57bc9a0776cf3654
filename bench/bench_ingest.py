"""Ingest 10,000,000 predictions with 20 features from CSV and from Parquet into the lake, against a raw
`write_deltalake` of the same rows.

Targets, for each source: ≤ 1.5× a raw `deltalake.write_deltalake` of the same Arrow table (partitioned by day, as
the lake is), a peak memory ≤ 1 GB whatever the file size (the file is read in record batches), and ≤ 60 bytes on
disk per prediction. Each measured run is a subprocess on a fresh home, run RUNS times in turn (the best time of
each kind counts: the machine is shared); the raw write gets its Arrow table ready-made in memory and only the
write is timed, while the ingest starts from the file, so its figure includes reading, validating (ids checked
for repeats and against the stored ones) and typing. Exits 1 when a target is missed.

Usage: .venv/bin/python bench/bench_ingest.py [ROWS]   (default 10,000,000, BENCH_QUICK=1: 100,000). The files are
written once to the temporary directory (1.8 GB of CSV, 1.2 GB of Parquet at the default size) and kept for the
next run. Smaller files weigh the ingest's fixed costs more: at 1,000,000 rows the CSV ratio is about 1.4-1.7x.
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
from common import finish, report, sized  # noqa: E402

TARGET_RATIO = 1.5
TARGET_PEAK_MB = 1024
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


def make_parquet(csv: Path, path: Path) -> None:
    """The same rows as a Parquet file with their types (ids and categories as text), written batch by batch."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    types = {"prediction_id": pa.string(), "ts": pa.timestamp("us"), "merchant": pa.string(), "channel": pa.string()}
    reader = pacsv.open_csv(csv, convert_options=pacsv.ConvertOptions(column_types=types))
    with pq.ParquetWriter(path, reader.schema) as out:
        for batch in reader:
            out.write_batch(batch)


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


def child_ours(url: str, home: str, source: str) -> dict:
    setup(url, home)
    from core.access import SYSTEM
    from core.db import session_scope
    from core.monitoring import ingest

    started = time.perf_counter()
    with session_scope() as s:
        done = ingest.ingest_predictions(session=s, actor=SYSTEM, model="bench", source=source, id_col="prediction_id",
                                         ts_col="ts", score_col="score")
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows": done.rows, "bytes": _lake_bytes(home),
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def child_raw(url: str, home: str, csv: str) -> dict:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv
    from deltalake import write_deltalake

    setup(url, home)
    table = pacsv.read_csv(csv, convert_options=pacsv.ConvertOptions(
        column_types={"prediction_id": pa.string(), "ts": pa.timestamp("us"), "merchant": pa.string(),
                      "channel": pa.string()}))
    table = table.append_column("day", pc.cast(table.column("ts"), pa.date32()))
    started = time.perf_counter()
    write_deltalake(f"{home}/raw", table, partition_by=["day"], mode="append")
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows": table.num_rows}


def _lake_bytes(home: str) -> int:
    return sum(p.stat().st_size for p in Path(home, "lake").rglob("*") if p.is_file())


def run_child(kind: str, url: str, source: Path) -> dict:
    with tempfile.TemporaryDirectory() as home:
        if url == "sqlite":
            url = f"sqlite:///{home}/watchtower.db"
        out = subprocess.run([sys.executable, __file__, "--child", kind, url, home, str(source)], capture_output=True,
                             text=True, check=False)
        if out.returncode:
            raise SystemExit(f"{kind} run failed:\n{out.stderr[-3000:]}")
        return json.loads(out.stdout.strip().splitlines()[-1])


TARGET_BYTES = 60


RUNS = 2


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else sized(10_000_000, 100_000)
    work = Path(tempfile.gettempdir()) / "watchtower-bench"
    work.mkdir(exist_ok=True)
    csv, parquet = work / f"predictions-{rows}.csv", work / f"predictions-{rows}.parquet"
    if not csv.exists():
        print(f"writing {rows:,} predictions × {len(FEATURES)} features to {csv} …")
        make_csv(csv, rows)
    if not parquet.exists():
        make_parquet(csv, parquet)
    print(f"{rows:,} rows, {len(FEATURES)} features: {csv.name} {csv.stat().st_size / 1e6:,.0f} MB, "
          f"{parquet.name} {parquet.stat().st_size / 1e6:,.0f} MB")
    runs: dict[str, list[dict]] = {"raw": [], "csv": [], "parquet": []}
    for _ in range(RUNS):
        runs["raw"].append(run_child("raw", "sqlite", csv))
        runs["csv"].append(run_child("ours", "sqlite", csv))
        runs["parquet"].append(run_child("ours", "sqlite", parquet))
    raw = min(r["seconds"] for r in runs["raw"])
    for kind in ("csv", "parquet"):
        best = min(runs[kind], key=lambda r: r["seconds"])
        ratio = best["seconds"] / raw
        peak = max(r["peak_mb"] for r in runs[kind])
        per_row = best["bytes"] / best["rows"]
        print(f"{kind}: raw write_deltalake {raw:.1f} s, ingest {best['seconds']:.1f} s → ratio {ratio:.2f}× "
              f"(target ≤ {TARGET_RATIO}×); peak memory {peak:,.0f} MB; {per_row:.1f} bytes per prediction")
        report(f"ingest {rows:,} rows from {kind} vs raw write_deltalake", f"{ratio:.2f}x ({best['seconds']:.1f} s "
               f"vs {raw:.1f} s)", f"<= {TARGET_RATIO}x", ratio <= TARGET_RATIO)
        report(f"ingest {rows:,} rows from {kind}, peak memory", f"{peak:,.0f} MB", f"<= {TARGET_PEAK_MB} MB",
               peak <= TARGET_PEAK_MB)
        report(f"lake bytes per prediction (20 features, from {kind})", f"{per_row:.1f}", f"<= {TARGET_BYTES}",
               per_row <= TARGET_BYTES)
    finish()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        kind, url, home, source_path = sys.argv[2:6]
        result = (child_ours if kind == "ours" else child_raw)(url, home, source_path)
        print(json.dumps(result))
    else:
        main()
