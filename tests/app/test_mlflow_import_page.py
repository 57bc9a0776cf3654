"""Registry page: an administrator trusts the team's MLflow server, an ML engineer imports its champion."""

from __future__ import annotations

import pytest

from core.db import session_scope
from core.identity import users
from tests.app.conftest import open_page, texts
from tests.support import external_logs
from tests.support import mlflow_world as world

pytestmark = [pytest.mark.xdist_group("mlflow"), pytest.mark.slow]


def _people() -> None:
    with session_scope() as s:
        for username, role in (("admin", "admin"), ("maya", "ml_engineer")):
            users.create_user(session=s, actor=world.ADMIN, username=username, name=username.title(),
                              email=f"{username}@bank.test", roles=[role])


def test_an_ml_engineer_imports_the_champion_from_a_server_an_administrator_trusted(sqlite_home, mlflow_server,
                                                                                     tmp_path):
    _people()
    external_logs.create_project()
    name = world.unique("card-fraud")
    run_id, _ = world.log_and_register(mlflow_server.uri, name)
    reference = world.data().to_csv(index=False).encode()

    at = open_page("pages/registry.py", username="maya")
    assert not at.exception, [e.value for e in at.exception]
    assert "No MLflow tracking server is trusted yet" in texts(at)
    assert not at.text_input(key="mlf_uri").disabled and "mlf_trust_uri" not in [w.key for w in at.text_input]

    at = open_page("pages/registry.py", username="admin")
    at.text_input(key="mlf_trust_uri").set_value(mlflow_server.uri + "/")
    at.button(key="mlf_trust_go").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert f"{mlflow_server.uri} is trusted as an MLflow source." in texts(at)

    at = open_page("pages/registry.py", username="maya")
    at.selectbox(key="mlf_tracking").select(mlflow_server.uri)
    at.text_input(key="mlf_uri").set_value(f"models:/{name}@champion")
    at.file_uploader(key="mlf_reference").set_value(("reference.csv", reference, "text/csv"))
    at.checkbox(key="mlf_mirror").check()
    at.button(key="mlf_go").click().run()
    assert not at.exception, [e.value for e in at.exception]
    shown = texts(at)
    assert f"{name} v1 (active) imported from MLflow {name} v1, run {run_id}." in shown
    assert f"From MLflow: models:/{name}@champion" in shown.replace("`", "").replace("*", "") and "evaluations mirrored" in shown
    assert "MLflow run metric" in shown and "0.912" in shown


def test_an_import_without_reference_data_says_what_is_needed(sqlite_home, mlflow_server):
    _people()
    external_logs.create_project()
    world.trust(mlflow_server.uri)

    at = open_page("pages/registry.py", username="maya")
    at.text_input(key="mlf_uri").set_value("models:/card-fraud@champion")
    at.button(key="mlf_go").click().run()
    assert [e.value for e in at.error][0].startswith(
        "Import refused: importing models:/card-fraud@champion needs reference data: a CSV")
