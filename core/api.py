"""The HTTP scoring API: each environment serves its deployed version; every prediction is logged to the store.

    GET  /healthz                                   up? and which deployments cannot be served (no token)
    GET  /v1/{environment}/{model}                  what runs there (token scope read: or predict:)
    POST /v1/{environment}/{model}/predict          {"records": [{feature: value, ...}, ...]} (scope predict:)
    POST /v1/{environment}/{model}/deployments      {"version": N, "note": "..."} (scope deploy:, the same gate)

Every route but /healthz needs `Authorization: Bearer <token>` (a personal access token, core/tokens.py); the
token is verified, and its scope checked, before the body is read. Every client error is a 4xx whose JSON names
the field and the reason ({"detail": ..., "field": ...}); a model that cannot be loaded is a 503. The model's
thread pools are limited per request thread (WATCHTOWER_API_MODEL_THREADS, default 1) so that a request never
spins every core of a busy machine.
"""

from __future__ import annotations

import json
import logging
import math
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
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, select
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from threadpoolctl import threadpool_limits

from core import artifacts
from core.clock import now
from core.config import get_settings
from core.db import session_scope
from core.entities import Deployment, Environment, Model, ModelVersion
from core.errors import (
    Conflict,
    Forbidden,
    IntegrityFailure,
    InvalidInput,
    NotFound,
    Unauthenticated,
    WatchtowerError,
)
from core.governance import deployer, environments
from core.identity import tokens
from core.models.registry import model_row
from core.monitoring import ingest, prediction_store

log = logging.getLogger("watchtower.api")

DEFAULT_MAX_BATCH = 10_000
DEFAULT_MAX_BYTES = 32 * 1024 * 1024
MAX_DEPLOY_BYTES = 64 * 1024
MAX_VERSION = 2**31 - 1  # a version number the database stores
MAX_NOTE = 2000
THREADS_SETTING = "WATCHTOWER_API_MODEL_THREADS"
STATUS = {NotFound: 404, Forbidden: 403, Conflict: 409, InvalidInput: 422, Unauthenticated: 401}


class TooLarge(WatchtowerError):
    """The request exceeds the batch or body size limit."""


class Unavailable(WatchtowerError):
    """The model (or the database) cannot serve right now; the client may retry later."""


def _with_field(exc: WatchtowerError, field: str | None) -> WatchtowerError:
    exc.field = field  # type: ignore[attr-defined]
    return exc


def invalid(message: str, field: str | None) -> WatchtowerError:
    return _with_field(InvalidInput(message), field)


# --- the request bodies, as the OpenAPI schema describes them (the routes validate the raw body themselves,
# after the token, with the same rules and a field-naming message) ------------------------------------------

class PredictBody(BaseModel):
    """Records to score: each maps every feature of the model to a number (numeric) or a text (categorical)."""

    records: list[dict[str, str | float | None]] = Field(min_length=1, max_length=DEFAULT_MAX_BATCH)


class DeployBody(BaseModel):
    """The version to deploy, and why."""

    version: int = Field(ge=1, le=MAX_VERSION)
    note: str = Field(default="", max_length=MAX_NOTE)


def _body_doc(model: type[BaseModel]) -> dict:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": model.model_json_schema()}}},
            "security": [{"bearerAuth": []}]}


ERROR_RESPONSES = {str(code): {"description": why} for code, why in (
    (401, "no valid token"), (403, "outside the token's scopes or the user's permissions"),
    (404, "no such environment, model or deployment"), (413, "body or batch too large"),
    (422, "a field is invalid: the answer names it"), (503, "the model or the database is unavailable"))}


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
            raise _with_field(exc, "environment") from None
        try:
            m = model_row(session, model)
        except NotFound as exc:
            raise _with_field(exc, "model") from None
        raise _with_field(NotFound(f"{m.name} is not deployed in {env.name}"), "model")
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
        raise _with_field(Unauthenticated("this endpoint needs a token: send Authorization: Bearer <token> "
                                          "(create one with `watchtower token create`)"), "Authorization")
    scheme, _, secret = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise _with_field(Unauthenticated("the Authorization header must be 'Bearer <token>'"), "Authorization")
    return secret.strip()


def authorize(session: Session, *, header: str | None, kinds: tuple[str, ...], environment: str,
              model: str) -> Caller:
    """Verify the token (401) and that one of KINDS of scope covers ENVIRONMENT/MODEL (403)."""
    try:
        identity = tokens.authenticate_token(session=session, secret=bearer_secret(header))
    except Unauthenticated as exc:
        raise _with_field(exc, "Authorization") from None
    refusal: Forbidden | None = None
    for kind in kinds:
        try:
            tokens.require_scope(identity, kind, environment=environment, model=model)
            return Caller(identity=identity)
        except Forbidden as exc:
            refusal = refusal or exc
    raise _with_field(refusal or Forbidden("no scope"), "Authorization")


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
        return _with_field(Unavailable(f"{failure.model} v{failure.version} cannot be served in "
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


# --- the request body ---------------------------------------------------------------------------------------

def _bad_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def parse_json(body: bytes) -> Any:
    """The body as JSON; InvalidInput (field 'body') when it is not JSON, has NaN/Infinity, a number too long,
    or nests deeper than the parser's limit."""
    try:
        return json.loads(body or b"null", parse_constant=_bad_constant)
    except RecursionError:
        raise invalid("the body nests deeper than this API accepts", "body") from None
    except (ValueError, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "digits" in first and "limit" in first:
            first = "a number has more digits than this API accepts"
        raise invalid(f"the body is not valid JSON: {first}", "body") from None


def parse_records(body: bytes, *, max_batch: int) -> list[dict]:
    """The records of a request body ({"records": [...]} or a bare list); InvalidInput/TooLarge say why not."""
    payload = parse_json(body)
    records = payload.get("records") if isinstance(payload, dict) else payload
    if not isinstance(records, list):
        raise invalid('the body must be {"records": [{feature: value, ...}, ...]}',
                      "records" if isinstance(payload, dict) else "body")
    if not records:
        raise invalid("the request holds no records", "records")
    if len(records) > max_batch:
        raise _with_field(TooLarge(f"{len(records)} records exceed the limit of {max_batch} per request"), "records")
    return records


def _kind_of(value: Any) -> str:
    if isinstance(value, str):
        return "text"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _number_problem(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        shown = f" {json.dumps(value)[:40]}" if isinstance(value, str) else ""
        return f"must be a number, got {_kind_of(value)}{shown}"
    if isinstance(value, int):
        try:
            float(value)
        except OverflowError:
            return "is out of range (larger than a 64-bit float)"
        return None
    return None if math.isfinite(value) else "must be a finite number"


def _value_problem(value: Any, kind: str) -> str | None:
    if kind == "numeric":
        return _number_problem(value)
    if not isinstance(value, str):
        return f"must be a category (text), got {_kind_of(value)}"
    return None


def to_frame(records: list[Any], target: Served) -> pd.DataFrame:
    """The records as one frame of the logged columns; the first problem (by record, then by field) is named
    with its record and field. Columns of plain numbers are checked as one block; others value by value."""
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise invalid(f"record {i} is not an object of feature values", f"records[{i}]")
    kinds = {**{n: k for n, k in target.features}, **{n: "numeric" for n in target.extras}}
    required = {n for n, _ in target.features}
    columns = list(kinds)
    problems: list[tuple[int, int, str, str]] = []  # (record, field position, field, why)
    try:
        frame = pd.DataFrame.from_records(records, columns=columns)
    except (OverflowError, ValueError, TypeError):  # e.g. an integer beyond any float: find it value by value
        for i, rec in enumerate(records):
            for pos, name in enumerate(columns):
                value = rec.get(name)
                why = ("is missing" if name in required else None) if value is None \
                    else _value_problem(value, kinds[name])
                if why:
                    raise invalid(f"record {i}: field {name!r} {why}", f"records[{i}].{name}") from None
        raise invalid("the records cannot be read as a table of feature values", "records") from None
    block = [n for n in columns if kinds[n] == "numeric" and pd.api.types.is_numeric_dtype(frame[n])
             and not pd.api.types.is_bool_dtype(frame[n])]
    if block:
        values = frame[block].to_numpy(dtype=float)
        missing = np.isnan(values) & np.array([n in required for n in block])
        bad = missing | np.isinf(values)
        if bad.any():
            i, j = divmod(int(bad.argmax()), len(block))  # row-major: the first record, then the first field
            why = "is missing" if missing[i, j] else "must be a finite number"
            problems.append((i, columns.index(block[j]), block[j], why))
    for pos, name in enumerate(columns):
        if name in block:
            continue
        for i, rec in enumerate(records):
            value = rec.get(name)
            why = ("is missing" if name in required else None) if value is None else _value_problem(value, kinds[name])
            if why:
                problems.append((i, pos, name, why))
                break
    if problems:
        i, _pos, name, why = min(problems)
        raise invalid(f"record {i}: field {name!r} {why}", f"records[{i}].{name}")
    for name in columns:  # numbers as floats (a huge integer would otherwise stay a Python object)
        if kinds[name] == "numeric" and frame[name].dtype == object:
            frame[name] = frame[name].astype(float)
    return frame


def features_json(frame: pd.DataFrame, target: Served) -> pa.Array:
    """The logged values of each record as JSON text, built column-wise exactly as file ingestion builds them."""
    logged = [{"name": n, "type": kind} for n, kind in target.features]
    logged += [{"name": n, "type": "numeric"} for n in target.extras if frame[n].notna().any()]
    arrays = [pa.array(frame[c["name"]].to_numpy(dtype=float), from_pandas=True) if c["type"] == "numeric"
              else pa.array([v if isinstance(v, str) else None for v in frame[c["name"]]], type=pa.string())
              for c in logged]
    batch = pa.RecordBatch.from_arrays(arrays, names=[c["name"] for c in logged])
    return ingest.features_json(batch, logged, offset=0, name="request")


def log_predictions(*, target: Served, features: pa.Array, scores: np.ndarray, decisions: np.ndarray | None,
                    ids: list[str], at: datetime, logged_by: str | None = None) -> int:
    """Write every prediction of one request in one short transaction, through the evaluation store's bulk path,
    each with the token that logged it."""
    binary = target.task == "binary"
    n = len(ids)
    with session_scope() as s:
        prediction_store.insert_predictions(
            s, model_id=target.model_id, version_id=target.version_id, environment_id=target.environment_id,
            ids=ids, ts=pa.array([at] * n, type=pa.timestamp("us")),
            score=pa.array(scores, type=pa.float64()) if binary else None,
            predicted=pa.array(decisions if binary else scores, type=pa.float64()), features=features,
            logged_by=logged_by)
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
    log_predictions(target=target, features=features_json(frame, target), scores=scores, decisions=decisions,
                    ids=ids, at=now(), logged_by=logged_by)
    answer_decisions = decisions.astype(int).tolist() if binary else [None] * len(ids)
    return {"model": target.model, "environment": target.environment, "version": target.version,
            "predictions": [{"prediction_id": pid, "score": sc, "decision": d}
                            for pid, sc, d in zip(ids, scores.tolist(), answer_decisions, strict=True)]}


def deploy_payload(body: bytes) -> tuple[int, str]:
    """The version (a positive integer the database can hold) and note of a deployment request."""
    payload = parse_json(body)
    if not isinstance(payload, dict):
        raise invalid('the body must be {"version": N, "note": "..."}', "body")
    if payload.get("version") is None:
        raise invalid("version is missing", "version")
    version = payload["version"]
    if isinstance(version, bool) or not isinstance(version, int):
        raise invalid(f"version must be a positive whole number, got {_kind_of(version)}", "version")
    if not 1 <= version <= MAX_VERSION:
        raise invalid(f"version must be between 1 and {MAX_VERSION}", "version")
    note = payload.get("note", "")
    if note is None:
        note = ""
    if not isinstance(note, str):
        raise invalid(f"note must be text, got {_kind_of(note)}", "note")
    if len(note) > MAX_NOTE:
        raise invalid(f"note is longer than {MAX_NOTE} characters", "note")
    return version, note


def _error(exc: WatchtowerError) -> JSONResponse:
    content = {"detail": str(exc), "field": getattr(exc, "field", None)}
    if isinstance(exc, TooLarge):
        return JSONResponse(status_code=413, content=content)
    if isinstance(exc, (Unavailable, IntegrityFailure)):
        return JSONResponse(status_code=503, content=content, headers={"Retry-After": "60"})
    if isinstance(exc, Unauthenticated):
        return JSONResponse(status_code=401, content=content,
                            headers={"WWW-Authenticate": 'Bearer realm="watchtower"'})
    status = next((code for kind, code in STATUS.items() if isinstance(exc, kind)), 400)
    return JSONResponse(status_code=status, content=content)


def create_app(*, max_batch: int = DEFAULT_MAX_BATCH, max_bytes: int = DEFAULT_MAX_BYTES,
               model_threads: int | None = None) -> FastAPI:
    """The scoring API; the database is the configured one (WATCHTOWER_DATABASE_URL / WATCHTOWER_HOME).
    MODEL_THREADS (default: WATCHTOWER_API_MODEL_THREADS, else 1) bounds the model's threads per request."""
    app = FastAPI(title="Watchtower scoring API", version="1")
    cache = EstimatorCache()
    limit = ThreadLimit(model_threads_setting() if model_threads is None else model_threads)
    app.state.cache = cache
    app.state.thread_limit = limit

    async def body_of(request: Request, limit_bytes: int) -> bytes:
        declared = request.headers.get("content-length", "").strip()
        if declared.isdigit() and int(declared) > limit_bytes:
            raise _with_field(TooLarge(f"the body of {int(declared):,} bytes exceeds the limit of {limit_bytes:,} "
                                       "bytes"), "body")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit_bytes:
                raise _with_field(TooLarge(f"the body exceeds the limit of {limit_bytes:,} bytes"), "body")
            chunks.append(chunk)
        return b"".join(chunks)

    def authorized(header: str | None, kinds: tuple[str, ...], environment: str, model: str,
                   with_target: bool = True) -> tuple[Caller, Served | None]:
        with session_scope() as s:
            caller = authorize(s, header=header, kinds=kinds, environment=environment, model=model)
            target = served_in(s, environment=environment, model=model) if with_target else None
        return caller, target

    @app.exception_handler(WatchtowerError)
    async def watchtower_error(_request: Request, exc: WatchtowerError) -> JSONResponse:
        return _error(exc)

    @app.exception_handler(RequestValidationError)
    async def request_invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = (exc.errors() or [{}])[0]
        return JSONResponse(status_code=422, content={"detail": str(first.get("msg", "invalid request")),
                                                      "field": ".".join(map(str, first.get("loc", ()))) or None})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(status_code=exc.status_code, content={"detail": str(exc.detail), "field": None},
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(DBAPIError)
    async def database_error(_request: Request, exc: DBAPIError) -> JSONResponse:
        log.error("database error: %s", type(exc.orig).__name__ if exc.orig is not None else type(exc).__name__)
        return JSONResponse(status_code=503, content={"detail": "the database is unavailable; try again later",
                                                      "field": None}, headers={"Retry-After": "30"})

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:  # the last resort, logged
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse(status_code=500, content={"detail": "internal error (logged)", "field": None})

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        try:
            with session_scope() as s:
                s.execute(text("select 1"))
                failures = cache.failures()
                active = set()
                if failures:
                    active = set(s.exec(select(Deployment.id).where(Deployment.active)).all())
        except Exception as exc:  # noqa: BLE001 - any database failure means unhealthy
            return JSONResponse(status_code=503, content={"status": "unhealthy",
                                                          "detail": f"database unreachable ({type(exc).__name__})"})
        unhealthy = [{"environment": f.environment, "model": f.model, "version": f.version, "reason": f.reason}
                     for f in failures if f.deployment_id in active]
        return JSONResponse({"status": "degraded" if unhealthy else "ok", "unhealthy": unhealthy})

    @app.get("/v1/{environment}/{model}", responses=ERROR_RESPONSES, openapi_extra={"security": [{"bearerAuth": []}]})
    async def describe(environment: str, model: str, request: Request) -> dict:
        _caller, target = await run_in_threadpool(authorized, request.headers.get("authorization"),
                                                   ("read", "predict"), environment, model)
        return {"model": target.model, "environment": target.environment, "version": target.version,
                "since": target.since.isoformat(), "deployed_by": target.deployed_by, "sha256": target.sha256,
                "task": target.task, "decision_threshold": target.threshold,
                "features": [{"name": n, "type": t} for n, t in target.features]}

    @app.post("/v1/{environment}/{model}/predict", responses=ERROR_RESPONSES, openapi_extra=_body_doc(PredictBody))
    async def predict(environment: str, model: str, request: Request) -> JSONResponse:
        caller, target = await run_in_threadpool(authorized, request.headers.get("authorization"), ("predict",),
                                                 environment, model)
        body = await body_of(request, max_bytes)
        # Returned as a ready JSONResponse: FastAPI's generic encoder costs more than the scoring on big batches.
        return JSONResponse(await run_in_threadpool(score_request, target=target, body=body, cache=cache,
                                                    max_batch=max_batch, limit=limit, logged_by=caller.logged_by))

    @app.post("/v1/{environment}/{model}/deployments", status_code=201, responses=ERROR_RESPONSES,
              openapi_extra=_body_doc(DeployBody))
    async def deploy(environment: str, model: str, request: Request) -> dict:
        caller, _ = await run_in_threadpool(authorized, request.headers.get("authorization"), ("deploy",),
                                            environment, model, False)
        version, note = deploy_payload(await body_of(request, min(max_bytes, MAX_DEPLOY_BYTES)))

        def deploy_now() -> dict:
            with session_scope() as s:
                dep = deployer.deploy(session=s, actor=caller.identity.actor, model=model, version=version,
                                      environment=environment, note=note)
            return {"model": dep.model, "environment": dep.environment, "version": dep.version,
                    "since": dep.since.isoformat(), "deployed_by": dep.deployed_by, "warning": dep.warning}

        return await run_in_threadpool(deploy_now)

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
            schema.setdefault("components", {})["securitySchemes"] = {
                "bearerAuth": {"type": "http", "scheme": "bearer",
                               "description": "a Watchtower personal access token (watchtower token create)"}}
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
