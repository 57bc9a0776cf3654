"""Slice finding: speed on a 1M-row, 20-feature window and recovery of a planted segment.

(a) On one window of ROWS labelled predictions with 16 numeric and 4 categorical fields, measured in the same
    run on the same arrays: computing the window's evaluation (`evaluation_store.compute_window`: metrics,
    business metrics, estimates, data quality and drift) against finding its slices (`slice_report.report`:
    binning by the reference's quantiles, the search, each slice's figures). Target: slices ≤ 3× the window.
    The ratio against the plain metrics alone (`metrics.binary` + `metrics.business`) and the peak memory of
    the slice search (tracemalloc) are printed too.
(b) Recovery: 20 random seeds of a 20,000-row window where the model misses fraud on young cards used online
    and a decoy region grows without harm; the rank of the planted segment (its fields, and ≥ 0.7 Jaccard
    overlap with the planted rows). Target: first in at least 19 of 20.

Usage: .venv/bin/python bench/bench_slices.py [ROWS]   (default 1,000,000; BENCH_QUICK=1: 100,000).
Exits 1 on a missed target.
"""

from __future__ import annotations

import statistics
import sys
import time
import tracemalloc
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from common import finish, report, sized  # noqa: E402

from core.lake.predictions import WindowRows  # noqa: E402
from core.models import metrics  # noqa: E402
from core.monitoring import drift, estimation, evaluation_store, slice_report, slices  # noqa: E402
from tests.support import slice_world  # noqa: E402

TARGET_RATIO, TARGET_FIRST = 3.0, 19
NUMERIC = [f"x{i:02d}" for i in range(16)]
CATEGORICAL = ["merchant", "channel", "region", "device"]
FEATURES = [{"name": n, "type": "numeric"} for n in NUMERIC] + [{"name": n, "type": "categorical"} for n in CATEGORICAL]
BUSINESS = [{"name": "missed_amount", "kind": "amount_sum", "column": "x00", "label": 1, "prediction": 0,
             "better": "lower"}]


def traffic(n: int, *, seed: int, planted: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({c: rng.normal(size=n) for c in NUMERIC})
    frame["x00"] = np.round(rng.lognormal(3.6, 0.9, n), 2)
    for c, k in zip(CATEGORICAL, (8, 4, 5, 3), strict=True):
        frame[c] = rng.choice([f"{c}{i}" for i in range(k)], n)
    logit = -3.0 + 0.8 * frame.x01 + 0.5 * (frame.channel == "channel1")
    p = 1 / (1 + np.exp(-logit))
    y = (rng.random(n) < p).astype(float)
    score = np.clip(p + rng.normal(0, 0.05, n), 0.001, 0.999)
    if planted:  # the model is blind on one segment
        weak = ((frame.x02 < -0.6) & (frame.merchant == "merchant3")).to_numpy()
        score = np.where(weak, rng.uniform(0.0, 0.3, n), score)
    frame["y"], frame["score"] = y, score
    return frame


def timed(fn, repeats: int = 3) -> tuple[float, object]:  # noqa: ANN001
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def speed(rows: int) -> bool:
    reference = traffic(20_000, seed=1, planted=False).rename(columns={"score": "__score__"})
    current = traffic(rows, seed=2, planted=True)
    names = [f["name"] for f in FEATURES]
    prepared = reference.copy()
    ctx = evaluation_store.Context(
        task="binary", threshold=0.5, features=FEATURES, business=BUSINESS, target="y", reference=prepared,
        calibration=estimation.calibrate(score=reference["__score__"].to_numpy(float),
                                         y_true=reference["y"].to_numpy(float)),
        drift_reference=drift.prepared_reference(prepared, [*names, evaluation_store.SCORE,
                                                            evaluation_store.PREDICTION]))
    window = WindowRows([f"w{i}" for i in range(rows)], np.full(rows, np.datetime64("2026-08-03")),
                        current.score.to_numpy(float), np.full(rows, np.nan), current.y.to_numpy(float),
                        current[names])
    start = datetime(2026, 8, 3)
    evaluated_s, _ = timed(lambda: evaluation_store.compute_window(ctx, window, start=start,
                                                                   end=start + timedelta(days=7), granularity="7D"))
    y, score = current.y.to_numpy(float), current.score.to_numpy(float)
    decision = metrics.decide(score=score, threshold=0.5)

    def plain() -> dict:
        return {**metrics.binary(y_true=y, score=score, predicted=decision),
                **metrics.business(specs=BUSINESS, y_true=y, predicted=decision, columns={"x00": current.x00.to_numpy()})}

    metrics_s, _ = timed(plain)
    w = slice_report.Window(task="binary", features=FEATURES, business=BUSINESS, frame=current[names], y=y,
                            decision=decision, score=score, reference=reference, rows=rows, granularity="7D")
    slices_s, found = timed(lambda: slice_report.report(w, "missed"))
    tracemalloc.start()
    slice_report.report(w, "missed")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    top = found.segments[0]["text"] if found.segments else "(none)"
    ratio = slices_s / evaluated_s
    print(f"(a) {rows:,} rows × {len(FEATURES)} features: window evaluation {evaluated_s:.2f} s, metrics alone "
          f"{metrics_s:.2f} s, slices {slices_s:.2f} s → {ratio:.2f}× the window evaluation (target ≤ "
          f"{TARGET_RATIO}×), {slices_s / metrics_s:.1f}× the metrics alone; peak memory of the slice search "
          f"{peak / 2**20:,.0f} MiB (the window's frame itself: "
          f"{current[names].memory_usage(deep=True).sum() / 2**20:,.0f} MiB); top segment: {top}")
    report(f"slices of a {rows:,}-row window vs its evaluation", f"{ratio:.2f}x ({slices_s:.2f} s vs "
           f"{evaluated_s:.2f} s)", f"<= {TARGET_RATIO:.0f}x", ratio <= TARGET_RATIO)
    return ratio <= TARGET_RATIO


def recovery() -> bool:
    ranks = []
    for seed in range(20):
        w = slice_world.window(seed=100 + seed)
        planted = slice_world.planted(w.frame)
        found = slice_report.report(w, "missed")
        rank = None
        for s in found.segments:
            rows = slices.mask(w.frame, [slices.Condition.from_dict(c) for c in s["conditions"]])
            jaccard = (rows & planted).sum() / (rows | planted).sum()
            if {c["field"] for c in s["conditions"]} == {"card_age_days", "channel"} and jaccard >= 0.7:
                rank = s["rank"]
                break
        ranks.append(rank)
    first = sum(r == 1 for r in ranks)
    print(f"(b) planted segment's rank over 20 seeds: {ranks}; first in {first}/20 (target ≥ {TARGET_FIRST})")
    report("slices: planted segment ranked first", f"{first}/20 seeds", f">= {TARGET_FIRST}/20", first >= TARGET_FIRST)
    return first >= TARGET_FIRST


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else sized(1_000_000, 100_000)
    recovery()
    speed(n)
    finish()
