"""One scheduler tick over 100 models against calling the same evaluate and check functions in a loop.

    .venv/bin/python bench/bench_scheduler.py [--models 100] [--rows 10000] [--database-url URL]

A fresh Watchtower home (SQLite unless --database-url) with `--models` binary models, each in its own
project, each with 10,000 new labelled predictions for one day, 8 checks (AUC, recall and precision drop
from training, drift share, card_age_days drift, fraud missed amount, missing values, volume) and a daily
scenario: evaluate the new window → run the checks (alerting the ML engineer on failures).
In the same run, alternately, twice each (stored evaluations, results and alerts cleared in between):
- baseline: for each model, evaluation_store.evaluate on that day, checks.run_checks on the new window and
  alerts.fan_out for its failed results, called directly in a loop;
- tick: what the worker's scheduler does when the daily trigger fires — `Worker.fire` for every scenario
  (a requested run each, under the schedule lease), then `Worker.poll`, which claims each run under the
  scenario's lease and executes its steps, recording step status, logs and durations.
Target: tick ≤ 2× baseline. Exits 1 when missed. BENCH_QUICK=1: 10 models × 2,000 rows.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common import finish, report, sized  # noqa: E402

TARGET = 2.0
DAY = datetime(2026, 9, 7)
FEATURES = [{"name": "amount", "type": "numeric"}, {"name": "card_age_days", "type": "numeric"},
            {"name": "hour", "type": "numeric"}, {"name": "merchant", "type": "categorical"},
            {"name": "channel", "type": "categorical"}]
BUSINESS = [{"name": "fraud_missed_amount", "kind": "amount_sum", "column": "amount", "label": 1, "prediction": 0,
             "label_text": "Fraud missed (amount)", "better": "lower"}]


def traffic(n: int, seed: int, *, start: datetime, new_cards: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    amount = np.round(rng.lognormal(3.6, 0.9, n), 2)
    card_age = rng.integers(30, 3000, n)
    fresh = rng.random(n) < new_cards
    card_age[fresh] = rng.integers(1, 20, int(fresh.sum()))
    merchant = rng.choice(["fuel", "grocery", "travel", "web"], n, p=[0.3, 0.4, 0.1, 0.2])
    channel = rng.choice(["pos", "web", "app"], n)
    hour = rng.integers(0, 24, n)
    logit = -3.5 + 1.6 * (merchant == "web") + 0.9 * np.log(amount / 40) + 1.2 * (card_age < 60)
    score = 1 / (1 + np.exp(-logit))
    return pd.DataFrame({"tx": [f"{seed}-{i}" for i in range(n)],
                         "ts": start + pd.to_timedelta(np.sort(rng.integers(0, 86_400, n)), unit="s"),
                         "amount": amount, "card_age_days": card_age, "hour": hour, "merchant": merchant,
                         "channel": channel, "score": np.round(score, 6),
                         "is_fraud": (rng.random(n) < score).astype(int)})


def seed(models: int, rows: int) -> list[tuple[str, int]]:
    """The models, their data, checks and daily scenarios; returns (model, scenario id)."""
    from core.access import SYSTEM, Actor
    from core.automation import scenarios
    from core.db import session_scope
    from core.identity import users
    from core.models import registry
    from core.monitoring import checks, ingest
    from core.projects import projects

    with session_scope() as s:
        users.create_user(session=s, actor=SYSTEM, username="maya", name="Maya", email="maya@bank.example", roles=["ml_engineer"])
    out = []
    for i in range(models):
        key, name = f"P{i:03d}", f"model-{i:03d}"
        reference = traffic(2000, 10_000 + i, start=DAY - timedelta(days=60), new_cards=0.0)
        current = traffic(rows, i, start=DAY, new_cards=0.4 if i % 3 == 0 else 0.0)
        with session_scope() as s:
            projects.create_project(session=s, actor=SYSTEM, key=key, name=f"Project {i}")
            registry.create_model(session=s, actor=SYSTEM, project_key=key, name=name, task="binary",
                                  target="is_fraud", features=FEATURES, business_metrics=BUSINESS)
            registry.add_version(session=s, actor=SYSTEM, model=name, status="active",
                                 reference=reference.rename(columns={"score": "__score__"})[
                                     [f["name"] for f in FEATURES] + ["is_fraud", "__score__"]],
                                 training_metrics={"roc_auc": 0.80, "recall": 0.30, "precision": 0.60})
            ingest.ingest_predictions(session=s, actor=SYSTEM, model=name, source=current, id_col="tx", ts_col="ts",
                                      score_col="score")
            ingest.ingest_ground_truth(session=s, actor=SYSTEM, model=name, source=current[["tx", "is_fraud"]],
                                       id_col="tx", label_col="is_fraud")
            for check, kind, kw in [("auc", "metric_drop", {"metric": "roc_auc", "threshold": 0.05}),
                                    ("recall", "metric_drop", {"metric": "recall", "threshold": 0.10}),
                                    ("precision", "metric_drop", {"metric": "precision", "threshold": 0.10}),
                                    ("drift", "drift_share", {"threshold": 0.3}),
                                    ("card age", "field_drift", {"field": "card_age_days"}),
                                    ("fraud missed", "business", {"metric": "fraud_missed_amount", "threshold": 5e4}),
                                    ("missing", "missing_rate", {"threshold": 0.05}),
                                    ("volume", "volume", {"threshold": rows * 0.8})]:
                checks.define_check(session=s, actor=SYSTEM, project_key=key, model=name, name=check, kind=kind,
                                    audience_roles=["ml_engineer"], **kw)
            # a scenario acts as its owner, a real person (the portal's own identity owns none)
            sc = scenarios.create_scenario(session=s, actor=Actor(username="maya", roles=("ml_engineer",)), project_key=key, model=name, name="daily",
                                           trigger_kind="cron", trigger_value="0 6 * * *",
                                           steps=[{"kind": "evaluate", "params": {"every": "1D", "lookback_days": 1}},
                                                  {"kind": "checks"}])
        out.append((name, sc.id))
        if (i + 1) % 10 == 0:
            print(f"  seeded {i + 1} models", flush=True)
    return out


def clear() -> None:
    """Forget evaluations, slice findings, check results, alerts and runs, so that each pass does the same work."""
    from sqlalchemy import delete

    from core.db import session_scope
    from core.entities import (
        Alert,
        AlertDelivery,
        CheckResult,
        Evaluation,
        ScenarioRun,
        SliceFinding,
        StepRun,
    )

    with session_scope() as s:
        for table in (AlertDelivery, Alert, CheckResult, SliceFinding, Evaluation, StepRun, ScenarioRun):
            s.execute(delete(table))


def baseline(models: list[tuple[str, int]]) -> tuple[float, int]:
    from core.access import SYSTEM
    from core.alerting import alerts
    from core.db import session_scope
    from core.monitoring import checks, evaluation_store

    failed = 0
    t0 = time.perf_counter()
    for name, _sid in models:
        for ev in evaluation_store.evaluate(actor=SYSTEM, model=name, start=DAY, end=DAY + timedelta(days=1),
                                            every="1D"):
            with session_scope() as s:
                bad = [r.id for r in checks.run_checks(session=s, actor=SYSTEM, evaluation_id=ev.id)
                       if r.status in ("warning", "error")]
                alerts.fan_out_many(session=s, check_result_ids=bad)
                failed += len(bad)
    return time.perf_counter() - t0, failed


def tick(models: list[tuple[str, int]]) -> tuple[float, int]:
    from sqlmodel import select

    from core.automation.worker import Worker
    from core.db import session_scope
    from core.entities import CheckResult, ScenarioRun

    worker = Worker()
    t0 = time.perf_counter()
    for _name, sid in models:
        worker.fire(sid)
    worker.poll()
    elapsed = time.perf_counter() - t0
    with session_scope() as s:
        statuses = s.exec(select(ScenarioRun.status)).all()
        failed = len(s.exec(select(CheckResult.id).where(CheckResult.status.in_(["warning", "error"]))).all())
    assert statuses and set(statuses) == {"succeeded"} and len(statuses) == len(models), statuses
    return elapsed, failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=sized(100, 10))
    parser.add_argument("--rows", type=int, default=sized(10_000, 2_000))
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="wt-bench-scheduler-"))
    os.environ["WATCHTOWER_HOME"] = str(home)
    os.environ["WATCHTOWER_DATABASE_URL"] = args.database_url or f"sqlite:///{home / 'watchtower.db'}"
    print(f"seeding {args.models} models × {args.rows:,} labelled rows ...", flush=True)
    t0 = time.perf_counter()
    models = seed(args.models, args.rows)
    print(f"  seeded in {time.perf_counter() - t0:.0f} s", flush=True)
    results: dict[str, list[float]] = {"baseline": [], "tick": []}
    for _ in range(2):
        for label, fn in (("baseline", baseline), ("tick", tick)):
            clear()
            elapsed, failed = fn(models)
            results[label].append(elapsed)
            print(f"  {label:<8} {elapsed:7.2f} s  ({failed} failed check results)", flush=True)
    best_base, best_tick = min(results["baseline"]), min(results["tick"])
    ratio = best_tick / best_base
    backend = "postgresql" if args.database_url else "sqlite"
    print(f"scheduler tick on {backend}: {args.models} models, each evaluating {args.rows:,} new labelled rows "
          f"and running 8 checks")
    print(f"  baseline (evaluate + run_checks + fan_out_many in a loop): {best_base:7.2f} s  "
          f"({best_base / args.models * 1000:.0f} ms per model)")
    print(f"  one scheduler tick (fire {args.models} triggers, run {args.models} scenario runs): {best_tick:7.2f} s  "
          f"({best_tick / args.models * 1000:.0f} ms per model)")
    report(f"scheduler tick, {args.models} models ({backend})",
           f"{ratio:.2f}x ({best_tick:.1f} s vs {best_base:.1f} s for the same calls in a loop)", f"<= {TARGET:.0f}x",
           ratio <= TARGET)
    finish()


if __name__ == "__main__":
    main()
