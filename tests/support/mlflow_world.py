"""A real MLflow tracking server on loopback, and fraud models a team has logged and registered in it.

`mlflow_server` (session-scoped) starts `mlflow server` with a SQLite backend and a local artifact store on a
free port, waits for its health check and stops it at the end. Tests that use it carry
`@pytest.mark.xdist_group("mlflow")`, so under `--dist loadgroup` one worker starts the server for all of them.
Each test registers models under names of its own, so tests sharing the server never see each other's models.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pandas as pd
import pytest

from core.access import Actor
from core.db import session_scope
from tests.support import external_logs

FEATURES = ["amount", "merchant", "card_age_days", "region_code"]
TARGET = "is_fraud"
ADMIN = Actor(username="admin", roles=("admin",))


@dataclass(frozen=True)
class MlflowServer:
    uri: str
    process: subprocess.Popen


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dead_uri() -> str:
    """A loopback address where nothing listens (a tracking server that is down)."""
    return f"http://127.0.0.1:{_free_port()}"


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """`mlflow server` on SQLite and a local artifact store, on a free loopback port, for the whole session."""
    pytest.importorskip("mlflow")
    root = tmp_path_factory.mktemp("mlflow-server")
    port = _free_port()
    log = open(root / "server.log", "w")  # noqa: SIM115 - closed at teardown
    env = {**os.environ, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--backend-store-uri",
                             f"sqlite:///{root / 'mlflow.db'}", "--artifacts-destination", str(root / "artifacts"),
                             "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{uri}/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            log.close()
            raise RuntimeError(f"mlflow server did not start: {(root / 'server.log').read_text()[-2000:]}")
        time.sleep(0.5)
    yield MlflowServer(uri=uri, process=proc)
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def data(n: int = 1500, *, seed: int = 1) -> pd.DataFrame:
    """Labelled transactions with an id and a timestamp (the external team's export), without the old score."""
    return external_logs.transactions(n, seed=seed).drop(columns=["score"])


def fitted(frame: pd.DataFrame):  # noqa: ANN201 - a scikit-learn Pipeline
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    pre = ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), ["merchant"])], remainder="passthrough")
    pipe = Pipeline([("pre", pre), ("model", RandomForestClassifier(n_estimators=30, min_samples_leaf=5,
                                                                    random_state=0))])
    return pipe.fit(frame[FEATURES], frame[TARGET])


def log_and_register(uri: str, name: str, *, signature: bool = True, alias: str | None = "champion",
                     serialization: str = "skops", metrics: dict | None = None) -> tuple[str, str]:
    """Train, log to a run (with metrics and params) and register as NAME; returns (run id, version)."""
    import mlflow
    import mlflow.sklearn
    import skops.io
    from mlflow import MlflowClient
    from mlflow.models import infer_signature

    frame = data(seed=11)
    model = fitted(frame)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    mlflow.set_experiment("fraud")
    with mlflow.start_run() as run:
        mlflow.log_params({"n_estimators": 30, "min_samples_leaf": 5})
        mlflow.log_metrics(metrics if metrics is not None else {"roc_auc": 0.912, "training_accuracy": 0.98})
        kwargs = {"serialization_format": serialization}
        if serialization == "skops":
            kwargs["skops_trusted_types"] = skops.io.get_untrusted_types(data=skops.io.dumps(model))
        if signature:
            kwargs["signature"] = infer_signature(frame[FEATURES], model.predict(frame[FEATURES]))
        info = mlflow.sklearn.log_model(model, name="model", registered_model_name=name, **kwargs)
    version = str(info.registered_model_version)
    if alias:
        client.set_registered_model_alias(name, alias, version)
    return run.info.run_id, version


def log_pyfunc_and_register(uri: str, name: str) -> tuple[str, str]:
    """A model only MLflow's pyfunc flavour can load (a python_model wrapping a forest, returning the fraud
    probability), logged with a signature and registered as NAME, aliased champion; returns (run id, version)."""
    import mlflow
    import mlflow.pyfunc
    from mlflow import MlflowClient
    from mlflow.models import infer_signature

    class FraudProbability(mlflow.pyfunc.PythonModel):  # defined here: pickled by value with the model
        def __init__(self, pipeline) -> None:  # noqa: ANN001
            self.pipeline = pipeline

        def predict(self, context, model_input, params=None):  # noqa: ANN001, ANN201, ARG002
            return self.pipeline.predict_proba(model_input[FEATURES])[:, 1]

    frame = data(seed=11)
    wrapped = FraudProbability(fitted(frame))
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    mlflow.set_experiment("fraud")
    with mlflow.start_run() as run:
        mlflow.log_metrics({"roc_auc": 0.9})
        info = mlflow.pyfunc.log_model(name="model", python_model=wrapped, registered_model_name=name,
                                       signature=infer_signature(frame[FEATURES], wrapped.predict(None, frame)))
    version = str(info.registered_model_version)
    MlflowClient(tracking_uri=uri, registry_uri=uri).set_registered_model_alias(name, "champion", version)
    return run.info.run_id, version


def trust(uri: str) -> None:
    from core.models import mlflow_sources

    with session_scope() as s:
        mlflow_sources.trust_source(session=s, actor=ADMIN, tracking_uri=uri)


def reference_csv(folder: Path, *, n: int = 1500, seed: int = 1) -> Path:
    path = folder / "reference.csv"
    data(n, seed=seed).to_csv(path, index=False)
    return path
