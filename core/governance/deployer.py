"""Environments, deployments and the governance gate that every entry point (page, CLI, API, scenario) goes through."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, select

from core import audit
from core.access import Actor, require
from core.alerting import notifications
from core.clock import now
from core.entities import (
    Blueprint,
    Check,
    CheckResult,
    Deployment,
    Environment,
    Model,
    ModelVersion,
    Project,
    Review,
)
from core.errors import Conflict, Forbidden, InvalidInput
from core.governance import reviews
from core.governance.environments import (
    EnvironmentRead,
    environment_row,
    list_environments,
    production_environment,
)
from core.models.registry import model_row, version_row


@dataclass(frozen=True)
class DeploymentRead:
    id: int
    environment: str
    model: str
    version: int
    since: datetime
    deployed_by: str
    active: bool
    ended_at: datetime | None
    note: str
    artifact_sha256: str | None
    warning: str = ""


@dataclass(frozen=True)
class GateDecision:
    allowed: bool
    review_state: str
    reason: str  # why it is refused, or the warning it is deployed with; empty when plainly allowed


def _dep_read(session: Session, d: Deployment, *, warning: str = "") -> DeploymentRead:
    env = session.get(Environment, d.environment_id)
    version = session.get(ModelVersion, d.model_version_id)
    model = session.get(Model, d.model_id)
    return DeploymentRead(id=d.id, environment=env.name, model=model.name, version=version.number,
                          since=d.deployed_at, deployed_by=d.deployed_by, active=d.active, ended_at=d.ended_at,
                          note=d.note, artifact_sha256=version.artifact_sha256, warning=warning)


# --- the gate --------------------------------------------------------------------------------

def _ran_here_before(session: Session, version_id: int, env_id: int) -> bool:
    return session.exec(select(Deployment.id).where(Deployment.model_version_id == version_id,
                                                    Deployment.environment_id == env_id)).first() is not None


def _failing_checks(session: Session, project: Project, names: list[str]) -> list[str]:
    """Which of the project's named checks are not passing now (latest result), each with its status."""
    out = []
    for name in names:
        check = session.exec(select(Check).where(Check.project_id == project.id, Check.name == name)).first()
        latest = None if check is None else session.exec(
            select(CheckResult).where(CheckResult.check_id == check.id)
            .order_by(CheckResult.at.desc(), CheckResult.id.desc()).limit(1)).first()
        if check is None:
            out.append(f"{name} (no such check)")
        elif latest is None:
            out.append(f"{name} (never ran)")
        elif latest.status != "pass":
            out.append(f"{name} ({latest.status})")
    return out


def _gate(session: Session, version: ModelVersion, env: Environment, label: str, *, rollback: bool) -> GateDecision:
    review = reviews.latest_review_row(session, version.id)
    state = review.state if review else "NOT_STARTED"
    if env.policy == "allow":
        return GateDecision(allowed=True, review_state=state, reason="")
    if state == "REJECTED":
        return GateDecision(allowed=False, review_state=state,
                            reason=f"{label} was rejected by {review.decided_by} (review #{review.id}: "
                                   f"{review.decision_comment}) and cannot be deployed to {env.name}")
    if rollback and _ran_here_before(session, version.id, env.id):
        return GateDecision(allowed=True, review_state=state, reason="")
    problems = []
    if state in ("NOT_STARTED", "ABANDONED"):
        problems.append("has no review (request one)" if state == "NOT_STARTED"
                        else "has no open review (its review was abandoned)")
    elif state == "WAITING_FOR_FEEDBACK":
        given = {s.role for s in reviews.get_review(session=session, review_id=review.id).signoffs}
        missing = [r for r in review.required_roles if r not in given]
        problems.append(f"is waiting for feedback from {', '.join(missing)} (review #{review.id})")
    elif state == "WAITING_FOR_APPROVAL":
        problems.append(f"is waiting for final approval by a {review.final_approver_role} (review #{review.id})")
    project = session.get(Project, session.get(Model, version.model_id).project_id)
    blueprint = session.get(Blueprint, project.blueprint_id) if project.blueprint_id else None
    failing = _failing_checks(session, project, list(reviews.review_stage(blueprint).get("required_checks") or []))
    if failing:
        problems.append(f"has required checks not passing: {', '.join(failing)}")
    if not problems:
        return GateDecision(allowed=True, review_state=state, reason="")
    why = " and ".join(problems)
    if env.policy == "warn":
        return GateDecision(allowed=True, review_state=state,
                            reason=f"{label} is not cleared: it {why}; deployed to {env.name} under its warn policy")
    return GateDecision(allowed=False, review_state=state,
                        reason=f"{env.name} requires an approved review (policy block): {label} {why}")


def check_gate(*, session: Session, model: str, version: int, environment: str) -> GateDecision:
    """Would deploying MODEL vN to ENVIRONMENT pass governance now, and why not (or with which warning)?"""
    m = model_row(session, model)
    v = version_row(session, m, version)
    env = environment_row(session, environment)
    return _gate(session, v, env, f"{m.name} v{v.number}", rollback=False)


def _record_blocked(session: Session, *, actor: Actor, project: Project, label: str, env: Environment,
                    reason: str) -> None:
    """Keep the refused attempt and alert the risk managers in a unit of work of its own: the caller's rolls back."""
    with Session(session.get_bind(), expire_on_commit=False) as own:
        audit.record(own, actor=actor.username, action="deploy.blocked", entity_type="deployment",
                     entity_id=f"{label}@{env.name}", project_id=project.id, details={"reason": reason})
        notifications.notify_roles(own, roles=["risk_manager"], kind="governance", severity="error",
                                project_id=project.id, link=f"/governance?project={project.key}",
                                title=f"Deployment blocked: {label} to {env.name}",
                                message=f"{actor.username} tried to deploy {label} ({project.key}) to {env.name}. "
                                        f"{reason}.")
        own.commit()


# --- deploying -------------------------------------------------------------------------------

def _active_row(session: Session, model_id: int, env_id: int) -> Deployment | None:
    return session.exec(select(Deployment).where(Deployment.model_id == model_id, Deployment.environment_id == env_id,
                                                 Deployment.active).with_for_update()).first()


def _deploy(session: Session, *, actor: Actor, m: Model, v: ModelVersion, env: Environment, note: str,
            rollback: bool, review_id: int | None = None) -> DeploymentRead:
    label = f"{m.name} v{v.number}"
    project = session.get(Project, m.project_id)
    if not v.artifact_path:
        raise InvalidInput(f"{label} has no artifact (an external model) and cannot be served by Watchtower")
    current = _active_row(session, m.id, env.id)
    if current is not None and current.model_version_id == v.id:
        raise Conflict(f"{label} already runs in {env.name} (since {current.deployed_at:%Y-%m-%d %H:%M})")
    gate = _gate(session, v, env, label, rollback=rollback)
    if not gate.allowed:
        _record_blocked(session, actor=actor, project=project, label=label, env=env, reason=gate.reason)
        raise Forbidden(gate.reason)
    at = now()
    if current is not None:
        current.active, current.ended_at = False, at
        session.add(current)
    dep = Deployment(environment_id=env.id, model_version_id=v.id, model_id=m.id, deployed_at=at,
                     deployed_by=actor.username, active=True,
                     note="; ".join(x for x in (note, gate.reason) if x))
    session.add(dep)
    if env.tier == "higher":
        _promote(session, m, v, project)
    session.flush()
    audit.record(session, actor=actor.username, action="rollback" if rollback else "deploy", entity_type="deployment",
                 entity_id=f"{label}@{env.name}", project_id=project.id,
                 details={"environment": env.name, "version": v.number, "policy": env.policy,
                          "review_state": gate.review_state, "on_approval_of_review": review_id, "warning": gate.reason, "note": note,
                          "replaced_version": session.get(ModelVersion, current.model_version_id).number
                          if current else None})
    if gate.reason:
        notifications.notify_roles(session, roles=["risk_manager"], kind="governance", severity="warning",
                                project_id=project.id, link=f"/governance?project={project.key}",
                                title=f"Unapproved deployment: {label} to {env.name}",
                                message=f"{actor.username}: {gate.reason}.")
    return _dep_read(session, dep, warning=gate.reason)


def _promote(session: Session, m: Model, v: ModelVersion, project: Project) -> None:
    """The version serving the highest environment is the model's active one; the one it replaces is archived."""
    for other in session.exec(select(ModelVersion).where(ModelVersion.model_id == m.id,
                                                         ModelVersion.status == "active",
                                                         ModelVersion.id != v.id)).all():
        other.status = "archived"
        session.add(other)
    v.status = "active"
    session.add(v)
    blueprint = session.get(Blueprint, project.blueprint_id) if project.blueprint_id else None
    after = reviews.stage_after(blueprint, reviews.review_stage(blueprint)["name"])
    if after and project.stage != after:
        project.stage = after
        session.add(project)


def deploy(*, session: Session, actor: Actor, model: str, version: int, environment: str,
           note: str = "") -> DeploymentRead:
    """Deploy MODEL vN to ENVIRONMENT through the governance gate; a refusal is audited and alerts risk managers."""
    require(actor, "deploy")
    m = model_row(session, model)
    v = version_row(session, m, version)
    env = environment_row(session, environment)
    return _deploy(session, actor=actor, m=m, v=v, env=env, note=note, rollback=False)


def rollback(*, session: Session, actor: Actor, model: str, environment: str, note: str = "") -> DeploymentRead:
    """Put back the version that ran in ENVIRONMENT before the current one (a rejected version stays out)."""
    require(actor, "deploy")
    m = model_row(session, model)
    env = environment_row(session, environment)
    current = _active_row(session, m.id, env.id)
    if current is None:
        raise Conflict(f"{m.name} is not deployed in {env.name}, so there is nothing to roll back")
    previous = session.exec(select(Deployment).where(Deployment.model_id == m.id, Deployment.environment_id == env.id,
                                                     Deployment.id != current.id,
                                                     Deployment.model_version_id != current.model_version_id)
                            .order_by(Deployment.deployed_at.desc(), Deployment.id.desc())).first()
    if previous is None:
        raise Conflict(f"{m.name} has no earlier version in {env.name} to roll back to")
    v = session.get(ModelVersion, previous.model_version_id)
    return _deploy(session, actor=actor, m=m, v=v, env=env, rollback=True,
                   note=note or f"rollback from v{session.get(ModelVersion, current.model_version_id).number}")


def on_final_approval(*, session: Session, review_id: int, actor: Actor) -> str:
    """What an approval leads to: deployment to production if the blueprint auto-deploys, else deployability.

    The deployment acts as the person who approved (only they may set it off), through the same gate, and is
    audited as theirs: their approval of this review is the authority for it.
    """
    review = session.get(Review, review_id)
    if review is None or review.state != "APPROVED" or review.decided_by != actor.username:
        raise Forbidden(f"{actor.username} did not approve review #{review_id}, so may not deploy on its approval")
    v = session.get(ModelVersion, review.model_version_id)
    m = session.get(Model, v.model_id)
    project = session.get(Project, m.project_id)
    blueprint = session.get(Blueprint, project.blueprint_id) if project.blueprint_id else None
    stage = reviews.review_stage(blueprint)
    target = production_environment(session)
    if target is None:
        return "approved; no production environment is configured"
    auto = bool(stage.get("auto_deploy", blueprint.auto_deploy if blueprint else False))
    label = f"{m.name} v{v.number}"
    if not auto:
        return f"now deployable to {target.name}"
    current = _active_row(session, m.id, target.id)
    if current is not None and current.model_version_id == v.id:
        return f"already running in {target.name}"
    gate = _gate(session, v, target, label, rollback=False)
    if not gate.allowed or not v.artifact_path:
        # The approval stands; what still stands in the way is reported instead of undoing it.
        return f"not deployed to {target.name}: {gate.reason or 'the version has no artifact'}"
    dep = _deploy(session, actor=actor, m=m, v=v, env=target, rollback=False, review_id=review.id,
                  note=f"deployed automatically on approval of review #{review.id} by {actor.username}")
    return f"deployed to {dep.environment} automatically"


# --- what runs where -------------------------------------------------------------------------

def active_deployment(*, session: Session, model: str, environment: str) -> DeploymentRead | None:
    m = model_row(session, model)
    env = environment_row(session, environment)
    row = session.exec(select(Deployment).where(Deployment.model_id == m.id, Deployment.environment_id == env.id,
                                                Deployment.active)).first()
    return _dep_read(session, row) if row else None


def what_runs_where(*, session: Session, model: str | None = None) -> list[DeploymentRead]:
    """Every active deployment (of one model or all), by environment order: what runs where, since when."""
    q = (select(Deployment).join(Environment, Deployment.environment_id == Environment.id)
         .where(Deployment.active).order_by(Environment.position, Deployment.model_id))
    if model is not None:
        q = q.where(Deployment.model_id == model_row(session, model).id)
    return [_dep_read(session, d) for d in session.exec(q).all()]


def history(*, session: Session, model: str, environment: str | None = None, limit: int = 50) -> list[DeploymentRead]:
    """Deployments of a model, newest first."""
    q = select(Deployment).where(Deployment.model_id == model_row(session, model).id)
    if environment is not None:
        q = q.where(Deployment.environment_id == environment_row(session, environment).id)
    rows = session.exec(q.order_by(Deployment.deployed_at.desc(), Deployment.id.desc()).limit(limit)).all()
    return [_dep_read(session, d) for d in rows]


@dataclass(frozen=True)
class VersionGates:
    number: int
    status: str
    review_state: str
    gates: dict[str, GateDecision]  # environment -> what deploying this version there would meet


@dataclass(frozen=True)
class Board:
    """The Deployer page: environments, what runs where since when, the history, and each version's gates."""

    environments: tuple[EnvironmentRead, ...]
    models: tuple[str, ...]
    model: str | None
    running: tuple[DeploymentRead, ...]
    history: tuple[DeploymentRead, ...]
    versions: tuple[VersionGates, ...]  # newest first


def board(*, session: Session, actor: Actor, model: str | None = None) -> Board:
    """Everything the Deployer page shows for one model (the first one by name when none is given)."""
    require(actor, "deployer.view")
    envs = tuple(list_environments(session=session))
    names = tuple(session.exec(select(Model.name).order_by(Model.name)).all())
    model = model if model in names else (names[0] if names else None)
    if model is None:
        return Board(environments=envs, models=names, model=None, running=(), history=(), versions=())
    m = model_row(session, model)
    rows = session.exec(select(ModelVersion).where(ModelVersion.model_id == m.id)
                        .order_by(ModelVersion.number.desc())).all()
    env_rows = [environment_row(session, e.name) for e in envs]
    versions = tuple(VersionGates(number=v.number, status=v.status,
                                  review_state=reviews.review_state(session, v.id),
                                  gates={e.name: _gate(session, v, e, f"{m.name} v{v.number}", rollback=False)
                                         for e in env_rows})
                     for v in rows)
    return Board(environments=envs, models=names, model=model,
                 running=tuple(what_runs_where(session=session, model=model)),
                 history=tuple(history(session=session, model=model, limit=20)), versions=versions)
