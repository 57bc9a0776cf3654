"""Trust in a catalog component: what the record says about reusing it.

A model version that passed review, a model or recipe running in production, a definition used by a
production project are trusted; a rejected version or a dataset whose schema changed unaccepted is
flagged; everything else is unverified until it proves itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlmodel import Session, select

from core.entities import (
    Component,
    DatasetVersion,
    Deployment,
    Environment,
    Model,
    ModelVersion,
    Project,
    Review,
)


@dataclass(frozen=True)
class Trust:
    status: str  # trusted | flagged | unverified
    reason: str


def _canonical(recipe: dict) -> str:
    return json.dumps(recipe, sort_keys=True, default=str)


def _production(session: Session) -> list[tuple[str, int, int, dict]]:
    """(model, version number, project id, recipe) for each version active in a higher environment."""
    return [(m.name, v.number, m.project_id, v.recipe) for _d, v, m in session.exec(
        select(Deployment, ModelVersion, Model).join(Environment, Deployment.environment_id == Environment.id)
        .join(ModelVersion, Deployment.model_version_id == ModelVersion.id).join(Model, Deployment.model_id == Model.id)
        .where(Deployment.active, Environment.tier == "higher")).all()]


def assess(*, session: Session, rows: list[Component], projects: dict[int, list[str]],
           datasets: dict[str, DatasetVersion]) -> dict[int, Trust]:
    """Each component's trust: projects maps a component id to the keys of the projects using it."""
    prod = _production(session)
    prod_projects = {pid for _m, _n, pid, _r in prod}
    prod_keys = set(session.exec(select(Project.key).where(Project.id.in_(prod_projects))).all()) if prod else set()
    refs = {r.ref for r in rows if r.kind == "model_version"}
    reviews: dict[str, str] = {}  # the latest review's state per "model:vN"
    model_names = {ref.rsplit(":v", 1)[0] for ref in refs}
    for rv, number, model in session.exec(
            select(Review, ModelVersion.number, Model.name).join(ModelVersion, Review.model_version_id == ModelVersion.id)
            .join(Model, ModelVersion.model_id == Model.id).where(Model.name.in_(model_names))
            .order_by(Review.requested_at, Review.id)).all() if refs else []:
        reviews[f"{model}:v{number}"] = rv.state
    out: dict[int, Trust] = {}
    for c in rows:
        in_prod = sorted(k for k in projects.get(c.id, ()) if k in prod_keys)
        if c.kind == "model_version":
            state = reviews.get(c.ref)
            live = any(f"{m}:v{n}" == c.ref for m, n, _p, _r in prod)
            out[c.id] = (Trust("trusted", "passed review (approved)") if state == "APPROVED"
                         else Trust("flagged", "rejected in review") if state == "REJECTED"
                         else Trust("trusted", "runs in production") if live
                         else Trust("unverified", f"review {state.lower().replace('_', ' ')}" if state else "not reviewed"))
        elif c.kind == "model":
            live = sorted(f"v{n}" for m, n, _p, _r in prod if m == c.ref)
            out[c.id] = Trust("trusted", f"{', '.join(live)} in production") if live \
                else Trust("unverified", "no version in production")
        elif c.kind == "recipe":
            users_of = sorted({f"{m} v{n}" for m, n, _p, r in prod
                               if r and (r.get("name") == c.name or _canonical(r) == _canonical(c.spec))})
            out[c.id] = Trust("trusted", f"used by production model {', '.join(users_of)}") if users_of \
                else Trust("unverified", "not used by a production model")
        elif c.kind == "dataset" and c.ref in datasets and datasets[c.ref].flagged:
            v = datasets[c.ref]
            out[c.id] = Trust("flagged", f"v{v.number} changed schema ({describe_changes(v.schema_changes)}); "
                                         "not accepted yet")
        elif in_prod:
            out[c.id] = Trust("trusted", f"in use by production project {', '.join(in_prod)}")
        else:
            out[c.id] = Trust("unverified", "not used in production yet")
    return out


def describe_changes(changes: dict) -> str:
    """'added x; removed y; z numeric → categorical' for a schema diff."""
    parts = []
    if changes.get("added"):
        parts.append("added " + ", ".join(changes["added"]))
    if changes.get("removed"):
        parts.append("removed " + ", ".join(changes["removed"]))
    parts += [f"{c['column']} {c['from']} → {c['to']}" for c in changes.get("changed", [])]
    return "; ".join(parts) or "no change"
