"""What runs where, who calls, and scoring: the deployed version an environment serves, the bearer token's
scope, estimators loaded once per deployment (a failure remembered and audited once), and every scored batch
logged to the evaluation store.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from sqlalchemy import bindparam
from sqlmodel import Session, select
from threadpoolctl import threadpool_limits

from core import artifacts
from core.api.requests import Unavailable, invalid, read_body, with_field
from core.clock import now
from core.config import get_settings
from core.db import session_scope
from core.entities import Deployment, Environment, Model, ModelVersion
from core.errors import (
    Forbidden,
    NotFound,
    Unauthenticated,
    WatchtowerError,
)
from core.governance import environments
from core.identity import tokens
from core.lake import predictions as prediction_store
from core.lake import spool
from core.lake.tables import new_batch_id
from core.models.registry import model_row
from core.monitoring import ingest

log = logging.getLogger("watchtower.api")


THREADS_SETTING = "WATCHTOWER_API_MODEL_THREADS"


# --- what runs where --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Served:
    """What an environment serves for a model, read in one short transaction."""

    model_id: int
    model: str
    task: str
    features: tuple[tuple[str, str], ...]  # (name, numeric|categorical)
    extras: tuple[str, ...]  # columns a business metric sums: stored with the prediction when a record has them
    threshold: float
    environment_id: int
    environment: str
    version_id: int
    version: int
    since: datetime
    deployed_by: str
    artifact_path: str
    sha256: str
    deployment_id: int = 0


# Built once: the deployment is read on every request (a new one is served at once), and building a statement
# costs more than running it.
_ACTIVE = (select(Deployment.id, Deployment.deployed_at, Deployment.deployed_by, Environment.id.label("environment_id"),
                  Environment.name.label("environment"), Model.id.label("model_id"), Model.name.label("model"),
                  Model.task, Model.features, Model.business_metrics, Model.decision_threshold,
                  ModelVersion.id.label("version_id"), ModelVersion.number, ModelVersion.artifact_path,
                  ModelVersion.artifact_sha256)
           .join(Environment, Deployment.environment_id == Environment.id)
           .join(Model, Deployment.model_id == Model.id)
           .join(ModelVersion, Deployment.model_version_id == ModelVersion.id)
           .where(Environment.name == bindparam("environment"), Model.name == bindparam("model"), Deployment.active))


def served_in(session: Session, *, environment: str, model: str) -> Served:
    """The deployment active in ENVIRONMENT for MODEL (one query); NotFound names what is missing."""
    found = session.execute(_ACTIVE, {"environment": environment, "model": model}).first()
    if found is None:  # say which of the three is missing
        try:
            env = environments.environment_row(session, environment)
        except NotFound as exc:
            raise with_field(exc, "environment") from None
        try:
            m = model_row(session, model)
        except NotFound as exc:
            raise with_field(exc, "model") from None
        raise with_field(NotFound(f"{m.name} is not deployed in {env.name}"), "model")
    logged = ingest.logged_fields(features=found.features, business_metrics=found.business_metrics)
    return Served(model_id=found.model_id, model=found.model, task=found.task,
                  features=tuple((f["name"], f.get("type", "numeric")) for f in found.features),
                  extras=tuple(c["name"] for c in logged if c.get("optional")),
                  threshold=found.decision_threshold, environment_id=found.environment_id,
                  environment=found.environment, version_id=found.version_id, version=found.number,
                  since=found.deployed_at, deployed_by=found.deployed_by, artifact_path=found.artifact_path or "",
                  sha256=found.artifact_sha256 or "", deployment_id=found.id)


def served(*, environment: str, model: str) -> Served:
    with session_scope() as s:
        return served_in(s, environment=environment, model=model)


# --- credentials ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Caller:
    """The verified token a request acts with."""

    identity: tokens.TokenIdentity

    @property
    def logged_by(self) -> str:
        return f"token:{self.identity.token_id}:{self.identity.token_name}"


def bearer_secret(header: str | None) -> str:
    """The secret of an `Authorization: Bearer <token>` header; Unauthenticated when missing or malformed."""
    if not header or not header.strip():
        raise with_field(Unauthenticated("this endpoint needs a token: send Authorization: Bearer <token> "
                                          "(create one with `watchtower token create`)"), "Authorization")
    scheme, _, secret = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise with_field(Unauthenticated("the Authorization header must be 'Bearer <token>'"), "Authorization")
    return secret.strip()


def authorize(session: Session, *, header: str | None, kinds: tuple[str, ...], environment: str,
              model: str) -> Caller:
    """Verify the token (401) and that one of KINDS of scope covers ENVIRONMENT/MODEL (403)."""
    try:
        identity = tokens.authenticate_token(session=session, secret=bearer_secret(header))
    except Unauthenticated as exc:
        raise with_field(exc, "Authorization") from None
    refusal: Forbidden | None = None
    for kind in kinds:
        try:
            tokens.require_scope(identity, kind, environment=environment, model=model)
            return Caller(identity=identity)
        except Forbidden as exc:
            refusal = refusal or exc
    raise with_field(refusal or Forbidden("no scope"), "Authorization")


# --- models: loaded once per deployment, a failure remembered (and audited) once -----------------------------

@dataclass(frozen=True)
class Failure:
    environment: str
    model: str
    version: int
    sha256: str
    reason: str
    deployment_id: int = 0


class EstimatorCache:
    """Estimators by (database, deployment, version, sha256): a new deployment is a new key, so it reloads.
    An artifact that fails to load (sha256 mismatch, missing file) is remembered for its key: it is refused with
    503 from then on without being read (or audited) again, and /healthz names it, until a new deployment."""

    def __init__(self, size: int = 16) -> None:
        self._items: OrderedDict[tuple, Any] = OrderedDict()
        self._failed: dict[tuple, Failure] = {}
        self._lock = threading.Lock()
        self._loading = threading.Lock()
        self._size = size
        self.loads = 0

    @staticmethod
    def _key(s: Served) -> tuple:
        return (get_settings().database_url, s.deployment_id, s.environment, s.model, s.version, s.sha256)

    def _unavailable(self, failure: Failure) -> Unavailable:
        return with_field(Unavailable(f"{failure.model} v{failure.version} cannot be served in "
                                       f"{failure.environment}: {failure.reason}"), None)

    def _cached(self, key: tuple) -> Any:
        with self._lock:
            if key in self._failed:
                raise self._unavailable(self._failed[key])
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        return None

    def get(self, s: Served) -> Any:
        key = self._key(s)
        found = self._cached(key)
        if found is not None:
            return found
        with self._loading:  # one load per key, even when requests arrive together
            found = self._cached(key)
            if found is not None:
                return found
            try:
                estimator = artifacts.load_estimator(path=s.artifact_path, sha256=s.sha256, actor="api",
                                                     what=f"{s.model} v{s.version}")
            except Exception as exc:  # noqa: BLE001 - any load failure makes this deployment unavailable
                reason = str(exc) if isinstance(exc, WatchtowerError) else \
                    f"its artifact could not be loaded ({type(exc).__name__})"
                failure = Failure(environment=s.environment, model=s.model, version=s.version, sha256=s.sha256,
                                  reason=reason, deployment_id=s.deployment_id)
                log.error("deployment %s/%s v%s unavailable: %s", s.environment, s.model, s.version, reason)
                with self._lock:
                    self._failed[key] = failure
                raise self._unavailable(failure) from None
            with self._lock:
                self._items[key] = estimator
                self.loads += 1
                while len(self._items) > self._size:
                    self._items.popitem(last=False)
        return estimator

    def failures(self) -> list[Failure]:
        url = get_settings().database_url
        with self._lock:
            return [f for key, f in self._failed.items() if key[0] == url]


class ThreadLimit:
    """The model's thread pools (OpenMP, BLAS) limited to N threads in each request thread (0: no limit).
    Applied once per worker thread and again after a new estimator was loaded (it may bring a new library)."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self._local = threading.local()

    def apply(self, generation: int) -> None:
        if self.threads > 0 and getattr(self._local, "generation", None) != generation:
            threadpool_limits(limits=self.threads)
            self._local.generation = generation


def model_threads_setting() -> int:
    raw = os.environ.get(THREADS_SETTING, "1").strip() or "1"
    if not raw.isdigit() or int(raw) > 1024:
        raise ValueError(f"{THREADS_SETTING}={raw!r} must be a whole number of threads (0: no limit)")
    return int(raw)



def log_predictions(*, target: Served, features: dict[str, pa.Array], scores: np.ndarray, decisions: np.ndarray | None,
                    ids: list[str], at: datetime, logged_by: str | None = None) -> int:
    """Spool every prediction of one request, each with the token that logged it, before the answer goes out;
    the process's spool commits them to the evaluation store within a second (`core.lake.spool`)."""
    binary = target.task == "binary"
    n = len(ids)
    rows = prediction_store.prediction_rows(
        version_id=target.version_id, environment_id=target.environment_id, ids=ids,
        ts=pa.repeat(pa.scalar(at, pa.timestamp("us")), n), score=pa.array(scores, type=pa.float64()) if binary else None,
        predicted=pa.array(decisions if binary else scores, type=pa.float64()), features=features,
        logged_by=logged_by, batch=new_batch_id())
    spool.for_process().append(model_id=target.model_id, rows=rows)
    return n


def _predict(estimator: Any, frame: pd.DataFrame, *, binary: bool) -> np.ndarray:
    """The positive-class probability of a classifier, the predicted value of a regressor."""
    try:
        if binary and hasattr(estimator, "predict_proba"):
            scores = np.asarray(estimator.predict_proba(frame)[:, 1], dtype=float)
        else:
            scores = np.asarray(estimator.predict(frame), dtype=float)
    except (ValueError, TypeError) as exc:  # e.g. a category the model's encoder refuses
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:300]
        raise invalid(f"the model cannot score these records: {first}", "records") from None
    if not np.isfinite(scores).all():
        raise invalid("the model's answer for these records is not a finite number", "records")
    return scores


def new_ids(n: int) -> list[str]:
    """n random 128-bit prediction ids (hex), drawn in one call."""
    raw = os.urandom(16 * n).hex()
    return [raw[i:i + 32] for i in range(0, 32 * n, 32)]


def score_request(*, target: Served, body: bytes, cache: EstimatorCache, max_batch: int,
                  limit: ThreadLimit | None = None, logged_by: str | None = None) -> dict:
    """Validate, score and log one request; the answer holds a prediction id, score and decision per record."""
    frame, logged = read_body(body, features=target.features, extras=target.extras, max_batch=max_batch)
    estimator = cache.get(target)
    if limit is not None:
        limit.apply(cache.loads)
    binary = target.task == "binary"
    scores = _predict(estimator, frame, binary=binary)
    decisions = (scores >= target.threshold).astype(float) if binary else None
    ids = new_ids(len(scores))
    log_predictions(target=target, features=logged, scores=scores, decisions=decisions, ids=ids, at=now(),
                    logged_by=logged_by)
    answer_decisions = decisions.astype(int).tolist() if binary else [None] * len(ids)
    return {"model": target.model, "environment": target.environment, "version": target.version,
            "predictions": [{"prediction_id": pid, "score": sc, "decision": d}
                            for pid, sc, d in zip(ids, scores.tolist(), answer_decisions, strict=True)]}
