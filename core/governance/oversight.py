"""The risk manager's oversight: every project's governance at a glance, and one project's place in its blueprint."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, select

from core.access import Actor, require
from core.entities import Blueprint, Check, CheckResult, Model, ModelVersion, Project, Review
from core.governance import reviews
from core.projects import blueprints, projects


@dataclass(frozen=True)
class WatchRow:
    """One line of the governance portfolio."""

    key: str
    name: str
    initiative: str
    risk_level: str
    blueprint: str
    stage: str
    health: str
    production: str  # "fraud-detector v2", or "" when nothing runs in the highest environment
    pending_reviews: int
    waiting_for: str  # e.g. "fraud-detector v3: feedback from it_ops, business"


@dataclass(frozen=True)
class StageView:
    name: str
    signoff_roles: tuple[str, ...]
    final_approver: str | None
    required_checks: tuple[tuple[str, str], ...]  # (check name, latest status)
    auto_deploy: bool
    current: bool
    passed: bool  # the project has moved beyond this stage
    approver_distinct_from_signers: bool = False


@dataclass(frozen=True)
class VersionView:
    model: str
    number: int
    status: str
    origin: str
    created_by: str
    created_at: datetime
    environments: tuple[str, ...]
    review_state: str  # NOT_STARTED when never reviewed
    review: reviews.ReviewRead | None  # read for the person viewing: what they may do with it, and why not
    can_request: reviews.Allowed = reviews.UNKNOWN  # may the viewer ask for this version's review now


@dataclass(frozen=True)
class ProjectGovernance:
    key: str
    name: str
    description: str
    sponsor: str
    owner: str
    initiative: str
    scope: str
    risk_level: str
    health: str
    blueprint: str
    blueprint_description: str
    stage: str
    stages: tuple[StageView, ...]
    versions: tuple[VersionView, ...]  # newest first, across the project's models
    reviews: tuple[reviews.ReviewRead, ...]  # every review, newest first

    @property
    def under_review(self) -> tuple[VersionView, ...]:
        return tuple(v for v in self.versions if v.review_state in reviews.OPEN_STATES[1:])

    @property
    def requestable(self) -> tuple[VersionView, ...]:
        """The versions the viewer may ask a review for now."""
        return tuple(v for v in self.versions if v.can_request)

    @property
    def decided(self) -> tuple[reviews.ReviewRead, ...]:
        """The reviews that reached a final state, newest first."""
        return tuple(r for r in self.reviews if r.state in reviews.FINAL_STATES)


def _waiting(review: reviews.ReviewRead) -> str:
    label = f"{review.model} v{review.version}"
    if review.state == "WAITING_FOR_FEEDBACK":
        return f"{label}: feedback from {', '.join(review.missing_roles)}"
    return f"{label}: final approval ({review.final_approver_role})"


def governance_portfolio(*, session: Session, actor: Actor) -> list[WatchRow]:
    """Every project with its blueprint stage, risk, health, what runs in production and its pending reviews."""
    require(actor, "governance.view")
    blueprint_names = {b.id: b.name for b in session.exec(select(Blueprint)).all()}
    project_blueprint = {p.key: blueprint_names.get(p.blueprint_id, "") for p in session.exec(select(Project)).all()}
    pending: dict[str, list[reviews.ReviewRead]] = {}
    for review in reviews.pending_reviews(session=session):
        pending.setdefault(review.project_key, []).append(review)
    rows = []
    for p in projects.portfolio(session=session):
        waiting = pending.get(p.key, [])
        rows.append(WatchRow(key=p.key, name=p.name, initiative=p.initiative, risk_level=p.risk_level,
                             blueprint=project_blueprint.get(p.key, ""), stage=p.stage, health=p.health,
                             production=p.active_versions.get("production", ""), pending_reviews=len(waiting),
                             waiting_for="; ".join(_waiting(r) for r in waiting)))
    return rows


def _check_status(session: Session, project_id: int, name: str) -> str:
    check = session.exec(select(Check).where(Check.project_id == project_id, Check.name == name)).first()
    if check is None:
        return "no such check"
    latest = session.exec(select(CheckResult.status).where(CheckResult.check_id == check.id)
                          .order_by(CheckResult.at.desc(), CheckResult.id.desc()).limit(1)).first()
    return latest or "never ran"


def project_governance(*, session: Session, actor: Actor, key: str) -> ProjectGovernance:
    """A project's context, where it stands in its blueprint, and its versions with their reviews."""
    require(actor, "governance.view")
    base = projects.get_project(session=session, key=key)
    project = session.get(Project, base.id)
    bp = session.get(Blueprint, project.blueprint_id) if project.blueprint_id else None
    names = [s["name"] for s in (bp.stages if bp else [])]
    here = names.index(project.stage) if project.stage in names else -1
    stages = tuple(StageView(name=s["name"], signoff_roles=tuple(s.get("signoff_roles") or ()),
                             final_approver=s.get("final_approver"),
                             required_checks=tuple((c, _check_status(session, project.id, c))
                                                   for c in s.get("required_checks") or ()),
                             auto_deploy=bool(s.get("auto_deploy")), current=i == here, passed=i < here,
                             approver_distinct_from_signers=bool(s.get("approver_distinct_from_signers")))
                   for i, s in enumerate(bp.stages if bp else []))
    models = session.exec(select(Model).where(Model.project_id == project.id).order_by(Model.name)).all()
    read = [reviews.get_review(session=session, review_id=r.id, actor=actor) for r in session.exec(
        select(Review).join(ModelVersion, Review.model_version_id == ModelVersion.id)
        .where(ModelVersion.model_id.in_([m.id for m in models])).order_by(Review.id.desc())).all()]
    latest: dict[tuple[str, int], reviews.ReviewRead] = {}
    for r in read:
        latest.setdefault((r.model, r.version), r)
    versions = []
    for m in base.models:
        for v in m.versions:
            review = latest.get((m.name, v.number))
            versions.append(VersionView(model=m.name, number=v.number, status=v.status, origin=v.origin,
                                        created_by=v.created_by, created_at=v.created_at,
                                        environments=v.environments,
                                        review_state=review.state if review else "NOT_STARTED", review=review,
                                        can_request=reviews.can_request(session=session, actor=actor,
                                                                           model=m.name, version=v.number)))
    return ProjectGovernance(key=base.key, name=base.name, description=base.description, sponsor=base.sponsor,
                             owner=base.owner, initiative=base.initiative, scope=base.scope,
                             risk_level=base.risk_level, health=base.health, blueprint=bp.name if bp else "",
                             blueprint_description=bp.description if bp else "", stage=project.stage,
                             stages=stages, versions=tuple(versions), reviews=tuple(read))


@dataclass(frozen=True)
class GovernancePage:
    """Everything the Governance page shows to one person."""

    keys: tuple[str, ...]
    project: ProjectGovernance | None
    portfolio: tuple[WatchRow, ...]
    queue: tuple[reviews.QueueItem, ...]
    blueprints: tuple[blueprints.BlueprintRead, ...]
    can_request: reviews.Allowed  # may the viewer ask for reviews at all (each version says whether now)
    can_manage_blueprints: bool


def governance_page(*, session: Session, actor: Actor, key: str | None = None) -> GovernancePage:
    """One project's governance (the first with a pending review, else the first, when none is named),
    the portfolio watch, the person's review queue and the blueprints."""
    require(actor, "governance.view")
    keys = tuple(projects.list_project_keys(session=session))
    queue = tuple(reviews.review_queue(session=session, actor=actor))
    if key not in keys:
        pending = [r.project_key for r in reviews.pending_reviews(session=session)]
        key = (queue[0].review.project_key if queue else pending[0] if pending else keys[0]) if keys else None
    return GovernancePage(keys=keys,
                          project=project_governance(session=session, actor=actor, key=key) if key else None,
                          portfolio=tuple(governance_portfolio(session=session, actor=actor)), queue=queue,
                          blueprints=tuple(blueprints.list_blueprints(session=session)),
                          can_request=reviews.may_request(actor),
                          can_manage_blueprints=actor.has("blueprint.manage"))
