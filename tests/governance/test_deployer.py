"""The deployer: what runs where, the governance gate through every entry point, auto-deploy and rollback."""

from __future__ import annotations

import httpx
import pytest
from click.testing import CliRunner
from sqlmodel import select

import core.automation.steps  # noqa: F401  (registers the step kinds)
from core import audit, governance
from core.automation.step_kinds import STEP_KINDS, StepContext
from core.cli import main
from core.db import session_scope
from core.entities import Alert, Deployment, User
from core.errors import Conflict, Forbidden, InvalidInput, NotFound
from core.governance import deployer, environments
from core.models import registry
from core.monitoring import checks
from core.projects import blueprints, projects
from tests.support.governed import MODEL, PROJECT, actor, build, running
from tests.support.live_api import live_api


def titles(username: str) -> list[str]:
    with session_scope() as s:
        uid = s.exec(select(User.id).where(User.username == username)).one()
        return list(s.exec(select(Alert.title).where(Alert.user_id == uid).order_by(Alert.id)).all())


def deploy(who: str, version: int, environment: str = "production") -> deployer.DeploymentRead:
    with session_scope() as s:
        return deployer.deploy(session=s, actor=actor(who), model=MODEL, version=version, environment=environment)


REVIEWERS = {"it_ops": "omar", "risk_manager": "rhea", "business": "bianca", "data_scientist": "dario"}


def review_and_approve(version: int = 3, approver: str = "ruth") -> governance.ReviewRead:
    """Every role the blueprint asks for approves, then the final approver does."""
    with session_scope() as s:
        review = governance.request_review(session=s, actor=actor("maya"), model=MODEL, version=version)
    for role in review.required_roles:
        with session_scope() as s:
            governance.give_feedback(session=s, actor=actor(REVIEWERS[role]), review_id=review.id, role=role,
                                     verdict="APPROVED")
    with session_scope() as s:
        return governance.approve(session=s, actor=actor(approver), review_id=review.id)


def statuses() -> dict[int, str]:
    with session_scope() as s:
        return {v.number: v.status for v in registry.list_versions(session=s, model=MODEL)}


def test_an_unreviewed_version_is_refused_by_production_and_the_risk_managers_are_alerted(backend, tmp_path):
    build(tmp_path)
    with pytest.raises(Forbidden) as refused:
        deploy("maya", 3)
    assert str(refused.value) == ("production requires an approved review (policy block): "
                                  "card-scorer v3 has no review (request one)")
    assert running("production") == 1
    for risk_manager in ("rhea", "ruth", "raj"):
        assert titles(risk_manager) == ["Deployment blocked: card-scorer v3 to production"]
    assert titles("maya") == [] and titles("omar") == []
    with session_scope() as s:
        blocked = [e for e in audit.events(session=s) if e.action == "deploy.blocked"]
        assert audit.verify(session=s).ok
    assert blocked[0].actor == "maya" and "has no review" in blocked[0].details["reason"]
    with session_scope() as s:
        review = governance.request_review(session=s, actor=actor("maya"), model=MODEL, version=3)
    with pytest.raises(Forbidden, match=r"waiting for feedback from it_ops, risk_manager, business \(review #"):
        deploy("maya", 3)
    for who, role in (("omar", "it_ops"), ("rhea", "risk_manager"), ("bianca", "business")):
        with session_scope() as s:
            governance.give_feedback(session=s, actor=actor(who), review_id=review.id, role=role, verdict="APPROVED")
    with pytest.raises(Forbidden, match="waiting for final approval by a risk_manager"):
        deploy("maya", 3)


def test_staging_takes_any_version_and_the_deployer_shows_what_runs_where(backend, tmp_path):
    build(tmp_path)
    staged = deploy("maya", 3, "staging")
    assert staged.warning == "" and staged.deployed_by == "maya"
    with session_scope() as s:
        where = [(d.environment, d.version, d.deployed_by) for d in deployer.what_runs_where(session=s)]
        project = projects.get_project(session=s, key=PROJECT)
    assert where == [("staging", 3, "maya"), ("production", 1, "admin")]
    assert statuses() == {1: "active", 2: "candidate", 3: "candidate"}, "only production makes a version active"
    assert {v.number: v.environments for v in project.models[0].versions}[3] == ("staging",)
    with pytest.raises(Conflict, match="card-scorer v3 already runs in staging"):
        deploy("maya", 3, "staging")


def test_the_warn_policy_deploys_with_the_warning_recorded(backend, tmp_path):
    build(tmp_path, production_policy="warn")
    dep = deploy("maya", 2)
    assert dep.warning == ("card-scorer v2 is not cleared: it has no review (request one); "
                           "deployed to production under its warn policy")
    assert running("production") == 2 and statuses() == {1: "archived", 2: "active", 3: "candidate"}
    assert "Unapproved deployment: card-scorer v2 to production" in titles("rhea")
    with session_scope() as s:
        event = next(e for e in audit.events(session=s) if e.action == "deploy")
        note = s.exec(select(Deployment.note).where(Deployment.active, Deployment.id == dep.id)).one()
    assert event.details["warning"] == dep.warning and dep.warning in note


def test_a_rejected_version_is_refused_even_under_warn_and_stays_out_on_rollback(backend, tmp_path):
    build(tmp_path, production_policy="warn")
    deploy("maya", 2)  # with a warning
    with session_scope() as s:
        review = governance.request_review(session=s, actor=actor("maya"), model=MODEL, version=2)
    with session_scope() as s:
        governance.reject(session=s, actor=actor("rhea"), review_id=review.id, comment="unstable on new cards")
    review_and_approve(3)  # high risk: deployed to production automatically, replacing the rejected v2
    assert running("production") == 3
    with pytest.raises(Forbidden, match=r"card-scorer v2 was rejected by rhea \(review #\d+: unstable on new cards\)"):
        with session_scope() as s:
            deployer.rollback(session=s, actor=actor("maya"), model=MODEL, environment="production")
    with pytest.raises(Forbidden, match="was rejected by rhea"):
        deploy("omar", 2)
    assert running("production") == 3


def test_approval_deploys_to_production_automatically_and_rollback_puts_back_the_previous_version(backend, tmp_path):
    build(tmp_path)
    approved = review_and_approve(3)
    assert approved.outcome == "deployed to production automatically"
    with session_scope() as s:
        auto = deployer.active_deployment(session=s, model=MODEL, environment="production")
    assert (auto.version, auto.deployed_by) == (3, "ruth"), "the deployment acts as the person who approved"
    assert "on approval of review" in auto.note and "by ruth" in auto.note
    with session_scope() as s:
        deployed = [e for e in audit.events(session=s) if e.action == "deploy"][0]
    assert deployed.actor == "ruth" and deployed.details["on_approval_of_review"] == approved.id
    assert statuses() == {1: "archived", 2: "candidate", 3: "active"}

    with session_scope() as s:
        back = deployer.rollback(session=s, actor=actor("omar"), model=MODEL, environment="production")
    assert back.version == 1 and back.note == "rollback from v3", "v1 ran here before, review or not"
    assert statuses() == {1: "active", 2: "candidate", 3: "archived"}
    with session_scope() as s:
        forward = deployer.rollback(session=s, actor=actor("omar"), model=MODEL, environment="production")
        history = deployer.history(session=s, model=MODEL, environment="production")
    assert forward.version == 3
    assert [(d.version, d.active) for d in history] == [(3, True), (1, False), (3, False), (1, False)]
    assert all(d.ended_at is not None for d in history[1:])
    with session_scope() as s:
        with pytest.raises(Conflict, match="card-scorer is not deployed in staging, so there is nothing to roll back"):
            deployer.rollback(session=s, actor=actor("omar"), model=MODEL, environment="staging")
    deploy("maya", 2, "staging")
    with session_scope() as s:
        with pytest.raises(Conflict, match="no earlier version in staging"):
            deployer.rollback(session=s, actor=actor("omar"), model=MODEL, environment="staging")


def test_the_checks_a_blueprint_requires_must_pass_before_production(backend, tmp_path):
    build(tmp_path)
    with session_scope() as s:
        high = blueprints.get_blueprint(session=s, name="High risk")
        stages = [{"name": st.name, "signoff_roles": list(st.signoff_roles), "final_approver": st.final_approver,
                   "required_checks": ["staging endpoint"] if st.name == "Review" else [],
                   "auto_deploy": st.auto_deploy} for st in high.stages]
        blueprints.save_blueprint(session=s, actor=actor("rhea"), name="High risk", risk_levels=["high"],
                                  stages=stages, description=high.description)
        check = checks.define_check(session=s, actor=actor("maya"), project_key=PROJECT, name="staging endpoint",
                                    kind="endpoint", metric="staging", audience_roles=["it_ops"])
    approved = review_and_approve(3)
    assert approved.state == "APPROVED"
    assert approved.outcome == ("not deployed to production: production requires an approved review (policy "
                                "block): card-scorer v3 has required checks not passing: staging endpoint (never ran)")
    assert running("production") == 1
    with session_scope() as s:
        checks.record_probe(session=s, check_id=check.id, value=0.0, passed=False, message="connection refused")
    with pytest.raises(Forbidden, match=r"staging endpoint \(error\)"):
        deploy("maya", 3)
    with session_scope() as s:
        checks.record_probe(session=s, check_id=check.id, value=12.0, passed=True, message="healthy")
    assert deploy("maya", 3).version == 3


def test_who_may_deploy_and_change_an_environment(backend, tmp_path):
    build(tmp_path)
    with pytest.raises(Forbidden, match="bianca may not deploy"):
        deploy("bianca", 3, "staging")
    with pytest.raises(NotFound, match=r"no environment 'qa' \(environments: staging, production\)"):
        deploy("maya", 3, "qa")
    with session_scope() as s:
        env = environments.configure_environment(session=s, actor=actor("admin"), name="staging",
                                                 endpoint_url="http://127.0.0.1:8000/")
        assert env.endpoint_url == "http://127.0.0.1:8000"
        for who in ("omar", "rhea", "maya"):
            with pytest.raises(Forbidden, match=f"{who} may not environment manage"):
                environments.configure_environment(session=s, actor=actor(who), name="production", policy="allow")
        with pytest.raises(InvalidInput, match="policy 'sometimes' is not one of block, warn, allow"):
            environments.configure_environment(session=s, actor=actor("admin"), name="production", policy="sometimes")
        with pytest.raises(InvalidInput, match="must start with http"):
            environments.configure_environment(session=s, actor=actor("admin"), name="staging", endpoint_url="ftp://x")
    with session_scope() as s:
        assert [(e.name, e.policy) for e in environments.list_environments(session=s)] == [
            ("staging", "allow"), ("production", "block")]
        registry.add_version(session=s, actor=actor("maya"), model=MODEL, reference=registry_frame(s),
                             origin="external")
    with pytest.raises(InvalidInput, match="card-scorer v4 has no artifact"):
        deploy("maya", 4, "staging")


def registry_frame(session):  # noqa: ANN001, ANN201
    from core import artifacts

    v = registry.get_version(session=session, model=MODEL, version=1)
    return artifacts.load_reference(path=v.reference_path, sha256=v.reference_sha256)


def test_the_command_line_holds_the_gate_and_walks_the_review(backend, tmp_path, monkeypatch):
    build(tmp_path)
    monkeypatch.setenv("WATCHTOWER_DEMO", "1")  # personas act without a password
    cli = CliRunner()

    def run(*args: str):  # noqa: ANN202
        return cli.invoke(main, list(args), catch_exceptions=False)

    blocked = run("deploy", MODEL, "--version", "3", "--env", "production", "--as", "maya")
    assert blocked.exit_code == 1
    assert blocked.output.strip() == ("error: production requires an approved review (policy block): "
                                      "card-scorer v3 has no review (request one)")
    assert run("deploy", MODEL, "--version", "3", "--env", "staging", "--as", "maya").exit_code == 0
    asked = run("review", MODEL, "request", "--version", "3", "--as", "maya", "--comment", "retrained")
    assert "WAITING_FOR_FEEDBACK" in asked.output and "it_ops, risk_manager, business" in asked.output
    wrong = run("review", MODEL, "feedback", "--version", "3", "--as", "bianca", "--role", "it_ops",
                "--verdict", "APPROVED")
    assert wrong.exit_code == 1 and "bianca does not hold the it_ops role" in wrong.output
    for who in ("omar", "rhea", "bianca"):
        given = run("review", MODEL, "feedback", "--version", "3", "--as", who, "--verdict", "APPROVED",
                    "--comment", "ok")
        assert given.exit_code == 0, given.output
    self_approval = run("review", MODEL, "approve", "--version", "3", "--as", "maya")
    assert self_approval.exit_code == 1 and "only a risk_manager may approve" in self_approval.output
    approved = run("review", MODEL, "approve", "--version", "3", "--as", "ruth")
    assert approved.exit_code == 0 and "deployed to production automatically" in approved.output
    where = run("deployments", MODEL, "--as", "omar").output.splitlines()
    assert [line.split()[:3] for line in where] == [["staging", MODEL, "v3"], ["production", MODEL, "v3"]]
    back = run("rollback", MODEL, "--env", "production", "--as", "omar")
    assert back.exit_code == 0 and "v1 runs in production again" in back.output
    assert running("production") == 1


def test_the_scoring_api_holds_the_gate(backend, tmp_path):
    from core.identity import tokens

    build(tmp_path, risk="medium")  # medium risk: an approved version waits to be deployed
    with session_scope() as s:
        _, secret = tokens.create_token(session=s, actor=actor("omar"), name="ops", scopes=[f"deploy:production/{MODEL}"])
    omar = {"Authorization": f"Bearer {secret}"}
    with live_api() as url:
        refused = httpx.post(f"{url}/v1/production/{MODEL}/deployments", json={"version": 3}, headers=omar)
        assert review_and_approve(3).outcome == "now deployable to production"
        accepted = httpx.post(f"{url}/v1/production/{MODEL}/deployments", json={"version": 3}, headers=omar)
    assert refused.status_code == 403 and "card-scorer v3 has no review" in refused.json()["detail"]
    assert accepted.status_code == 201 and accepted.json()["deployed_by"] == "omar"
    assert running("production") == 3


def test_the_scenario_step_holds_the_gate(backend, tmp_path):
    build(tmp_path)
    logs: list[str] = []

    def ctx(**params: object) -> StepContext:
        return StepContext(run_id=1, scenario_id=1, project_id=1, model_name=MODEL, params=dict(params), state={},
                           actor=actor("admin"), log=logs.append)

    blocked = STEP_KINDS["deploy"](ctx(environment="production", version=3))
    assert not blocked.ok and blocked.message.startswith("production requires an approved review (policy block)")
    assert titles("rhea") == ["Deployment blocked: card-scorer v3 to production"]
    staged = STEP_KINDS["deploy"](ctx(environment="staging"))  # the newest version by default
    assert staged.ok and staged.outputs == {"deployed_version": 3, "deployed_environment": "staging"}
    assert (running("production"), running("staging")) == (1, 3)
    assert not STEP_KINDS["deploy"](ctx()).ok


def test_a_scenario_run_deploying_to_production_is_stopped_by_the_gate(backend, tmp_path):
    from core.automation import runner, scenarios

    build(tmp_path)
    with session_scope() as s:
        promote = scenarios.create_scenario(session=s, actor=actor("maya"), project_key=PROJECT, model=MODEL,
                                            name="promote newest", steps=[
                                                {"kind": "deploy", "params": {"environment": "staging"}},
                                                {"kind": "deploy", "params": {"environment": "production"}}])
        run = scenarios.request_run(session=s, actor=actor("maya"), scenario_id=promote.id)
    assert runner.execute_run(run_id=run.id, worker_id="test-worker") == "failed"
    with session_scope() as s:
        done = scenarios.get_run(session=s, run_id=run.id)
    assert [step.status for step in done.steps] == ["succeeded", "failed"]
    assert done.error == ("step 2 (deploy) failed: production requires an approved review (policy block): "
                          "card-scorer v3 has no review (request one)")
    assert (running("staging"), running("production")) == (3, 1)
    assert titles("rhea") == ["Deployment blocked: card-scorer v3 to production"]
