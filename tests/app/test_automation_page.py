"""The Automation page: scenarios with schedule and next run, "Run now", run history, approving a waiting step."""

from __future__ import annotations

import pytest

from core.access import Actor
from core.automation import runner, scenarios
from core.db import session_scope
from tests.app.conftest import texts

MAYA = Actor("maya", ("ml_engineer",))


@pytest.fixture
def nightly(demo_home):
    """A scenario of the fraud project: wait, then a step only an ML engineer may let through."""
    with session_scope() as s:
        return scenarios.create_scenario(
            session=s, actor=MAYA, project_key="FRAUD", model="fraud-detector", name="nightly settle",
            trigger_kind="cron", trigger_value="15 2 * * *",
            steps=[{"kind": "sleep", "params": {"seconds": 0.1}},
                   {"kind": "sleep", "mode": "needs_approval", "approver_role": "ml_engineer"}])


def _open(page_as, username):
    at = page_as("pages/automation.py", username=username)
    at.selectbox(key="automation_project").select("FRAUD").run()
    at.selectbox(key="scenario_name").select("nightly settle").run()
    assert not at.exception
    return at


def test_operations_see_the_schedule_and_request_a_run_that_the_worker_will_pick_up(nightly, page_as):
    at = _open(page_as, "omar")
    table = at.dataframe[0].value
    row = table[table["Scenario"] == "nightly settle"].iloc[0]
    assert row["Schedule"] == "cron 15 2 * * * (UTC)" and row["Next run (UTC)"].endswith("02:15")
    assert row["Steps"] == "sleep → sleep ✋ (ml engineer)" and row["Last run"] == "never"
    at.button(key="run_now").click().run()
    assert "requested: the worker starts it within seconds" in texts(at)
    with session_scope() as s:
        (run,) = scenarios.list_runs(session=s, scenario_id=nightly.id)
    assert run.status == "requested" and run.requested_by == "omar"
    at.button(key="run_now").click().run()
    assert f"already has run #{run.id} requested" in texts(at)


def test_a_paused_run_shows_its_steps_and_the_ml_engineer_approves_it(nightly, page_as):
    with session_scope() as s:
        run = scenarios.request_run(session=s, actor=MAYA, scenario_id=nightly.id)
    assert runner.execute_run(run_id=run.id, worker_id="page-test:1:a") == "waiting_approval"
    at = _open(page_as, "maya")
    runs = next(df.value for df in at.dataframe if "Run" in df.value.columns)
    assert runs.iloc[0]["Status"] == "✋ waiting for approval"
    labels = [e.label for e in at.expander]
    assert any(label.startswith("1. sleep — ✅ succeeded · ") for label in labels)
    assert "2. sleep ✋ (ml engineer) — ✋ waiting for approval" in labels
    assert "waited 0.1 s" in texts(at) + "".join(c.value for c in at.code)
    assert "waits for approval by a ml engineer" in texts(at)
    at.button(key="approve_step").click().run()
    assert "the worker resumes the run within seconds" in texts(at)
    assert runner.execute_run(run_id=run.id, worker_id="page-test:1:a") == "succeeded"


def test_only_the_approver_role_may_approve(nightly, page_as):
    with session_scope() as s:
        run = scenarios.request_run(session=s, actor=MAYA, scenario_id=nightly.id)
    runner.execute_run(run_id=run.id, worker_id="page-test:1:a")
    at = _open(page_as, "omar")
    at.button(key="approve_step").click().run()
    assert "needs approval by a ml engineer; omar is not one" in texts(at)



def test_each_scenario_shows_the_owner_it_acts_as(nightly, page_as):
    at = _open(page_as, "omar")
    table = at.dataframe[0].value
    assert table[table["Scenario"] == "nightly settle"].iloc[0]["Owner"] == "maya"
    assert table[table["Scenario"] == "Daily monitoring"].iloc[0]["Owner"] == "maya"
    assert "Each one acts as its owner" in texts(at)
    assert "Data connections" not in texts(at)  # administrators only


def _connection_form(at, name: str, setting: str, tables: str):  # noqa: ANN001, ANN202
    at.text_input(key="conn_name").input(name)
    at.text_input(key="conn_secret").input(setting)
    at.text_input(key="conn_tables").input(tables)
    return at.button(key="create_connection").click().run()


def test_an_administrator_registers_and_deletes_a_data_connection_on_the_page(nightly, page_as, tmp_path,
                                                                               monkeypatch):
    import sqlite3

    from core.automation import connections

    warehouse = tmp_path / "warehouse.db"
    with sqlite3.connect(warehouse) as conn:
        conn.execute("create table scored (tx text, score real)")
    monkeypatch.setenv("WT_WAREHOUSE_URL", f"sqlite:///{warehouse}")
    monkeypatch.setenv("WT_PORTAL_DB", f"sqlite:///{demo_db()}")
    at = _open(page_as, "admin")
    assert "Data connections" in texts(at) and "No data connections yet." in texts(at)
    at = _connection_form(at, "mine", "WT_PORTAL_DB", "user")
    assert "setting WT_PORTAL_DB points at Watchtower's own database" in texts(at)
    at = _connection_form(at, "warehouse", "WT_WAREHOUSE_URL", "scored, analytics.*")
    assert not at.exception
    with session_scope() as s:
        (made,) = connections.list_connections(session=s)
    assert (made.name, made.secret, made.allowed_tables) == ("warehouse", "WT_WAREHOUSE_URL", ("scored", "analytics.*"))
    listed = next(df.value for df in at.dataframe if "Connection" in df.value.columns)
    assert listed.iloc[0]["Allowed tables"] == "scored, analytics.*" and listed.iloc[0]["Created by"] == "admin"
    at.selectbox(key="conn_delete_name").select("warehouse").run()
    at.button(key="delete_connection").click().run()
    with session_scope() as s:
        assert connections.list_connections(session=s) == []


def demo_db():  # noqa: ANN201
    import os

    return os.path.join(os.environ["WATCHTOWER_HOME"], "watchtower.db")


def test_each_run_shows_its_worker_and_a_chart_counts_runs_per_worker(nightly, page_as):
    import json

    for worker in ("host-a:11:aaaaaa", "host-b:22:bbbbbb"):
        with session_scope() as s:
            run = scenarios.request_run(session=s, actor=MAYA, scenario_id=nightly.id)
        assert runner.execute_run(run_id=run.id, worker_id=worker) == "waiting_approval"
        with session_scope() as s:
            scenarios.reject_step(session=s, actor=MAYA, run_id=run.id, comment="not tonight")
    at = _open(page_as, "maya")
    runs = next(df.value for df in at.dataframe if "Run" in df.value.columns)
    assert list(runs["Worker"]) == ["host-b:22:bbbbbb", "host-a:11:aaaaaa"]
    assert "Workers" in [h.value for h in at.subheader]
    (chart,) = [el for el in at.get("vega_lite_chart") if "Worker" in el.proto.spec]
    assert json.loads(chart.proto.spec)["mark"]["type"] == "bar"
