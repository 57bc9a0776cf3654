"""What refusing a prediction id the model already has costs when the lake holds 100 million of them.

A synthetic model's predictions table is written on disk (STORED ids over 180 day partitions, one field). Then,
each in its own process so that nothing is cached between them:
- the check alone: `stored_positions` of 100,000 new ids (staged in a Parquet file, as an ingest stages them)
  against every stored id (one scan of the stored ids);
- the baseline: the same semi-join written by hand in DuckDB over the same Parquet files (and, for scale, a scan
  reading every stored id once, `max(prediction_id)`, the least any check against all stored ids must do);
- the whole ingest of a 100,000-row file of new ids through `ingest.ingest_predictions`, and the same file into
  an empty model in the same home (the difference is what the stored ids cost);
- a file carrying three stored ids: refused, naming them, and nothing written.
Ids are scattered over their whole range, as random ids are, so no row group is skipped by its min and max id.
Target: the check ≤ 1.5× the hand-written semi-join. Exits 1 when it is missed or a repeated id goes unnamed.

Usage: .venv/bin/python bench/bench_duplicates.py [STORED]   (default 100,000,000; BENCH_QUICK=1: 2,000,000)
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
import pyarrow.compute as pc  # noqa: E402
from common import finish, report, sized  # noqa: E402

TARGET_RATIO = 1.5
NEW = 100_000
CHUNK = 5_000_000
DAYS = 180
START = datetime(2026, 1, 1)
FEATURES = [{"name": "amount", "type": "numeric"}]


def _environment(home: str) -> None:
    os.environ.update(WATCHTOWER_HOME=home, WATCHTOWER_DATABASE_URL=f"sqlite:///{home}/watchtower.db")
    os.environ.setdefault("WATCHTOWER_LAKE_MEMORY", "1GB")


def _ids(first: int, n: int) -> pa.Array:
    """Ids number FIRST to FIRST + N - 1, scattered over the whole id range as random ids are (a bijection modulo
    10^10), so that no Parquet row group can be skipped by the min and max ids it holds."""
    scattered = (np.arange(first, first + n, dtype=np.int64) * 2654435761) % 10**10
    digits = pc.utf8_lpad(pc.cast(pa.array(scattered), pa.string()), 10, "0")
    return pc.binary_join_element_wise(pa.scalar("p"), digits, "")


def generate(home: str, stored: int) -> None:
    """Two models (`stored`, holding STORED predictions, and `empty`) with their version 1."""
    _environment(home)
    from deltalake import write_deltalake

    from core.access import SYSTEM
    from core.db import session_scope
    from core.lake import tables as lake
    from core.models import registry
    from core.projects import projects

    rng = np.random.default_rng(1)
    reference = pd.DataFrame({"amount": rng.gamma(2, 30, 5000).round(2), "y": rng.integers(0, 2, 5000),
                              "__score__": rng.random(5000).round(6)})
    with session_scope() as s:
        projects.create_project(session=s, actor=SYSTEM, key="BENCH", name="Bench")
        for name in ("stored", "empty"):
            registry.create_model(session=s, actor=SYSTEM, project_key="BENCH", name=name, task="binary",
                                  target="y", features=FEATURES)
            registry.add_version(session=s, actor=SYSTEM, model=name, reference=reference, status="active")
    with session_scope() as s:
        m = registry.model_row(s, "stored")
        model_id, version_id = m.id, registry.version_row(s, m).id
    step = DAYS * 86_400 * 1_000_000 // stored
    for offset in range(0, stored, CHUNK):
        n = min(CHUNK, stored - offset)
        ts = np.datetime64(START, "us") + (np.arange(offset, offset + n, dtype=np.int64) * step).astype("timedelta64[us]")
        write_deltalake(lake.location().table(model_id, "predictions"), pa.table({
            "prediction_id": _ids(offset, n), "version_id": pa.array(np.full(n, version_id, np.int64)),
            "environment_id": pa.nulls(n, pa.int64()), "ts": pa.array(ts), "day": pa.array(ts.astype("datetime64[D]")),
            "score": pa.array(rng.random(n)), "predicted": pa.nulls(n, pa.float64()),
            "logged_by": pa.nulls(n, pa.string()), "batch": pa.array(np.full(n, "bench"), pa.string()),
            lake.feature_column("amount"): pa.array(rng.gamma(2, 30, n).round(2))}),
            mode="append", partition_by=["day"])


def _file(*, clashing: bool, stored: int) -> pd.DataFrame:
    """NEW predictions of the next day, with new ids (others, and three stored ones, when CLASHING)."""
    rng = np.random.default_rng(2)
    ids = _ids(stored + (NEW if clashing else 0), NEW).to_pylist()
    if clashing:
        ids[10], ids[5000], ids[NEW - 1] = _ids(7, 1)[0].as_py(), _ids(12345, 1)[0].as_py(), _ids(99, 1)[0].as_py()
    return pd.DataFrame({"id": ids, "ts": pd.date_range(START + timedelta(days=DAYS), periods=NEW, freq="s"),
                         "score": rng.random(NEW).round(6), "amount": rng.gamma(2, 30, NEW).round(2)})


def check(home: str, stored: str) -> dict:
    _environment(home)
    stored = int(stored)
    from core.db import session_scope
    from core.lake import predictions
    from core.models import registry

    with session_scope() as s:
        model_id = registry.model_row(s, "stored").id
    import pyarrow.parquet as pq

    ids = _ids(stored, NEW)
    staged = f"{home}/incoming.parquet"  # the new ids as an ingest stages them: a Parquet file
    pq.write_table(pa.table({"prediction_id": ids}), staged)
    started = time.perf_counter()
    clashes, total = predictions.stored_positions(model_id=model_id, files=[staged], earlier=None,
                                                  ids_again=lambda: iter([ids]))
    assert total == 0 and clashes == [], (total, clashes)
    return {"seconds": time.perf_counter() - started}


def baseline(home: str, stored: str) -> dict:
    _environment(home)
    import duckdb

    from core.db import session_scope
    from core.lake import tables as lake
    from core.models import registry

    with session_scope() as s:
        model_id = registry.model_row(s, "stored").id
    files = [f.removeprefix("file://") for f in lake.table(model_id, "predictions").file_uris()]
    incoming = pa.table({"prediction_id": _ids(int(stored), NEW)})  # noqa: F841 - scanned by DuckDB
    started = time.perf_counter()
    con = duckdb.connect()
    con.execute("SET memory_limit = '1GB'")
    con.execute("SELECT max(prediction_id) FROM read_parquet($files)", {"files": files}).fetchone()
    scan = time.perf_counter() - started
    started = time.perf_counter()
    found = con.execute("SELECT count(*) FROM read_parquet($files) WHERE prediction_id IN "
                        "(SELECT prediction_id FROM incoming)", {"files": files}).fetchone()[0]
    assert found == 0, found
    return {"seconds": time.perf_counter() - started, "scan": scan}


def ingest(home: str, model: str, clashing: str, stored: str) -> dict:
    _environment(home)
    from core.access import SYSTEM
    from core.db import session_scope
    from core.errors import InvalidInput
    from core.lake import predictions
    from core.models import registry
    from core.monitoring import ingest as ingesting

    frame = _file(clashing=clashing == "clashing", stored=int(stored))
    with session_scope() as s:
        model_id = registry.model_row(s, model).id
    before = predictions.counts(model_id=model_id, labelled=False)[0]
    started = time.perf_counter()
    refusal = ""
    try:
        with session_scope() as s:
            ingesting.ingest_predictions(session=s, actor=SYSTEM, model=model, version=1, source=frame, id_col="id",
                                         ts_col="ts", score_col="score")
    except InvalidInput as exc:
        refusal = str(exc)
    seconds = time.perf_counter() - started
    after = predictions.counts(model_id=model_id, labelled=False)[0]
    return {"seconds": seconds, "refusal": refusal, "written": after - before}


def child(kind: str, home: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", kind, home, *args], capture_output=True, text=True,
                         check=False)
    if out.returncode:
        raise SystemExit(f"{kind} failed:\n{out.stderr[-3000:]}")
    lines = out.stdout.strip().splitlines()
    result = json.loads(lines[-1]) if lines else {}
    result["rss_gb"] = result.get("rss_gb", 0.0)
    return result


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        kind, home, *args = sys.argv[2:]
        if kind == "generate":
            generate(home, int(args[0]))
            return
        result = check(home, *args) if kind == "check" else baseline(home, *args) if kind == "baseline" \
            else ingest(home, *args)
        result["rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        print(json.dumps(result))
        return
    args = [a for a in sys.argv[1:] if not a.startswith("-")]
    stored = int(args[0]) if args else sized(100_000_000, 2_000_000)
    root = Path(tempfile.mkdtemp(prefix="bench_duplicates_"))
    try:
        home = str(root / "home")
        os.makedirs(home)
        started = time.perf_counter()
        child("generate", home, str(stored))
        size_gb = sum(f.stat().st_size for f in Path(home, "lake").rglob("*") if f.is_file()) / 2**30
        print(f"{stored:,} stored predictions written in {time.perf_counter() - started:.0f} s ({size_gb:.2f} GB)")
        child("baseline", home, str(stored))  # warm the file cache for both sides
        ours, base = child("check", home, str(stored)), child("baseline", home, str(stored))
        ratio = ours["seconds"] / base["seconds"]
        print(f"  check of {NEW:,} ids against {stored:,}: {ours['seconds']:.2f} s, peak RSS {ours['rss_gb']:.2f} GB;"
              f" the same semi-join by hand: {base['seconds']:.2f} s; reading every stored id alone: {base['scan']:.2f} s")
        report(f"duplicate-id check against {stored:,} stored ids vs the same semi-join by hand", f"{ratio:.2f}x "
               f"({ours['seconds']:.2f} s vs {base['seconds']:.2f} s)", f"<= {TARGET_RATIO}x", ratio <= TARGET_RATIO)
        full = child("ingest", home, "stored", "new", str(stored))
        empty = child("ingest", home, "empty", "new", str(stored))
        print(f"  ingest of {NEW:,} new predictions: {full['seconds']:.2f} s into {stored:,} stored "
              f"(peak RSS {full['rss_gb']:.2f} GB), {empty['seconds']:.2f} s into an empty model")
        refused = child("ingest", home, "stored", "clashing", str(stored))
        named = all(_ids(i, 1)[0].as_py() in refused["refusal"] for i in (7, 12345, 99))
        report("a file repeating three stored ids is refused naming them, nothing written",
               f"{'named' if named else 'not named'}, {refused['written']} rows written, {refused['seconds']:.2f} s",
               "named, 0 written", named and refused["written"] == 0 and full["written"] == NEW)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    finish()


if __name__ == "__main__":
    main()
