"""Projects and the portfolio: blueprints by risk level, duplicate keys refused, filters and health."""

from __future__ import annotations

import pytest
from sqlalchemy import func
from sqlmodel import select

from core.access import Actor
from core.db import session_scope
from core.entities import AuditEvent, Blueprint, Check, CheckResult, Project
from core.errors import Conflict, Forbidden, InvalidInput
from core.projects import blueprints, projects

RHEA = Actor(username="rhea", roles=("risk_manager",))
BIANCA = Actor(username="bianca", roles=("business",))


def _setup_portfolio() -> None:
    with session_scope() as s:
        blueprints.ensure_standard_blueprints(session=s)
        projects.create_project(session=s, actor=RHEA, key="FRAUD", name="Credit card fraud", risk_level="high",
                                initiative="Payments integrity", sponsor="Elena Fischer", stage="Production",
                                contacts=[{"name": "Bianca Rossi", "email": "bianca@example.com", "role": "owner"}])
        projects.create_project(session=s, actor=RHEA, key="CHURN", name="Customer churn", risk_level="medium",
                                initiative="Customer retention")
        projects.create_project(session=s, actor=RHEA, key="DOCS", name="Document routing", risk_level="low",
                                initiative="Payments integrity")


def test_a_new_project_takes_the_blueprint_of_its_risk_level(backend):
    _setup_portfolio()
    with session_scope() as s:
        high = projects.get_project(session=s, key="FRAUD")
        medium = projects.get_project(session=s, key="CHURN")
        low = projects.get_project(session=s, key="docs")
    assert (high.blueprint, medium.blueprint, low.blueprint) == ("High risk", "Medium risk", "Low risk")
    assert low.stage == "Exploration" and high.stage == "Production"
    assert high.blueprint_stages == ("Exploration", "Qualification", "Review", "Production", "Retired")
    assert high.contacts == [{"name": "Bianca Rossi", "email": "bianca@example.com", "role": "owner"}]
    assert high.owner == "rhea" and high.initiative == "Payments integrity"


def test_the_high_risk_blueprint_needs_three_roles_then_a_risk_manager(backend):
    with session_scope() as s:
        blueprints.ensure_standard_blueprints(session=s)
        blueprints.ensure_standard_blueprints(session=s)
        assert s.exec(select(func.count()).select_from(Blueprint)).one() == 3
        review = blueprints.get_blueprint(session=s, name="High risk").stage("Review")
        low = blueprints.get_blueprint(session=s, name="Low risk").stage("Review")
    assert set(review.signoff_roles) == {"it_ops", "risk_manager", "business"}
    assert review.final_approver == "risk_manager" and review.auto_deploy
    assert low.signoff_roles == ("business",) and low.auto_deploy


def test_a_duplicate_key_is_refused_and_writes_nothing(backend):
    _setup_portfolio()
    with session_scope() as s:
        events_before = s.exec(select(func.count()).select_from(AuditEvent)).one()
    with pytest.raises(Conflict, match="project FRAUD already exists"):
        with session_scope() as s:
            projects.create_project(session=s, actor=RHEA, key="fraud", name="Another fraud", risk_level="low")
    with session_scope() as s:
        assert s.exec(select(func.count()).select_from(Project)).one() == 3
        assert s.exec(select(func.count()).select_from(AuditEvent)).one() == events_before
        assert projects.get_project(session=s, key="FRAUD").name == "Credit card fraud"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"key": "1X", "name": "x"}, "project key '1X'"),
    ({"key": "OK", "name": "  "}, "a project needs a name"),
    ({"key": "OK", "name": "x", "risk_level": "extreme"}, "risk level 'extreme'"),
    ({"key": "OK", "name": "x", "contacts": [{"name": "No Mail", "email": "none"}]}, "needs a name and an e-mail"),
])
def test_bad_project_input_names_the_problem(backend, kwargs, message):
    with pytest.raises(InvalidInput, match=message):
        with session_scope() as s:
            projects.create_project(session=s, actor=RHEA, **kwargs)
    with session_scope() as s:
        assert s.exec(select(func.count()).select_from(Project)).one() == 0


def test_a_business_stakeholder_may_not_create_a_project(backend):
    with pytest.raises(Forbidden, match="bianca may not project create"):
        with session_scope() as s:
            projects.create_project(session=s, actor=BIANCA, key="MINE", name="Mine")


def test_portfolio_filters_by_initiative_risk_and_stage(backend):
    _setup_portfolio()
    with session_scope() as s:
        everything = projects.portfolio_view(session=s)
        payments = projects.portfolio_view(session=s, initiative="Payments integrity")
        low_payments = projects.portfolio_view(session=s, initiative="Payments integrity", risk_level="low")
        in_production = projects.portfolio_view(session=s, stage="Production")
    assert [r.key for r in everything.rows] == ["CHURN", "DOCS", "FRAUD"]
    assert everything.initiatives == ["Customer retention", "Payments integrity"]
    assert everything.stages == ["Exploration", "Production"]
    assert [r.key for r in payments.rows] == ["DOCS", "FRAUD"] and payments.total == 3
    assert [r.key for r in low_payments.rows] == ["DOCS"]
    assert [r.key for r in in_production.rows] == ["FRAUD"]


def test_health_is_no_data_until_checks_run_then_the_worst_latest_result(backend):
    _setup_portfolio()
    with session_scope() as s:
        assert {r.health for r in projects.portfolio(session=s)} == {"no data"}
        fraud = projects.project_row(s, "FRAUD")
        auc = Check(project_id=fraud.id, name="auc", kind="metric", metric="roc_auc", threshold=0.8)
        recall = Check(project_id=fraud.id, name="recall", kind="metric", metric="recall", threshold=0.5,
                       severity="warning")
        s.add(auc)
        s.add(recall)
        s.flush()
        s.add(CheckResult(check_id=auc.id, value=0.9, passed=True, status="pass"))
        s.add(CheckResult(check_id=recall.id, value=0.3, passed=False, status="warning"))
    with session_scope() as s:
        health = {r.key: r.health for r in projects.portfolio(session=s)}
    assert health == {"CHURN": "no data", "DOCS": "no data", "FRAUD": "warning"}


def test_the_project_dashboard_carries_its_audit_trail(backend):
    _setup_portfolio()
    with session_scope() as s:
        dash = projects.project_dashboard(session=s, key="CHURN")
        first = projects.project_dashboard(session=s)
    assert dash.project.name == "Customer churn"
    assert [(e.actor, e.action, e.entity_id) for e in dash.trail] == [("rhea", "project.create", "CHURN")]
    assert first.project.key == "CHURN" and first.keys == ["CHURN", "DOCS", "FRAUD"]
    with session_scope() as s:
        fraud = projects.project_dashboard(session=s, key="FRAUD")
        only_creation = projects.project_dashboard(session=s, key="FRAUD", actions=["project.create"])
        nothing = projects.project_dashboard(session=s, key="FRAUD", actions=["version.register"])
    assert fraud.trail_actions == ["project.create"]
    assert [e.action for e in only_creation.trail] == ["project.create"]
    assert nothing.trail == []
