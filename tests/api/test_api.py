"""The scoring API's contract, spoken over HTTP to a live uvicorn on 127.0.0.1."""

from __future__ import annotations

import json
import logging
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

from core import artifacts, governance
from core.api import create_app
from core.clock import now
from core.db import session_scope
from core.entities import AuditEvent, Environment, Token, User
from core.identity import tokens
from core.lake import predictions as prediction_store
from core.lake.predictions import LoggedPrediction
from core.models import registry
from tests.support.governed import MODEL, actor, build, running
from tests.support.lake import stored_predictions
from tests.support.live_api import live_api

ROOT = Path(__file__).resolve().parents[2]
FEATURES = ["amount", "card_age_days", "channel"]
ALL_SCOPES = ("predict:*/*", "read:*/*")


def token(username: str = "admin", *scopes: str, name: str | None = None) -> str:
    """A fresh personal access token of USERNAME with SCOPES (default: predict and read everywhere)."""
    with session_scope() as s:
        n = s.exec(select(Token.id)).all()
        _, secret = tokens.create_token(session=s, actor=actor(username), name=name or f"t{len(n) + 1}",
                                        scopes=list(scopes or ALL_SCOPES))
    return secret


def bearer(secret: str) -> dict:
    return {"Authorization": f"Bearer {secret}"}


def token_id(secret: str) -> tuple[int, str]:
    import hashlib

    with session_scope() as s:
        t = s.exec(select(Token).where(Token.secret_hash == hashlib.sha256(secret.encode()).hexdigest())).one()
        return t.id, t.name


def records(frame, n: int) -> list[dict]:
    return [{"amount": float(r.amount), "card_age_days": int(r.card_age_days), "channel": str(r.channel)}
            for r in frame.head(n).itertuples()]


def logged(environment: str | None = None) -> list[LoggedPrediction]:
    env_id = None
    if environment:
        with session_scope() as s:
            env_id = s.exec(select(Environment).where(Environment.name == environment)).one().id
        return stored_predictions(environment_id=env_id)
    return stored_predictions()


def direct_scores(version: int, rows: list[dict]) -> np.ndarray:
    import pandas as pd

    with session_scope() as s:
        v = registry.get_version(session=s, model=MODEL, version=version)
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


def test_health_and_what_runs_in_an_environment_for_a_token_that_may_read_it(backend, tmp_path):
    build(tmp_path)
    with session_scope() as s:
        v1 = registry.get_version(session=s, model=MODEL, version=1)
    reader = token("dario", f"read:production/{MODEL}")
    scorer = token("omar", f"predict:production/{MODEL}")
    with live_api() as url:
        health = httpx.get(f"{url}/healthz")
        anonymous = httpx.get(f"{url}/v1/production/{MODEL}")
        info = httpx.get(f"{url}/v1/production/{MODEL}", headers=bearer(reader)).json()
        also = httpx.get(f"{url}/v1/production/{MODEL}", headers=bearer(scorer))
        elsewhere = httpx.get(f"{url}/v1/staging/{MODEL}", headers=bearer(reader))
    assert health.status_code == 200 and health.json() == {"status": "ok", "unhealthy": []}
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"].startswith("Bearer")
    assert anonymous.json() == {"detail": "this endpoint needs a token: send Authorization: Bearer <token> "
                                          "(create one with `watchtower token create`)", "field": "Authorization"}
    assert info["version"] == 1 and info["sha256"] == v1.artifact_sha256 and info["model"] == MODEL
    assert info["since"][:10] == time.strftime("%Y-%m-%d", time.gmtime())
    assert [f["name"] for f in info["features"]] == FEATURES
    assert also.status_code == 200
    assert elsewhere.status_code == 403 and "has no read scope for staging/card-scorer" in elsewhere.json()["detail"]


def test_scores_equal_the_models_own_and_every_prediction_is_logged_with_its_environment_and_token(backend, tmp_path):
    frame = build(tmp_path)
    batch = records(frame, 40)
    secret = token("dario", f"predict:production/{MODEL}", name="ci")
    with live_api() as url:
        predict = f"{url}/v1/production/{MODEL}/predict"
        one = httpx.post(predict, json={"records": batch[:1]}, headers=bearer(secret)).json()
        many = httpx.post(predict, json={"records": batch}, headers=bearer(secret)).json()
    assert one["version"] == many["version"] == 1 and many["environment"] == "production"
    scores = [p["score"] for p in many["predictions"]]
    assert np.allclose(scores, direct_scores(1, batch), atol=1e-12)
    assert [p["decision"] for p in many["predictions"]] == [int(x >= 0.5) for x in scores]
    ids = [p["prediction_id"] for p in one["predictions"] + many["predictions"]]
    assert len(set(ids)) == 41
    rows = sorted(logged("production"), key=lambda r: ids.index(r.prediction_id))
    assert [r.prediction_id for r in rows] == ids
    tid, _ = token_id(secret)
    assert {r.logged_by for r in rows} == {f"token:{tid}:ci"}, "each prediction names the token that logged it"
    assert rows[-1].features == batch[-1] and rows[-1].score == pytest.approx(scores[-1])
    assert {r.predicted for r in rows} <= {0.0, 1.0}
    with session_scope() as s:  # the evaluation store reads them back as any logged window
        window = prediction_store.window_rows(s, version_id=rows[0].model_version_id, start=rows[0].ts,
                                              end=rows[-1].ts + timedelta(seconds=1),
                                              environment_id=rows[0].environment_id)
    order = [window.prediction_id.index(i) for i in ids]  # the window is in time order, then by id
    assert sorted(window.prediction_id) == sorted(ids) and np.allclose(window.score[order][1:], scores)
    assert window.features.iloc[order].iloc[1:].to_dict("records") == batch


def _no_server_error_logged(caplog) -> None:
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith(("watchtower", "uvicorn"))]
    assert bad == [], [r.getMessage() for r in bad]


def test_a_record_missing_a_feature_or_with_a_wrong_type_gets_422_naming_the_field(backend, tmp_path, caplog):
    frame = build(tmp_path)
    good = records(frame, 3)
    cases = [
        ({"records": [good[0], {"card_age_days": 4, "channel": "web"}]}, "records[1].amount",
         "record 1: field 'amount' is missing"),
        ({"records": [{**good[0], "amount": "12.5"}]}, "records[0].amount",
         "record 0: field 'amount' must be a number, got text"),
        ({"records": [{**good[0], "amount": True}]}, "records[0].amount", "record 0: field 'amount' must be a number, got bool"),
        ({"records": [{**good[0], "channel": ["web"]}]}, "records[0].channel", "record 0: field 'channel' must be a category"),
        ({"records": [{**good[0], "card_age_days": None}]}, "records[0].card_age_days",
         "record 0: field 'card_age_days' is missing"),
        ({"records": ["amount=3"]}, "records[0]", "record 0 is not an object"),
        ({"records": []}, "records", "no records"),
        ({"rows": good}, "records", 'the body must be {"records"'),
        ({"records": [good[0], {**good[1], "channel": 5.5}, {"card_age_days": 1, "channel": "web"}]},
         "records[1].channel", "record 1: field 'channel' must be a category (text), got float"),  # the first record with a problem
    ]
    secret = token()
    with live_api() as url:
        predict = f"{url}/v1/production/{MODEL}/predict"
        for body, field, message in cases:
            answer = httpx.post(predict, json=body, headers=bearer(secret))
            assert answer.status_code == 422, body
            assert message in answer.json()["detail"] and answer.json()["field"] == field, answer.json()
        broken = httpx.post(predict, content=b'{"records": [{"amount": NaN}]}',
                            headers={"content-type": "application/json", **bearer(secret)})
        assert broken.status_code == 422 and "not valid JSON" in broken.json()["detail"]
        assert broken.json()["field"] == "body"
        huge = httpx.post(predict, content=b'{"records": [{"amount": 1e999, "card_age_days": 3, "channel": "web"}]}',
                          headers={"content-type": "application/json", **bearer(secret)})
        assert huge.status_code == 422 and huge.json() == {"detail": "record 0: field 'amount' must be a finite number",
                                                           "field": "records[0].amount"}
    assert logged() == []
    _no_server_error_logged(caplog)


def test_the_inputs_that_once_answered_500_get_a_4xx_naming_the_field_and_nothing_is_logged(backend, tmp_path, caplog):
    frame = build(tmp_path)
    good = records(frame, 1)[0]
    scorer, deployer_token = token(), token("admin", "deploy:*/*")
    raw = {
        "a number for a categorical field": (json.dumps({"records": [{**good, "channel": 3}]}),
                                             422, "records[0].channel", "must be a category (text), got int"),
        "true for a categorical field": (json.dumps({"records": [{**good, "channel": True}]}),
                                         422, "records[0].channel", "must be a category (text), got bool"),
        "a number of 400 digits": ('{"records": [{"amount": 1' + "0" * 400 + ', "card_age_days": 3, "channel": "web"}]}',
                                   422, "records[0].amount", "is out of range"),
        "a number of 5,000 digits": ('{"records": [{"amount": 1' + "0" * 5000 + "}]}", 422, "body",
                                     "a number has more digits than this API accepts"),
        "deeply nested JSON": ("[" * 100_000 + "]" * 100_000, 422, "body", "nests deeper than this API accepts"),
        "deeply nested value": ('{"records": [{"amount": ' + "[" * 500 + "]" * 500 + "}]}", 422, "records[0].amount",
                                "must be a number, got list"),
        "a category the model never saw": (json.dumps({"records": [{**good, "channel": "x" * 10_000}]}), 200, None, None),
    }
    deploy_raw = {
        "a version of 1e400": ('{"version": 1e400}', "version", "must be a positive whole number, got float"),
        "a huge integer version": ('{"version": ' + "9" * 400 + "}", "version", "must be between 1 and 2147483647"),
        "true as version": ('{"version": true}', "version", "must be a positive whole number, got bool"),
        "a float version": ('{"version": 3.0}', "version", "must be a positive whole number, got float"),
        "a text version": ('{"version": "3"}', "version", "must be a positive whole number, got text"),
        "version zero": ('{"version": 0}', "version", "must be between 1 and"),
        "no version": ('{"note": "x"}', "version", "version is missing"),
        "a note that is a number": ('{"version": 3, "note": 5}', "note", "note must be text"),
        "deeply nested": ("{\"version\": " + "[" * 30_000 + "]" * 30_000 + "}", "body", "nests deeper"),
    }
    with live_api() as url:
        for what, (body, status, field, message) in raw.items():
            answer = httpx.post(f"{url}/v1/production/{MODEL}/predict", content=body.encode(),
                                headers={"content-type": "application/json", **bearer(scorer)})
            assert answer.status_code == status, (what, answer.text[:300])
            if status != 200:
                assert answer.json()["field"] == field and message in answer.json()["detail"], (what, answer.json())
        for what, (body, field, message) in deploy_raw.items():
            answer = httpx.post(f"{url}/v1/staging/{MODEL}/deployments", content=body.encode(),
                                headers={"content-type": "application/json", **bearer(deployer_token)})
            assert answer.status_code == 422, (what, answer.text[:300])
            assert answer.json()["field"] == field and message in answer.json()["detail"], (what, answer.json())
        unread = httpx.post(f"{url}/v1/staging/{MODEL}/deployments", content=b'{"version": 1e400}',
                            headers={"content-type": "application/json"})
    assert unread.status_code == 401, "credentials are checked before the body is read"
    assert len(logged()) == 1, "only the well-formed record (an unseen category) was scored and logged"
    assert running("staging") is None
    _no_server_error_logged(caplog)


def test_unknown_model_or_environment_is_404(backend, tmp_path):
    frame = build(tmp_path)
    body = {"records": records(frame, 1)}
    secret = token()
    with live_api() as url:
        for path, field, message in (
                (f"/v1/qa/{MODEL}", "environment", "no environment 'qa' (environments: staging, production)"),
                ("/v1/production/churn", "model", "no model named 'churn'"),
                (f"/v1/staging/{MODEL}", "model", f"{MODEL} is not deployed in staging")):
            for answer in (httpx.get(url + path, headers=bearer(secret)),
                           httpx.post(url + path + "/predict", json=body, headers=bearer(secret))):
                assert answer.status_code == 404 and answer.json() == {"detail": message, "field": field}


def test_an_oversized_batch_or_body_is_413_but_only_for_a_caller_with_a_token(backend, tmp_path):
    frame = build(tmp_path)
    secret = token()
    with live_api(create_app(max_batch=25, max_bytes=20_000)) as url:
        predict = f"{url}/v1/production/{MODEL}/predict"
        ok = httpx.post(predict, json={"records": records(frame, 25)}, headers=bearer(secret))
        too_many = httpx.post(predict, json={"records": records(frame, 26)}, headers=bearer(secret))
        too_big = httpx.post(predict, json={"records": records(frame, 1), "padding": "x" * 30_000},
                             headers=bearer(secret))
        anonymous = httpx.post(predict, json={"records": records(frame, 1), "padding": "x" * 30_000})
    assert ok.status_code == 200
    assert too_many.status_code == 413 and too_many.json() == {
        "detail": "26 records exceed the limit of 25 per request", "field": "records"}
    assert too_big.status_code == 413 and "exceeds the limit of 20,000 bytes" in too_big.json()["detail"]
    assert anonymous.status_code == 401
    assert len(logged()) == 25


def test_the_default_limits_are_32_mb_and_10000_records(backend, tmp_path):
    frame = build(tmp_path)
    secret = token()
    row = records(frame, 1)[0]
    with live_api() as url:
        predict = f"{url}/v1/production/{MODEL}/predict"
        many = httpx.post(predict, json={"records": [row] * 10_001}, headers=bearer(secret))
        big = httpx.post(predict, content=b'{"records": [], "pad": "' + b"x" * (32 * 1024 * 1024) + b'"}',
                         headers={"content-type": "application/json", **bearer(secret)})
    assert many.status_code == 413 and many.json()["detail"] == "10001 records exceed the limit of 10000 per request"
    assert big.status_code == 413 and big.json()["field"] == "body"
    assert logged() == []


def test_no_token_a_wrong_revoked_or_expired_one_is_401_on_every_route(backend, tmp_path):
    frame = build(tmp_path)
    body = {"records": records(frame, 1)}
    revoked, expired, gone = (token("admin", *ALL_SCOPES, "deploy:*/*", name=n) for n in ("revoked", "expired", "gone"))
    with session_scope() as s:
        tokens.revoke_token(session=s, actor=actor("admin"), token_id=token_id(revoked)[0])
        s.query(Token).filter(Token.name == "expired").update({"expires_at": now() - timedelta(seconds=1)})
    gone_user = token("dario", name="gone-user")
    with session_scope() as s:  # the user leaves the company
        s.query(User).filter(User.username == "dario").update({"active": False})
    headers = {
        "no header": {}, "empty": {"Authorization": ""}, "basic": {"Authorization": "Basic YWRtaW46eA=="},
        "bearer without token": {"Authorization": "Bearer"}, "not a token": bearer("letmein"),
        "unknown token": bearer("wt_" + "A" * 43), "too long": bearer("wt_" + "A" * 5000),
        "revoked": bearer(revoked), "expired": bearer(expired), "user no longer active": bearer(gone_user),
    }
    with live_api() as url:
        for what, header in headers.items():
            for method, path, payload in (("GET", f"/v1/production/{MODEL}", None),
                                          ("POST", f"/v1/production/{MODEL}/predict", body),
                                          ("POST", f"/v1/staging/{MODEL}/deployments", {"version": 2})):
                answer = httpx.request(method, url + path, json=payload, headers=header)
                assert answer.status_code == 401, (what, path, answer.text)
                assert answer.headers["www-authenticate"] == 'Bearer realm="watchtower"'
                assert answer.json()["field"] == "Authorization"
        assert httpx.get(f"{url}/healthz").status_code == 200, "/healthz needs no token"
    assert logged() == [] and running("staging") is None


def test_a_token_outside_its_scopes_is_403(backend, tmp_path):
    frame = build(tmp_path)
    body = {"records": records(frame, 1)}
    staging_only = token("maya", f"predict:staging/{MODEL}", f"deploy:staging/{MODEL}")
    predict_only = token("maya", f"predict:production/{MODEL}")
    other_model = token("maya", "predict:production/churn", "read:*/churn")
    with live_api() as url:
        on_production = httpx.post(f"{url}/v1/production/{MODEL}/predict", json=body, headers=bearer(staging_only))
        deploy_with_predict = httpx.post(f"{url}/v1/staging/{MODEL}/deployments", json={"version": 2},
                                         headers=bearer(predict_only))
        deploy_production = httpx.post(f"{url}/v1/production/{MODEL}/deployments", json={"version": 2},
                                       headers=bearer(staging_only))
        wrong_model = httpx.get(f"{url}/v1/production/{MODEL}", headers=bearer(other_model))
    assert on_production.status_code == 403
    assert on_production.json()["detail"] == f"token 't1' has no predict scope for production/{MODEL}"
    assert deploy_with_predict.status_code == 403 and "has no deploy scope" in deploy_with_predict.json()["detail"]
    assert deploy_production.status_code == 403 and "has no deploy scope for production" in \
        deploy_production.json()["detail"]
    assert wrong_model.status_code == 403
    assert logged() == [] and running("staging") is None and running("production") == 1


def test_a_new_deployment_is_served_at_once_without_a_restart(backend, tmp_path):
    frame = build(tmp_path)
    rows = records(frame, 5)
    app = create_app()
    secret = token()
    with live_api(app) as url:
        predict = f"{url}/v1/production/{MODEL}/predict"
        before = httpx.post(predict, json={"records": rows}, headers=bearer(secret)).json()
        again = httpx.post(predict, json={"records": rows}, headers=bearer(secret)).json()
        approve_v3()  # the high-risk blueprint deploys an approved version automatically
        after = httpx.post(predict, json={"records": rows}, headers=bearer(secret)).json()
        info = httpx.get(f"{url}/v1/production/{MODEL}", headers=bearer(secret)).json()
    assert (before["version"], again["version"], after["version"], info["version"]) == (1, 1, 3, 3)
    assert app.state.cache.loads == 2, "loaded once per deployed version"
    assert np.allclose([p["score"] for p in after["predictions"]], direct_scores(3, rows))
    with session_scope() as s:
        v3 = registry.get_version(session=s, model=MODEL, version=3)
    assert {r.model_version_id for r in logged()[-5:]} == {v3.id}


def test_a_tampered_artifact_is_503_audited_once_and_named_by_healthz(backend, tmp_path, caplog):
    frame = build(tmp_path)
    with session_scope() as s:
        v1 = registry.get_version(session=s, model=MODEL, version=1)
    path = artifacts.resolve(v1.artifact_path)
    path.write_bytes(path.read_bytes() + b"tampered")
    secret = token()
    with live_api() as url:
        answers = [httpx.post(f"{url}/v1/production/{MODEL}/predict", json={"records": records(frame, 1)},
                              headers=bearer(secret)) for _ in range(3)]
        health = httpx.get(f"{url}/healthz")
    assert {a.status_code for a in answers} == {503}
    assert all("was tampered with" in a.json()["detail"] for a in answers)
    assert health.status_code == 200 and health.json()["status"] == "degraded"
    assert [(u["environment"], u["model"], u["version"]) for u in health.json()["unhealthy"]] == [
        ("production", MODEL, 1)]
    assert logged() == []
    with session_scope() as s:
        tampered = s.exec(select(AuditEvent).where(AuditEvent.action == "artifact.tampered")).all()
    assert len(tampered) == 1, "audited once, not on every request"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith("uvicorn")]


def test_deploying_over_http_needs_a_deploy_token_and_passes_the_same_gate(backend, tmp_path):
    build(tmp_path)
    maya = token("maya", "deploy:*/card-scorer")
    dario_reads = token("dario", f"read:*/{MODEL}", f"predict:*/{MODEL}")
    with pytest.raises(Exception, match="bianca may not hold scope"):
        token("bianca", f"deploy:staging/{MODEL}")
    with live_api() as url:
        deploy = f"{url}/v1/production/{MODEL}/deployments"
        anonymous = httpx.post(deploy, json={"version": 3})
        basic = httpx.post(deploy, json={"version": 3}, auth=("maya", "any-password"))
        blocked = httpx.post(deploy, json={"version": 3}, headers=bearer(maya))
        reader = httpx.post(f"{url}/v1/staging/{MODEL}/deployments", json={"version": 3},
                              headers=bearer(dario_reads))
        staged = httpx.post(f"{url}/v1/staging/{MODEL}/deployments", json={"version": 3, "note": "try it"},
                            headers=bearer(maya))
    assert anonymous.status_code == 401 and basic.status_code == 401, "HTTP Basic is no longer accepted"
    assert blocked.status_code == 403
    assert blocked.json()["detail"] == ("production requires an approved review (policy block): "
                                        "card-scorer v3 has no review (request one)")
    assert reader.status_code == 403 and "has no deploy scope" in reader.json()["detail"]
    assert staged.status_code == 201 and staged.json()["version"] == 3 and staged.json()["deployed_by"] == "maya"
    assert (running("production"), running("staging")) == (1, 3)


def test_demo_mode_does_not_open_the_api(backend, tmp_path, monkeypatch):
    frame = build(tmp_path)
    monkeypatch.setenv("WATCHTOWER_DEMO", "1")
    with live_api() as url:
        deploy = httpx.post(f"{url}/v1/staging/{MODEL}/deployments", json={"version": 3}, auth=("admin", "x"))
        predict = httpx.post(f"{url}/v1/production/{MODEL}/predict", json={"records": records(frame, 1)})
    assert deploy.status_code == 401 and predict.status_code == 401
    assert running("staging") is None and logged() == []


def test_the_model_runs_on_the_configured_threads_of_each_request(backend, tmp_path, monkeypatch):
    import threading

    from threadpoolctl import threadpool_info

    from core.api import ThreadLimit, model_threads_setting

    assert model_threads_setting() == 1
    monkeypatch.setenv("WATCHTOWER_API_MODEL_THREADS", "0")
    assert model_threads_setting() == 0 and create_app().state.thread_limit.threads == 0
    monkeypatch.setenv("WATCHTOWER_API_MODEL_THREADS", "many")
    with pytest.raises(ValueError, match="WATCHTOWER_API_MODEL_THREADS='many' must be a whole number"):
        create_app()
    import sklearn.ensemble  # noqa: F401 - loads scikit-learn's OpenMP runtime

    seen: list[int] = []

    def request_thread() -> None:
        ThreadLimit(1).apply(0)
        seen.extend(lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "openmp")

    worker = threading.Thread(target=request_thread)
    worker.start()
    worker.join()
    assert seen and set(seen) == {1}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_the_watchtower_api_command_serves_the_deployed_versions(backend, tmp_path):
    frame = build(tmp_path)
    secret = token()
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
        refused = httpx.post(f"http://127.0.0.1:{port}/v1/production/{MODEL}/predict",
                             json={"records": records(frame, 2)})
        answer = httpx.post(f"http://127.0.0.1:{port}/v1/production/{MODEL}/predict",
                            json={"records": records(frame, 2)}, headers=bearer(secret))
    finally:
        proc.terminate()
        proc.wait(20)
    assert refused.status_code == 401
    assert answer.status_code == 200 and len(answer.json()["predictions"]) == 2
    assert len(logged("production")) == 2


def point(environment: str, url: str | None) -> None:
    from core.governance import environments

    with session_scope() as s:
        environments.configure_environment(session=s, actor=actor("admin"), name=environment, endpoint_url=url or "")


def test_a_test_query_answers_with_its_latency_and_the_endpoint_check_follows_the_endpoint(backend, tmp_path):
    from core.errors import Forbidden, InvalidInput
    from core.governance import endpoints
    from core.monitoring import checks

    build(tmp_path)
    with pytest.raises(InvalidInput, match="staging has no endpoint URL configured"):
        endpoints.send_test_query(actor=actor("omar"), environment="staging", model=MODEL)
    with session_scope() as s:
        prod = checks.define_check(session=s, actor=actor("maya"), project_key="CARDS", name="production endpoint",
                                   kind="endpoint", metric="production", model=MODEL, audience_roles=["it_ops"])
        stage = checks.define_check(session=s, actor=actor("maya"), project_key="CARDS", name="staging endpoint",
                                    kind="endpoint", metric="staging", model=MODEL, audience_roles=["it_ops"])
    with live_api() as url:
        point("production", url)
        point("staging", url)
        anonymous = endpoints.query_endpoint(environment="production", model=MODEL, token=None)
        answer = endpoints.send_test_query(actor=actor("omar"), environment="production", model=MODEL)
        with pytest.raises(Forbidden, match="bianca may not hold scope"):
            endpoints.send_test_query(actor=actor("bianca"), environment="production", model=MODEL)
        healthy = endpoints.evaluate_endpoint_check(check_id=prod.id)
        idle = endpoints.evaluate_endpoint_check(check_id=stage.id)
    assert anonymous.status_code == 401
    assert answer.ok and answer.status_code == 200 and answer.version == 1 and answer.latency_ms > 0
    assert len(answer.answer["predictions"]) == 1 and len(logged("production")) == 1
    with session_scope() as s:
        used = s.exec(select(Token).where(Token.name.startswith("test-query-"))).all()
    assert len(used) == 1 and used[0].revoked_at is not None, "the test query's token lived for one request"
    assert logged("production")[0].logged_by == f"token:{used[0].id}:{used[0].name}"
    assert healthy.status == "pass" and healthy.message.startswith("production endpoint healthy in ")
    assert healthy.message.endswith("ms, serving card-scorer v1") and healthy.value > 0
    assert idle.status == "error"
    assert idle.message == "staging endpoint cannot be probed: card-scorer is not deployed in staging"
    down = endpoints.evaluate_endpoint_check(check_id=prod.id)  # the server has stopped
    assert down.status == "error" and down.message.startswith("production endpoint is unhealthy: no answer ConnectError")
    with session_scope() as s:
        ticks = checks.history(session=s, check_id=prod.id).icons
    assert ticks == "✅❌"


def test_the_endpoint_check_fails_when_healthz_names_the_deployment_unhealthy(backend, tmp_path):
    from core.governance import endpoints
    from core.monitoring import checks

    frame = build(tmp_path)
    with session_scope() as s:
        v1 = registry.get_version(session=s, model=MODEL, version=1)
        prod = checks.define_check(session=s, actor=actor("maya"), project_key="CARDS", name="production endpoint",
                                   kind="endpoint", metric="production", model=MODEL, audience_roles=["it_ops"])
    path = artifacts.resolve(v1.artifact_path)
    path.write_bytes(path.read_bytes() + b"tampered")
    with live_api() as url:
        point("production", url)
        httpx.post(f"{url}/v1/production/{MODEL}/predict", json={"records": records(frame, 1)},
                   headers=bearer(token()))
        result = endpoints.evaluate_endpoint_check(check_id=prod.id)
    assert result.status == "error" and "was tampered with" in result.message


def test_the_endpoint_checks_step_alerts_the_audience_of_a_failing_endpoint(backend, tmp_path):
    import core.automation.steps  # noqa: F401  (registers the step kinds)
    from core.automation.step_kinds import STEP_KINDS, StepContext
    from core.entities import Alert, User
    from core.governance import endpoints
    from core.monitoring import checks

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

    from core.governance import deployer

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
    secret = token()
    with live_api() as url:
        ok = httpx.post(f"{url}/v1/staging/refunds/predict", json={"records": [{"x": 0.5, "value": 12.5}, {"x": 2.0}]},
                        headers=bearer(secret))
        bad = httpx.post(f"{url}/v1/staging/refunds/predict", json={"records": [{"x": 0.5, "value": "a lot"}]},
                         headers=bearer(secret))
    assert ok.status_code == 200 and len(ok.json()["predictions"]) == 2
    stored = {r.prediction_id: r.features for r in logged("staging")}
    assert [stored[p["prediction_id"]] for p in ok.json()["predictions"]] == [{"x": 0.5, "value": 12.5},
                                                                            {"x": 2, "value": None}]
    assert bad.status_code == 422 and bad.json()["detail"] == "record 0: field 'value' must be a number, got text \"a lot\""
