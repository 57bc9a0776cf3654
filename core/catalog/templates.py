"""Project templates: a new project wired in one transaction — blueprint, model, checks, daily scenario.

A template names the model it builds (trained with a recipe, or external with a score column), the
business metrics, checks and scenario to set up, and so the dataset columns it relies on. Training runs
before the transaction (it is long work); everything else is written in one unit of work or not at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlmodel import Session, select

from core import audit
from core.access import Actor, require
from core.automation import scenarios
from core.catalog import components, datasets
from core.db import session_scope
from core.entities import TASKS, Check, Model, ModelVersion, Project, ProjectTemplate, Scenario
from core.errors import Conflict, InvalidInput, NotFound, WatchtowerError
from core.models import registry, retraining, training
from core.models.scoring import SCORE_COLUMN
from core.monitoring import checks
from core.projects import process_map, projects

DAILY_STEPS = [
    {"kind": "ingest", "mode": "auto"},
    {"kind": "evaluate", "mode": "auto", "params": {"every": "1D"}},
    {"kind": "checks", "mode": "auto"},
    {"kind": "retrain", "mode": "auto", "when": "checks_failed"},
    {"kind": "review", "mode": "auto", "when": "checks_failed"},
]
ID_COLUMNS = ["prediction_id", "id", "ts", "timestamp", "label_at"]
STANDARD: dict[str, dict] = {
    "Binary classifier with ground-truth monitoring": {
        "description": "A binary classifier trained on a registered dataset, evaluated daily as ground truth "
                       "arrives, with the standard AI quality checks; a failing check retrains it and asks for "
                       "the review its blueprint requires.",
        "task": "binary",
        "spec": {"model": {"mode": "trained", "algorithm": "logistic_regression", "params": {},
                           "decision_threshold": 0.5},
                 "features": [], "exclude_columns": ID_COLUMNS,
                 "business_metrics": [{"name": "net_value", "kind": "cost_matrix", "tp": 100.0, "fp": -10.0,
                                       "fn": -100.0, "tn": 0.0, "label_text": "Net value of decisions",
                                       "better": "higher"}],
                 "checks": {"standard": True, "audience_roles": ["ml_engineer", "data_scientist"], "extra": []},
                 "scenario": {"name": "Daily monitoring", "trigger_kind": "cron", "trigger_value": "0 6 * * *",
                              "steps": DAILY_STEPS},
                 "tags": ["binary", "ground-truth"]},
    },
}


@dataclass(frozen=True)
class TemplateRead:
    name: str
    description: str
    task: str
    spec: dict
    required_columns: list[tuple[str, str]]  # (column, what needs it)
    standard: bool
    source_project: str
    created_by: str


@dataclass(frozen=True)
class CreatedProject:
    project: projects.ProjectRead
    model: str
    version: int
    checks: list[str]
    scenario: str
    scenario_id: int
    template: str
    process_map: process_map.ProcessMap  # data → training → versions → environments → monitoring → retraining


def required_columns(spec: dict) -> list[tuple[str, str]]:
    """The dataset columns a template names, each with what needs it."""
    out: list[tuple[str, str]] = [(f, "a feature of the model") for f in spec.get("features") or []]
    if (spec.get("model") or {}).get("mode") == "external":
        out.append((spec["model"].get("score_column", "score"), "the external model's score column"))
    out += [(b["column"], f"business metric {b['name']}") for b in spec.get("business_metrics") or [] if b.get("column")]
    out += [(c["field"], f"check {c['name']}") for c in (spec.get("checks") or {}).get("extra") or [] if c.get("field")]
    return list(dict.fromkeys(out))


def _read(name: str, description: str, task: str, spec: dict, *, standard: bool, source: str = "",
          created_by: str = "watchtower") -> TemplateRead:
    return TemplateRead(name=name, description=description, task=task, spec=spec, required_columns=required_columns(spec),
                        standard=standard, source_project=source, created_by=created_by)


def list_templates(*, session: Session) -> list[TemplateRead]:
    """The standard templates, then those saved from projects."""
    out = [_read(n, t["description"], t["task"], t["spec"], standard=True) for n, t in STANDARD.items()]
    keys = dict(session.exec(select(Project.id, Project.key)).all())
    for t in session.exec(select(ProjectTemplate).order_by(ProjectTemplate.name)).all():
        out.append(_read(t.name, t.description, t.task, dict(t.spec), standard=False,
                         source=keys.get(t.source_project_id, ""), created_by=t.created_by))
    return out


def get_template(*, session: Session, name: str) -> TemplateRead:
    for t in list_templates(session=session):
        if t.name.lower() == name.strip().lower():
            return t
    raise NotFound(f"no project template named {name!r}")


def _identifier(entry: dict, rows: int) -> bool:
    """A text column with a distinct value in most rows names things (an id); it is no feature."""
    return entry["type"] == "categorical" and (entry.get("summary") or {}).get("distinct", 0) > 0.5 * rows


def _features(spec: dict, version: datasets.DatasetVersionRead, target: str) -> list[dict]:
    """The template's features, else every numeric or categorical dataset column but ids, times and the target."""
    types = {c["name"]: c["type"] for c in version.columns}
    if spec.get("features"):
        return [{"name": f, "type": "numeric" if types[f] == "numeric" else "categorical"} for f in spec["features"]]
    skip = {target, *(spec.get("exclude_columns") or []), (spec.get("model") or {}).get("score_column")}
    skip |= {p["name"] for p in version.profile if _identifier(p, version.rows)}
    return [{"name": c, "type": "numeric" if t == "numeric" else "categorical"} for c, t in types.items()
            if c not in skip and t in ("numeric", "categorical", "boolean")]


def _ingest_columns(version: datasets.DatasetVersionRead) -> dict:
    """Where dropped files like this dataset keep their ids and times, for the scenario's ingest step."""
    columns = version.column_names
    found = next((c for c in ("prediction_id", "transaction_id", "id") if c in columns), None)
    found = found or next((p["name"] for p in version.profile if _identifier(p, version.rows)), None)
    ts = next((c for c in ("ts", "timestamp") if c in columns), None)
    return {k: v for k, v in (("id_col", found), ("ts_col", ts)) if v}


def _scenario_steps(plan: dict, version: datasets.DatasetVersionRead) -> list[dict]:
    columns = _ingest_columns(version)
    return [{**st, "params": {**columns, **(st.get("params") or {})}} if st["kind"] == "ingest" else dict(st)
            for st in plan["steps"]]


def check_fit(template: TemplateRead, version: datasets.DatasetVersionRead, target: str) -> list[dict]:
    """Refuse a dataset that lacks a column the template names; return the model's features."""
    columns = version.column_names
    if target not in columns:
        raise InvalidInput(f"target column {target!r} is not in dataset {version.dataset} v{version.number} "
                           f"(columns: {', '.join(columns)})")
    for column, why in template.required_columns:
        if column not in columns:
            raise InvalidInput(f"template {template.name!r} names column {column!r} ({why}), which dataset "
                               f"{version.dataset} v{version.number} does not have")
    features = _features(template.spec, version, target)
    if not features:
        raise InvalidInput(f"dataset {version.dataset} has no feature columns besides the target {target!r}")
    return features


def create_project_from_template(*, actor: Actor, template: str, key: str, name: str, dataset: str, target: str,
                                 risk_level: str = "medium", sponsor: str = "", initiative: str | None = None,
                                 description: str = "", dataset_version: int | None = None,
                                 model_name: str | None = None,
                                 progress: training.Progress = training.no_progress) -> CreatedProject:
    """Create a project from a template: train its model, then write everything in one transaction."""
    for permission in ("template.use", "project.create", "model.register", "monitoring.manage", "automation.manage"):
        require(actor, permission)
    key = key.strip().upper()
    if not re.fullmatch(r"[A-Z][A-Z0-9_-]{1,31}", key):
        raise InvalidInput(f"project key {key!r} must be 2-32 letters, digits, '-' or '_', starting with a letter")
    model_name = (model_name or f"{key.lower()}-model").strip()
    with session_scope() as s:  # read and validate everything before the long work
        chosen = get_template(session=s, name=template)
        version = datasets.require_usable(session=s, name=dataset, version=dataset_version)
        features = check_fit(chosen, version, target)
        frame = datasets.load_frame(session=s, name=dataset, version=version.number)
        if s.exec(select(Project.id).where(Project.key == key)).first():
            raise Conflict(f"project {key} already exists")
        if s.exec(select(Model.id).where(Model.name == model_name)).first():
            raise Conflict(f"a model named {model_name!r} already exists")
    spec, task = chosen.spec, chosen.task
    model_spec = dict(spec.get("model") or {})
    threshold = float(model_spec.get("decision_threshold", 0.5))
    trained = None
    if model_spec.get("mode", "trained") == "trained":
        require(actor, "experiments.run")
        info = registry.ModelInfo(id=0, project_id=0, name=model_name, task=task, target=target, features=features,
                                  decision_threshold=threshold, business_metrics=list(spec.get("business_metrics") or []))
        recipe = training.Recipe(algorithm=model_spec.get("algorithm", "hist_gradient_boosting"),
                                 params=dict(model_spec.get("params") or {}))
        trained = training.fit_recipe(model=info, recipe=recipe, data=frame, progress=progress)

    with session_scope() as s:  # one transaction: all of it, or nothing
        project = projects.create_project(session=s, actor=actor, key=key, name=name, risk_level=risk_level,
                                          sponsor=sponsor, initiative=initiative, description=description,
                                          tags=list(spec.get("tags") or []))
        registry.create_model(session=s, actor=actor, project_key=key, name=model_name, task=task, target=target,
                              features=features, decision_threshold=threshold,
                              business_metrics=list(spec.get("business_metrics") or []),
                              description=f"From template {chosen.name!r} on dataset {dataset} v{version.number}.")
        if trained is not None:
            run = training.record_run(session=s, actor=actor, trained=trained)
            v = training.promote_run(session=s, actor=actor, run_id=run.id,
                                     notes=f"Trained on dataset {dataset} v{version.number}")
        else:
            reference = frame[[f["name"] for f in features] + [target, model_spec.get("score_column", "score")]] \
                .rename(columns={model_spec.get("score_column", "score"): SCORE_COLUMN})
            v = registry.add_version(session=s, actor=actor, model=model_name, reference=reference, origin="external",
                                     notes=f"External model; reference from dataset {dataset} v{version.number}")
        registry.set_version_status(session=s, actor=actor, model=model_name, version=v.number, status="active")
        made = _wire_checks(s, actor=actor, key=key, model=model_name, checks_spec=spec.get("checks") or {})
        plan = spec.get("scenario") or STANDARD["Binary classifier with ground-truth monitoring"]["spec"]["scenario"]
        scenario = scenarios.create_scenario(session=s, actor=actor, project_key=key, name=plan["name"],
                                             steps=_scenario_steps(plan, version),
                                             trigger_kind=plan.get("trigger_kind", "manual"),
                                             trigger_value=plan.get("trigger_value", ""), model=model_name,
                                             description=f"Set up by template {chosen.name!r}")
        components.record_use(session=s, actor=actor, kind="dataset", name=dataset, project_key=key,
                           how=f"data source of {model_name} (v{version.number})")
        components.register_component(session=s, actor=actor, kind="model", name=model_name, project_key=key,
                                   description=f"{task} model of {name}, from template {chosen.name!r}",
                                   tags=list(spec.get("tags") or []))
        audit.record(s, actor=actor.username, action="project.from_template", entity_type="project", entity_id=key,
                     project_id=project.id, details={"template": chosen.name, "dataset": f"{dataset}:v{version.number}",
                                                     "model": model_name, "checks": made, "scenario": plan["name"]})
        return CreatedProject(project=projects.get_project(session=s, key=key), model=model_name, version=v.number,
                              checks=made, scenario=scenario.name, scenario_id=scenario.id, template=chosen.name,
                              process_map=process_map.build(session=s, project_key=key))


def _wire_checks(session: Session, *, actor: Actor, key: str, model: str, checks_spec: dict) -> list[str]:
    """The standard AI quality checks, then the template's own checks whose names are not taken yet."""
    made: list[str] = []
    roles = list(checks_spec.get("audience_roles") or ["ml_engineer", "data_scientist"])
    if checks_spec.get("standard", True):
        made += [c.name for c in checks.apply_template(session=session, actor=actor, model=model, audience_roles=roles)]
    for definition in checks_spec.get("extra") or []:
        if definition["name"] in made:
            continue
        uses_model = definition.get("model", True)
        c = checks.define_check(session=session, actor=actor, project_key=key,
                                **{k: v for k, v in definition.items() if k != "model"},
                                model=model if uses_model else None)
        made.append(c.name)
    return made


_CHECK_FIELDS = ("name", "kind", "metric", "field", "condition", "threshold", "severity", "audience_roles",
                 "audience_users", "channels", "description", "business_wording")


def save_as_template(*, session: Session, actor: Actor, project_key: str, name: str,
                     description: str = "") -> TemplateRead:
    """Save a project's model setup, business metrics, checks and scenario as a new template."""
    require(actor, "template.manage")
    name = name.strip()
    if not name:
        raise InvalidInput("a template needs a name")
    taken = {t.name.lower() for t in list_templates(session=session)}
    if name.lower() in taken:
        raise Conflict(f"a project template named {name!r} already exists")
    project = projects.project_row(session, project_key)
    model = session.exec(select(Model).where(Model.project_id == project.id).order_by(Model.id)).first()
    if model is None:
        raise InvalidInput(f"project {project.key} has no model to base a template on")
    active = session.exec(select(ModelVersion).where(ModelVersion.model_id == model.id)
                          .order_by((ModelVersion.status == "active").desc(), ModelVersion.number.desc())).first()
    model_spec: dict = {"mode": "external", "score_column": "score", "decision_threshold": model.decision_threshold}
    if active is not None:
        try:  # the recipe Watchtower would retrain it with (read from the artifact for a version trained elsewhere)
            recipe = retraining.recipe_of(registry.version_info(active), actor=actor.username)
            model_spec = {"mode": "trained", "algorithm": recipe.algorithm, "params": dict(recipe.params),
                          "decision_threshold": model.decision_threshold}
        except InvalidInput:
            pass  # an external model: its scores come with the data
    extra = [{**{f: getattr(c, f) for f in _CHECK_FIELDS}, "model": c.model_id is not None}
             for c in session.exec(select(Check).where(Check.project_id == project.id).order_by(Check.id)).all()]
    scenario = session.exec(select(Scenario).where(Scenario.project_id == project.id).order_by(Scenario.id)).first()
    spec = {"model": model_spec, "features": [f["name"] for f in model.features], "exclude_columns": ID_COLUMNS,
            "business_metrics": list(model.business_metrics),
            "checks": {"standard": True, "audience_roles": ["ml_engineer", "data_scientist"], "extra": extra},
            "scenario": {"name": scenario.name, "trigger_kind": scenario.trigger_kind,
                         "trigger_value": scenario.trigger_value, "steps": list(scenario.steps)} if scenario else
            STANDARD["Binary classifier with ground-truth monitoring"]["spec"]["scenario"],
            "tags": list(project.tags)}
    if model.task not in TASKS:
        raise InvalidInput(f"model {model.name} has task {model.task!r}, which templates do not support")
    row = ProjectTemplate(name=name, description=description or f"Saved from project {project.key} ({project.name})",
                          task=model.task, spec=spec, source_project_id=project.id, created_by=actor.username)
    session.add(row)
    session.flush()
    audit.record(session, actor=actor.username, action="template.save", entity_type="project_template",
                 entity_id=name, project_id=project.id, details={"model": model.name, "checks": len(extra)})
    return _read(row.name, row.description, row.task, spec, standard=False, source=project.key,
                 created_by=actor.username)


@dataclass(frozen=True)
class FormView:
    templates: list[TemplateRead]
    datasets: list[datasets.DatasetVersionRead]  # the latest version of each
    project_keys: list[str]
    chosen: TemplateRead | None
    features: list[dict]  # what a project from the chosen template would monitor on the chosen dataset
    problem: str  # why that combination would be refused, or ""
    target: str  # the target previewed: the one asked for, else the dataset's last column


def form_view(*, session: Session, template: str | None = None, dataset: str | None = None,
              target: str | None = None) -> FormView:
    """What the New project page offers, and a preview of the chosen template on the chosen dataset."""
    options = list_templates(session=session)
    chosen = next((t for t in options if t.name == template), options[0] if options else None)
    latest = datasets.list_datasets(session=session)
    picked = next((d for d in latest if d.dataset == dataset), latest[0] if latest else None)
    features, problem, target = [], "", target or ""
    if picked is not None and target not in picked.column_names:
        target = picked.column_names[-1]
    if chosen is not None and picked is not None:
        try:
            features = check_fit(chosen, datasets.require_usable(session=session, name=picked.dataset), target)
        except WatchtowerError as exc:
            problem = str(exc)
    return FormView(templates=options, datasets=latest,
                    project_keys=list(session.exec(select(Project.key).order_by(Project.key)).all()),
                    chosen=chosen, features=features, problem=problem, target=target)
