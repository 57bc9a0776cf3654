"""The facts a model version's documentation is made of, read from the stores as plain read models."""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

import pandas as pd
from sqlmodel import Session
from threadpoolctl import threadpool_limits

from core import artifacts, audit
from core.audit import AuditRead
from core.errors import WatchtowerError
from core.governance.deployer import DeploymentRead
from core.governance.reviews import ReviewRead
from core.models import registry
from core.models.registry import VersionInfo
from core.monitoring.evaluation_store import EvaluationRead
from core.projects import projects
from core.validation import diagnostics
from core.validation import lab as validation_lab
from core.validation.comparison import Importance
from core.validation.diagnostics import Calibration, Diagnostic
from core.validation.lab import ChallengerVerdict, Lab
from core.validation.lab_results import Findings

# Windows of this granularity are preferred for the trend tables: weekly reads best on a page.
GRANULARITY_PREFERENCE = ("7D", "1M", "1D", "custom")
MAX_WINDOWS = 12
MAX_AUDIT_EVENTS = 100
MAX_CACHED_ASSESSMENTS = 16
_ASSESSMENTS: OrderedDict[str, Assessment] = OrderedDict()
_CACHE_LOCK = threading.Lock()


@dataclass(frozen=True)
class FieldProfile:
    """One column of the reference sample and its statistics."""

    name: str
    type: str  # numeric | categorical
    role: str  # feature | target | score | prediction
    count: int
    missing: int
    stats: tuple[tuple[str, float | str], ...]  # (name, value) in display order


@dataclass(frozen=True)
class FieldDrift:
    field: str
    type: str
    method: str
    threshold: float | None
    score: float | None
    drifted: bool


@dataclass(frozen=True)
class Assessment:
    """What the validation lab says about a version: diagnostics, importance, champion / challenger."""

    diagnostics: tuple[Diagnostic, ...] = ()
    calibration: Calibration | None = None
    importance: tuple[Importance, ...] = ()
    challenger: ChallengerVerdict | None = None
    data: str = ""  # what the lab computed on
    note: str = ""  # why something is missing ("" when complete)


def profile_reference(frame: pd.DataFrame, *, features: list[dict], target: str) -> tuple[FieldProfile, ...]:
    """Reference statistics per field: spread for numbers, the commonest values for categories."""
    columns = [(f["name"], f["type"], "feature") for f in features]
    columns.append((target, "numeric" if pd.api.types.is_numeric_dtype(frame[target]) else "categorical", "target"))
    for special, role in (("__score__", "score"), ("__prediction__", "prediction")):
        if special in frame.columns:
            columns.append((special, "numeric", role))
    out = []
    for name, kind, role in columns:
        if name not in frame.columns:
            continue
        col = frame[name]
        missing = int(col.isna().sum())
        present = col.dropna()
        if kind == "numeric" and pd.api.types.is_numeric_dtype(col) and not present.empty:
            values = present.astype(float)
            stats: list[tuple[str, float | str]] = [
                ("mean", float(values.mean())), ("std", float(values.std(ddof=1)) if len(values) > 1 else 0.0),
                ("min", float(values.min())), ("median", float(values.median())), ("max", float(values.max()))]
        else:
            counts = present.astype(str).value_counts()
            stats = [("distinct", int(counts.size))]
            for value, n in counts.head(3).items():
                stats.append((f"top: {value}", float(n) / max(len(present), 1)))
        out.append(FieldProfile(name=name, type=kind, role=role, count=int(len(col)), missing=missing,
                                stats=tuple(stats)))
    return tuple(out)


def evaluations(stored: list[EvaluationRead]) -> tuple[tuple[EvaluationRead, ...], EvaluationRead | None]:
    """The latest windows of the preferred granularity (oldest first) and the version's latest evaluation."""
    if not stored:
        return (), None
    # The latest evaluation ends last; among windows ending together the widest one has the most rows.
    latest = max(stored, key=lambda e: (e.window_end, e.window_end - e.window_start, e.created_at, e.id))
    present = {e.granularity for e in stored}
    granularity = next((g for g in GRANULARITY_PREFERENCE if g in present), latest.granularity)
    chosen = sorted((e for e in stored if e.granularity == granularity), key=lambda e: (e.window_end, e.id))
    return tuple(chosen[-MAX_WINDOWS:]), latest


def drift_of(latest: EvaluationRead | None) -> tuple[FieldDrift, ...]:
    """Per-field drift stored with the latest evaluation, drifted fields first, highest score first."""
    items = [FieldDrift(field=str(d.get("field", "")), type=str(d.get("type", "")),
                        method=str(d.get("method", "")), threshold=_float(d.get("threshold")),
                        score=_float(d.get("score")), drifted=bool(d.get("drifted")))
             for d in (latest.field_drift if latest else [])]
    return tuple(sorted(items, key=lambda d: (not d.drifted, -(d.score or 0.0), d.field)))


def _float(value: object) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def version_events(*, session: Session, model: str, version: int, project_id: int,
                   review_ids: list[int]) -> tuple[AuditRead, ...]:
    """The audit trail of one version: events about it, its reviews and its deployments, newest first."""
    label = f"{model}:v{version}"
    deployed = f"{model} v{version}@"
    reviews_ = {str(i) for i in review_ids}

    def concerns(e: AuditRead) -> bool:
        if e.entity_id == label or e.entity_id.startswith(label + ":"):
            return True
        if e.entity_type == "review" and e.entity_id in reviews_:
            return True
        if e.entity_type == "deployment" and e.entity_id.startswith(deployed):
            return True
        details = e.details or {}
        return details.get("model") == model and str(details.get("version")) == str(version)

    trail = [e for e in audit.events(session=session, project_id=project_id, limit=5000) if concerns(e)]
    return tuple(trail[:MAX_AUDIT_EVENTS])


def _lab_key(lab: Lab) -> str:
    """What the lab's findings depend on: both estimators, the model's settings and the data, by content."""
    data = artifacts.fingerprint_frame(lab.recent) if len(lab.recent) else ""
    parts = [lab.version.info.id, lab.version.info.artifact_sha256, lab.version.info.reference_sha256,
             lab.active.info.artifact_sha256 if lab.active else None, repr(lab.model), data]
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()


def assess(lab: Lab | None, *, version: VersionInfo, problem: str = "") -> Assessment:
    """Diagnostics, permutation importance and champion / challenger from the lab, or why there are none.

    The findings are kept per lab input (by content), so the Markdown, HTML and PDF of one version asked
    for one after the other run the lab once.
    """
    if lab is None:
        return Assessment(note=problem or f"Version {version.number} has no artifact (an external model): "
                                          "diagnostics and global importance need the model itself.")
    key = _lab_key(lab)
    with _CACHE_LOCK:
        if key in _ASSESSMENTS:
            _ASSESSMENTS.move_to_end(key)
            return _ASSESSMENTS[key]
    # The lab scores a few thousand rows at a time: OpenMP threads cost more than they give there, and
    # stall when the machine is shared (each waits on the others at every tree), so run them on one.
    with threadpool_limits(limits=1, user_api="openmp"):
        found = _run_lab(lab)
    with _CACHE_LOCK:
        _ASSESSMENTS[key] = found
        while len(_ASSESSMENTS) > MAX_CACHED_ASSESSMENTS:
            _ASSESSMENTS.popitem(last=False)
    return found


def stored_assessment(findings: Findings) -> Assessment:
    """The findings the worker computed and stored for the version (the ones the validation lab page shows)."""
    return Assessment(diagnostics=tuple(findings.report.items), calibration=findings.report.calibration,
                      importance=tuple(findings.importances), challenger=findings.verdict, data=findings.source)


def forget_assessments() -> None:
    """Drop the kept lab findings (to measure generation from scratch)."""
    with _CACHE_LOCK:
        _ASSESSMENTS.clear()


def _run_lab(lab: Lab) -> Assessment:
    notes: list[str] = []
    importance: tuple[Importance, ...] = ()
    report = challenger = None
    try:
        importance = tuple(validation_lab.importance(lab))
    except WatchtowerError as exc:
        notes.append(f"Global importance could not be computed: {exc}")
    try:
        report = diagnostics.diagnose(lab, importances=list(importance))
        challenger = validation_lab.champion_challenger(lab)
    except WatchtowerError as exc:
        notes.append(f"Diagnostics could not be computed: {exc}")
    return Assessment(diagnostics=tuple(report.items) if report else (),
                      calibration=report.calibration if report else None, importance=importance,
                      challenger=challenger, data=lab.evaluation_source, note=" ".join(notes))


@dataclass(frozen=True)
class ModelDocumentation:
    """The whole content of a model version's documentation, format-neutral."""

    generated_at: datetime
    generated_by: str
    project: projects.ProjectRead
    initiative_description: str
    model: registry.ModelInfo
    model_description: str
    version: registry.VersionInfo
    triggered_by: str  # the failed check behind a scheduled retrain, in words ("" when none)
    fields: tuple[FieldProfile, ...]
    windows: tuple[EvaluationRead, ...]  # the latest windows of one granularity, oldest first
    latest: EvaluationRead | None  # the latest evaluation of the version (drift comes from it)
    # Without windows of its own (a candidate), the active version's, clearly labelled as such.
    comparison_version: int | None
    comparison_windows: tuple[EvaluationRead, ...]
    field_drift: tuple[FieldDrift, ...]
    assessment: Assessment  # diagnostics, importance, champion / challenger
    deployments: tuple[DeploymentRead, ...]  # oldest first
    reviews: tuple[ReviewRead, ...]  # newest first
    audit: tuple[AuditRead, ...]  # newest first
