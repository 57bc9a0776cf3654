"""Talking to the scoring endpoints from outside: test queries with their latency, and the endpoint health check.

An endpoint check (`Check.kind == "endpoint"`) names the environment it probes in `metric`; its threshold,
when above zero, is the slowest acceptable answer in milliseconds. Probing happens outside any transaction.
"""

from __future__ import annotations

import math
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from sqlmodel import select

from core import artifacts
from core.access import Actor
from core.db import session_scope
from core.entities import Check, Deployment, Environment, Model, ModelVersion
from core.errors import InvalidInput, NotFound
from core.identity import tokens
from core.monitoring import checks


@dataclass(frozen=True)
class ProbeResult:
    environment: str
    url: str
    ok: bool
    status_code: int | None
    latency_ms: float | None
    answer: Any  # the decoded JSON answer, or the reason the probe failed
    version: int | None = None


def endpoint_url(environment: str) -> str:
    """The base URL of an environment's scoring endpoint; InvalidInput when none is configured."""
    with session_scope() as s:
        env = s.exec(select(Environment).where(Environment.name == environment)).first()
        if env is None:
            raise NotFound(f"no environment {environment!r}")
        if not env.endpoint_url:
            raise InvalidInput(f"{environment} has no endpoint URL configured")
        return env.endpoint_url


def sample_record(*, environment: str, model: str) -> dict:
    """A record to try the endpoint with: the first row of the deployed version's reference sample."""
    with session_scope() as s:
        m = s.exec(select(Model).where(Model.name == model)).first()
        env = s.exec(select(Environment).where(Environment.name == environment)).first()
        if m is None or env is None:
            raise NotFound(f"no model {model!r} or environment {environment!r}")
        dep = s.exec(select(Deployment).where(Deployment.model_id == m.id, Deployment.environment_id == env.id,
                                              Deployment.active)).first()
        if dep is None:
            raise NotFound(f"{model} is not deployed in {environment}")
        v = s.get(ModelVersion, dep.model_version_id)
        names = [f["name"] for f in m.features]
        path, sha = v.reference_path, v.reference_sha256
    row = artifacts.load_reference(path=path, sha256=sha, what=model).iloc[0]
    return {n: _plain(row[n]) for n in names}


def _plain(value: Any) -> Any:
    value = value.item() if hasattr(value, "item") else value
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _call(method: str, url: str, *, environment: str, timeout: float, json: Any = None,
          token: str | None = None) -> ProbeResult:
    started = time.perf_counter()
    headers = {"Authorization": f"Bearer {token}"} if token else None
    try:
        answer = httpx.request(method, url, json=json, timeout=timeout, headers=headers)
    except httpx.HTTPError as exc:
        return ProbeResult(environment=environment, url=url, ok=False, status_code=None, latency_ms=None,
                           answer=f"{type(exc).__name__}: {exc}".strip().rstrip(":"))
    latency = (time.perf_counter() - started) * 1000
    try:
        body = answer.json()
    except ValueError:
        body = answer.text[:500]
    version = body.get("version") if isinstance(body, dict) else None
    return ProbeResult(environment=environment, url=url, ok=answer.status_code < 400, status_code=answer.status_code,
                       latency_ms=round(latency, 2), answer=body, version=version)


def query_endpoint(*, environment: str, model: str, token: str | None, record: dict | None = None,
                   timeout: float = 10.0) -> ProbeResult:
    """Score one record on an environment's endpoint (a sample record by default) with a token (the API needs
    one with the scope predict:ENVIRONMENT/MODEL) and time the answer."""
    base = endpoint_url(environment)
    record = record if record is not None else sample_record(environment=environment, model=model)
    return _call("POST", f"{base}/v1/{environment}/{model}/predict", environment=environment, timeout=timeout,
                 json={"records": [record]}, token=token)


TEST_QUERY_TOKEN_LIFETIME = timedelta(minutes=2)


def send_test_query(*, actor: Actor, environment: str, model: str, record: dict | None = None,
               timeout: float = 10.0) -> ProbeResult:
    """A test query sent as ACTOR: a token scoped to predict:ENVIRONMENT/MODEL is created for them (audited),
    used for this one request, and revoked; its prediction is logged like any other, under that token.
    Forbidden when the actor may not score through the API."""
    endpoint_url(environment)  # say "no endpoint configured" before creating anything
    with session_scope() as s:
        read, secret = tokens.create_token(session=s, actor=actor, name=f"test-query-{secrets.token_hex(4)}",
                                           scopes=[f"predict:{environment}/{model}"],
                                           expires_in=TEST_QUERY_TOKEN_LIFETIME)
    try:
        return query_endpoint(environment=environment, model=model, token=secret, record=record, timeout=timeout)
    finally:
        with session_scope() as s:
            tokens.revoke_token(session=s, actor=actor, token_id=read.id)


def probe(*, environment: str, model: str | None = None, timeout: float = 5.0) -> ProbeResult:
    """Is the endpoint up (and able to serve the model)? GET /healthz, which needs no token: it fails when the API
    or its database is down, or when it names the model's deployment there as unhealthy. The version is the one
    Watchtower has deployed there (NotFound when the model is not deployed in the environment)."""
    base = endpoint_url(environment)
    health = _call("GET", f"{base}/healthz", environment=environment, timeout=timeout)
    if not health.ok or model is None:
        return health
    version = _deployed_version(environment=environment, model=model)
    unhealthy = health.answer.get("unhealthy", []) if isinstance(health.answer, dict) else []
    sick = [u for u in unhealthy if isinstance(u, dict) and u.get("model") == model
            and u.get("environment") == environment]
    if sick:
        return ProbeResult(environment=environment, url=health.url, ok=False, status_code=health.status_code,
                           latency_ms=health.latency_ms, answer={"detail": sick[0].get("reason", "unhealthy")},
                           version=version)
    return ProbeResult(environment=environment, url=health.url, ok=True, status_code=health.status_code,
                       latency_ms=health.latency_ms, answer=health.answer, version=version)


def _deployed_version(*, environment: str, model: str) -> int:
    with session_scope() as s:
        found = s.exec(select(ModelVersion.number).join(Deployment, Deployment.model_version_id == ModelVersion.id)
                       .join(Model, Deployment.model_id == Model.id)
                       .join(Environment, Deployment.environment_id == Environment.id)
                       .where(Model.name == model, Environment.name == environment, Deployment.active)).first()
    if found is None:
        raise NotFound(f"{model} is not deployed in {environment}")
    return found


def evaluate_endpoint_check(*, check_id: int, timeout: float = 5.0) -> checks.CheckResultRead:
    """Probe the endpoint an endpoint check names and record the outcome as its result (value: latency in ms)."""
    with session_scope() as s:
        check = s.get(Check, check_id)
        if check is None or check.kind != "endpoint":
            raise NotFound(f"no endpoint check {check_id}")
        environment, threshold = check.metric, check.threshold
        model = s.get(Model, check.model_id).name if check.model_id else None
    try:
        result = probe(environment=environment, model=model, timeout=timeout)
    except (InvalidInput, NotFound) as exc:
        passed, value, message = False, None, f"{environment} endpoint cannot be probed: {exc}"
    else:
        slow = threshold > 0 and result.latency_ms is not None and result.latency_ms > threshold
        passed, value = result.ok and not slow, result.latency_ms
        if not result.ok:
            detail = result.answer.get("detail") if isinstance(result.answer, dict) else result.answer
            message = f"{environment} endpoint is unhealthy: {result.status_code or 'no answer'} {detail}".strip()
        elif slow:
            message = f"{environment} endpoint answered in {result.latency_ms:.0f} ms (limit {threshold:.0f} ms)"
        else:
            serving = f", serving {model} v{result.version}" if model else ""
            message = f"{environment} endpoint healthy in {result.latency_ms:.0f} ms{serving}"
    with session_scope() as s:
        return checks.record_probe(session=s, check_id=check_id, value=value, passed=passed, message=message)


def endpoint_check_ids(*, project_id: int | None = None) -> list[int]:
    with session_scope() as s:
        q = select(Check.id).where(Check.kind == "endpoint", Check.enabled)
        if project_id is not None:
            q = q.where(Check.project_id == project_id)
        return list(s.exec(q.order_by(Check.id)).all())
