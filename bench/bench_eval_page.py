"""The Evaluation store page with six months of daily windows for 10 models, against an empty page, in AppTest.

Target: ≤ 2× the time of an empty page. Both are one AppTest run of `app.py`, signed in, with the page
measured as the first page of the navigation: the same app shell, then either the Evaluation store or an
empty page that only checks the permission and shows a title (no data work). Measured cold (Streamlit's
data cache cleared before every run) and warm; median of the runs. Exits 1 when the target is missed.

Usage: .venv/bin/python bench/bench_eval_page.py [RUNS]   (default 7; BENCH_QUICK=1: 3 models × 60 days, 3 runs)
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from common import empty_page, finish, open_first, report, sized  # noqa: E402

TARGET = 2.0
MODELS, DAYS = sized(10, 3), sized(184, 60)
START = datetime(2026, 5, 1)
FEATURES = [{"name": f"f{i}", "type": "numeric" if i < 8 else "categorical"} for i in range(10)]
BUSINESS = [{"name": "fraud_missed_amount", "kind": "amount_sum", "column": "f0", "label": 1, "prediction": 0,
             "label_text": "Fraud missed (amount)", "better": "lower"},
            {"name": "net_value", "kind": "cost_matrix", "tp": 100, "fp": -5, "fn": -100, "tn": 0}]


def populate() -> None:
    """10 models, each with an active version and 184 daily evaluation windows as the store writes them."""
    from core.access import SYSTEM
    from core.db import session_scope
    from core.entities import Evaluation
    from core.identity import users
    from core.models import registry
    from core.monitoring import checks
    from core.projects import projects

    rng = np.random.default_rng(5)
    reference = pd.DataFrame({f["name"]: rng.normal(size=2000) if f["type"] == "numeric" else
                              rng.choice(["a", "b", "c"], 2000) for f in FEATURES})
    reference["y"], reference["__score__"] = rng.integers(0, 2, 2000), rng.random(2000)
    with session_scope() as s:
        users.create_user(session=s, actor=SYSTEM, username="maya", name="Maya", email="maya@x.io", roles=["ml_engineer"])
        projects.create_project(session=s, actor=SYSTEM, key="BENCH", name="Bench")
        for m in range(MODELS):
            name = f"model-{m:02d}"
            registry.create_model(session=s, actor=SYSTEM, project_key="BENCH", name=name, task="binary", target="y",
                                  features=FEATURES, business_metrics=BUSINESS)
            v = registry.add_version(session=s, actor=SYSTEM, model=name, reference=reference, status="active")
            checks.define_check(session=s, actor=SYSTEM, project_key="BENCH", name=f"auc {name}", kind="metric_drop",
                                model=name, metric="roc_auc", threshold=0.05, audience_roles=["ml_engineer"])
            for d in range(DAYS):
                start = START + timedelta(days=d)
                values = {k: float(rng.random()) for k in ("roc_auc", "pr_auc", "precision", "recall", "f1",
                                                           "accuracy", "log_loss", "brier", "positive_rate")}
                s.add(Evaluation(
                    model_version_id=v.id, window_start=start, window_end=start + timedelta(days=1), granularity="1D",
                    rows=1500, labelled_rows=1500 if d < DAYS - 7 else 0, metrics=values if d < DAYS - 7 else {},
                    estimated_metrics={k: values[k] for k in ("precision", "recall", "f1", "accuracy", "roc_auc")},
                    business_metrics={"fraud_missed_amount": float(rng.random() * 5000), "net_value": 100.0},
                    data_quality={"missing_rate": {f["name"]: 0.0 for f in FEATURES}, "rows": 1500},
                    drift_share=0.1, drifted_fields=1,
                    prediction_drift={"field": "__score__", "method": "wasserstein", "score": 0.02, "drifted": False},
                    field_drift=[{"field": f["name"], "type": f["type"], "method": "wasserstein",
                                  "method_label": "Wasserstein distance (normed)", "threshold": 0.1,
                                  "score": float(rng.random() * 0.2), "drifted": bool(rng.random() < 0.1), "note": ""}
                                 for f in FEATURES]))
            s.flush()


PERMISSION = "evaluation.view"
USER = {"username": "maya", "name": "Maya", "roles": ["ml_engineer"]}


def measure(page: str, title: str, runs: int, *, cold: bool) -> float:
    """Median seconds of `runs` AppTest runs of app.py with `page` as the default page."""
    times = []
    for _ in range(runs):
        elapsed, at = open_first(page, PERMISSION, USER, clear_cache=cold)
        if at.title[0].value != title:
            raise SystemExit(f"expected the page {title!r}, got {at.title[0].value!r}")
        times.append(elapsed)
    return statistics.median(times)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else sized(7, 3)
    home = tempfile.mkdtemp()
    os.environ.update(WATCHTOWER_HOME=home, WATCHTOWER_DATABASE_URL=f"sqlite:///{home}/watchtower.db")
    populate()
    empty = empty_page(home, PERMISSION)
    store = "pages/evaluation_store.py"
    measure(store, "Evaluation store", 1, cold=True)  # imports and first-run costs out of the way
    measure(empty, "Empty", 1, cold=True)
    empty_s = measure(empty, "Empty", runs, cold=True)
    cold_s = measure(store, "Evaluation store", runs, cold=True)
    warm_s = measure(store, "Evaluation store", runs, cold=False)
    print(f"{MODELS} models × {DAYS} daily windows; AppTest, signed in, median of {runs}")
    print(f"empty page, same app shell: {empty_s:.2f} s")
    print(f"evaluation store, cold cache: {cold_s:.2f} s → {cold_s / empty_s:.2f}× (target ≤ {TARGET}×)")
    print(f"evaluation store, warm cache: {warm_s:.2f} s → {warm_s / empty_s:.2f}×")
    ratio = cold_s / empty_s
    report("evaluation store page (cold) vs empty page",
           f"{ratio:.2f}x ({cold_s:.2f} s vs {empty_s:.2f} s; warm {warm_s / empty_s:.2f}x)", f"<= {TARGET:.0f}x",
           ratio <= TARGET)
    finish()


if __name__ == "__main__":
    main()
