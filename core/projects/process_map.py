"""The process map of a project: data → training → versions → environments → monitoring → retraining.

Built from what is recorded (predictions, training runs, versions, deployments, environments and their
policies, checks, scenarios), as graphviz DOT. Automated links are solid green; links that wait for a
person (an approval step, a sign-off, a manual action) are dashed orange and name who acts.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import Session, select

from core.entities import (
    Blueprint,
    Check,
    Deployment,
    Environment,
    Model,
    ModelVersion,
    Scenario,
    TrainingRun,
)
from core.lake import predictions as prediction_store
from core.projects.projects import project_health, project_row

AUTO = 'color="#2e7d32", fontcolor="#2e7d32", style=solid, penwidth=2'
HUMAN = 'color="#e65100", fontcolor="#e65100", style=dashed, penwidth=2'


@dataclass(frozen=True)
class Link:
    source: str
    target: str
    label: str
    automated: bool


@dataclass(frozen=True)
class ProcessMap:
    dot: str
    links: tuple[Link, ...]

    @property
    def approvals(self) -> list[Link]:
        return [link for link in self.links if not link.automated]


def _q(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _role(role: str | None) -> str:
    return (role or "someone").replace("_", " ")


def _step_link(scenarios: list[Scenario], kind: str) -> tuple[bool, str] | None:
    """(automated, who approves) for the first scenario step of this kind, if any."""
    for sc in scenarios:
        for spec in sc.steps:
            if spec.get("kind") == kind:
                auto = spec.get("mode", "auto") == "auto"
                return auto, "" if auto else _role(spec.get("approver_role"))
    return None


def build(*, session: Session, project_key: str) -> ProcessMap:
    """The project's flow as recorded in the database."""
    project = project_row(session, project_key)
    models = session.exec(select(Model).where(Model.project_id == project.id).order_by(Model.name)).all()
    ids = [m.id for m in models] or [-1]
    logged = [prediction_store.counts(model_id=m.id) for m in models]
    predictions, labels = sum(n for n, _ in logged), sum(k for _, k in logged)
    runs = session.exec(select(func.count()).select_from(TrainingRun).where(TrainingRun.model_id.in_(ids))).one()
    versions = session.exec(select(ModelVersion, Model).join(Model, ModelVersion.model_id == Model.id)
                            .where(Model.project_id == project.id).order_by(Model.name, ModelVersion.number)).all()
    deployed = session.exec(select(Deployment, Environment, ModelVersion)
                            .join(Environment, Deployment.environment_id == Environment.id)
                            .join(ModelVersion, Deployment.model_version_id == ModelVersion.id)
                            .where(Deployment.active, Deployment.model_id.in_(ids))).all()
    environments = session.exec(select(Environment).order_by(Environment.position)).all()
    checks = session.exec(select(func.count()).select_from(Check).where(Check.project_id == project.id,
                                                                         Check.enabled)).one()
    scenarios = session.exec(select(Scenario).where(Scenario.project_id == project.id, Scenario.enabled)
                             .order_by(Scenario.name)).all()
    blueprint = session.get(Blueprint, project.blueprint_id) if project.blueprint_id else None
    gate = next((s for s in (blueprint.stages if blueprint else []) if s.get("signoff_roles")), None)

    nodes = {
        "data": f"Data\n{predictions:,} predictions logged\n{labels:,} labels arrived",
        "training": f"Training\n{runs} tracked run(s)",
        "versions": "Model versions\n" + ("\n".join(f"{m.name} v{v.number}: {v.status}" for v, m in versions)
                                          or "none registered"),
        "monitoring": f"Monitoring\n{checks} check(s), health: {project_health(session, project.id)}",
        "retraining": "Retraining",
    }
    running: dict[int, list[str]] = {}
    for dep, env, ver in deployed:
        running.setdefault(env.id, []).append(f"v{ver.number}")
    for env in environments:
        nodes[f"env{env.id}"] = f"{env.name} ({env.tier})\npolicy: {env.policy}\nruns: {', '.join(running.get(env.id, [])) or '—'}"

    links: list[Link] = [Link("data", "training", "train a recipe (data scientist)", False),
                         Link("training", "versions", "register the best run (data scientist)", False)]
    lower = [e for e in environments if e.tier == "lower"]
    higher = [e for e in environments if e.tier != "lower"]
    deploy = _step_link(scenarios, "deploy")
    for env in lower:
        links.append(Link("versions", f"env{env.id}", "deploy", True) if deploy and deploy[0]
                     else Link("versions", f"env{env.id}", "deploy (ML engineer / IT ops)", False))
    for env in higher:
        source = f"env{lower[-1].id}" if lower else "versions"
        if env.policy == "block":
            roles = ", ".join(_role(r) for r in (gate or {}).get("signoff_roles", [])) or "a reviewer"
            final = f"; final approval: {_role(gate.get('final_approver'))}" if gate and gate.get("final_approver") else ""
            auto = " → auto-deploy" if gate and gate.get("auto_deploy") else ""
            links.append(Link(source, f"env{env.id}", f"sign-off: {roles}{final}{auto}", False))
        else:
            links.append(Link(source, f"env{env.id}", f"promote (policy {env.policy})", env.policy == "allow"))
        links.append(Link(f"env{env.id}", "monitoring", "predictions + ground truth", True))
    if not higher:
        links.append(Link("versions", "monitoring", "predictions + ground truth", True))
    evaluate = _step_link(scenarios, "evaluate") or _step_link(scenarios, "checks")
    links.append(Link("data", "monitoring", "scheduled evaluation and checks" if evaluate else "evaluate on demand",
                      bool(evaluate and evaluate[0])))
    retrain = _step_link(scenarios, "retrain")
    if retrain is None:
        links.append(Link("monitoring", "retraining", "a person decides to retrain", False))
    else:
        links.append(Link("monitoring", "retraining", "on a failed check" + (f": approval by {retrain[1]}"
                                                                              if not retrain[0] else ""), retrain[0]))
    if retrain is not None:
        links.append(Link("data", "retraining", "latest labelled window", True))
    links.append(Link("retraining", "versions", "new candidate version", retrain is not None))

    lines = ["digraph process {", '  rankdir=LR; bgcolor="transparent";',
             '  node [shape=box, style="rounded,filled", fillcolor="#f5f7fa", fontname="Helvetica", fontsize=11];',
             '  edge [fontname="Helvetica", fontsize=10];']
    lines += [f"  {key} [label={_q(label)}];" for key, label in nodes.items()]
    lines += [f"  {link.source} -> {link.target} [label={_q(('⚙ ' if link.automated else '✋ ') + link.label)}, "
              f"{AUTO if link.automated else HUMAN}];" for link in links]
    lines += ['  subgraph cluster_legend { label="Legend"; fontname="Helvetica"; fontsize=10; style=dashed;',
              '    l1 [label="", shape=point, width=0]; l2 [label="", shape=point, width=0];',
              '    l3 [label="", shape=point, width=0]; l4 [label="", shape=point, width=0];',
              f'    l1 -> l2 [label="⚙ automated", {AUTO}]; l3 -> l4 [label="✋ needs a person", {HUMAN}]; }}', "}"]
    return ProcessMap(dot="\n".join(lines), links=tuple(links))
