"""Where each version comes from and where it runs: the registry's lineage and overview read models."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, select

from core import artifacts
from core.access import Actor, require
from core.entities import Check, CheckResult, Deployment, Environment, Model, ModelVersion, TrainingRun
from core.models.registry import VersionInfo, model_row, version_info, version_row

PRIMARY_METRIC = {"binary": "roc_auc", "regression": "rmse"}


@dataclass(frozen=True)
class VersionRow:
    number: int
    status: str
    origin: str
    created_by: str
    created_at: datetime
    training_start: datetime | None
    training_end: datetime | None
    primary_metric: str
    primary_value: float | None
    running_in: tuple[str, ...]
    has_artifact: bool
    triggered_by_check_result_id: int | None


@dataclass(frozen=True)
class Trigger:
    check_result_id: int
    check: str
    metric: str
    value: float | None
    threshold: float
    status: str
    at: datetime
    message: str


@dataclass(frozen=True)
class DeploymentRead:
    environment: str
    deployed_at: datetime
    deployed_by: str
    active: bool
    ended_at: datetime | None


@dataclass(frozen=True)
class Lineage:
    model: str
    version: VersionInfo
    training_run_id: int | None
    training_rows: int | None
    training_duration_s: float | None
    trigger: Trigger | None
    deployments: list[DeploymentRead]
    running_in: tuple[str, ...]
    notes: str


def _running(session: Session, model_id: int) -> dict[int, list[str]]:
    rows = session.exec(select(Deployment.model_version_id, Environment.name)
                        .join(Environment, Environment.id == Deployment.environment_id)
                        .where(Deployment.model_id == model_id, Deployment.active == True)  # noqa: E712
                        .order_by(Environment.position)).all()
    out: dict[int, list[str]] = {}
    for version_id, env in rows:
        out.setdefault(version_id, []).append(env)
    return out


def versions_overview(*, session: Session, actor: Actor, model: str) -> list[VersionRow]:
    """Every version of a model, newest first, with status, origin, its key metric and where it runs."""
    require(actor, "registry.view")
    m = model_row(session, model)
    running = _running(session, m.id)
    primary = PRIMARY_METRIC.get(m.task, "roc_auc")
    versions = session.exec(select(ModelVersion).where(ModelVersion.model_id == m.id)
                            .order_by(ModelVersion.number.desc())).all()
    return [VersionRow(number=v.number, status=v.status, origin=v.origin, created_by=v.created_by,
                       created_at=v.created_at, training_start=v.training_start, training_end=v.training_end,
                       primary_metric=primary, primary_value=v.training_metrics.get(primary),
                       running_in=tuple(running.get(v.id, [])), has_artifact=bool(v.artifact_path),
                       triggered_by_check_result_id=v.triggered_by_check_result_id) for v in versions]


def lineage(*, session: Session, actor: Actor, model: str, version: int) -> Lineage:
    """A version's recipe, data window and fingerprint, metrics, artifact, author, trigger and deployments."""
    require(actor, "registry.view")
    m = model_row(session, model)
    row = version_row(session, m, version)
    run = session.get(TrainingRun, row.training_run_id) if row.training_run_id else None
    trigger = None
    if row.triggered_by_check_result_id:
        found = session.exec(select(CheckResult, Check).join(Check, Check.id == CheckResult.check_id)
                             .where(CheckResult.id == row.triggered_by_check_result_id)).first()
        if found:
            result, check = found
            trigger = Trigger(check_result_id=result.id, check=check.name, metric=check.metric or check.kind,
                              value=result.value, threshold=check.threshold, status=result.status, at=result.at,
                              message=result.message)
    deployments = session.exec(select(Deployment, Environment.name)
                               .join(Environment, Environment.id == Deployment.environment_id)
                               .where(Deployment.model_version_id == row.id)
                               .order_by(Deployment.deployed_at.desc())).all()
    reads = [DeploymentRead(environment=env, deployed_at=d.deployed_at, deployed_by=d.deployed_by, active=d.active,
                            ended_at=d.ended_at) for d, env in deployments]
    return Lineage(model=m.name, version=version_info(row), training_run_id=row.training_run_id,
                   training_rows=run.rows if run else row.training_metrics.get("rows"),
                   training_duration_s=run.duration_s if run else None, trigger=trigger, deployments=reads,
                   running_in=tuple(d.environment for d in reads if d.active), notes=row.notes)


def verify_artifact(*, session: Session, actor: Actor, model: str, version: int) -> bool:
    """Whether a version's stored artifact still hashes to its recorded sha256 (False when it has none)."""
    require(actor, "registry.view")
    row = version_row(session, model_row(session, model), version)
    if not row.artifact_path or not row.artifact_sha256:
        return False
    full = artifacts.resolve(row.artifact_path)
    return full.is_file() and artifacts.sha256_file(full) == row.artifact_sha256


def model_names(*, session: Session) -> list[str]:
    """Model names: those with a candidate waiting first (the newest candidate first), then the rest by name."""
    waiting = session.exec(select(Model.name, ModelVersion.created_at)
                           .join(ModelVersion, ModelVersion.model_id == Model.id).where(ModelVersion.status == "candidate")
                           .order_by(ModelVersion.created_at.desc())).all()
    first = list(dict.fromkeys(name for name, _ in waiting))
    rest = [n for n in session.exec(select(Model.name).order_by(Model.name)).all() if n not in first]
    return first + rest
