"""The catalog: reusable components with an owner, tags, the projects that use them and a trust status."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from sqlalchemy import and_, case, func
from sqlmodel import Session, select

from core import audit
from core.access import Actor, require
from core.alerting import alerts
from core.catalog.trust import Trust, assess, describe_changes  # noqa: F401  (Trust and describe_changes are re-exported)
from core.clock import now
from core.entities import (
    COMPONENT_KINDS,
    Component,
    ComponentUse,
    Dataset,
    DatasetVersion,
    Model,
    ModelVersion,
    Project,
    User,
)
from core.errors import Conflict, Forbidden, InvalidInput, NotFound

DEFINITION_KINDS = ("recipe", "check_template", "scenario_template", "business_metric")
KIND_LABELS = {"dataset": "Dataset", "recipe": "Training recipe", "model": "Model", "model_version": "Model version",
               "check_template": "Check template", "scenario_template": "Scenario template",
               "business_metric": "Business metric"}


@dataclass(frozen=True)
class UseRead:
    project_key: str
    project_name: str
    project_owner: str
    how: str


@dataclass(frozen=True)
class ComponentRead:
    id: int
    kind: str
    name: str
    description: str
    owner: str
    owner_name: str
    owner_email: str
    tags: tuple[str, ...]
    project: str  # key of the project it was built in, or ""
    ref: str
    spec: dict
    revision: int
    created_by: str
    updated_at: datetime
    used_by: tuple[UseRead, ...]
    trust: Trust
    details: dict  # datasets: version, rows, columns, freshness, flagged


@dataclass(frozen=True)
class SearchResult:
    total: int
    hits: list[ComponentRead]


@dataclass(frozen=True)
class ChangeResult:
    component: ComponentRead
    dependents: tuple[UseRead, ...]  # projects other than the component's own that use it
    warning: str  # empty when nobody else depends on it


def words(text: str) -> list[str]:
    """Lower-cased words: what search matches on (punctuation such as '-' or '_' separates words)."""
    return re.findall(r"[^\W_]+", text.lower())


def normalize_tags(tags: list[str] | tuple[str, ...]) -> list[str]:
    out: list[str] = []
    for raw in tags:
        tag = "-".join(words(raw))
        if not tag:
            raise InvalidInput(f"tag {raw!r} holds no letters or digits")
        if tag not in out:
            out.append(tag)
    return out


def _index(c: Component) -> None:
    """Refresh the denormalized text that search scans and the exact-tag column."""
    c.search_text = " ".join(words(" ".join([c.name, c.description, " ".join(c.tags), c.owner, c.ref])))
    c.tag_text = "|" + "|".join(c.tags) + "|"


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _row(session: Session, kind: str, name: str) -> Component:
    found = session.exec(select(Component).where(Component.kind == kind,
                                                 func.lower(Component.name) == name.strip().lower())).first()
    if found is None:
        raise NotFound(f"no {KIND_LABELS.get(kind, kind).lower()} named {name!r} in the catalog")
    return found


def _check_kind(kind: str) -> None:
    if kind not in COMPONENT_KINDS:
        raise InvalidInput(f"kind {kind!r} is not one of {', '.join(COMPONENT_KINDS)}")


def _check_owner(session: Session, owner: str) -> None:
    if session.exec(select(User.id).where(User.username == owner)).first() is None:
        raise InvalidInput(f"owner {owner!r} is not a Watchtower user")


def _project_id(session: Session, key: str | None) -> int | None:
    if not key:
        return None
    pid = session.exec(select(Project.id).where(Project.key == key.strip().upper())).first()
    if pid is None:
        raise NotFound(f"no project {key!r}")
    return pid


def _resolve_ref(session: Session, kind: str, name: str, ref: str, spec: dict) -> tuple[str, int | None]:
    """Check what the component points at; return (ref, the project it belongs to if any)."""
    if kind == "model":
        model = session.exec(select(Model).where(Model.name == (ref or name))).first()
        if model is None:
            raise NotFound(f"no registered model named {ref or name!r}")
        return model.name, model.project_id
    if kind == "model_version":
        m = re.fullmatch(r"(.+):v(\d+)", ref or "")
        if not m:
            raise InvalidInput(f"a model version is referenced as MODEL:vN, got {ref!r}")
        row = session.exec(select(ModelVersion, Model).join(Model, ModelVersion.model_id == Model.id)
                           .where(Model.name == m[1], ModelVersion.number == int(m[2]))).first()
        if row is None:
            raise NotFound(f"model {m[1]} has no version {m[2]}")
        return ref, row[1].project_id
    if kind == "dataset":
        if session.exec(select(Dataset.id).where(Dataset.name == (ref or name))).first() is None:
            raise NotFound(f"no registered dataset named {ref or name!r} (register it with `watchtower dataset register`)")
        return ref or name, None
    if not spec:
        raise InvalidInput(f"a {KIND_LABELS[kind].lower()} needs its definition (a JSON object)")
    return ref, None


def register_component(*, session: Session, actor: Actor, kind: str, name: str, description: str = "",
                       owner: str | None = None, tags: list[str] | tuple[str, ...] = (),
                       project_key: str | None = None, ref: str = "", spec: dict | None = None) -> ComponentRead:
    """Add a component to the catalog; a name already taken within its kind is refused."""
    require(actor, "catalog.register")
    _check_kind(kind)
    name = name.strip()
    if not name:
        raise InvalidInput("a component needs a name")
    if not isinstance(spec or {}, dict):
        raise InvalidInput("a component's definition must be a JSON object")
    existing = session.exec(select(Component).where(Component.kind == kind,
                                                    func.lower(Component.name) == name.lower())).first()
    if existing is not None:
        raise Conflict(f"a {KIND_LABELS[kind].lower()} named {existing.name!r} is already in the catalog "
                       f"(owner {existing.owner})")
    owner = (owner or actor.username).strip()
    _check_owner(session, owner)
    ref, ref_project = _resolve_ref(session, kind, name, ref.strip(), dict(spec or {}))
    project_id = _project_id(session, project_key) or ref_project
    component = Component(kind=kind, name=name, description=description.strip(), owner=owner,
                          tags=normalize_tags(list(tags)), project_id=project_id, ref=ref, spec=dict(spec or {}),
                          created_by=actor.username)
    _index(component)
    session.add(component)
    session.flush()
    if project_id is not None:
        session.add(ComponentUse(component_id=component.id, project_id=project_id, how="built here",
                                 created_by=actor.username))
    audit.record(session, actor=actor.username, action="component.register", entity_type=kind, entity_id=name,
                 project_id=project_id, details={"owner": owner, "tags": component.tags, "ref": ref})
    session.flush()
    return _reads(session, [component])[0]


def tag_component(*, session: Session, actor: Actor, kind: str, name: str, add: list[str] | tuple[str, ...] = (),
                  remove: list[str] | tuple[str, ...] = ()) -> ComponentRead:
    """Add and remove tags (tags only help people find it, so anyone who may register may tag)."""
    require(actor, "catalog.register")
    c = _row(session, kind, name)
    dropped = set(normalize_tags(list(remove)))
    c.tags = [t for t in c.tags if t not in dropped] + [t for t in normalize_tags(list(add)) if t not in c.tags]
    _index(c)
    c.updated_at = now()
    session.add(c)
    audit.record(session, actor=actor.username, action="component.tag", entity_type=kind, entity_id=c.name,
                 project_id=c.project_id, details={"tags": c.tags})
    session.flush()
    return _reads(session, [c])[0]


def record_use(*, session: Session, actor: Actor, kind: str, name: str, project_key: str,
               how: str = "") -> ComponentRead:
    """Note that a project uses a component, so changing it warns that project's owner."""
    require(actor, "catalog.register")
    c = _row(session, kind, name)
    pid = _project_id(session, project_key)
    use = session.exec(select(ComponentUse).where(ComponentUse.component_id == c.id,
                                                  ComponentUse.project_id == pid)).first()
    if use is None:
        use = ComponentUse(component_id=c.id, project_id=pid, how=how, created_by=actor.username)
    elif how:
        use.how = how
    session.add(use)
    audit.record(session, actor=actor.username, action="component.use", entity_type=kind, entity_id=c.name,
                 project_id=pid, details={"how": how})
    session.flush()
    return _reads(session, [c])[0]


def dependents_of(session: Session, c: Component) -> tuple[UseRead, ...]:
    """The projects other than the component's own that use it."""
    return tuple(u for u in _uses(session, [c.id]).get(c.id, ()) if u.how != "built here")


def note_change(session: Session, *, actor: Actor, c: Component, what: str) -> tuple[tuple[UseRead, ...], str]:
    """Record a change to a component; return its dependents and a warning naming them (empty if none)."""
    c.revision += 1
    c.updated_at = now()
    session.add(c)
    deps = dependents_of(session, c)
    warning = ""
    if deps:
        who = "; ".join(f"{u.project_key} (owner {u.project_owner}, {u.how or 'uses it'})" for u in deps)
        warning = f"{KIND_LABELS[c.kind].lower()} {c.name} is used by other projects: {who}"
    audit.record(session, actor=actor.username, action="component.change", entity_type=c.kind, entity_id=c.name,
                 project_id=c.project_id, details={"what": what, "revision": c.revision, "warning": warning,
                                                   "dependents": [u.project_key for u in deps]})
    for use in deps:  # the owner of each dependent project hears of it in their inbox
        if use.project_owner and use.project_owner != actor.username:
            alerts.notify(session=session, project_key=use.project_key, roles=[], usernames=[use.project_owner],
                          title=f"{KIND_LABELS[c.kind]} {c.name} changed ({what})",
                          message=f"{actor.username} changed {KIND_LABELS[c.kind].lower()} {c.name} ({what}), which "
                                  f"{use.project_key} uses ({use.how or 'uses it'}). Check that it still fits.",
                          link=f"/catalog?kind={c.kind}&name={quote(c.name)}", kind="catalog", severity="warning",
                          actor=actor.username)
    session.flush()
    return deps, warning


def may_change(actor: Actor, owner: str) -> bool:
    """Whether ACTOR may change a component OWNER owns: its owner or an administrator."""
    return actor.username == owner or "admin" in actor.roles


def update_component(*, session: Session, actor: Actor, kind: str, name: str, description: str | None = None,
                     spec: dict | None = None, owner: str | None = None) -> ChangeResult:
    """Change a component (its owner or an administrator); warns, naming every project that depends on it."""
    require(actor, "catalog.register")
    c = _row(session, kind, name)
    if not may_change(actor, c.owner):
        raise Forbidden(f"only {c.owner} (the owner) or an administrator may change {c.name}")
    changed = []
    if description is not None and description.strip() != c.description:
        c.description = description.strip()
        changed.append("description")
    if spec is not None and spec != c.spec:
        if not isinstance(spec, dict) or (kind in DEFINITION_KINDS and not spec):
            raise InvalidInput(f"a {KIND_LABELS[kind].lower()} needs its definition (a JSON object)")
        c.spec = dict(spec)
        changed.append("definition")
    if owner is not None and owner.strip() != c.owner:
        _check_owner(session, owner.strip())
        c.owner = owner.strip()
        changed.append("owner")
    if not changed:
        raise InvalidInput(f"nothing to change in {c.name}: the values given are the current ones")
    _index(c)
    deps, warning = note_change(session, actor=actor, c=c, what=", ".join(changed))
    return ChangeResult(component=_reads(session, [c])[0], dependents=deps, warning=warning)


def get_component(*, session: Session, kind: str, name: str) -> ComponentRead:
    return _reads(session, [_row(session, kind, name)])[0]


def search(*, session: Session, query: str = "", kind: str | None = None, tag: str | None = None,
           owner: str | None = None, project: str | None = None, limit: int = 50, offset: int = 0) -> SearchResult:
    """Components whose name, description, tags or owner hold every word of the query, name matches first."""
    conditions = [Component.search_text.like(f"%{_escape_like(w)}%", escape="\\") for w in words(query)]
    name_match = [func.lower(Component.name).like(f"%{_escape_like(w)}%", escape="\\") for w in words(query)]
    if kind:
        _check_kind(kind)
        conditions.append(Component.kind == kind)
    if tag:
        conditions.append(Component.tag_text.like(f"%|{_escape_like('-'.join(words(tag)))}|%", escape="\\"))
    if owner:
        conditions.append(Component.owner == owner)
    if project:
        pid = _project_id(session, project)
        conditions.append(Component.id.in_(select(ComponentUse.component_id).where(ComponentUse.project_id == pid)))
    where = and_(True, *conditions)
    total = session.exec(select(func.count()).select_from(Component).where(where)).one()
    order = [case((and_(*name_match), 0), else_=1)] if name_match else []
    rows = session.exec(select(Component).where(where)
                        .order_by(*order, Component.updated_at.desc(), Component.id.desc())
                        .offset(offset).limit(limit)).all()
    return SearchResult(total=total, hits=_reads(session, list(rows)))


@dataclass(frozen=True)
class Facets:
    kinds: dict[str, int]
    tags: list[str]
    owners: list[str]
    projects: list[str]


def facets(*, session: Session) -> Facets:
    """The values the filters offer: kinds with counts, tags, owners, projects using components."""
    kinds = dict(session.exec(select(Component.kind, func.count()).group_by(Component.kind)).all())
    tags = sorted({t for tags in session.exec(select(Component.tags)).all() for t in tags})
    owners = list(session.exec(select(Component.owner).distinct().order_by(Component.owner)).all())
    projects = list(session.exec(select(Project.key).where(Project.id.in_(select(ComponentUse.project_id)))
                                 .order_by(Project.key)).all())
    return Facets(kinds={k: kinds.get(k, 0) for k in COMPONENT_KINDS}, tags=tags, owners=owners, projects=projects)


@dataclass(frozen=True)
class CatalogView:
    facets: Facets
    result: SearchResult
    selected: ComponentRead | None  # the component asked for by kind and name, if any
    project_keys: list[str]  # every project, for the forms


def browse(*, session: Session, query: str = "", kind: str | None = None, tag: str | None = None,
           owner: str | None = None, project: str | None = None, selected: tuple[str, str] | None = None,
           limit: int = 50) -> CatalogView:
    """What the Catalog page shows: filter values, the matching components, and one component in full."""
    chosen = None
    if selected and selected[0] in COMPONENT_KINDS:
        found = session.exec(select(Component).where(Component.kind == selected[0],
                                                     func.lower(Component.name) == selected[1].lower())).first()
        chosen = _reads(session, [found])[0] if found else None
    return CatalogView(facets=facets(session=session),
                       result=search(session=session, query=query, kind=kind, tag=tag, owner=owner, project=project,
                                     limit=limit),
                       selected=chosen, project_keys=list(session.exec(select(Project.key).order_by(Project.key)).all()))


# --- read models: uses, trust and details, fetched in a few queries for a page of components ------

def _uses(session: Session, ids: list[int]) -> dict[int, tuple[UseRead, ...]]:
    rows = session.exec(select(ComponentUse, Project).join(Project, ComponentUse.project_id == Project.id)
                        .where(ComponentUse.component_id.in_(ids)).order_by(Project.key)).all() if ids else []
    out: dict[int, list[UseRead]] = {}
    for use, p in rows:
        out.setdefault(use.component_id, []).append(UseRead(project_key=p.key, project_name=p.name,
                                                            project_owner=p.owner, how=use.how))
    return {k: tuple(v) for k, v in out.items()}


def _latest_datasets(session: Session, names: list[str]) -> dict[str, DatasetVersion]:
    if not names:
        return {}
    latest = (select(DatasetVersion.dataset_id, func.max(DatasetVersion.number).label("n"))
              .group_by(DatasetVersion.dataset_id).subquery())
    rows = session.exec(select(Dataset.name, DatasetVersion).join(DatasetVersion, DatasetVersion.dataset_id == Dataset.id)
                        .join(latest, and_(latest.c.dataset_id == DatasetVersion.dataset_id,
                                           latest.c.n == DatasetVersion.number))
                        .where(Dataset.name.in_(names))).all()
    return {name: v for name, v in rows}


def _reads(session: Session, rows: list[Component]) -> list[ComponentRead]:
    ids = [c.id for c in rows]
    uses = _uses(session, ids)
    people = {u.username: u for u in session.exec(select(User).where(User.username.in_({c.owner for c in rows}))).all()}
    homes = dict(session.exec(select(Project.id, Project.key).where(
        Project.id.in_({c.project_id for c in rows if c.project_id}))).all())
    datasets = _latest_datasets(session, [c.ref for c in rows if c.kind == "dataset"])
    trust = assess(session=session, rows=rows, datasets=datasets,
                   projects={cid: [u.project_key for u in found] for cid, found in uses.items()})
    out = []
    for c in rows:
        details: dict = {}
        if c.kind == "dataset" and c.ref in datasets:
            v = datasets[c.ref]
            details = {"version": v.number, "rows": v.rows, "columns": [col["name"] for col in v.columns],
                       "schema": {col["name"]: col["type"] for col in v.columns}, "freshness": v.created_at,
                       "flagged": v.flagged, "schema_changes": dict(v.schema_changes), "profile": list(v.profile)}
        person = people.get(c.owner)
        out.append(ComponentRead(id=c.id, kind=c.kind, name=c.name, description=c.description, owner=c.owner,
                                 owner_name=person.name if person else c.owner,
                                 owner_email=person.email if person else "", tags=tuple(c.tags),
                                 project=homes.get(c.project_id, ""), ref=c.ref, spec=dict(c.spec),
                                 revision=c.revision, created_by=c.created_by, updated_at=c.updated_at,
                                 used_by=uses.get(c.id, ()), trust=trust[c.id], details=details))
    return out
