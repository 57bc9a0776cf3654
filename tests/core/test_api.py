"""The scoring API's contract, spoken over HTTP to a live uvicorn on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest
from sqlmodel import select

from core import artifacts, audit, governance, prediction_store, registry
from core.api import create_app
from core.db import session_scope
from core.entities import Environment, Prediction
from tests.core.governed import MODEL, PASSWORD, actor, build, running
from tests.live_api import live_api

ROOT = Path(__file__).resolve().parents[2]
FEATURES = ["amount", "card_age_days", "channel"]


def records(frame, n: int) -> list[dict]:
    return [{"amount": float(r.amount), "card_age_days": int(r.card_age_days), "channel": str(r.channel)}
            for r in frame.head(n).itertuples()]


def logged(environment: str | None = None) -> list[Prediction]:
    with session_scope() as s:
        q = select(Prediction).order_by(Prediction.id)
        if environment:
            env = s.exec(select(Environment).where(Environment.name == environment)).one()
            q = q.where(Prediction.environment_id == env.id)
        return list(s.exec(q).all())


def direct_scores(version: int, rows: list[dict]) -> np.ndarray:
    import pandas as pd

    with session_scope() as s:
        v = registry.get_version(session=s, model=MODEL, number=version)
    est = artifacts.load_estimator(path=v.artifact_path, sha256=v.artifact_sha256)
    return est.predict_proba(pd.DataFrame(rows, columns=FEATURES))[:, 1]


def approve_v3() -> None:
    with session_scope() as s:
        review = governance.request_review(session=s, actor=actor("maya"), model=MODEL, version=3)
    for who, role in (("omar", "it_ops"), ("rhea", "risk_manager"), ("bianca", "business")):
        with session_scope() as s:
            governance.give_feedback(session=s, actor=actor(who), review_id=review.id, role=role, verdict="APPROVED")
    with session_scope() as s:
        governance.approve(session=s, actor=actor("ruth"), review_id=review.id)


def test_health_and_what_runs_in_an_environment(backend, tmp_path):
    build(tmp_path)
    with session_scope() as s:
        v1 = registry.get_version(session=s, model=MODEL, number=1)
    with live_api() as url:
        assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
        info = httpx.get(f"{url}/v1/production/{MODEL}").json()
    assert info["version"] == 1 and info["sha256"] == v1.artifact_sha256 and info["model"] == MODEL
    assert info["since"][:10] == time.strftime("%Y-%m-%d", time.gmtime())
    assert [f["name"] for f in info["features"]] == FEATURES


def test_scores_equal_the_models_own_and_every_prediction_is_logged_with_its_environment(backend, tmp_path):
    frame = build(tmp_path)
    batch = records(frame, 40)
    with live_api() as url:
        one = httpx.post(f"{url}/v1/production/{MODEL}/predict", json={"records": batch[:1]}).json()
        many = httpx.post(f"{url}/v1/production/{MODEL}/predict", json={"records": batch}).json()
    assert one["version"] == many["version"] == 1 and many["environment"] == "production"
    scores = [p["score"] for p in many["predictions"]]
    assert np.allclose(scores, direct_scores(1, batch), atol=1e-12)
    assert [p["decision"] for p in many["predictions"]] == [int(x >= 0.5) for x in scores]
    ids = [p["prediction_id"] for p in one["predictions"] + many["predictions"]]
    assert len(set(ids)) == 41
    rows = logged("production")
    assert [r.prediction_id for r in rows] == ids
    assert rows[-1].features == batch[-1] and rows[-1].score == pytest.approx(scores[-1])
    assert {r.predicted for r in rows} <= {0.0, 1.0}
    with session_scope() as s:  # the evaluation store reads them back as any logged window
        window = prediction_store.window_rows(s, version_id=rows[0].model_version_id, start=rows[0].ts,
                                              end=rows[-1].ts + timedelta(seconds=1),
                                              environment_id=rows[0].environment_id)
    assert window.prediction_id == ids and np.allclose(window.score[1:], scores)
    assert window.features.iloc[1:].to_dict("records") == batch


def test_a_record_missing_a_feature_or_with_a_wrong_type_gets_422_naming_the_field(backend, tmp_path):
    frame = build(tmp_path)
    good = records(frame, 3)
    cases = [
        ({"records": [good[0], {"card_age_days": 4, "channel": "web"}]}, "record 1: field 'amount' is missing"),
        ({"records": [{**good[0], "amount": "12.5"}]}, "record 0: field 'amount' must be a number, got text"),
        ({"records": [{**good[0], "amount": True}]}, "record 0: field 'amount' must be a number, got bool"),
        ({"records": [{**good[0], "channel": ["web"]}]}, "record 0: field 'channel' must be a category"),
        ({"records": [{**good[0], "card_age_days": None}]}, "record 0: field 'card_age_days' is missing"),
        ({"records": ["amount=3"]}, "record 0 is not an object"),
        ({"records": []}, "no records"),
        ({"rows": good}, 'the body must be {"records"'),
        ({"records": [good[0], {**good[1], "channel": 5.5}, {"card_age_days": 1, "channel": "web"}]},
         "record 1: field 'channel' must be a category (text), got float"),  # the first record with a problem
    ]
    with live_api() as url:
        for body, message in cases:
            answer = httpx.post(f"{url}/v1/production/{MODEL}/predict", json=body)
            assert answer.status_code == 422, body
            assert message in answer.json()["detail"], answer.json()
        broken = httpx.post(f"{url}/v1/production/{MODEL}/predict", content=b'{"records": [{"amount": NaN}]}',
                            headers={"content-type": "application/json"})
        assert broken.status_code == 422 and "not valid JSON" in broken.json()["detail"]
        huge = httpx.post(f"{url}/v1/production/{MODEL}/predict",
                          content=b'{"records": [{"amount": 1e999, "card_age_days": 3, "channel": "web"}]}',
                          headers={"content-type": "application/json"})
        assert huge.status_code == 422 and huge.json()["detail"] == "record 0: field 'amount' must be a finite number"
    assert logged() == []


def test_unknown_model_or_environment_is_404(backend, tmp_path):
    frame = build(tmp_path)
    body = {"records": records(frame, 1)}
    with live_api() as url:
        for path, message in ((f"/v1/qa/{MODEL}", "no environment 'qa' (environments: staging, production)"),
                              ("/v1/production/churn", "no model named 'churn'"),
                              (f"/v1/staging/{MODEL}", f"{MODEL} is not deployed in staging")):
            for answer in (httpx.get(url + path), httpx.post(url + path + "/predict", json=body)):
                assert answer.status_code == 404 and answer.json()["detail"] == message


def test_an_oversized_batch_or_body_is_413(backend, tmp_path):
    frame = build(tmp_path)
    with live_api(create_app(max_batch=25, max_bytes=20_000)) as url:
        ok = httpx.post(f"{url}/v1/production/{MODEL}/predict", json={"records": records(frame, 25)})
        too_many = httpx.post(f"{url}/v1/production/{MODEL}/predict", json={"records": records(frame, 26)})
        too_big = httpx.post(f"{url}/v1/production/{MODEL}/predict",
                             json={"records": records(frame, 1), "padding": "x" * 30_000})
    assert ok.status_code == 200
    assert too_many.status_code == 413 and too_many.json()["detail"] == "26 records exceed the limit of 25 per request"
    assert too_big.status_code == 413 and "exceeds the limit of 20,000 bytes" in too_big.json()["detail"]
    assert len(logged()) == 25


def test_a_new_deployment_is_served_at_once_without_a_restart(backend, tmp_path):
    frame = build(tmp_path)
    rows = records(frame, 5)
    app = create_app()
    with live_api(app) as url:
        before = httpx.post(f"{url}/v1/production/{MODEL}/predict", json={"records": rows}).json()
        again = httpx.post(f"{url}/v1/production/{MODEL}/predict", json={"records": rows}).json()
        approve_v3()  # the high-risk blueprint deploys an approved version automatically
        after = httpx.post(f"{url}/v1/production/{MODEL}/predict", json={"records": rows}).json()
        info = httpx.get(f"{url}/v1/production/{MODEL}").json()
    assert (before["version"], again["version"], after["version"], info["version"]) == (1, 1, 3, 3)
    assert app.state.cache.loads == 2, "loaded once per deployed version"
    assert np.allclose([p["score"] for p in after["predictions"]], direct_scores(3, rows))
    with session_scope() as s:
        v3 = registry.get_version(session=s, model=MODEL, number=3)
    assert {r.model_version_id for r in logged()[-5:]} == {v3.id}


def test_a_tampered_artifact_is_refused_and_audited(backend, tmp_path):
    frame = build(tmp_path)
    with session_scope() as s:
        v1 = registry.get_version(session=s, model=MODEL, number=1)
    path = artifacts.resolve(v1.artifact_path)
    path.write_bytes(path.read_bytes() + b"tampered")
    with live_api() as url:
        answer = httpx.post(f"{url}/v1/production/{MODEL}/predict", json={"records": records(frame, 1)})
    assert answer.status_code == 500 and "was tampered with" in answer.json()["detail"]
    assert logged() == []
    with session_scope() as s:
        assert audit.events(session=s, limit=1)[0].action == "artifact.tampered"


def test_deploying_over_http_passes_the_same_gate(backend, tmp_path):
    build(tmp_path, passwords=True)
    with live_api() as url:
        deploy = f"{url}/v1/production/{MODEL}/deployments"
        anonymous = httpx.post(deploy, json={"version": 3})
        wrong = httpx.post(deploy, json={"version": 3}, auth=("maya", "guess-guess"))
        blocked = httpx.post(deploy, json={"version": 3}, auth=("maya", PASSWORD))
        business = httpx.post(f"{url}/v1/staging/{MODEL}/deployments", json={"version": 3}, auth=("bianca", PASSWORD))
        staged = httpx.post(f"{url}/v1/staging/{MODEL}/deployments", json={"version": 3}, auth=("maya", PASSWORD))
    assert anonymous.status_code == 401 and wrong.status_code == 401
    assert blocked.status_code == 403
    assert blocked.json()["detail"] == ("production requires an approved review (policy block): "
                                        "card-scorer v3 has no review (request one)")
    assert business.status_code == 403 and "bianca may not deploy" in business.json()["detail"]
    assert staged.status_code == 201 and staged.json()["version"] == 3
    assert (running("production"), running("staging")) == (1, 3)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_watchtower_api_command_serves_the_deployed_versions(backend, tmp_path):
    frame = build(tmp_path)
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "core.cli", "api", "--port", str(port)], cwd=ROOT,
                            env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read().decode()
            time.sleep(0.2)
        answer = httpx.post(f"http://127.0.0.1:{port}/v1/production/{MODEL}/predict",
                            json={"records": records(frame, 2)})
    finally:
        proc.terminate()
        proc.wait(20)
    assert answer.status_code == 200 and len(answer.json()["predictions"]) == 2
    assert len(logged("production")) == 2


def point(environment: str, url: str | None) -> None:
    from core import environments

    with session_scope() as s:
        environments.configure_environment(session=s, actor=actor("admin"), name=environment, endpoint_url=url or "")


def test_a_test_query_answers_with_its_latency_and_the_endpoint_check_follows_the_endpoint(backend, tmp_path):
    from core import checks, endpoints
    from core.errors import InvalidInput

    build(tmp_path)
    with pytest.raises(InvalidInput, match="staging has no endpoint URL configured"):
        endpoints.query_endpoint(environment="staging", model=MODEL)
    with session_scope() as s:
        prod = checks.define_check(session=s, actor=actor("maya"), project_key="CARDS", name="production endpoint",
                                   kind="endpoint", metric="production", model=MODEL, audience_roles=["it_ops"])
        stage = checks.define_check(session=s, actor=actor("maya"), project_key="CARDS", name="staging endpoint",
                                    kind="endpoint", metric="staging", model=MODEL, audience_roles=["it_ops"])
    with live_api() as url:
        point("production", url)
        point("staging", url)
        answer = endpoints.query_endpoint(environment="production", model=MODEL)
        healthy = endpoints.evaluate_endpoint_check(check_id=prod.id)
        idle = endpoints.evaluate_endpoint_check(check_id=stage.id)
    assert answer.ok and answer.status_code == 200 and answer.version == 1 and answer.latency_ms > 0
    assert len(answer.answer["predictions"]) == 1 and len(logged("production")) == 1
    assert healthy.status == "pass" and healthy.message.startswith("production endpoint healthy in ")
    assert healthy.message.endswith("ms, serving card-scorer v1") and healthy.value > 0
    assert idle.status == "error"
    assert idle.message == "staging endpoint is unhealthy: 404 card-scorer is not deployed in staging"
    down = endpoints.evaluate_endpoint_check(check_id=prod.id)  # the server has stopped
    assert down.status == "error" and down.message.startswith("production endpoint is unhealthy: no answer ConnectError")
    with session_scope() as s:
        ticks = checks.history(session=s, check_id=prod.id).icons
    assert ticks == "✅❌"


def test_the_endpoint_checks_step_alerts_the_audience_of_a_failing_endpoint(backend, tmp_path):
    from core import checks, endpoints
    from core.entities import Alert, User
    from core.steps import STEP_KINDS, StepContext

    build(tmp_path)
    with session_scope() as s:
        checks.define_check(session=s, actor=actor("maya"), project_key="CARDS", name="production endpoint",
                            kind="endpoint", metric="production", model=MODEL, audience_roles=["it_ops"])
    point("production", f"http://127.0.0.1:{_free_port()}")  # nothing listens there
    with session_scope() as s:
        project_id = registry.get_model(session=s, name=MODEL).project_id
    logs: list[str] = []
    result = STEP_KINDS["endpoint_checks"](StepContext(
        run_id=1, scenario_id=1, project_id=project_id, model_name=MODEL, params={}, state={},
        actor=actor("admin"), log=logs.append))
    assert result.ok and result.message == "1 endpoint check(s), 1 failing"
    assert endpoints.endpoint_check_ids(project_id=project_id)
    with session_scope() as s:
        omar = s.exec(select(User.id).where(User.username == "omar")).one()
        alerted = s.exec(select(Alert).where(Alert.user_id == omar, Alert.kind == "check")).all()
    assert len(alerted) == 1 and "production endpoint" in (alerted[0].title + alerted[0].message)


def test_a_column_a_business_metric_sums_is_logged_with_the_prediction(backend, tmp_path):
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from core import deployer

    build(tmp_path)
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"x": rng.normal(size=200), "value": rng.gamma(2, 30, 200).round(2)})
    frame["y"] = (frame["x"] + rng.normal(size=200) > 1).astype(int)
    with session_scope() as s:
        registry.create_model(session=s, actor=actor("admin"), project_key="CARDS", name="refunds", task="binary",
                              target="y", features=[{"name": "x", "type": "numeric"}],
                              business_metrics=[{"name": "refund_lost", "kind": "amount_sum", "column": "value",
                                                 "label": 1, "prediction": 0, "better": "lower"}])
        path, sha = artifacts.save_estimator(LogisticRegression().fit(frame[["x"]], frame["y"]))
        registry.add_version(session=s, actor=actor("admin"), model="refunds", reference=frame, artifact_path=path,
                             artifact_sha256=sha)
        deployer.deploy(session=s, actor=actor("admin"), model="refunds", version=1, environment="staging")
    with live_api() as url:
        ok = httpx.post(f"{url}/v1/staging/refunds/predict", json={"records": [{"x": 0.5, "value": 12.5}, {"x": 2.0}]})
        bad = httpx.post(f"{url}/v1/staging/refunds/predict", json={"records": [{"x": 0.5, "value": "a lot"}]})
    assert ok.status_code == 200 and len(ok.json()["predictions"]) == 2
    assert [r.features for r in logged("staging")] == [{"x": 0.5, "value": 12.5}, {"x": 2, "value": None}]
    assert bad.status_code == 422 and bad.json()["detail"] == "record 0: field 'value' must be a number, got text \"a lot\""
