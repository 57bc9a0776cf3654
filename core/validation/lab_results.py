"""The lab's findings per version, computed once by the worker and stored as plain JSON.

Registering a version queues its computation (`queue`); the worker claims queued rows (`compute_queued`) and
stores permutation importance, the diagnostics with the calibration curve, and the champion / challenger
verdict. The page reads them back (`stored`) without computing. A result is stale when the champion it was
compared with is no longer the active version.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import or_, update
from sqlmodel import Session, select

from core.access import SYSTEM, Actor, require
from core.clock import now
from core.db import session_scope
from core.entities import LabResult, Model, ModelVersion
from core.models.registry import model_row, version_row
from core.validation import diagnostics, lab
from core.validation.comparison import Importance

STEPS = ("reading the version and the recent labelled data", "permutation importance", "diagnostics",
         "champion / challenger")
STALE_RUNNING = timedelta(minutes=30)  # a computation claimed this long ago by a worker that died is claimable again
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Findings:
    source: str  # the data they were computed on
    importances: list[Importance]
    report: diagnostics.DiagnosticsReport
    verdict: lab.ChallengerVerdict


@dataclass(frozen=True)
class StoredFindings:
    status: str  # absent | pending | running | done | failed | stale
    done: int = 0
    total: int = len(STEPS)
    findings: Findings | None = None
    error: str = ""


def _plain(value: Any) -> Any:
    """JSON-safe: tuples as lists, NaN and infinities as null (PostgreSQL's JSON refuses them)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def to_json(findings: Findings) -> dict:
    """Findings as plain JSON data."""
    return _plain(asdict(findings))


def from_json(data: dict) -> Findings:
    """Findings back from `to_json`."""
    report, verdict = data["report"], data["verdict"]
    curve = report["calibration"]
    return Findings(
        source=data["source"], importances=[Importance(**i) for i in data["importances"]],
        report=diagnostics.DiagnosticsReport(items=[diagnostics.Diagnostic(**d) for d in report["items"]],
                                             calibration=diagnostics.Calibration(**curve) if curve else None,
                                             data=report["data"]),
        verdict=lab.ChallengerVerdict(**{**verdict, "metrics": [tuple(m) for m in verdict["metrics"]],
                                         "business": [tuple(b) for b in verdict["business"]],
                                         "segments": tuple(lab.SegmentResult(**g) for g in verdict["segments"])}))


def _active_number(session: Session, model_id: int) -> int | None:
    return session.exec(select(ModelVersion.number).where(ModelVersion.model_id == model_id,
                                                          ModelVersion.status == "active")).first()


def enqueue(session: Session, *, version_id: int, requested_by: str) -> None:
    """Queue (or queue again) the computation for one version; the caller checked who may."""
    row = session.exec(select(LabResult).where(LabResult.model_version_id == version_id)).first()
    if row is None:
        session.add(LabResult(model_version_id=version_id, requested_by=requested_by, total=len(STEPS)))
    elif row.status != "running":
        row.status, row.done, row.error, row.requested_by, row.requested_at = "pending", 0, "", requested_by, now()
        session.add(row)
    session.flush()


def queue(*, session: Session, actor: Actor, model: str, version: int) -> None:
    """Ask the worker to compute the lab's findings for a version (who may register versions may ask)."""
    require(actor, "model.register")
    v = version_row(session, model_row(session, model), version)
    enqueue(session, version_id=v.id, requested_by=actor.username)


def stored(*, session: Session, actor: Actor, model: str, version: int) -> StoredFindings:
    """What is stored for a version, without computing anything."""
    require(actor, "validation.view")
    m = model_row(session, model)
    v = version_row(session, m, version)
    row = session.exec(select(LabResult).where(LabResult.model_version_id == v.id)).first()
    if row is None:
        return StoredFindings(status="absent")
    if row.status != "done":
        return StoredFindings(status=row.status, done=row.done, total=row.total or len(STEPS), error=row.error)
    findings = from_json(row.results)
    active = _active_number(session, m.id)
    expected = active if active != v.number else v.number
    if row.champion != expected:
        return StoredFindings(status="stale", done=row.done, total=row.total, findings=findings)
    return StoredFindings(status="done", done=row.done, total=row.total, findings=findings)


def compute(*, model: str, version: int, progress: Progress = lambda _done, _total: None) -> tuple[Findings, int]:
    """Compute the findings of one version; also return the version number it was compared with."""
    with session_scope() as s:
        opened = lab.open_lab(session=s, actor=SYSTEM, model=model, version=version)
    progress(1, len(STEPS))
    importances = lab.importance(opened)
    progress(2, len(STEPS))
    report = diagnostics.diagnose(opened, importances=importances)
    progress(3, len(STEPS))
    verdict = lab.champion_challenger(opened)
    champion = opened.active.info.number if opened.active is not None else version
    return Findings(source=opened.evaluation_source, importances=importances, report=report,
                    verdict=verdict), champion


def _claim(row_id: int) -> bool:
    with session_scope() as s:
        claimed = s.execute(update(LabResult).where(
            LabResult.id == row_id, or_(LabResult.status == "pending", (LabResult.status == "running")
                                        & (LabResult.started_at < now() - STALE_RUNNING)))
            .values(status="running", done=0, started_at=now()))
        return claimed.rowcount == 1


def _set(row_id: int, **values: Any) -> None:
    with session_scope() as s:
        s.execute(update(LabResult).where(LabResult.id == row_id).values(**values))


def compute_queued(*, limit: int = 20) -> list[tuple[int, str]]:
    """Claim and compute queued findings, one at a time; return (version id, outcome) for each."""
    with session_scope() as s:
        queued = s.exec(select(LabResult.id, LabResult.model_version_id).where(or_(
            LabResult.status == "pending",
            (LabResult.status == "running") & (LabResult.started_at < now() - STALE_RUNNING)))
            .order_by(LabResult.requested_at).limit(limit)).all()
    out = []
    for row_id, version_id in queued:
        if not _claim(row_id):
            continue  # another worker took it
        with session_scope() as s:
            v = s.get(ModelVersion, version_id)
            model, number = s.get(Model, v.model_id).name, v.number
        try:
            findings, champion = compute(model=model, version=number,
                                         progress=lambda done, total, rid=row_id: _set(rid, done=done, total=total))
        except Exception as exc:  # noqa: BLE001  (stored on the row: the page shows it and offers to retry)
            _set(row_id, status="failed", error=f"{type(exc).__name__}: {exc}")
            out.append((version_id, "failed"))
            continue
        _set(row_id, status="done", done=len(STEPS), total=len(STEPS), champion=champion,
             results=to_json(findings), computed_at=now())
        out.append((version_id, "done"))
    return out
