"""The FastAPI application: routes, the OpenAPI document, and every error turned into a JSON answer.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlmodel import select
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.api.requests import (
    DEFAULT_MAX_BATCH,
    DEFAULT_MAX_BYTES,
    MAX_DEPLOY_BYTES,
    MAX_NOTE,
    MAX_VERSION,
    TooLarge,
    Unavailable,
    deploy_payload,
    with_field,
)
from core.api.serving import (
    Caller,
    EstimatorCache,
    Served,
    ThreadLimit,
    authorize,
    model_threads_setting,
    score_request,
    served_in,
)
from core.db import session_scope
from core.entities import Deployment
from core.errors import (
    Conflict,
    Forbidden,
    IntegrityFailure,
    InvalidInput,
    NotFound,
    Unauthenticated,
    WatchtowerError,
)
from core.governance import deployer
from core.lake import spool

log = logging.getLogger("watchtower.api")


STATUS = {NotFound: 404, Forbidden: 403, Conflict: 409, InvalidInput: 422, Unauthenticated: 401}


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
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        spool.recover_orphans()  # predictions a stopped API process spooled and did not commit
        yield
        spool.close_process()  # what this process spooled reaches the store before it stops

    app = FastAPI(title="Watchtower scoring API", version="1", lifespan=lifespan)
    cache = EstimatorCache()
    limit = ThreadLimit(model_threads_setting() if model_threads is None else model_threads)
    app.state.cache = cache
    app.state.thread_limit = limit

    async def body_of(request: Request, limit_bytes: int) -> bytes:
        declared = request.headers.get("content-length", "").strip()
        if declared.isdigit() and int(declared) > limit_bytes:
            raise with_field(TooLarge(f"the body of {int(declared):,} bytes exceeds the limit of {limit_bytes:,} "
                                       "bytes"), "body")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit_bytes:
                raise with_field(TooLarge(f"the body exceeds the limit of {limit_bytes:,} bytes"), "body")
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
        # Returned ready-encoded (orjson): FastAPI's generic encoder costs more than the scoring on big batches.
        answer = await run_in_threadpool(score_request, target=target, body=body, cache=cache, max_batch=max_batch,
                                         limit=limit, logged_by=caller.logged_by)
        return Response(content=orjson.dumps(answer), media_type="application/json")

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
