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
from sqlmodel import Session, select
from threadpoolctl import threadpool_limits

from core import artifacts
from core.api.requests import Unavailable, invalid, parse_records, value_problem, with_field
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


def served_in(session: Session, *, environment: str, model: str) -> Served:
    """The deployment active in ENVIRONMENT for MODEL (one query); NotFound names what is missing."""
    found = session.exec(select(Deployment, Environment, Model, ModelVersion)
                         .join(Environment, Deployment.environment_id == Environment.id)
                         .join(Model, Deployment.model_id == Model.id)
                         .join(ModelVersion, Deployment.model_version_id == ModelVersion.id)
                         .where(Environment.name == environment, Model.name == model, Deployment.active)).first()
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
    dep, env, m, v = found
    return Served(model_id=m.id, model=m.name, task=m.task,
                  features=tuple((f["name"], f.get("type", "numeric")) for f in m.features),
                  extras=tuple(c["name"] for c in ingest.logged_columns(m) if c.get("optional")),
                  threshold=m.decision_threshold, environment_id=env.id, environment=env.name, version_id=v.id,
                  version=v.number, since=dep.deployed_at, deployed_by=dep.deployed_by,
                  artifact_path=v.artifact_path or "", sha256=v.artifact_sha256 or "", deployment_id=dep.id)


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



_PLAIN_NUMBERS = {int, float}  # bool and text are not numbers here, though numpy would convert them


def _column(values: list[Any], name: str, kind: str, required: bool) -> tuple[Any, int | None, str | None]:
    """One field's values as a column, or the first record whose value is refused and why. Numbers all of plain
    int/float type convert in one block; anything else is checked value by value."""
    if kind == "numeric" and set(map(type, values)) <= _PLAIN_NUMBERS:
        try:
            block = np.array(values, dtype=float)
        except OverflowError:  # an integer beyond any float: named below
            block = None
        if block is not None and np.isfinite(block).all():
            return block, None, None
    for i, value in enumerate(values):
        why = ("is missing" if required else None) if value is None else value_problem(value, kind)
        if why:
            return None, i, why
    if kind == "numeric":
        return np.array([np.nan if v is None else v for v in values], dtype=float), None, None
    return values, None, None


def to_frame(records: list[Any], target: Served) -> pd.DataFrame:
    """The records as one frame of the logged columns; the first problem (by record, then by field) is named
    with its record and field."""
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise invalid(f"record {i} is not an object of feature values", f"records[{i}]")
    kinds = {**{n: k for n, k in target.features}, **{n: "numeric" for n in target.extras}}
    required = {n for n, _ in target.features}
    data: dict[str, Any] = {}
    problems: list[tuple[int, int, str, str]] = []  # (record, field position, field, why)
    for pos, name in enumerate(kinds):
        column, i, why = _column([rec.get(name) for rec in records], name, kinds[name], name in required)
        if why:
            problems.append((i, pos, name, why))
        else:
            data[name] = column
    if problems:
        i, _pos, name, why = min(problems)
        raise invalid(f"record {i}: field {name!r} {why}", f"records[{i}].{name}")
    return pd.DataFrame(data, columns=list(kinds))


def logged_features(frame: pd.DataFrame, target: Served) -> dict[str, pa.Array]:
    """The logged values of the records, column by column, typed exactly as file ingestion types them."""
    logged = [{"name": n, "type": kind} for n, kind in target.features]
    logged += [{"name": n, "type": "numeric"} for n in target.extras if frame[n].notna().any()]
    arrays = [pa.array(frame[c["name"]].to_numpy(dtype=float), from_pandas=True) if c["type"] == "numeric"
              else pa.array([v if isinstance(v, str) else None for v in frame[c["name"]]], type=pa.string())
              for c in logged]
    batch = pa.RecordBatch.from_arrays(arrays, names=[c["name"] for c in logged])
    return ingest.feature_values(batch, logged, offset=0, name="request")


def log_predictions(*, target: Served, features: dict[str, pa.Array], scores: np.ndarray, decisions: np.ndarray | None,
                    ids: list[str], at: datetime, logged_by: str | None = None) -> int:
    """Spool every prediction of one request, each with the token that logged it, before the answer goes out;
    the process's spool commits them to the evaluation store within a second (`core.lake.spool`)."""
    binary = target.task == "binary"
    n = len(ids)
    rows = prediction_store.prediction_rows(
        version_id=target.version_id, environment_id=target.environment_id, ids=ids,
        ts=pa.array([at] * n, type=pa.timestamp("us")), score=pa.array(scores, type=pa.float64()) if binary else None,
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
    records = parse_records(body, max_batch=max_batch)
    frame = to_frame(records, target)
    estimator = cache.get(target)
    if limit is not None:
        limit.apply(cache.loads)
    binary = target.task == "binary"
    scores = _predict(estimator, frame[[n for n, _ in target.features]], binary=binary)
    decisions = (scores >= target.threshold).astype(float) if binary else None
    ids = new_ids(len(scores))
    log_predictions(target=target, features=logged_features(frame, target), scores=scores, decisions=decisions,
                    ids=ids, at=now(), logged_by=logged_by)
    answer_decisions = decisions.astype(int).tolist() if binary else [None] * len(ids)
    return {"model": target.model, "environment": target.environment, "version": target.version,
            "predictions": [{"prediction_id": pid, "score": sc, "decision": d}
                            for pid, sc, d in zip(ids, scores.tolist(), answer_decisions, strict=True)]}
