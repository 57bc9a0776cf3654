"""Blueprints: the governance workflow a project follows, chosen by its risk level.

A blueprint is an ordered list of stages (Exploration → Qualification → Review → Production → Retired).
Each stage says whose sign-off it needs (`signoff_roles`), who gives the final approval
(`final_approver`, a role, or None when the sign-offs suffice), which project checks must be passing
(`required_checks`, check names), whether an approved version is deployed to production at once
(`auto_deploy`) and whether the final approver must be someone who gave none of the stage's sign-offs
(`approver_distinct_from_signers`). Whatever the blueprint, each sign-off role is given by a different person
and whoever requested a review neither signs nor approves it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, select

from core import audit
from core.access import Actor, require
from core.entities import RISK_LEVELS, ROLES, Blueprint, Project
from core.errors import Conflict, InvalidInput, NotFound

STAGES = ("Exploration", "Qualification", "Review", "Production", "Retired")


def _stages(review_roles: list[str], final_approver: str | None, auto_deploy: bool,
            distinct: bool = False) -> list[dict]:
    """The standard stages; only the Review stage (the gate before production) asks for sign-offs."""
    out = []
    for name in STAGES:
        gate = name == "Review"
        out.append({"name": name, "signoff_roles": list(review_roles) if gate else [],
                    "final_approver": final_approver if gate else None, "required_checks": [],
                    "auto_deploy": auto_deploy if gate else False,
                    "approver_distinct_from_signers": distinct if gate else False})
    return out


STANDARD_BLUEPRINTS: tuple[dict, ...] = (
    {"name": "Low risk", "risk_levels": ["low"], "auto_deploy": True,
     "description": "Business sign-off before production; an approved version is deployed automatically.",
     "stages": _stages(["business"], None, True)},
    {"name": "Medium risk", "risk_levels": ["medium"], "auto_deploy": False,
     "description": "Sign-off from data science and the business, then final approval by a risk manager who "
                    "signed neither; the approved version becomes deployable.",
     "stages": _stages(["data_scientist", "business"], "risk_manager", False, distinct=True)},
    {"name": "High risk", "risk_levels": ["high"], "auto_deploy": True,
     "description": "Feedback from IT & operations, risk and the business, then final approval by a risk "
                    "manager; on approval the version is deployed to production automatically.",
     "stages": _stages(["it_ops", "risk_manager", "business"], "risk_manager", True)},
)


@dataclass(frozen=True)
class StageRead:
    name: str
    signoff_roles: tuple[str, ...]
    final_approver: str | None
    required_checks: tuple[str, ...]
    auto_deploy: bool
    approver_distinct_from_signers: bool = False


@dataclass(frozen=True)
class BlueprintRead:
    id: int
    name: str
    description: str
    risk_levels: tuple[str, ...]
    stages: tuple[StageRead, ...]
    auto_deploy: bool

    @property
    def stage_names(self) -> list[str]:
        return [s.name for s in self.stages]

    def stage(self, name: str) -> StageRead:
        """The stage called `name`; NotFound when the blueprint has none."""
        for s in self.stages:
            if s.name == name:
                return s
        raise NotFound(f"blueprint {self.name!r} has no stage {name!r}")


def blueprint_read(bp: Blueprint) -> BlueprintRead:
    stages = tuple(StageRead(name=s["name"], signoff_roles=tuple(s.get("signoff_roles") or ()),
                             final_approver=s.get("final_approver"),
                             required_checks=tuple(s.get("required_checks") or ()),
                             auto_deploy=bool(s.get("auto_deploy")),
                             approver_distinct_from_signers=bool(s.get("approver_distinct_from_signers")))
                   for s in bp.stages)
    return BlueprintRead(id=bp.id, name=bp.name, description=bp.description, risk_levels=tuple(bp.risk_levels),
                         stages=stages, auto_deploy=bp.auto_deploy)


def ensure_standard_blueprints(*, session: Session) -> None:
    """Create the low, medium and high risk blueprints that are missing (never alters existing ones)."""
    existing = set(session.exec(select(Blueprint.name)).all())
    for spec in STANDARD_BLUEPRINTS:
        if spec["name"] in existing:
            continue
        session.add(Blueprint(name=spec["name"], description=spec["description"],
                              risk_levels=list(spec["risk_levels"]), stages=[dict(s) for s in spec["stages"]],
                              auto_deploy=spec["auto_deploy"]))
        session.flush()
        audit.record(session, actor="system", action="blueprint.create", entity_type="blueprint",
                     entity_id=spec["name"], details={"risk_levels": spec["risk_levels"]})


def list_blueprints(*, session: Session) -> list[BlueprintRead]:
    """Every blueprint, in creation order."""
    return [blueprint_read(bp) for bp in session.exec(select(Blueprint).order_by(Blueprint.id)).all()]


def get_blueprint(*, session: Session, name: str) -> BlueprintRead:
    bp = session.exec(select(Blueprint).where(Blueprint.name == name)).first()
    if bp is None:
        raise NotFound(f"no blueprint named {name!r}")
    return blueprint_read(bp)


def blueprint_for_risk(*, session: Session, risk_level: str) -> BlueprintRead | None:
    """The first blueprint that applies to a risk level, as new projects take it."""
    for bp in list_blueprints(session=session):
        if risk_level in bp.risk_levels:
            return bp
    return None


# --- management (risk managers and admins) ---------------------------------------------------

def _clean_stages(stages: list[dict]) -> list[dict]:
    """Stages as stored; InvalidInput names the first bad stage and field."""
    if not stages:
        raise InvalidInput("a blueprint needs at least one stage")
    out, seen = [], set()
    for i, stage in enumerate(stages, start=1):
        name = str(stage.get("name") or "").strip()
        if not name:
            raise InvalidInput(f"stage {i} has no name")
        if name in seen:
            raise InvalidInput(f"stage {name!r} appears twice")
        seen.add(name)
        roles = [str(r) for r in stage.get("signoff_roles") or []]
        unknown = [r for r in roles if r not in ROLES]
        approver = stage.get("final_approver") or None
        if unknown or (approver is not None and approver not in ROLES):
            raise InvalidInput(f"stage {name!r} names unknown role(s) {unknown or [approver]}; roles are "
                               f"{', '.join(ROLES)}")
        checks = [str(c).strip() for c in stage.get("required_checks") or [] if str(c).strip()]
        auto = bool(stage.get("auto_deploy"))
        if auto and not (roles or approver):
            raise InvalidInput(f"stage {name!r} deploys automatically on approval but asks nobody to approve")
        distinct = bool(stage.get("approver_distinct_from_signers"))
        if distinct and approver is None:
            raise InvalidInput(f"stage {name!r} asks for a final approver distinct from its signers but names no "
                               f"final approver")
        out.append({"name": name, "signoff_roles": list(dict.fromkeys(roles)), "final_approver": approver,
                    "required_checks": checks, "auto_deploy": auto, "approver_distinct_from_signers": distinct})
    return out


def save_blueprint(*, session: Session, actor: Actor, name: str, risk_levels: list[str], stages: list[dict],
                   description: str = "") -> BlueprintRead:
    """Create a blueprint or change one; a change may not remove a stage where a project stands."""
    require(actor, "blueprint.manage")
    name = name.strip()
    if not name:
        raise InvalidInput("a blueprint needs a name")
    bad = [r for r in risk_levels if r not in RISK_LEVELS]
    if bad:
        raise InvalidInput(f"unknown risk level(s) {bad}; risk levels are {', '.join(RISK_LEVELS)}")
    cleaned = _clean_stages(stages)
    bp = session.exec(select(Blueprint).where(Blueprint.name == name)).first()
    created = bp is None
    if bp is not None:
        names = {s["name"] for s in cleaned}
        stranded = session.exec(select(Project.key, Project.stage).where(Project.blueprint_id == bp.id)).all()
        stranded = [f"{key} ({stage})" for key, stage in stranded if stage not in names]
        if stranded:
            raise Conflict(f"projects {', '.join(stranded)} stand in a stage this change removes")
    else:
        bp = Blueprint(name=name)
    before = {"risk_levels": list(bp.risk_levels or []), "stages": list(bp.stages or [])}
    bp.description, bp.risk_levels, bp.stages = description, list(dict.fromkeys(risk_levels)), cleaned
    bp.auto_deploy = any(s["auto_deploy"] for s in cleaned)
    session.add(bp)
    session.flush()
    audit.record(session, actor=actor.username, action="blueprint.create" if created else "blueprint.update",
                 entity_type="blueprint", entity_id=name,
                 details={"risk_levels": bp.risk_levels, "stages": cleaned, "before": None if created else before})
    return blueprint_read(bp)


def assign_blueprint(*, session: Session, actor: Actor, project_key: str, blueprint: str) -> str:
    """Put a project under another blueprint; it keeps its stage when the new blueprint has it, else starts over."""
    require(actor, "blueprint.manage")
    project = session.exec(select(Project).where(Project.key == project_key.upper())).first()
    if project is None:
        raise NotFound(f"no project {project_key!r}")
    bp = session.exec(select(Blueprint).where(Blueprint.name == blueprint)).first()
    if bp is None:
        raise NotFound(f"no blueprint named {blueprint!r}")
    names = [s["name"] for s in bp.stages]
    before = project.stage
    project.blueprint_id = bp.id
    project.stage = before if before in names else names[0]
    session.add(project)
    session.flush()
    audit.record(session, actor=actor.username, action="project.blueprint", entity_type="project",
                 entity_id=project.key, project_id=project.id,
                 details={"blueprint": bp.name, "stage": {"from": before, "to": project.stage}})
    return project.stage
