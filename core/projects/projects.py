"""Projects, business initiatives and the portfolio view."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session, select

from core import audit
from core.access import Actor, require
from core.entities import (
    RISK_LEVELS,
    AuditEvent,
    Blueprint,
    BusinessInitiative,
    Check,
    CheckResult,
    Deployment,
    Environment,
    Model,
    ModelVersion,
    Project,
)
from core.errors import Conflict, InvalidInput, NotFound
from core.projects.blueprints import STAGES

HEALTH_ORDER = ("error", "warning", "pass", "no data")


@dataclass(frozen=True)
class PortfolioRow:
    key: str
    name: str
    initiative: str
    risk_level: str
    stage: str
    owner: str
    active_versions: dict[str, str]  # environment -> "model vN"
    health: str  # error | warning | pass | no data


@dataclass(frozen=True)
class VersionRead:
    number: int
    status: str
    origin: str
    created_by: str
    created_at: datetime
    artifact_sha256: str | None
    environments: tuple[str, ...]
    training_metrics: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ModelRead:
    name: str
    task: str
    target: str
    versions: tuple[VersionRead, ...]


@dataclass(frozen=True)
class ProjectRead:
    id: int
    key: str
    name: str
    description: str
    sponsor: str
    owner: str
    contacts: list[dict]
    initiative: str
    scope: str
    risk_level: str
    blueprint: str
    stage: str
    tags: list[str]
    health: str
    models: list[ModelRead] = field(default_factory=list)
    blueprint_stages: tuple[str, ...] = ()


def get_or_create_initiative(*, session: Session, name: str, actor: str = "system") -> BusinessInitiative:
    found = session.exec(select(BusinessInitiative).where(BusinessInitiative.name == name)).first()
    if found:
        return found
    initiative = BusinessInitiative(name=name)
    session.add(initiative)
    session.flush()
    audit.record(session, actor=actor, action="initiative.create", entity_type="initiative", entity_id=name)
    return initiative


def _blueprint_for(session: Session, *, risk_level: str, name: str | None) -> Blueprint | None:
    if name:
        bp = session.exec(select(Blueprint).where(Blueprint.name == name)).first()
        if bp is None:
            raise NotFound(f"no blueprint named {name!r}")
        return bp
    for bp in session.exec(select(Blueprint).order_by(Blueprint.id)).all():
        if risk_level in bp.risk_levels:
            return bp
    return None


def create_project(*, session: Session, actor: Actor, key: str, name: str, risk_level: str = "medium",
                   blueprint: str | None = None, description: str = "", sponsor: str = "", owner: str = "",
                   initiative: str | None = None, scope: str = "", contacts: list[dict] | None = None,
                   tags: list[str] | None = None, stage: str | None = None) -> ProjectRead:
    """Create a project; it takes the blueprint of its risk level unless one is named."""
    require(actor, "project.create")
    key = key.strip().upper()
    if not re.fullmatch(r"[A-Z][A-Z0-9_-]{1,31}", key):
        raise InvalidInput(f"project key {key!r} must be 2-32 letters, digits, '-' or '_', starting with a letter")
    if not name.strip():
        raise InvalidInput("a project needs a name")
    if risk_level not in RISK_LEVELS:
        raise InvalidInput(f"risk level {risk_level!r} is not one of {', '.join(RISK_LEVELS)}")
    if session.exec(select(Project).where(Project.key == key)).first():
        raise Conflict(f"project {key} already exists")
    for c in contacts or []:
        if not c.get("name") or "@" not in (c.get("email") or ""):
            raise InvalidInput(f"contact {c!r} needs a name and an e-mail address")
    bp = _blueprint_for(session, risk_level=risk_level, name=blueprint)
    first_stage = stage or (bp.stages[0]["name"] if bp and bp.stages else "Exploration")
    init = get_or_create_initiative(session=session, name=initiative, actor=actor.username) if initiative else None
    project = Project(key=key, name=name.strip(), description=description, sponsor=sponsor,
                      owner=owner or actor.username, contacts=list(contacts or []),
                      initiative_id=init.id if init else None, scope=scope, risk_level=risk_level,
                      blueprint_id=bp.id if bp else None, stage=first_stage, tags=list(tags or []))
    session.add(project)
    session.flush()
    audit.record(session, actor=actor.username, action="project.create", entity_type="project", entity_id=key,
                 project_id=project.id, details={"name": project.name, "risk_level": risk_level,
                                                 "blueprint": bp.name if bp else None})
    return get_project(session=session, key=key)


def project_row(session: Session, key: str) -> Project:
    project = session.exec(select(Project).where(Project.key == key.upper())).first()
    if project is None:
        raise NotFound(f"no project {key!r}")
    return project


def project_health(session: Session, project_id: int) -> str:
    """Worst latest status over the project's enabled checks; 'no data' before any check ran."""
    statuses: list[str] = []
    for check in session.exec(select(Check).where(Check.project_id == project_id, Check.enabled)).all():
        latest = session.exec(select(CheckResult).where(CheckResult.check_id == check.id)
                              .order_by(CheckResult.at.desc(), CheckResult.id.desc()).limit(1)).first()
        if latest is not None and latest.status != "no_data":
            statuses.append(latest.status)
    for status in HEALTH_ORDER:
        if status in statuses:
            return status
    return "no data"


def _active_by_environment(session: Session, model_ids: list[int]) -> dict[int, list[str]]:
    """version id -> environment names where it is actively deployed."""
    if not model_ids:
        return {}
    rows = session.exec(select(Deployment, Environment).join(Environment)
                        .where(Deployment.active, Deployment.model_id.in_(model_ids))
                        .order_by(Environment.position)).all()
    out: dict[int, list[str]] = {}
    for dep, env in rows:
        out.setdefault(dep.model_version_id, []).append(env.name)
    return out


def get_project(*, session: Session, key: str) -> ProjectRead:
    project = project_row(session, key)
    initiative = session.get(BusinessInitiative, project.initiative_id) if project.initiative_id else None
    bp = session.get(Blueprint, project.blueprint_id) if project.blueprint_id else None
    models = session.exec(select(Model).where(Model.project_id == project.id).order_by(Model.name)).all()
    envs = _active_by_environment(session, [m.id for m in models])
    model_reads = []
    for m in models:
        versions = session.exec(select(ModelVersion).where(ModelVersion.model_id == m.id)
                                .order_by(ModelVersion.number.desc())).all()
        model_reads.append(ModelRead(name=m.name, task=m.task, target=m.target, versions=tuple(
            VersionRead(number=v.number, status=v.status, origin=v.origin, created_by=v.created_by,
                        created_at=v.created_at, artifact_sha256=v.artifact_sha256,
                        environments=tuple(envs.get(v.id, [])), training_metrics=dict(v.training_metrics))
            for v in versions)))
    return ProjectRead(id=project.id, key=project.key, name=project.name, description=project.description,
                       sponsor=project.sponsor, owner=project.owner, contacts=list(project.contacts),
                       initiative=initiative.name if initiative else "", scope=project.scope,
                       risk_level=project.risk_level, blueprint=bp.name if bp else "", stage=project.stage,
                       tags=list(project.tags), health=project_health(session, project.id), models=model_reads,
                       blueprint_stages=tuple(st["name"] for st in (bp.stages if bp else [])))


def portfolio(*, session: Session, initiative: str | None = None, risk_level: str | None = None,
              stage: str | None = None) -> list[PortfolioRow]:
    """Every project with its initiative, risk, stage, owner, what runs where, and health."""
    initiatives = {i.id: i.name for i in session.exec(select(BusinessInitiative)).all()}
    rows = []
    projects = session.exec(select(Project).order_by(Project.key)).all()
    models = session.exec(select(Model)).all()
    by_project: dict[int, list[Model]] = {}
    for m in models:
        by_project.setdefault(m.project_id, []).append(m)
    deployments = session.exec(select(Deployment, Environment, ModelVersion).join(Environment, Deployment.environment_id == Environment.id)
                               .join(ModelVersion, Deployment.model_version_id == ModelVersion.id)
                               .where(Deployment.active).order_by(Environment.position)).all()
    model_names = {m.id: m.name for m in models}
    for p in projects:
        init_name = initiatives.get(p.initiative_id, "")
        if initiative and init_name != initiative:
            continue
        if risk_level and p.risk_level != risk_level:
            continue
        if stage and p.stage != stage:
            continue
        ids = {m.id for m in by_project.get(p.id, [])}
        active: dict[str, str] = {}
        for dep, env, ver in deployments:
            if dep.model_id in ids:
                label = f"{model_names[dep.model_id]} v{ver.number}"
                active[env.name] = f"{active[env.name]}, {label}" if env.name in active else label
        rows.append(PortfolioRow(key=p.key, name=p.name, initiative=init_name, risk_level=p.risk_level,
                                 stage=p.stage, owner=p.owner, active_versions=active,
                                 health=project_health(session, p.id)))
    return rows


def list_projects(*, session: Session, actor: Actor) -> list[PortfolioRow]:
    """Every project, by key, with its initiative, risk, stage, owner, what runs where and health."""
    require(actor, "portfolio.view")
    return portfolio(session=session)


@dataclass(frozen=True)
class ProjectDashboard:
    """One project's dashboard: its context, models, audit trail, and the other projects to switch to."""

    project: ProjectRead
    trail: list[audit.AuditRead]
    trail_actions: list[str]  # every kind of action in the project's trail, for filtering it
    keys: list[str]


def project_dashboard(*, session: Session, key: str | None = None, actions: list[str] | None = None,
                      trail_limit: int = 200) -> ProjectDashboard | None:
    """The dashboard of project `key` (default: the first project); None when there are no projects.

    The audit trail is newest first, optionally only the given kinds of action.
    """
    keys = list_project_keys(session=session)
    if not keys:
        return None
    project = get_project(session=session, key=key or keys[0])
    q = select(AuditEvent).where(AuditEvent.project_id == project.id)
    if actions:
        q = q.where(AuditEvent.action.in_(list(actions)))
    events = session.exec(q.order_by(AuditEvent.seq.desc()).limit(trail_limit)).all()
    trail = [audit.AuditRead(seq=e.seq, at=e.at, actor=e.actor, action=e.action, entity_type=e.entity_type,
                             entity_id=e.entity_id, project_id=e.project_id, details=dict(e.details))
             for e in events]
    kinds = sorted(set(session.exec(select(AuditEvent.action).where(AuditEvent.project_id == project.id)).all()))
    return ProjectDashboard(project=project, trail=trail, trail_actions=kinds, keys=keys)


@dataclass(frozen=True)
class PortfolioView:
    """The portfolio as filtered, with the choices each filter offers and how many projects exist."""

    rows: list[PortfolioRow]
    initiatives: list[str]
    risk_levels: list[str]
    stages: list[str]
    total: int


def portfolio_view(*, session: Session, initiative: str | None = None, risk_level: str | None = None,
                   stage: str | None = None) -> PortfolioView:
    """The portfolio filtered by initiative, risk and stage, with every value the filters can take."""
    everything = portfolio(session=session)
    order = {name: i for i, name in enumerate(STAGES)}
    shown = [r for r in everything if (not initiative or r.initiative == initiative)
             and (not risk_level or r.risk_level == risk_level) and (not stage or r.stage == stage)]
    return PortfolioView(rows=shown, initiatives=sorted({r.initiative for r in everything if r.initiative}),
                         risk_levels=list(RISK_LEVELS),
                         stages=sorted({r.stage for r in everything}, key=lambda n: (order.get(n, len(order)), n)),
                         total=len(everything))


def list_project_keys(*, session: Session) -> list[str]:
    return list(session.exec(select(Project.key).order_by(Project.key)).all())
