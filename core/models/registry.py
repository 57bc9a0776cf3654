"""Models and their versions: registration with a reference sample, optional artifact, lineage."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import func
from sqlmodel import Session, select

from core import artifacts, audit
from core.access import Actor, require
from core.entities import (
    TASKS,
    VERSION_ORIGINS,
    VERSION_STATUSES,
    LabResult,
    Model,
    ModelVersion,
    PickleAllowance,
    TrustedType,
)
from core.errors import Conflict, IntegrityFailure, InvalidInput, NotFound
from core.models import mapping_records, metrics
from core.models.column_mapping import Declared, propose
from core.projects.projects import project_row


@dataclass(frozen=True)
class ModelInfo:
    id: int
    project_id: int
    name: str
    task: str
    target: str
    features: list[dict]
    decision_threshold: float
    business_metrics: list[dict]

    @property
    def feature_names(self) -> list[str]:
        return [f["name"] for f in self.features]


@dataclass(frozen=True)
class VersionInfo:
    id: int
    model_id: int
    number: int
    status: str
    origin: str
    training_start: datetime | None
    training_end: datetime | None
    data_fingerprint: str
    recipe: dict
    params: dict
    training_metrics: dict
    reference_path: str
    reference_sha256: str
    reference_rows: int
    artifact_path: str | None
    artifact_sha256: str | None
    triggered_by_check_result_id: int | None
    created_by: str
    created_at: datetime


def model_info(m: Model) -> ModelInfo:
    return ModelInfo(id=m.id, project_id=m.project_id, name=m.name, task=m.task, target=m.target,
                     features=list(m.features), decision_threshold=m.decision_threshold,
                     business_metrics=list(m.business_metrics))


def version_info(v: ModelVersion) -> VersionInfo:
    return VersionInfo(id=v.id, model_id=v.model_id, number=v.number, status=v.status, origin=v.origin,
                       training_start=v.training_start, training_end=v.training_end,
                       data_fingerprint=v.data_fingerprint, recipe=dict(v.recipe), params=dict(v.params),
                       training_metrics=dict(v.training_metrics), reference_path=v.reference_path,
                       reference_sha256=v.reference_sha256, reference_rows=v.reference_rows,
                       artifact_path=v.artifact_path, artifact_sha256=v.artifact_sha256,
                       triggered_by_check_result_id=v.triggered_by_check_result_id, created_by=v.created_by,
                       created_at=v.created_at)


def model_row(session: Session, name: str) -> Model:
    model = session.exec(select(Model).where(Model.name == name)).first()
    if model is None:
        raise NotFound(f"no model named {name!r}")
    return model


def get_model(*, session: Session, name: str) -> ModelInfo:
    return model_info(model_row(session, name))


def version_row(session: Session, model: Model, version: int | None = None) -> ModelVersion:
    """A numbered version, or by default the active one (else the newest)."""
    q = select(ModelVersion).where(ModelVersion.model_id == model.id)
    if version is not None:
        found = session.exec(q.where(ModelVersion.number == version)).first()
        if found is None:
            raise NotFound(f"model {model.name} has no version {version}")
        return found
    found = session.exec(q.where(ModelVersion.status == "active").order_by(ModelVersion.number.desc())).first()
    found = found or session.exec(q.order_by(ModelVersion.number.desc())).first()
    if found is None:
        raise NotFound(f"model {model.name} has no versions")
    return found


def get_version(*, session: Session, model: str, version: int | None = None) -> VersionInfo:
    return version_info(version_row(session, model_row(session, model), version))


def list_versions(*, session: Session, model: str) -> list[VersionInfo]:
    m = model_row(session, model)
    rows = session.exec(select(ModelVersion).where(ModelVersion.model_id == m.id).order_by(ModelVersion.number)).all()
    return [version_info(v) for v in rows]


def list_models(*, session: Session, project_key: str | None = None) -> list[ModelInfo]:
    q = select(Model).order_by(Model.name)
    if project_key:
        q = q.where(Model.project_id == project_row(session, project_key).id)
    return [model_info(m) for m in session.exec(q).all()]


def read_reference_csv(path: Path | str) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"reference file {path} does not exist")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"reference file {path.name} is not a readable CSV: {str(exc).splitlines()[0]}") from exc
    if frame.empty:
        raise InvalidInput(f"reference file {path.name} has no rows")
    return frame


def _validate_reference(frame: pd.DataFrame, *, target: str, task: str, features: list[dict], source: str) -> None:
    if target not in frame.columns:
        raise InvalidInput(f"target column {target!r} is not in {source} (columns: {', '.join(map(str, frame.columns))})")
    missing = [f["name"] for f in features if f["name"] not in frame.columns]
    if missing:
        raise InvalidInput(f"feature column(s) {', '.join(missing)} are not in {source}")
    if task == "binary":
        classes = set(pd.unique(frame[target].dropna()))
        if not classes <= {0, 1, 0.0, 1.0, True, False}:
            raise InvalidInput(f"target {target!r} in {source} must hold 0/1 labels for a binary model, "
                               f"found {sorted(map(str, classes))[:5]}")


def add_version(*, session: Session, actor: Actor, model: str, reference: pd.DataFrame,
                artifact_path: str | None = None, artifact_sha256: str | None = None, origin: str = "manual",
                status: str = "candidate", training_start: datetime | None = None,
                training_end: datetime | None = None, recipe: dict | None = None, params: dict | None = None,
                training_metrics: dict | None = None, training_run_id: int | None = None,
                triggered_by_check_result_id: int | None = None, notes: str = "",
                data_fingerprint: str | None = None) -> VersionInfo:
    """Register a new version of a model from a reference sample and an (already stored) artifact."""
    require(actor, "model.register")
    m = model_row(session, model)
    if origin not in VERSION_ORIGINS:
        raise InvalidInput(f"origin {origin!r} is not one of {', '.join(VERSION_ORIGINS)}")
    _validate_reference(reference, target=m.target, task=m.task, features=m.features, source="the reference data")
    ref_path, ref_sha = artifacts.save_reference(reference)
    number = (session.exec(select(func.max(ModelVersion.number)).where(ModelVersion.model_id == m.id)).one() or 0) + 1
    version = ModelVersion(model_id=m.id, number=number, status=status, origin=origin,
                           training_start=training_start, training_end=training_end,
                           data_fingerprint=data_fingerprint or artifacts.fingerprint_frame(reference),
                           recipe=dict(recipe or {}),
                           params=_jsonable(params or {}),
                           # Not given (an external model): the baseline is the reference sample's own scores.
                           training_metrics=dict(training_metrics or metrics.reference_baseline(
                               reference, task=m.task, target=m.target, threshold=m.decision_threshold)),
                           reference_path=ref_path, reference_sha256=ref_sha, reference_rows=len(reference),
                           artifact_path=artifact_path, artifact_sha256=artifact_sha256,
                           training_run_id=training_run_id,
                           triggered_by_check_result_id=triggered_by_check_result_id, created_by=actor.username,
                           notes=notes)
    session.add(version)
    session.flush()
    if artifact_path:  # the worker computes the validation lab's findings once, for the lab to read
        session.add(LabResult(model_version_id=version.id, requested_by=actor.username, total=4))
    audit.record(session, actor=actor.username, action="version.register", entity_type="model_version",
                 entity_id=f"{m.name}:v{number}", project_id=m.project_id,
                 details={"origin": origin, "artifact_sha256": artifact_sha256, "reference_rows": len(reference)})
    return version_info(version)


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    return {k: (v if isinstance(v, (int, float, str, bool, type(None), list, dict)) else repr(v))
            for k, v in params.items()}


def check_scores_reference(estimator: Any, frame: pd.DataFrame, *, features: list[dict], task: str,
                           source: str) -> None:
    """An artifact must score the reference rows from their feature columns (probabilities for binary)."""
    names = [f["name"] for f in features]
    sample = frame[names].head(50)
    try:
        if task == "binary":
            if not hasattr(estimator, "predict_proba"):
                raise InvalidInput(f"{source} has no predict_proba, which a binary model needs")
            out = estimator.predict_proba(sample)
            if getattr(out, "shape", (0, 0))[1:] != (2,):
                raise InvalidInput(f"{source} does not return two class probabilities per row")
        else:
            estimator.predict(sample)
    except InvalidInput:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure means the estimator does not fit this data
        reason = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise InvalidInput(f"{source} cannot score the reference features ({reason})") from exc


def _validate_model_spec(*, name: str, task: str, decision_threshold: float) -> None:
    if task not in TASKS:
        raise InvalidInput(f"task {task!r} is not one of {', '.join(TASKS)}")
    if not name.strip():
        raise InvalidInput("a model needs a name")
    if not 0.0 < decision_threshold < 1.0:
        raise InvalidInput(f"decision threshold {decision_threshold} must lie strictly between 0 and 1")


def create_model(*, session: Session, actor: Actor, project_key: str, name: str, task: str, target: str,
                 features: list[dict], decision_threshold: float = 0.5, business_metrics: list[dict] | None = None,
                 description: str = "") -> ModelInfo:
    """Declare a model (no version yet): its task, target, features and business metrics."""
    require(actor, "model.register")
    _validate_model_spec(name=name, task=task, decision_threshold=decision_threshold)
    project = project_row(session, project_key)
    if session.exec(select(Model).where(Model.name == name.strip())).first():
        raise Conflict(f"a model named {name!r} already exists")
    bad = [f for f in features if not f.get("name") or f.get("type") not in ("numeric", "categorical")]
    if not features or bad:
        raise InvalidInput(f"features must be a non-empty list of {{name, type: numeric|categorical}}; bad: {bad}")
    if target in {f["name"] for f in features}:
        raise InvalidInput(f"target {target!r} cannot also be a feature")
    model = Model(project_id=project.id, name=name.strip(), task=task, target=target,
                  features=[{"name": f["name"], "type": f["type"]} for f in features],
                  decision_threshold=decision_threshold, business_metrics=list(business_metrics or []),
                  description=description)
    session.add(model)
    session.flush()
    audit.record(session, actor=actor.username, action="model.register", entity_type="model",
                 entity_id=model.name, project_id=project.id,
                 details={"task": task, "target": target, "features": [f["name"] for f in model.features]})
    return model_info(model)


def set_version_status(*, session: Session, actor: Actor, model: str, version: int, status: str) -> VersionInfo:
    """Mark a version active, candidate or archived; activating one archives the previously active one."""
    require(actor, "model.register")
    if status not in VERSION_STATUSES:
        raise InvalidInput(f"status {status!r} is not one of {', '.join(VERSION_STATUSES)}")
    m = model_row(session, model)
    row = version_row(session, m, version)
    before = row.status
    if status == "active":
        others = session.exec(select(ModelVersion).where(ModelVersion.model_id == m.id,
                                                         ModelVersion.status == "active",
                                                         ModelVersion.id != row.id)).all()
        for other in others:
            other.status = "archived"
            session.add(other)
            audit.record(session, actor=actor.username, action="version.status", entity_type="model_version",
                         entity_id=f"{m.name}:v{other.number}", project_id=m.project_id,
                         details={"from": "active", "to": "archived", "replaced_by": version})
    row.status = status
    session.add(row)
    session.flush()
    audit.record(session, actor=actor.username, action="version.status", entity_type="model_version",
                 entity_id=f"{m.name}:v{version}", project_id=m.project_id, details={"from": before, "to": status})
    return version_info(row)


def register_model(*, session: Session, actor: Actor, project_key: str, name: str, task: str, target: str | None,
                   reference_csv: Path | str, artifact: Path | str | None = None,
                   artifact_sha256: str | None = None, score_col: str | None = None,
                   prediction_col: str | None = None, decision_threshold: float = 0.5,
                   business_metrics: list[dict] | None = None, description: str = "",
                   columns: Declared | None = None) -> VersionInfo:
    """Register a model with version 1: from a reference CSV, with a skops artifact or none (external model).

    COLUMNS declares the id, timestamp and features (with kinds); whatever it leaves out is inferred (see
    column_mapping.propose) and recorded as the model's first mapping.
    """
    require(actor, "model.register")
    _validate_model_spec(name=name, task=task, decision_threshold=decision_threshold)
    project_row(session, project_key)
    if session.exec(select(Model).where(Model.name == name)).first():
        raise Conflict(f"a model named {name!r} already exists")
    frame = read_reference_csv(reference_csv)
    declared = Declared(target=target, score_column=score_col, prediction_column=prediction_col).over(
        columns or Declared())
    proposal = propose(frame, declared, source=Path(reference_csv).name)
    features = list(proposal.mapping.features)
    target, score_col, prediction_col = declared.target, declared.score_column, declared.prediction_column
    path = sha = None
    if artifact is not None:
        path, sha = _import_upload(
            session, actor=actor, model=name.strip(), project_id=project_row(session, project_key).id,
            artifact=artifact, expected_sha256=artifact_sha256,
            validate=lambda est: check_scores_reference(est, frame, features=features, task=task,
                                                        source=f"artifact {Path(artifact).name}"))
    reference = frame.rename(columns={score_col: "__score__"} if score_col else {})
    if prediction_col:
        reference = reference.rename(columns={prediction_col: "__prediction__"})
    create_model(session=session, actor=actor, project_key=project_key, name=name, task=task, target=target,
                 features=features, decision_threshold=decision_threshold, business_metrics=business_metrics,
                 description=description)
    mapping_records.record(session, actor=actor, model=model_row(session, name.strip()), proposal=proposal,
                    notes="at registration")
    return add_version(session=session, actor=actor, model=name.strip(), reference=reference, artifact_path=path,
                       artifact_sha256=sha, origin="manual" if path else "external", status="active")


def import_version(*, session: Session, actor: Actor, model: str, artifact: Path | str,
                   reference: pd.DataFrame | Path | str, expected_sha256: str | None = None,
                   notes: str = "") -> VersionInfo:
    """Import an existing scikit-learn estimator (a skops file) as a candidate version (origin `imported`).

    A sha256 that does not match the file, a pickle that no administrator allowed, or a type nobody trusted is
    refused before anything in the file runs, and the refusal is audited in a unit of work of its own (the
    caller's rolls back).
    """
    require(actor, "model.register")
    m = model_row(session, model)
    frame = reference if isinstance(reference, pd.DataFrame) else read_reference_csv(reference)
    source = "the reference data" if isinstance(reference, pd.DataFrame) else Path(reference).name
    _validate_reference(frame, target=m.target, task=m.task, features=m.features, source=source)
    name = Path(artifact).name
    path, sha = _import_upload(
        session, actor=actor, model=m.name, project_id=m.project_id, artifact=artifact,
        expected_sha256=expected_sha256,
        validate=lambda est: check_scores_reference(est, frame, features=m.features, task=m.task,
                                                    source=f"artifact {name}"))
    if m.task == "binary" and "__score__" not in frame.columns:
        estimator = artifacts.load_estimator(path=path, sha256=sha, actor=actor.username, what=name)
        frame = frame.assign(__score__=estimator.predict_proba(frame[[f["name"] for f in m.features]])[:, 1])
    return add_version(session=session, actor=actor, model=m.name, reference=frame, artifact_path=path,
                       artifact_sha256=sha, origin="imported", status="candidate",
                       notes=notes or f"Imported from {name}")


# --- what an upload may contain: trusted skops types and allowed pickle files (administrators only) ------------

_TYPE_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def _import_upload(session: Session, *, actor: Actor, model: str, project_id: int, artifact: Path | str,
                   expected_sha256: str | None, validate: Any) -> tuple[str, str]:
    """Read an uploaded artifact safely; audit a refusal in a unit of work of its own (the caller's rolls back)."""
    from core.db import session_scope

    trusted = session.exec(select(TrustedType.type_name)).all()
    allowed = session.exec(select(PickleAllowance.sha256).where(PickleAllowance.model_name == model)).all()
    try:
        return artifacts.import_artifact(artifact, expected_sha256=expected_sha256, validate=validate,
                                         trusted_types=trusted, allowed_pickle_sha256s=allowed, model=model)
    except (IntegrityFailure, artifacts.ArtifactRefused) as exc:
        with session_scope() as audit_session:  # its own unit of work: the refusal is audited even though the caller's rolls back
            audit.record(audit_session, actor=actor.username, action="artifact.refused", entity_type="artifact",
                         entity_id=Path(artifact).name, project_id=project_id,
                         details={"model": model, "reason": str(exc), "expected_sha256": expected_sha256})
        raise


def trusted_types(*, session: Session) -> list[str]:
    """Type names an administrator trusts in uploaded skops files, sorted."""
    return sorted(session.exec(select(TrustedType.type_name)).all())


def trust_types(*, session: Session, actor: Actor, type_names: list[str]) -> list[str]:
    """Trust types (fully qualified names, as an import refusal lists them) in uploaded skops files; audited."""
    require(actor, "settings.manage")
    names = [t.strip() for t in type_names if t.strip()]
    if not names:
        raise InvalidInput("name at least one type to trust, e.g. sklearn.ensemble._hist_gradient_boosting."
                           "predictor.TreePredictor")
    bad = [t for t in names if not _TYPE_NAME.fullmatch(t)]
    if bad:
        raise InvalidInput(f"type name(s) {', '.join(bad)} are not fully qualified Python names (module.Type)")
    known = set(session.exec(select(TrustedType.type_name)).all())
    added = sorted(set(names) - known)
    for name in added:
        session.add(TrustedType(type_name=name, trusted_by=actor.username))
    session.flush()
    if added:
        audit.record(session, actor=actor.username, action="artifact.trust_types", entity_type="settings",
                     entity_id="trusted_types", details={"added": added})
    return added


def distrust_types(*, session: Session, actor: Actor, type_names: list[str]) -> list[str]:
    """Stop trusting types in uploaded skops files; audited."""
    require(actor, "settings.manage")
    rows = session.exec(select(TrustedType).where(TrustedType.type_name.in_([t.strip() for t in type_names]))).all()
    removed = sorted(r.type_name for r in rows)
    for row in rows:
        session.delete(row)
    session.flush()
    if removed:
        audit.record(session, actor=actor.username, action="artifact.distrust_types", entity_type="settings",
                     entity_id="trusted_types", details={"removed": removed})
    return removed


def allow_pickle(*, session: Session, actor: Actor, model: str, sha256: str) -> None:
    """Allow one exact pickle/joblib file (by sha256) to be imported for MODEL; audited.

    The model may not exist yet (a registration with its first artifact).
    """
    require(actor, "settings.manage")
    digest = sha256.strip().lower()
    if not _SHA256.fullmatch(digest):
        raise InvalidInput(f"sha256 {sha256!r} is not 64 hexadecimal characters")
    if not model.strip():
        raise InvalidInput("name the model the file is allowed for")
    project_id = None
    found = session.exec(select(Model).where(Model.name == model.strip())).first()
    if found is not None:
        project_id = found.project_id
    exists = session.exec(select(PickleAllowance).where(PickleAllowance.model_name == model.strip(),
                                                        PickleAllowance.sha256 == digest)).first()
    if exists is None:
        session.add(PickleAllowance(model_name=model.strip(), sha256=digest, allowed_by=actor.username))
        session.flush()
        audit.record(session, actor=actor.username, action="artifact.allow_pickle", entity_type="model",
                     entity_id=model.strip(), project_id=project_id, details={"sha256": digest})
