"""Import of an MLflow model version: target ≤ 3× MLflow's own `mlflow.sklearn.load_model` of the same version.

A real `mlflow server` (SQLite backend, local artifact store) on a free loopback port holds a registered
HistGradientBoosting classifier trained on 50,000 rows × 20 features, aliased `champion`. Watchtower's import is
the whole `watchtower model import-mlflow` path: the trust check, the server's health, the alias resolved, the
run's metrics read, the model downloaded and loaded through MLflow, the mapping from its signature, the
reference (5,000 rows) scored, the skops copy saved and checked, the model and version written. The baseline
is `mlflow.sklearn.load_model("models:/NAME@champion")`: resolve, download and load. Both run in the same
process after one warm-up each (MLflow's own import is paid once), alternately, and the medians are compared.
Watchtower runs on SQLite in a temporary home of its own. Exits 1 when the target is missed.

Usage: .venv/bin/python bench/bench_mlflow_import.py   (BENCH_QUICK=1: 10,000 training rows, 3 repeats)
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from common import finish, quick, report, sized  # noqa: E402

TARGET = 3.0
REPEAT = 3 if quick() else 5
FEATURES = [f"f{i:02d}" for i in range(20)]


def _frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, len(FEATURES)))
    logit = x[:, 0] * 1.2 - x[:, 1] + 0.5 * x[:, 2] * x[:, 3] - 2.5
    frame = pd.DataFrame(x.round(5), columns=FEATURES)
    frame["is_fraud"] = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    frame.insert(0, "id", [f"tx-{seed}-{i}" for i in range(rows)])
    return frame


def _server(root: Path) -> tuple[subprocess.Popen, str]:
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--backend-store-uri",
                             f"sqlite:///{root / 'mlflow.db'}", "--artifacts-destination", str(root / "artifacts"),
                             "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{uri}/health", timeout=2).status_code == 200:
                return proc, uri
        except httpx.HTTPError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("mlflow server did not start")


def _register(uri: str, rows: int) -> None:
    import mlflow
    import mlflow.sklearn
    import skops.io
    from mlflow.models import infer_signature
    from sklearn.ensemble import HistGradientBoostingClassifier

    train = _frame(rows, seed=1)
    model = HistGradientBoostingClassifier(max_iter=200, random_state=0).fit(train[FEATURES], train["is_fraud"])
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("bench")
    with mlflow.start_run():
        mlflow.log_params({"max_iter": 200})
        mlflow.log_metrics({"roc_auc": 0.9})
        mlflow.sklearn.log_model(model, name="model", registered_model_name="bench-fraud",
                                 signature=infer_signature(train[FEATURES], model.predict_proba(train[FEATURES])),
                                 skops_trusted_types=skops.io.get_untrusted_types(data=skops.io.dumps(model)))
    mlflow.MlflowClient(tracking_uri=uri).set_registered_model_alias("bench-fraud", "champion", "1")


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="bench-mlflow-"))
    home = root / "home"
    home.mkdir()
    os.environ["WATCHTOWER_HOME"] = str(home)
    os.environ["WATCHTOWER_DATABASE_URL"] = f"sqlite:///{home / 'watchtower.db'}"
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    proc, uri = _server(root)
    try:
        _run(root, uri)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    finish()


def _run(root: Path, uri: str) -> None:
    import mlflow.sklearn

    from core.access import Actor
    from core.db import session_scope
    from core.models import mlflow_import, mlflow_sources
    from core.projects import projects

    rows = sized(50_000, 10_000)
    _register(uri, rows)
    reference = root / "reference.csv"
    _frame(5_000, seed=2).to_csv(reference, index=False)
    admin = Actor(username="admin", roles=("admin",))
    with session_scope() as s:
        projects.create_project(session=s, actor=admin, key="BENCH", name="Bench", risk_level="low")
        mlflow_sources.trust_source(session=s, actor=admin, tracking_uri=uri)
    model_uri = "models:/bench-fraud@champion"
    counter = iter(range(1000))

    def ours() -> float:
        started = time.perf_counter()
        mlflow_import.import_from_mlflow(actor=admin, project_key="BENCH", model_uri=model_uri, tracking_uri=uri,
                                         reference=reference, name=f"bench-fraud-{next(counter)}")
        return time.perf_counter() - started

    def theirs() -> float:
        started = time.perf_counter()
        mlflow.sklearn.load_model(model_uri)
        return time.perf_counter() - started

    ours(), theirs()  # warm-up: MLflow's own modules, sklearn, skops
    timed_ours, timed_theirs = [], []
    for _ in range(REPEAT):
        timed_ours.append(ours())
        timed_theirs.append(theirs())
    a, b = statistics.median(timed_ours), statistics.median(timed_theirs)
    print(f"HistGradientBoosting (200 iterations) on {rows:,} rows x 20 features, reference 5,000 rows")
    print(f"watchtower import-mlflow: median {a:.2f}s  {['%.2f' % t for t in timed_ours]}")
    print(f"mlflow.sklearn.load_model: median {b:.2f}s  {['%.2f' % t for t in timed_theirs]}")
    report("mlflow import vs mlflow.sklearn.load_model", f"{a:.2f}s vs {b:.2f}s = {a / b:.1f}x",
           f"<= {TARGET:.0f}x", a / b <= TARGET)


if __name__ == "__main__":
    main()
