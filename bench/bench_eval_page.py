"""The Evaluation store page with six months of daily windows for 10 models, against an empty page, in AppTest.

Target: ≤ 3× the time of an empty page. Both are opened the same way — `app.py`, signed in, then the page
— and measured cold (Streamlit's data cache cleared before every run) and warm; median of the runs.

Usage: .venv/bin/python bench/bench_eval_page.py [RUNS]   (default 7)
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

TARGET = 3.0
MODELS, DAYS = 10, 184
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


EMPTY_PAGE = 'import streamlit as st\nfrom ui.session import require_page\nrequire_page("evaluation.view")\nst.title("Empty")\n'


def measure(page: str, runs: int, *, cold: bool) -> float:
    import streamlit as st

    from tests.app.conftest import open_page

    times = []
    for _ in range(runs):
        if cold:
            st.cache_data.clear()
        started = time.perf_counter()
        at = open_page(page, username="maya")
        times.append(time.perf_counter() - started)
        assert not at.exception, at.exception
    return statistics.median(times)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    home = tempfile.mkdtemp()
    os.environ.update(WATCHTOWER_HOME=home, WATCHTOWER_DATABASE_URL=f"sqlite:///{home}/watchtower.db")
    populate()
    empty = Path(home) / "bench_empty.py"
    empty.write_text(EMPTY_PAGE)
    from core import access

    # The empty page joins the navigation for this run only (its file lives in the temporary home).
    access.PAGES = (*access.PAGES, access.PageSpec(str(empty), "Empty", "Bench", "evaluation.view"))
    measure("pages/evaluation_store.py", 1, cold=True)  # imports and first-run costs out of the way
    measure(str(empty), 1, cold=True)
    empty_s = measure(str(empty), runs, cold=True)
    cold_s = measure("pages/evaluation_store.py", runs, cold=True)
    warm_s = measure("pages/evaluation_store.py", runs, cold=False)
    print(f"{MODELS} models × {DAYS} daily windows; AppTest, signed in, median of {runs}")
    print(f"empty page: {empty_s:.2f} s")
    print(f"evaluation store, cold cache: {cold_s:.2f} s → {cold_s / empty_s:.2f}× (target ≤ {TARGET}×)")
    print(f"evaluation store, warm cache: {warm_s:.2f} s → {warm_s / empty_s:.2f}×")
    ok = cold_s / empty_s <= TARGET
    print("OK" if ok else "MISSED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
