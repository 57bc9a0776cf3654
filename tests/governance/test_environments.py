"""Environments fail closed: only an administrator creates or changes one, a new one blocks unapproved versions,
and loosening one (or making it production) is audited and alerts the risk managers."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlmodel import select

from core import audit
from core.cli import main
from core.db import session_scope
from core.entities import Alert, Environment, User
from core.errors import Forbidden
from core.governance import deployer, environments
from tests.support.governed import MODEL, actor, build, running


def titles(username: str) -> list[str]:
    with session_scope() as s:
        uid = s.exec(select(User.id).where(User.username == username)).one()
        return list(s.exec(select(Alert.title).where(Alert.user_id == uid).order_by(Alert.id)).all())


def configure(who: str, name: str, **changes: str) -> environments.EnvironmentRead:
    with session_scope() as s:
        return environments.configure_environment(session=s, actor=actor(who), name=name, **changes)


def names() -> list[str]:
    with session_scope() as s:
        return [e.name for e in environments.list_environments(session=s)]


def test_it_operations_cannot_create_an_environment_to_deploy_an_unapproved_version_as_production(backend, tmp_path):
    build(tmp_path)
    for who in ("omar", "rhea", "maya"):
        with pytest.raises(Forbidden, match=f"{who} may not environment manage \\(allowed roles: admin\\)"):
            configure(who, "production-eu", tier="higher", policy="allow")
        with pytest.raises(Forbidden, match=f"{who} may not environment manage"):
            configure(who, "production", policy="allow")
    assert names() == ["staging", "production"]
    with session_scope() as s:
        assert environments.environment_row(s, "production").policy == "block"
        assert [e.actor for e in audit.events(session=s) if e.action.startswith("environment.")] == ["admin"]
    with pytest.raises(Forbidden, match="production requires an approved review"):
        with session_scope() as s:
            deployer.deploy(session=s, actor=actor("omar"), model=MODEL, version=3, environment="production")
    assert running("production") == 1


def test_a_new_environment_blocks_unapproved_versions_and_making_it_production_alerts_risk(backend, tmp_path):
    build(tmp_path)
    made = configure("admin", "production-eu", tier="higher", endpoint_url="http://127.0.0.1:8001")
    assert (made.tier, made.policy) == ("higher", "block")
    assert configure("admin", "qa").policy == "block", "no policy named: the new environment blocks"
    with pytest.raises(Forbidden, match=r"production-eu requires an approved review \(policy block\): "
                                        r"card-scorer v3 has no review"):
        with session_scope() as s:
            deployer.deploy(session=s, actor=actor("maya"), model=MODEL, version=3, environment="production-eu")
    with pytest.raises(Forbidden, match="qa requires an approved review"):
        with session_scope() as s:
            deployer.deploy(session=s, actor=actor("maya"), model=MODEL, version=3, environment="qa")
    assert running("production-eu") is None and running("qa") is None
    for risk_manager in ("rhea", "ruth", "raj"):
        assert titles(risk_manager)[0] == "Environment production-eu: marked as a higher (production) environment"
    assert not any(t.startswith("Environment qa") for t in titles("rhea")), "a blocking lower one alerts nobody"
    assert titles("omar") == [] and titles("admin") == []
    with session_scope() as s:
        created = [e for e in audit.events(session=s) if e.action == "environment.create"]
        assert audit.verify(session=s).ok
    assert {e.entity_id: e.details["loosened"] for e in created} == {
        "production-eu": ["marked as a higher (production) environment"], "qa": []}


def test_loosening_a_policy_is_audited_and_alerts_the_risk_managers_and_tightening_does_not(backend, tmp_path):
    build(tmp_path)
    configure("admin", "production", policy="warn")
    assert titles("rhea") == ["Environment production: policy loosened from block to warn"]
    configure("admin", "production", policy="allow")
    configure("admin", "production", policy="block")
    configure("admin", "production", endpoint_url="http://127.0.0.1:9000")
    assert titles("ruth") == ["Environment production: policy loosened from block to warn",
                              "Environment production: policy loosened from warn to allow"]
    with session_scope() as s:
        alert = s.exec(select(Alert).where(Alert.title.endswith("warn to allow"))).first()
        changes = [(e.actor, e.details["policy"], e.details["loosened"]) for e in audit.events(session=s)
                   if e.action == "environment.update" and "policy" in e.details]
    assert "admin changed environment production" in alert.message
    assert "deploys any version, approved or not" in alert.message
    for change in (("admin", {"from": "block", "to": "warn"}, ["policy loosened from block to warn"]),
                   ("admin", {"from": "warn", "to": "allow"}, ["policy loosened from warn to allow"]),
                   ("admin", {"from": "allow", "to": "block"}, [])):
        assert change in changes, change


def test_the_command_line_manages_environments_for_administrators_only(backend, tmp_path, monkeypatch):
    build(tmp_path)
    monkeypatch.setenv("WATCHTOWER_DEMO", "1")  # people act without a password
    cli = CliRunner()
    refused = cli.invoke(main, ["environment", "shadow", "--tier", "higher", "--policy", "allow", "--as", "omar"])
    assert refused.exit_code == 1 and "omar may not environment manage" in refused.output
    assert names() == ["staging", "production"]
    made = cli.invoke(main, ["environment", "shadow", "--as", "admin"])
    assert made.exit_code == 0 and "shadow: lower, policy block" in made.output
    listed = cli.invoke(main, ["environments", "--as", "omar"]).output
    assert "shadow" in listed and "policy block" in listed
    with session_scope() as s:
        assert s.exec(select(Environment.policy).where(Environment.name == "shadow")).one() == "block"
