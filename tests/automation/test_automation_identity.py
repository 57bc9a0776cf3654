"""Automation acts as its owner: each step is checked against what the owner may do by hand, whoever runs it."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlmodel import select

from core.automation import runner, scenarios
from core.automation.step_kinds import STEP_KINDS, STEP_PERMISSIONS
from core.cli import main
from core.db import session_scope
from core.entities import AuditEvent, ScenarioRun, User
from core.errors import Forbidden
from tests.support.governed import MODEL, PROJECT, actor, build, running

DEPLOY_TO_PRODUCTION = {"kind": "deploy", "params": {"environment": "production", "version": 3}}


def _scenario(owner: str, steps: list[dict], name: str = "promote") -> scenarios.ScenarioRead:
    with session_scope() as s:
        return scenarios.create_scenario(session=s, actor=actor(owner), project_key=PROJECT, model=MODEL, name=name,
                                         steps=steps)


def _request(scenario_id: int, who: str) -> int:
    with session_scope() as s:
        return scenarios.request_run(session=s, actor=actor(who), scenario_id=scenario_id).id


def _run_on_the_worker() -> None:
    """What `watchtower worker` does on each poll: run every requested run."""
    result = CliRunner().invoke(main, ["worker", "--once"], catch_exceptions=False)
    assert result.exit_code == 0, result.output


def _get(run_id: int) -> scenarios.RunRead:
    with session_scope() as s:
        return scenarios.get_run(session=s, run_id=run_id)


def _audit(action: str) -> list[AuditEvent]:
    with session_scope() as s:
        return list(s.exec(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)).all())


def test_every_step_kind_declares_the_permission_it_checks_on_the_owner():
    from core.automation.step_kinds import load_step_kinds

    load_step_kinds()
    assert {k: STEP_PERMISSIONS.get(k) for k in ("ingest", "evaluate", "checks", "endpoint_checks", "notify",
                                                  "sleep", "retrain", "review", "deploy")} == {
        "ingest": "evaluation.write", "evaluate": "evaluation.write", "checks": "monitoring.manage",
        "endpoint_checks": "monitoring.manage", "notify": "monitoring.manage", "sleep": "automation.run",
        "retrain": "experiments.run", "review": "review.request", "deploy": "deploy"}
    # The product's kinds (test helpers may register their own, each declaring a permission too).
    product = {kind for kind, fn in STEP_KINDS.items() if fn.__module__.split(".")[0] == "core"}
    assert product >= {"ingest", "evaluate", "checks", "endpoint_checks", "notify", "sleep", "retrain", "review",
                       "deploy"}
    assert not product - set(STEP_PERMISSIONS), "a step kind of the product declares no permission"


def test_a_data_scientists_scenario_cannot_deploy_an_unapproved_version_to_production(backend, tmp_path):
    build(tmp_path)
    sc = _scenario("dario", [{"kind": "sleep", "params": {"seconds": 0}}, DEPLOY_TO_PRODUCTION,
                             {"kind": "sleep", "params": {"seconds": 0}}])
    assert sc.owner == "dario"
    run_id = _request(sc.id, "dario")
    _run_on_the_worker()
    done = _get(run_id)
    assert done.status == "failed"
    assert [st.status for st in done.steps] == ["succeeded", "failed", "skipped"]
    assert done.steps[1].error == ("dario may not deploy (allowed roles: admin, it_ops, ml_engineer); "
                                   "scenario promote acts as its owner dario")
    assert done.error.startswith("step 2 (deploy) failed: dario may not deploy")
    assert running("production") == 1  # nothing changed


def test_an_administrator_running_a_data_scientists_scenario_lends_it_no_rights(backend, tmp_path):
    build(tmp_path)
    sc = _scenario("dario", [DEPLOY_TO_PRODUCTION])
    run_id = _request(sc.id, "admin")
    _run_on_the_worker()
    done = _get(run_id)
    assert done.requested_by == "admin" and done.status == "failed"
    assert done.steps[0].error.endswith("scenario promote acts as its owner dario")
    assert "dario may not deploy" in done.steps[0].error
    assert running("production") == 1


def test_approving_a_step_lends_it_no_rights_of_the_approver(backend, tmp_path):
    build(tmp_path)
    sc = _scenario("dario", [{**DEPLOY_TO_PRODUCTION, "mode": "needs_approval", "approver_role": "admin"}])
    run_id = _request(sc.id, "dario")
    assert runner.execute_run(run_id=run_id, worker_id="w:1:a") == "waiting_approval"
    with pytest.raises(Forbidden, match="needs approval by a admin; maya is not one"):
        with session_scope() as s:
            scenarios.approve_step(session=s, actor=actor("maya"), run_id=run_id)
    with session_scope() as s:
        scenarios.approve_step(session=s, actor=actor("admin"), run_id=run_id, comment="ok")
    assert runner.execute_run(run_id=run_id, worker_id="w:1:a") == "failed"
    done = _get(run_id)
    assert done.steps[0].approved_by == "admin" and "dario may not deploy" in done.steps[0].error
    assert running("production") == 1


def test_an_ml_engineers_scenario_meets_the_same_governance_gate_as_by_hand(backend, tmp_path):
    build(tmp_path)
    sc = _scenario("maya", [DEPLOY_TO_PRODUCTION])
    run_id = _request(sc.id, "omar")
    _run_on_the_worker()
    done = _get(run_id)
    assert done.steps[0].error == ("production requires an approved review (policy block): "
                                   "card-scorer v3 has no review (request one)")
    assert running("production") == 1


def test_editing_a_scenario_makes_the_editor_its_owner_and_says_so_in_the_audit_trail(backend, tmp_path):
    build(tmp_path)
    sc = _scenario("dario", [{"kind": "deploy", "params": {"environment": "staging", "version": 3}}])
    with session_scope() as s:
        changed = scenarios.update_scenario(session=s, actor=actor("maya"), scenario_id=sc.id, description="ship it")
    assert changed.owner == "maya"
    (event,) = _audit("scenario.owner")
    assert event.actor == "maya" and event.details["message"] == "ownership of scenario promote passed from dario to maya"
    with session_scope() as s:  # the owner editing again changes no ownership
        scenarios.update_scenario(session=s, actor=actor("maya"), scenario_id=sc.id, enabled=True)
    assert len(_audit("scenario.owner")) == 1
    run_id = _request(sc.id, "dario")
    _run_on_the_worker()
    done = _get(run_id)
    assert done.status == "succeeded" and "acting as maya (scenario owner)" in done.steps[0].log
    assert running("staging") == 3


@pytest.mark.parametrize("change, reason", [
    ({"active": False}, "scenario promote acts as its owner maya, who is deactivated"),
    ({"roles": ["business"]}, "maya may not deploy (allowed roles: admin, it_ops, ml_engineer)"),
])
def test_an_owner_who_left_or_lost_the_role_can_no_longer_act_through_the_scenario(backend, tmp_path, change,
                                                                                   reason):
    build(tmp_path)
    sc = _scenario("maya", [{"kind": "deploy", "params": {"environment": "staging", "version": 3}}])
    run_id = _request(sc.id, "omar")
    with session_scope() as s:
        maya = s.exec(select(User).where(User.username == "maya")).one()
        for key, value in change.items():
            setattr(maya, key, value)
        s.add(maya)
    _run_on_the_worker()
    done = _get(run_id)
    assert done.status == "failed" and reason in done.steps[0].error
    assert running("staging") is None


def test_a_scheduled_run_acts_as_the_owner_too(backend, tmp_path):
    build(tmp_path)
    with session_scope() as s:
        sc = scenarios.create_scenario(session=s, actor=actor("dario"), project_key=PROJECT, model=MODEL,
                                       name="nightly", steps=[DEPLOY_TO_PRODUCTION], trigger_kind="interval",
                                       trigger_value=3600)
    run_id = runner.request_scheduled_run(scenario_id=sc.id, worker_id="w:1:a")
    _run_on_the_worker()
    done = _get(run_id)
    assert done.requested_by == "scheduler" and "dario may not deploy" in done.steps[0].error
    with session_scope() as s:
        assert s.get(ScenarioRun, run_id).status == "failed"
