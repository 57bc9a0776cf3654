"""The HTTP scoring API: each environment serves its deployed version; every prediction is logged to the store.

    GET  /healthz
    GET  /v1/{environment}/{model}                  what runs there: version, since when, sha256
    POST /v1/{environment}/{model}/predict          {"records": [{feature: value, ...}, ...]}
    POST /v1/{environment}/{model}/deployments      {"version": N} with HTTP Basic credentials (the same gate)
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlmodel import select
from starlette.concurrency import run_in_threadpool

from core import artifacts, deployer, environments, ingest, prediction_store, users
from core.clock import now
from core.config import get_settings
from core.db import session_scope
from core.entities import Deployment, Environment, Model, ModelVersion
from core.errors import Conflict, Forbidden, IntegrityFailure, InvalidInput, NotFound, WatchtowerError
from core.registry import model_row

DEFAULT_MAX_BATCH = 10_000
DEFAULT_MAX_BYTES = 32 * 1024 * 1024
STATUS = {NotFound: 404, Forbidden: 403, Conflict: 409, InvalidInput: 422, IntegrityFailure: 500}


class TooLarge(WatchtowerError):
    """The request exceeds the batch or body size limit."""


class Unauthenticated(WatchtowerError):
    """No, malformed or wrong credentials."""


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


def served(*, environment: str, model: str) -> Served:
    """The deployment active in ENVIRONMENT for MODEL (one query per request); NotFound names what is missing."""
    with session_scope() as s:
        found = s.exec(select(Deployment, Environment, Model, ModelVersion)
                       .join(Environment, Deployment.environment_id == Environment.id)
                       .join(Model, Deployment.model_id == Model.id)
                       .join(ModelVersion, Deployment.model_version_id == ModelVersion.id)
                       .where(Environment.name == environment, Model.name == model, Deployment.active)).first()
        if found is None:  # say which of the three is missing
            env = environments.environment_row(s, environment)
            m = model_row(s, model)
            raise NotFound(f"{m.name} is not deployed in {env.name}")
        dep, env, m, v = found
        return Served(model_id=m.id, model=m.name, task=m.task,
                      features=tuple((f["name"], f.get("type", "numeric")) for f in m.features),
                      extras=tuple(c["name"] for c in ingest.logged_columns(m) if c.get("optional")),
                      threshold=m.decision_threshold, environment_id=env.id, environment=env.name, version_id=v.id,
                      version=v.number, since=dep.deployed_at, deployed_by=dep.deployed_by,
                      artifact_path=v.artifact_path or "", sha256=v.artifact_sha256 or "")


class EstimatorCache:
    """Estimators by (database, environment, model, version, sha256): a new deployment is a new key, so it reloads."""

    def __init__(self, size: int = 16) -> None:
        self._items: OrderedDict[tuple, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._size = size
        self.loads = 0

    def get(self, s: Served) -> Any:
        key = (get_settings().database_url, s.environment, s.model, s.version, s.sha256)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        estimator = artifacts.load_estimator(path=s.artifact_path, sha256=s.sha256, actor="api",
                                             what=f"{s.model} v{s.version}")
        with self._lock:
            self._items[key] = estimator
            self.loads += 1
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return estimator


def _bad_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def parse_records(body: bytes, *, max_batch: int) -> list[dict]:
    """The records of a request body ({"records": [...]} or a bare list); InvalidInput/TooLarge say why not."""
    try:
        payload = json.loads(body or b"null", parse_constant=_bad_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"the body is not valid JSON: {str(exc).splitlines()[0]}") from None
    records = payload.get("records") if isinstance(payload, dict) else payload
    if not isinstance(records, list):
        raise InvalidInput('the body must be {"records": [{feature: value, ...}, ...]}')
    if not records:
        raise InvalidInput("the request holds no records")
    if len(records) > max_batch:
        raise TooLarge(f"{len(records)} records exceed the limit of {max_batch} per request")
    return records


def _kind_of(value: Any) -> str:
    return "text" if isinstance(value, str) else type(value).__name__


def _value_problem(value: Any, name: str, kind: str) -> str | None:
    if value is None:
        return None
    if kind == "numeric" and (isinstance(value, bool) or not isinstance(value, (int, float))):
        return f"field {name!r} must be a number, got {_kind_of(value)} {json.dumps(value)[:40]}"
    if kind != "numeric" and not isinstance(value, (str, int, bool)):
        return f"field {name!r} must be a category (text), got {_kind_of(value)}"
    return None


def to_frame(records: list[Any], target: Served) -> pd.DataFrame:
    """The records as one frame of the logged columns; the first problem (by record, then by field) is named
    with its record. Columns of plain numbers are checked as one block; others value by value."""
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise InvalidInput(f"record {i} is not an object of feature values")
    kinds = {**{n: k for n, k in target.features}, **{n: "numeric" for n in target.extras}}
    required = {n for n, _ in target.features}
    columns = list(kinds)
    frame = pd.DataFrame.from_records(records, columns=columns)
    problems: list[tuple[int, int, str]] = []  # (record, field position, why)
    block = [n for n in columns if kinds[n] == "numeric" and pd.api.types.is_numeric_dtype(frame[n])
             and not pd.api.types.is_bool_dtype(frame[n])]
    if block:
        values = frame[block].to_numpy(dtype=float)
        missing = np.isnan(values) & np.array([n in required for n in block])
        bad = missing | np.isinf(values)
        if bad.any():
            i, j = divmod(int(bad.argmax()), len(block))  # row-major: the first record, then the first field
            why = "is missing" if missing[i, j] else "must be a finite number"
            problems.append((i, columns.index(block[j]), f"field {block[j]!r} {why}"))
    for pos, name in enumerate(columns):
        if name in block:
            continue
        for i, rec in enumerate(records):
            why = f"field {name!r} is missing" if name in required and rec.get(name) is None \
                else _value_problem(rec.get(name), name, kinds[name])
            if why:
                problems.append((i, pos, why))
                break
    if problems:
        i, _pos, why = min(problems)
        raise InvalidInput(f"record {i}: {why}")
    return frame


def features_json(frame: pd.DataFrame, target: Served) -> pa.Array:
    """The logged values of each record as JSON text, built column-wise exactly as file ingestion builds them."""
    logged = [{"name": n, "type": kind} for n, kind in target.features]
    logged += [{"name": n, "type": "numeric"} for n in target.extras if frame[n].notna().any()]
    arrays = [pa.array(frame[c["name"]].to_numpy(dtype=float), from_pandas=True) if c["type"] == "numeric"
              else pa.array([v if isinstance(v, str) else json.dumps(v) for v in frame[c["name"]]], type=pa.string())
              for c in logged]
    batch = pa.RecordBatch.from_arrays(arrays, names=[c["name"] for c in logged])
    return ingest.features_json(batch, logged, offset=0, name="request")


def log_predictions(*, target: Served, features: pa.Array, scores: np.ndarray, decisions: np.ndarray | None,
                    ids: list[str], at: datetime) -> int:
    """Write every prediction of one request in one short transaction, through the evaluation store's bulk path."""
    binary = target.task == "binary"
    n = len(ids)
    with session_scope() as s:
        prediction_store.insert_predictions(
            s, model_id=target.model_id, version_id=target.version_id, environment_id=target.environment_id,
            ids=ids, ts=pa.array([at] * n, type=pa.timestamp("us")),
            score=pa.array(scores, type=pa.float64()) if binary else None,
            predicted=pa.array(decisions if binary else scores, type=pa.float64()), features=features)
    return n


def _predict(estimator: Any, frame: pd.DataFrame, *, binary: bool) -> np.ndarray:
    """The positive-class probability of a classifier, the predicted value of a regressor."""
    if binary and hasattr(estimator, "predict_proba"):
        return np.asarray(estimator.predict_proba(frame)[:, 1], dtype=float)
    return np.asarray(estimator.predict(frame), dtype=float)


def new_ids(n: int) -> list[str]:
    """n random 128-bit prediction ids (hex), drawn in one call."""
    raw = os.urandom(16 * n).hex()
    return [raw[i:i + 32] for i in range(0, 32 * n, 32)]


def score_request(*, environment: str, model: str, body: bytes, cache: EstimatorCache, max_batch: int) -> dict:
    """Validate, score and log one request; the answer holds a prediction id, score and decision per record."""
    target = served(environment=environment, model=model)
    records = parse_records(body, max_batch=max_batch)
    frame = to_frame(records, target)
    estimator = cache.get(target)
    scores = _predict(estimator, frame[[n for n, _ in target.features]], binary=target.task == "binary")
    binary = target.task == "binary"
    decisions = (scores >= target.threshold).astype(float) if binary else None
    ids = new_ids(len(scores))
    log_predictions(target=target, features=features_json(frame, target), scores=scores, decisions=decisions,
                    ids=ids, at=now())
    answer_decisions = decisions.astype(int).tolist() if binary else [None] * len(ids)
    return {"model": target.model, "environment": target.environment, "version": target.version,
            "predictions": [{"prediction_id": pid, "score": sc, "decision": d}
                            for pid, sc, d in zip(ids, scores.tolist(), answer_decisions, strict=True)]}


def _deploy_request(*, environment: str, model: str, body: bytes, authorization: str | None) -> dict:
    username, password = _basic_credentials(authorization)
    try:
        payload = json.loads(body or b"{}")
        version = int(payload["version"])
    except (ValueError, KeyError, TypeError):
        raise InvalidInput('the body must be {"version": N}') from None
    try:
        with session_scope() as s:
            actor = users.authenticate(session=s, username=username, password=password,
                                       demo=get_settings().demo).actor
    except Forbidden as exc:
        raise Unauthenticated(str(exc)) from None
    with session_scope() as s:
        dep = deployer.deploy(session=s, actor=actor, model=model, version=version, environment=environment,
                              note=str(payload.get("note", "")))
    return {"model": dep.model, "environment": dep.environment, "version": dep.version,
            "since": dep.since.isoformat(), "deployed_by": dep.deployed_by, "warning": dep.warning}


def _basic_credentials(header: str | None) -> tuple[str, str | None]:
    if not header or not header.lower().startswith("basic "):
        raise Unauthenticated("deploying needs HTTP Basic credentials of a user allowed to deploy")
    try:
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthenticated("malformed HTTP Basic credentials") from None
    return user, password or None


def _error(exc: WatchtowerError) -> JSONResponse:
    if isinstance(exc, TooLarge):
        return JSONResponse(status_code=413, content={"detail": str(exc)})
    if isinstance(exc, Unauthenticated):
        return JSONResponse(status_code=401, content={"detail": str(exc)},
                            headers={"WWW-Authenticate": 'Basic realm="watchtower"'})
    status = next((code for kind, code in STATUS.items() if isinstance(exc, kind)), 400)
    return JSONResponse(status_code=status, content={"detail": str(exc)})


def create_app(*, max_batch: int = DEFAULT_MAX_BATCH, max_bytes: int = DEFAULT_MAX_BYTES) -> FastAPI:
    """The scoring API; the database is the configured one (WATCHTOWER_DATABASE_URL / WATCHTOWER_HOME)."""
    app = FastAPI(title="Watchtower scoring API", version="1")
    cache = EstimatorCache()
    app.state.cache = cache

    async def body_of(request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > max_bytes:
            raise TooLarge(f"the body of {int(declared):,} bytes exceeds the limit of {max_bytes:,} bytes")
        body = await request.body()
        if len(body) > max_bytes:
            raise TooLarge(f"the body of {len(body):,} bytes exceeds the limit of {max_bytes:,} bytes")
        return body

    @app.exception_handler(WatchtowerError)
    async def watchtower_error(_request: Request, exc: WatchtowerError) -> JSONResponse:
        return _error(exc)

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        try:
            with session_scope() as s:
                s.execute(text("select 1"))
        except Exception as exc:  # noqa: BLE001 - any database failure means unhealthy
            return JSONResponse(status_code=503, content={"status": "unhealthy",
                                                          "detail": f"database unreachable ({type(exc).__name__})"})
        return JSONResponse({"status": "ok"})

    @app.get("/v1/{environment}/{model}")
    def describe(environment: str, model: str) -> dict:
        target = served(environment=environment, model=model)
        return {"model": target.model, "environment": target.environment, "version": target.version,
                "since": target.since.isoformat(), "deployed_by": target.deployed_by, "sha256": target.sha256,
                "task": target.task, "decision_threshold": target.threshold,
                "features": [{"name": n, "type": t} for n, t in target.features]}

    @app.post("/v1/{environment}/{model}/predict")
    async def predict(environment: str, model: str, request: Request) -> JSONResponse:
        body = await body_of(request)
        # Returned as a ready JSONResponse: FastAPI's generic encoder costs more than the scoring on big batches.
        return JSONResponse(await run_in_threadpool(score_request, environment=environment, model=model, body=body,
                                                    cache=cache, max_batch=max_batch))

    @app.post("/v1/{environment}/{model}/deployments", status_code=201)
    async def deploy(environment: str, model: str, request: Request) -> dict:
        body = await body_of(request)
        return await run_in_threadpool(_deploy_request, environment=environment, model=model, body=body,
                                       authorization=request.headers.get("authorization"))

    return app
