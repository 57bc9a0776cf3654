"""Property-based fuzzing of every scoring API route from its own OpenAPI schema (Schemathesis): whatever a
caller sends, with a valid token or without one, the answer is never a 5xx.

Each test item checks its own coverage once its examples have run (the `calls` fixture), so the result does not
depend on which other tests ran before it or in the same process (pytest-xdist)."""

from __future__ import annotations

import json
import math
from collections import Counter
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from core.api import create_app
from core.db import session_scope
from core.identity import tokens
from tests.support.governed import MODEL, actor, build

APP = create_app()
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
EXAMPLES = 50  # per route, each sent without a token and with one
ROUTES = {"GET /healthz", "GET /v1/{environment}/{model}", "POST /v1/{environment}/{model}/predict",
          "POST /v1/{environment}/{model}/deployments"}
OPEN = {"GET /healthz"}  # answers without a token

# Any JSON value, and the floats JSON cannot spell (NaN, ±Infinity): the bodies drawn here are sent as raw bytes,
# so these reach the server, which must refuse them with a 4xx rather than the client failing to send them.
VALUE = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(min_value=10**300, max_value=10**400),
                  st.floats(), st.text(max_size=20), st.lists(st.integers(), max_size=3),
                  st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
NUMBER = st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(-10**6, 10**6), VALUE)
CATEGORY = st.one_of(st.sampled_from(["web", "pos", "app"]), VALUE)
RECORD = st.fixed_dictionaries({"amount": NUMBER, "card_age_days": NUMBER, "channel": CATEGORY},
                               optional={"unknown": VALUE})
LIKELY = st.sampled_from([True, True, True, False])
INFINITY = "\x00infinity\x00"  # stands for a float infinity until the body is written


def _mark_infinities(value: Any) -> Any:
    if isinstance(value, float) and math.isinf(value):
        return f"{'-' if value < 0 else ''}{INFINITY}"
    if isinstance(value, dict):
        return {k: _mark_infinities(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mark_infinities(v) for v in value]
    return value


def raw_json(value: Any, *, infinity_as_overflow: bool) -> bytes:
    """VALUE as JSON text, NaN and infinities included: written `NaN`/`Infinity` (Python's spelling, which the
    API must refuse as not JSON) or, when INFINITY_AS_OVERFLOW, an infinity as `1e999` (valid JSON that overflows
    to infinity when read, which the API must refuse naming the field)."""
    if not infinity_as_overflow:
        return json.dumps(value, allow_nan=True).encode()
    text = json.dumps(_mark_infinities(value), allow_nan=True)
    marker = json.dumps(INFINITY)
    return text.replace(f'"-{marker[1:]}', "-1e999").replace(marker, "1e999").encode()


@pytest.fixture
def world(backend, tmp_path):
    build(tmp_path)
    with session_scope() as s:
        _, secret = tokens.create_token(session=s, actor=actor("admin"), name="fuzz",
                                        scopes=["predict:*/*", "read:*/*", "deploy:*/*"])
    return secret


@pytest.fixture
def calls():
    """The calls of one test item, by (route, with a token) and its 5xx answers; once all its examples have run,
    the route must have been called both with and without a token."""
    runs: Counter = Counter()
    server_errors: list[str] = []
    yield runs, server_errors
    if server_errors:  # the test itself failed on them
        return
    routes = {route for route, _ in runs}
    assert len(routes) == 1 and routes <= ROUTES, routes
    route = routes.pop()
    assert runs[(route, True)] and runs[(route, False)], dict(runs)
    print(f"\nSchemathesis: {route}: {runs[(route, True)]} examples, each without and with a token, no 5xx")


def test_the_schema_lists_every_route_of_the_api():
    """Schemathesis parametrizes one test per operation of the schema: every route must be in it."""
    assert {result.ok().label for result in schema.get_all_operations()} == ROUTES
    served = {f"{method} {route.path}" for route in APP.routes if route.path != "/openapi.json"
              and not route.path.startswith("/docs") and not route.path.startswith("/redoc")
              for method in getattr(route, "methods", ()) if method != "HEAD"}
    assert served == ROUTES


@schema.parametrize()
@schema.given(data=st.data())
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_makes_the_api_answer_5xx(world, calls, case, data):
    """Path parameters are drawn half of the time from the names that exist, so the fuzzed bodies reach the
    validation and the model; a predict body is sometimes a record of the model's features with any JSON values."""
    runs, server_errors = calls
    if case.path_parameters and data.draw(LIKELY, label="known names"):
        case.path_parameters = {"environment": data.draw(st.sampled_from(["production", "staging"])),
                                "model": MODEL}
    body = None
    if case.path.endswith("/predict") and data.draw(LIKELY, label="feature records"):
        body = {"records": data.draw(st.lists(RECORD, min_size=1, max_size=5))}
    if case.path.endswith("/deployments") and data.draw(LIKELY, label="a version of any JSON type"):
        body = {"version": data.draw(st.one_of(st.integers(-3, 5), VALUE)), "note": data.draw(VALUE)}
    if body is not None:
        case.body = body
        raw = raw_json(body, infinity_as_overflow=data.draw(st.booleans(), label="infinity as 1e999"))
    route = f"{case.method} {case.path}"
    # Every input is sent first without a token (it must change nothing), then with the valid one.
    for authenticated in (False, True):
        headers = {"Authorization": f"Bearer {world}"} if authenticated else {}
        if body is None:
            response = case.call(headers=headers)
        else:
            response = case.call(headers={**headers, "Content-Type": "application/json"}, data=raw)
        runs[(route, authenticated)] += 1
        if response.status_code >= 500:
            server_errors.append(f"{case.method} {case.formatted_path} {'with' if authenticated else 'without'} a "
                                 f"token -> {response.status_code} {response.text[:200]}")
        assert response.status_code < 500, response.text
        if route not in OPEN and not authenticated:
            assert response.status_code == 401, response.text
