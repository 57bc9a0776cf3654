"""The one module that talks to MLflow (the optional `watchtower[mlflow]` extra), so its API churn stays here.

MLflow is imported inside the functions: the command line starts without it, and Watchtower works without the
extra until a model is imported from MLflow. Every call names the tracking URI explicitly (no process-wide
`mlflow.set_tracking_uri`), and an unreachable server is reported by its URI before MLflow's own retries (set
low here unless MLFLOW_HTTP_REQUEST_MAX_RETRIES says otherwise) would keep a person waiting for minutes.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from core.errors import InvalidInput, NotFound, Unavailable

_URI = re.compile(r"models:/(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[\w-]+))")
NUMERIC_TYPES = ("double", "float", "long", "integer")


@dataclass(frozen=True)
class ModelRef:
    """What a `models:/NAME/VERSION` or `models:/NAME@ALIAS` URI names."""

    name: str
    version: str | None = None
    alias: str | None = None

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}" if self.version else f"models:/{self.name}@{self.alias}"


@dataclass(frozen=True)
class MlflowVersion:
    """A registered model version as the MLflow registry describes it."""

    name: str
    version: str
    run_id: str | None
    source: str
    aliases: tuple[str, ...]


@dataclass(frozen=True)
class Loaded:
    """A model loaded from MLflow: its flavour, the object, and its signature's columns (None: no signature)."""

    flavor: str  # sklearn | python_function
    model: Any
    inputs: tuple[tuple[str, str], ...] | None  # (column, MLflow type)
    outputs: tuple[str, ...]  # named output columns; empty for a tensor or an unnamed column


def parse_model_uri(uri: str) -> ModelRef:
    """models:/NAME@ALIAS or models:/NAME/VERSION; anything else is refused with the two shapes."""
    found = _URI.fullmatch((uri or "").strip())
    if found is None:
        raise InvalidInput(f"{uri!r} is not an MLflow registered model URI: use models:/NAME@ALIAS or "
                           "models:/NAME/VERSION")
    return ModelRef(name=found["name"], version=found["version"], alias=found["alias"])


def _mlflow() -> Any:
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    try:
        import mlflow
    except ImportError as exc:
        raise InvalidInput("importing from MLflow needs the MLflow extra: pip install 'watchtower[mlflow]'") from exc
    return mlflow


def check_reachable(tracking_uri: str, *, timeout: float = 5.0) -> None:
    """Refuse at once, naming the URI, when an HTTP tracking server does not answer its health check."""
    if not tracking_uri.startswith(("http://", "https://")):
        return
    import urllib.error
    import urllib.request

    try:  # urllib rather than httpx: no TLS context is built for a plain-http server, which saves ~50 ms a call
        with urllib.request.urlopen(f"{tracking_uri}/health", timeout=timeout) as answer:  # noqa: S310 - http(s) only
            status = answer.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise Unavailable(f"the MLflow tracking server at {tracking_uri} is not reachable "
                          f"({type(reason).__name__}: {str(reason)[:120] or 'no answer'}); nothing was written") from exc
    if status >= 500:
        raise Unavailable(f"the MLflow tracking server at {tracking_uri} answered its health check with "
                          f"HTTP {status}; nothing was written")


@contextmanager
def _translated(tracking_uri: str, what: str) -> Iterator[None]:
    """MLflow's exceptions as Watchtower's: unknown names as NotFound, anything else as Unavailable."""
    mlflow = _mlflow()
    try:
        yield
    except mlflow.exceptions.MlflowException as exc:
        code = getattr(exc, "error_code", "")
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        if code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND") or "not found" in first.lower():
            raise NotFound(f"{what} does not exist at {tracking_uri} ({first})") from exc
        if code == "INVALID_PARAMETER_VALUE":
            raise InvalidInput(f"{what}: {first}") from exc
        raise Unavailable(f"the MLflow tracking server at {tracking_uri} failed on {what} ({first}); "
                          "nothing was written") from exc
    except OSError as exc:  # connection refused or reset halfway
        raise Unavailable(f"the MLflow tracking server at {tracking_uri} is not reachable ({exc}); "
                          "nothing was written") from exc


def client(tracking_uri: str) -> Any:
    mlflow = _mlflow()
    return mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def resolve(tracking_uri: str, ref: ModelRef) -> MlflowVersion:
    """The registered version an alias points to (or the numbered version itself)."""
    c = client(tracking_uri)
    with _translated(tracking_uri, ref.uri if ref.version else f"alias @{ref.alias} of model {ref.name!r}"):
        mv = (c.get_model_version(ref.name, ref.version) if ref.version
              else c.get_model_version_by_alias(ref.name, ref.alias))
    return MlflowVersion(name=mv.name, version=str(mv.version), run_id=mv.run_id or None, source=mv.source or "",
                         aliases=tuple(getattr(mv, "aliases", None) or ()))


def run_facts(tracking_uri: str, run_id: str) -> tuple[dict[str, float], dict[str, str]]:
    """The latest value of each metric the run logged, and its parameters."""
    with _translated(tracking_uri, f"run {run_id}"):
        run = client(tracking_uri).get_run(run_id)
    return dict(run.data.metrics), dict(run.data.params)


def _columns(schema: Any) -> tuple[tuple[str, str], ...] | None:
    if schema is None or not getattr(schema, "has_input_names", lambda: False)():
        return None
    return tuple((spec.name, str(getattr(spec.type, "name", spec.type))) for spec in schema.inputs)


def load(tracking_uri: str, version: MlflowVersion) -> Loaded:
    """Download a registered version and load it: the scikit-learn flavour where present, else pyfunc."""
    _mlflow()
    import mlflow.artifacts
    import mlflow.pyfunc
    import mlflow.sklearn
    from mlflow.models import Model

    uri = f"models:/{version.name}/{version.version}"
    with tempfile.TemporaryDirectory(prefix="watchtower-mlflow-") as tmp:
        with _translated(tracking_uri, uri):
            local = mlflow.artifacts.download_artifacts(artifact_uri=uri, tracking_uri=tracking_uri, dst_path=tmp)
        described = Model.load(local)
        signature = described.signature
        outputs = _columns(signature.outputs) if signature is not None else None
        try:
            if "sklearn" in described.flavors:
                flavor, model = "sklearn", mlflow.sklearn.load_model(local)
            elif "python_function" in described.flavors:
                flavor, model = "python_function", mlflow.pyfunc.load_model(local)
            else:
                raise InvalidInput(f"{uri} has neither a scikit-learn nor a pyfunc flavour "
                                   f"(it has {', '.join(described.flavors) or 'none'})")
        except InvalidInput:
            raise
        except Exception as exc:  # noqa: BLE001 - whatever the model's own code raises while loading
            reason = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
            raise InvalidInput(f"{uri} cannot be loaded ({type(exc).__name__}: {reason})") from exc
    return Loaded(flavor=flavor, model=model, inputs=_columns(signature.inputs) if signature is not None else None,
                  outputs=tuple(name for name, _ in outputs or ()))


def log_metrics(tracking_uri: str, run_id: str, points: Iterable[tuple[str, float, int, int]]) -> int:
    """Log (key, value, step, timestamp ms) points to a run, in batches; returns how many were logged."""
    _mlflow()
    from mlflow.entities import Metric

    metrics = [Metric(key=k, value=float(v), timestamp=int(ts), step=int(step)) for k, v, step, ts in points]
    c = client(tracking_uri)
    with _translated(tracking_uri, f"run {run_id}"):
        for i in range(0, len(metrics), 1000):  # MLflow's log_batch takes at most 1000 metrics
            c.log_batch(run_id, metrics=metrics[i:i + 1000], synchronous=True)
    return len(metrics)
