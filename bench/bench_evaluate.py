"""Evaluate one window of 100,000 labelled predictions with 20 numeric and 2 categorical fields.

Measured in the same run, on the same arrays and frames:
- the store: metrics, business metrics, CBPE estimates, data quality, per-field and prediction drift
  (`evaluation_store.compute_window`) plus writing the Evaluation row (`evaluation_store.store`);
- plain numpy/scipy computing the same statistics directly (no validation, no Evidently wrappers, no write);
- `Report([DataDriftPreset()]).run` on the same current and reference frames.
Targets: store ≤ 1.5× plain numpy/scipy; store ≥ 5× faster than the Report; the same drifted / not-drifted
decision on every column as the Report. Reading the window back from the database is timed apart.

Usage: .venv/bin/python bench/bench_evaluate.py [ROWS] [REPEATS]   (default 100,000 rows, 5 repeats; median;
BENCH_QUICK=1: 20,000 rows, 2 repeats). Exits 1 when a target is missed.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from common import finish, report, sized  # noqa: E402
from scipy import stats  # noqa: E402
from scipy.spatial import distance  # noqa: E402
from sqlalchemy import delete  # noqa: E402

TARGET_VS_PLAIN = 1.5
TARGET_VS_REPORT = 5.0
NUMERIC = [f"x{i:02d}" for i in range(20)]
CATEGORICAL = ["merchant", "channel"]
FEATURES = [{"name": n, "type": "numeric"} for n in NUMERIC] + [{"name": n, "type": "categorical"} for n in CATEGORICAL]
BUSINESS = [{"name": "missed_amount", "kind": "amount_sum", "column": "x00", "label": 1, "prediction": 0},
            {"name": "net_value", "kind": "cost_matrix", "tp": 100, "fp": -5, "fn": -100, "tn": 0}]
START = datetime(2026, 8, 3)


def traffic(n: int, *, seed: int, shifted: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({name: rng.normal(50 + 3 * i + (8 if shifted and i % 5 == 0 else 0), 10 + i, n).round(4)
                          for i, name in enumerate(NUMERIC)})
    frame["merchant"] = rng.choice(["grocery", "fuel", "travel", "online"], n,
                                   p=[0.2, 0.3, 0.2, 0.3] if shifted else [0.4, 0.3, 0.2, 0.1])
    frame["channel"] = rng.choice(["pos", "web", "atm"], n)
    logit = -2.5 + 0.1 * (frame.x01 - 53) + 1.0 * (frame.merchant == "online")
    frame["score"] = (1 / (1 + np.exp(-logit))).round(6)
    frame["y"] = (rng.random(n) < frame.score).astype(int)
    return frame


# --- plain numpy / scipy ------------------------------------------------------------------------------

def _curve(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(s, kind="mergesort")[::-1]
    ends = np.r_[np.flatnonzero(np.diff(s[order])), s.size - 1]
    tps = np.cumsum(y[order])[ends]
    return tps, 1 + ends - tps


def plain(current: pd.DataFrame, reference: pd.DataFrame, calibration, threshold: float) -> dict:  # noqa: ANN001
    """The store's statistics, straight from numpy and scipy."""
    y, s = current.y.to_numpy(float), current.score.to_numpy(float)
    p = (s >= threshold).astype(float)
    tps, fps = _curve(y, s)
    tp, fp = float((y * p).sum()), float(((1 - y) * p).sum())
    fn, tn = float((y * (1 - p)).sum()), float(((1 - y) * (1 - p)).sum())
    clipped = np.clip(s, 1e-15, 1 - 1e-15)
    out = {"auc": np.trapezoid(np.r_[0, tps / tps[-1]], np.r_[0, fps / fps[-1]]),
           "ap": np.sum(np.diff(np.r_[0, tps / tps[-1]]) * tps / (tps + fps)),
           "precision": tp / (tp + fp), "recall": tp / (tp + fn), "f1": 2 * tp / (2 * tp + fp + fn),
           "accuracy": (tp + tn) / y.size, "log_loss": -np.mean(y * np.log(clipped) + (1 - y) * np.log(1 - clipped)),
           "brier": np.mean((s - y) ** 2), "positive_rate": p.mean(),
           "missed": current.x00.to_numpy()[(y == 1) & (p == 0)].sum(), "net": 100 * tp - 5 * fp - 100 * fn}
    q = calibration.probability(s)
    d = p.astype(bool)
    etp, efp, efn = q[d].sum(), (1 - q[d]).sum(), q[~d].sum()
    ranked_tps, ranked_fps = np.cumsum(q[np.argsort(-s)]), np.cumsum(1 - q[np.argsort(-s)])
    out.update(est_precision=etp / (etp + efp), est_recall=etp / (etp + efn),
               est_auc=np.trapezoid(ranked_tps / ranked_tps[-1], ranked_fps / ranked_fps[-1]))
    out["missing"] = {c: current[c].isna().mean() for c in [*NUMERIC, *CATEGORICAL]}
    drifts = {}
    for c in [*NUMERIC, "score"]:
        ref, cur = reference[c if c != "score" else "__score__"].to_numpy(float), current[c].to_numpy(float)
        drifts[c] = stats.wasserstein_distance(ref, cur) / max(float(np.std(ref)), 0.001)
    for c in CATEGORICAL:
        keys = sorted(set(reference[c]) | set(current[c]))
        ref_p = reference[c].value_counts(normalize=True).reindex(keys, fill_value=0).to_numpy()
        cur_p = current[c].value_counts(normalize=True).reindex(keys, fill_value=0).to_numpy()
        drifts[c] = distance.jensenshannon(np.where(ref_p == 0, 1e-4, ref_p), np.where(cur_p == 0, 1e-4, cur_p))
    out["drift"] = {c: v >= 0.1 for c, v in drifts.items()}
    return out


def timed(fn, repeats: int) -> tuple[float, object]:  # noqa: ANN001
    runs, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs), result


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else sized(100_000, 20_000)
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else sized(5, 2)
    home = tempfile.mkdtemp()
    os.environ.update(WATCHTOWER_HOME=home, WATCHTOWER_DATABASE_URL=f"sqlite:///{home}/watchtower.db")
    from evidently import Report
    from evidently.presets import DataDriftPreset

    from core.access import SYSTEM
    from core.db import session_scope
    from core.entities import Evaluation
    from core.lake.predictions import WindowRows, window_rows
    from core.models import registry
    from core.monitoring import evaluation_store, ingest
    from core.projects import projects

    reference = traffic(20_000, seed=1, shifted=False).rename(columns={"score": "__score__"})
    current = traffic(rows, seed=2, shifted=True)
    current["id"] = [f"w{i}" for i in range(rows)]
    current["ts"] = START + pd.to_timedelta(np.arange(rows) * (7 * 86400 // rows), unit="s")
    with session_scope() as s:
        projects.create_project(session=s, actor=SYSTEM, key="BENCH", name="Bench")
        registry.create_model(session=s, actor=SYSTEM, project_key="BENCH", name="bench", task="binary", target="y",
                              features=FEATURES, business_metrics=BUSINESS)
        registry.add_version(session=s, actor=SYSTEM, model="bench", reference=reference, status="active")
    with session_scope() as s:
        ingest.ingest_predictions(session=s, actor=SYSTEM, model="bench", source=current, id_col="id", ts_col="ts",
                                  score_col="score")
    with session_scope() as s:
        ingest.ingest_ground_truth(session=s, actor=SYSTEM, model="bench", source=current, id_col="id", label_col="y")
    with session_scope() as s:
        m = registry.model_row(s, "bench")
        v = registry.version_row(s, m)
        ctx = evaluation_store.context_for(model=m, version=v)
        version_id = v.id
    start, end = START, START + timedelta(days=7)

    def read() -> WindowRows:
        with session_scope() as s:
            return window_rows(s, version_id=version_id, start=start, end=end)

    read_s, stored_rows = timed(read, 3)
    # The same window in memory, as the store computes on it.
    window = WindowRows(current.id.tolist(), current.ts.to_numpy(), current.score.to_numpy(float),
                        np.full(rows, np.nan), current.y.to_numpy(float), current[[*NUMERIC, *CATEGORICAL]])
    assert len(stored_rows) == rows

    def ours() -> evaluation_store.EvaluationRead:
        result = evaluation_store.compute_window(ctx, window, start=start, end=end, granularity="7D")
        with session_scope() as s:
            s.execute(delete(Evaluation))  # each repeat stores the window anew
        with session_scope() as s:
            return evaluation_store.store(session=s, actor=SYSTEM, model="bench", version=1, results=[result])[0]

    ref_features = reference[[*NUMERIC, *CATEGORICAL]]
    cur_features = current[[*NUMERIC, *CATEGORICAL]]
    Report([DataDriftPreset()]).run(cur_features.head(2000), ref_features.head(2000))  # warm up
    plain(current, reference, ctx.calibration, 0.5)
    ours()

    ours_s, stored = timed(ours, repeats)
    plain_s, baseline = timed(lambda: plain(current, reference, ctx.calibration, 0.5), repeats)
    report_s, snapshot = timed(lambda: Report([DataDriftPreset()], include_tests=True).run(cur_features, ref_features),
                               max(1, repeats // 2))
    decisions = {t["name"].removeprefix("Value Drift for column "): str(t["status"]).endswith("FAIL")
                 for t in snapshot.dict()["tests"] if t["name"].startswith("Value Drift for column ")}
    mine = {f["field"]: f["drifted"] for f in stored.field_drift}
    same = mine == decisions and all(baseline["drift"][c] == mine[c] for c in mine)
    print(f"window: {rows:,} labelled predictions × {len(NUMERIC)} numeric + {len(CATEGORICAL)} categorical fields; "
          f"reference 20,000 rows; median of {repeats}")
    print(f"read from the database (apart): {read_s:.2f} s")
    print(f"evaluation store (metrics + estimates + drift + write): {ours_s:.2f} s")
    print(f"plain numpy/scipy, same statistics: {plain_s:.2f} s → ratio {ours_s / plain_s:.2f}× "
          f"(target ≤ {TARGET_VS_PLAIN}×)")
    print(f"Report([DataDriftPreset()]).run: {report_s:.2f} s → store is {report_s / ours_s:.1f}× faster "
          f"(target ≥ {TARGET_VS_REPORT}×)")
    print(f"drifted columns: {sorted(c for c, d in mine.items() if d)}; same decision as the Report on every one of "
          f"{len(decisions)} columns: {same}")
    report(f"evaluate a {rows:,}-row window vs plain numpy/scipy", f"{ours_s / plain_s:.2f}x ({ours_s:.2f} s vs "
           f"{plain_s:.2f} s)", f"<= {TARGET_VS_PLAIN}x", ours_s / plain_s <= TARGET_VS_PLAIN)
    report(f"evaluate a {rows:,}-row window vs Evidently Report", f"{report_s / ours_s:.1f}x faster ({report_s:.2f} s)",
           f">= {TARGET_VS_REPORT:.0f}x faster", report_s / ours_s >= TARGET_VS_REPORT)
    report("drift decisions same as Evidently Report", f"{'same' if same else 'different'} on {len(decisions)} columns",
           "same on every column", same)
    finish()


if __name__ == "__main__":
    main()
