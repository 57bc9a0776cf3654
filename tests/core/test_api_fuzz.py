"""Property-based fuzzing of every scoring API route from its own OpenAPI schema (Schemathesis): whatever a
caller sends, with a valid token or without one, the answer is never a 5xx."""

from __future__ import annotations

from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from core import tokens
from core.api import create_app
from core.db import session_scope
from tests.core.governed import MODEL, actor, build

APP = create_app()
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
EXAMPLES = 50  # per route (a quarter of them without a token)
RUNS: Counter = Counter()
SERVER_ERRORS: list[str] = []

VALUE = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(min_value=10**300, max_value=10**400),
                  st.floats(allow_nan=False), st.text(max_size=20), st.lists(st.integers(), max_size=3),
                  st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
NUMBER = st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(-10**6, 10**6), VALUE)
CATEGORY = st.one_of(st.sampled_from(["web", "pos", "app"]), VALUE)
RECORD = st.fixed_dictionaries({"amount": NUMBER, "card_age_days": NUMBER, "channel": CATEGORY},
                               optional={"unknown": VALUE})
LIKELY = st.sampled_from([True, True, True, False])


@pytest.fixture
def world(backend, tmp_path):
    build(tmp_path)
    with session_scope() as s:
        _, secret = tokens.create_token(session=s, actor=actor("admin"), name="fuzz",
                                        scopes=["predict:*/*", "read:*/*", "deploy:*/*"])
    return secret


@schema.parametrize()
@schema.given(data=st.data())
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_makes_the_api_answer_5xx(world, case, data):
    """Path parameters are drawn half of the time from the names that exist, so the fuzzed bodies reach the
    validation and the model; a predict body is sometimes a record of the model's features with any JSON values."""
    if case.path_parameters and data.draw(LIKELY, label="known names"):
        case.path_parameters = {"environment": data.draw(st.sampled_from(["production", "staging"])),
                                "model": MODEL}
    if case.path.endswith("/predict") and data.draw(LIKELY, label="feature records"):
        case.body = {"records": data.draw(st.lists(RECORD, min_size=1, max_size=5))}
    if case.path.endswith("/deployments") and data.draw(LIKELY, label="a version of any JSON type"):
        case.body = {"version": data.draw(st.one_of(st.integers(-3, 5), VALUE)), "note": data.draw(VALUE)}
    authenticated = data.draw(LIKELY, label="with a token")
    headers = {"Authorization": f"Bearer {world}"} if authenticated else {}
    response = case.call(headers=headers)
    RUNS[(f"{case.method} {case.path}", authenticated)] += 1
    if response.status_code >= 500:
        SERVER_ERRORS.append(f"{case.method} {case.formatted_path} -> {response.status_code} {response.text[:200]}")
    assert response.status_code < 500, response.text
    if case.path != "/healthz" and not authenticated:
        assert response.status_code == 401


def test_every_route_was_fuzzed_with_and_without_a_token():
    routes = {route for route, _ in RUNS}
    assert routes == {"GET /healthz", "GET /v1/{environment}/{model}", "POST /v1/{environment}/{model}/predict",
                      "POST /v1/{environment}/{model}/deployments"}
    assert all(RUNS[(r, True)] and RUNS[(r, False)] for r in routes - {"GET /healthz"})
    print(f"\nSchemathesis: {len(routes)} routes, {sum(RUNS.values())} examples run, {len(SERVER_ERRORS)} 5xx")
    assert SERVER_ERRORS == []
