"""Each model at a glance, for listings: its project, its latest version and how many versions are in each status."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, select

from core.access import Actor, require
from core.entities import Model, ModelVersion, Project
from core.projects.projects import project_row


@dataclass(frozen=True)
class ModelSummary:
    project: str  # the project's key
    model: str
    task: str
    versions: int
    latest_version: int | None
    latest_status: str | None
    active_version: int | None
    statuses: dict[str, int]  # status -> how many versions hold it
    created_at: datetime


def list_model_summaries(*, session: Session, actor: Actor, project_key: str | None = None) -> list[ModelSummary]:
    """Every model (or those of one project), ordered by project and name; NotFound for an unknown project."""
    require(actor, "registry.view")
    query = select(Model, Project).join(Project, Model.project_id == Project.id)
    if project_key is not None:
        query = query.where(Model.project_id == project_row(session, project_key).id)
    rows = session.exec(query.order_by(Project.key, Model.name)).all()
    versions: dict[int, list[ModelVersion]] = {}
    if rows:
        found = session.exec(select(ModelVersion).where(ModelVersion.model_id.in_([m.id for m, _ in rows]))
                             .order_by(ModelVersion.number)).all()
        for v in found:
            versions.setdefault(v.model_id, []).append(v)
    summaries = []
    for model, project in rows:
        mine = versions.get(model.id, [])
        latest = mine[-1] if mine else None
        active = [v.number for v in mine if v.status == "active"]
        summaries.append(ModelSummary(project=project.key, model=model.name, task=model.task, versions=len(mine),
                                      latest_version=latest.number if latest else None,
                                      latest_status=latest.status if latest else None,
                                      active_version=active[-1] if active else None,
                                      statuses=dict(Counter(v.status for v in mine)),
                                      created_at=model.created_at))
    return summaries
