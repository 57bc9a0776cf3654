"""The model evaluation store: a version's metrics, estimates, business metrics and drift per time window.

`evaluate` measures one window at a time with the lake's engine (`window_plan`: a few SQL aggregates over the
whole window, never its rows), outside any transaction, then writes all new windows in one short transaction.
`compute_window` measures rows already in memory (a drill-down's window). Windows are append-only: a stored
window of a version is replaced only with `overwrite=True`, and the replacement is audited.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from sqlmodel import Session, select

from core import artifacts, audit
from core.access import Actor, require
from core.clock import now
from core.db import session_scope
from core.entities import Evaluation, Model, ModelVersion
from core.errors import Conflict, InvalidInput, NotFound
from core.lake import predictions as prediction_store
from core.lake.predictions import WindowRows
from core.models import metrics, mlflow_mirror, registry
from core.monitoring import drift, estimation, ingest, window_plan
from core.monitoring.window_plan import Context, WindowResult, as_text
from core.vocabulary import GRANULARITIES

SCORE, PREDICTION = "__score__", "__prediction__"


@dataclass(frozen=True)
class EvaluationRead:
    id: int
    model: str
    version: int
    window_start: datetime
    window_end: datetime
    granularity: str
    rows: int
    labelled_rows: int
    metrics: dict
    estimated_metrics: dict
    business_metrics: dict
    data_quality: dict
    drift_share: float | None
    drifted_fields: int
    prediction_drift: dict
    field_drift: list[dict]
    report_path: str | None
    created_at: datetime
    created_by: str

    @property
    def label_coverage(self) -> float:
        return self.labelled_rows / self.rows if self.rows else 0.0


def evaluation_read(ev: Evaluation, model: str, version: int) -> EvaluationRead:
    return EvaluationRead(id=ev.id, model=model, version=version, window_start=ev.window_start,
                          window_end=ev.window_end, granularity=ev.granularity, rows=ev.rows,
                          labelled_rows=ev.labelled_rows, metrics=dict(ev.metrics),
                          estimated_metrics=dict(ev.estimated_metrics), business_metrics=dict(ev.business_metrics),
                          data_quality=dict(ev.data_quality), drift_share=ev.drift_share,
                          drifted_fields=ev.drifted_fields, prediction_drift=dict(ev.prediction_drift),
                          field_drift=list(ev.field_drift), report_path=ev.report_path, created_at=ev.created_at,
                          created_by=ev.created_by)


# --- windows ------------------------------------------------------------------------------------------

def _unit_start(moment: datetime, every: str) -> datetime:
    day = datetime(moment.year, moment.month, moment.day)
    if every == "7D":
        return day - timedelta(days=day.weekday())  # weeks start on Monday
    if every == "1M":
        return datetime(moment.year, moment.month, 1)
    return day


def _next(start: datetime, every: str) -> datetime:
    if every == "1M":
        return datetime(start.year + start.month // 12, start.month % 12 + 1, 1)
    return start + timedelta(days=7 if every == "7D" else 1)


def windows(*, start: datetime, end: datetime, every: str | None) -> list[tuple[datetime, datetime]]:
    """[start, end) as one window, or as calendar days, Monday weeks or months covering it."""
    if end <= start:
        raise InvalidInput(f"the window end {end:%Y-%m-%d %H:%M} is not after its start {start:%Y-%m-%d %H:%M}")
    if every is None:
        return [(start, end)]
    if every not in GRANULARITIES:
        raise InvalidInput(f"--every {every!r} is not one of {', '.join(GRANULARITIES)}")
    out, cursor = [], _unit_start(start, every)
    while cursor < end:
        out.append((cursor, _next(cursor, every)))
        cursor = out[-1][1]
    return out


# --- computing one window -------------------------------------------------------------------------------

def align(frame: pd.DataFrame, reference: pd.DataFrame, features: list[dict]) -> pd.DataFrame:
    """Current features typed like the reference: categories as text, numbers as ints only if the reference has ints."""
    out = {}
    for f in features:
        name = f["name"]
        col = frame[name] if name in frame else pd.Series([None] * len(frame), index=frame.index, dtype=object)
        if f["type"] == "categorical":
            out[name] = as_text(col)
            continue
        col = pd.to_numeric(col, errors="coerce")
        integral = col.notna().all() and np.array_equal(col.to_numpy(), np.round(col.to_numpy()))
        ref_int = name in reference and pd.api.types.is_integer_dtype(reference[name])
        out[name] = col.astype("int64") if ref_int and integral else col.astype(float)
    return pd.DataFrame(out, index=frame.index)


def context_for(*, model: Model, version: ModelVersion) -> Context:
    """Load and prepare a version's reference sample (read from the artifact store, checked by sha256)."""
    reference = artifacts.load_reference(path=version.reference_path, sha256=version.reference_sha256,
                                         what=f"{model.name} v{version.number}")
    prepared = reference.copy()
    for f in model.features:
        if f["type"] == "categorical" and f["name"] in prepared:
            prepared[f["name"]] = as_text(prepared[f["name"]])
    calibration = None
    if model.task == "binary" and SCORE in reference and model.target in reference:
        calibration = estimation.calibrate(score=reference[SCORE].to_numpy(float),
                                           y_true=reference[model.target].to_numpy(float))
    columns = [*(f["name"] for f in model.features), SCORE, PREDICTION]
    return Context(task=model.task, threshold=model.decision_threshold, features=list(model.features),
                   business=list(model.business_metrics), target=model.target, reference=prepared,
                   calibration=calibration,
                   drift_reference=drift.prepared_reference(prepared, columns, limit=len(prepared)))


def _decisions(ctx: Context, score: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    if ctx.task != "binary":
        return predicted
    decided = metrics.decide(score=np.nan_to_num(score, nan=-1.0), threshold=ctx.threshold)
    return np.where(np.isfinite(score), decided, predicted)


def compute_window(ctx: Context, rows: WindowRows, *, start: datetime, end: datetime,
                   granularity: str) -> WindowResult:
    """Realized and estimated metrics, business metrics, data quality and drift of one window's rows."""
    current = align(rows.features, ctx.reference, ctx.features)
    labelled = np.isfinite(rows.label)
    decision = _decisions(ctx, rows.score, rows.predicted)
    columns = {c: pd.to_numeric(current[c], errors="coerce").to_numpy(float)
               for c in {b.get("column") for b in ctx.business if b.get("column")} if c in current}
    has_score = bool(np.isfinite(rows.score).any())
    if ctx.task == "binary":
        realized = metrics.binary(y_true=rows.label[labelled], score=rows.score[labelled] if has_score else None,
                                  predicted=decision[labelled])
    else:
        realized = metrics.regression(y_true=rows.label[labelled], predicted=decision[labelled])
    business = metrics.business(specs=ctx.business, y_true=rows.label[labelled], predicted=decision[labelled],
                                columns={c: v[labelled] for c, v in columns.items()}) if labelled.any() else {}
    estimated = {}
    if ctx.calibration is not None and has_score:
        estimated = estimation.estimate(calibration=ctx.calibration, score=rows.score, threshold=ctx.threshold,
                                        business_specs=ctx.business, columns=columns)
    current_pred = current.assign(**{SCORE: rows.score, PREDICTION: rows.predicted})
    summary = drift.data_drift(reference=ctx.drift_reference, current=current_pred,
                               columns=[f["name"] for f in ctx.features],
                               prediction_column=SCORE if has_score else PREDICTION)
    missing = {f["name"]: float(current[f["name"]].isna().mean()) for f in ctx.features}
    return WindowResult(start=start, end=end, granularity=granularity, rows=len(rows),
                        labelled_rows=int(labelled.sum()), metrics=window_plan.clean(realized) if labelled.any() else {},
                        estimated_metrics=window_plan.clean(estimated), business_metrics=window_plan.clean(business),
                        data_quality={"missing_rate": missing, "rows": len(rows)},
                        drift_share=summary.drift_share, drifted_fields=summary.drifted_fields,
                        prediction_drift=summary.prediction.as_dict() if summary.prediction else {},
                        field_drift=[f.as_dict() for f in summary.fields], read_versions=dict(rows.read))




# --- storing ------------------------------------------------------------------------------------------

def _apply(ev: Evaluation, result: WindowResult, actor: str) -> None:
    for name in ("rows", "labelled_rows", "metrics", "estimated_metrics", "business_metrics", "data_quality",
                 "drift_share", "drifted_fields", "prediction_drift", "field_drift", "read_versions"):
        setattr(ev, name, getattr(result, name))
    ev.granularity, ev.created_at, ev.created_by, ev.report_path = result.granularity, now(), actor, None


def store(*, session: Session, actor: Actor, model: str, version: int, results: list[WindowResult],
          overwrite: bool = False) -> list[EvaluationRead]:
    """Write computed windows; a stored window is replaced only with overwrite (audited)."""
    require(actor, "evaluation.write")
    m = registry.model_row(session, model)
    v = registry.version_row(session, m, version)
    existing = {(e.window_start, e.window_end): e for e in session.exec(
        select(Evaluation).where(Evaluation.model_version_id == v.id)).all()}
    clashes = [r for r in results if (r.start, r.end) in existing]
    if clashes and not overwrite:
        shown = ", ".join(f"{r.start:%Y-%m-%d} → {r.end:%Y-%m-%d}" for r in clashes[:3])
        raise Conflict(f"{m.name} v{v.number} already has {len(clashes)} of these window(s) ({shown}); "
                       "evaluations are append-only, use --overwrite to replace them")
    out, replaced = [], []
    for r in results:
        ev = existing.get((r.start, r.end))
        if ev is not None:
            replaced.append({"id": ev.id, "window_start": r.start, "window_end": r.end,
                             "before": {"rows": ev.rows, "labelled_rows": ev.labelled_rows, "metrics": ev.metrics}})
        else:
            ev = Evaluation(model_version_id=v.id, window_start=r.start, window_end=r.end)
        _apply(ev, r, actor.username)
        session.add(ev)
        out.append(ev)
    session.flush()
    if len(results) > len(replaced):
        audit.record(session, actor=actor.username, action="evaluations.store", entity_type="model_version",
                     entity_id=f"{m.name}:v{v.number}", project_id=m.project_id,
                     details={"windows": len(results) - len(replaced), "from": min(r.start for r in results),
                              "to": max(r.end for r in results)})
    if replaced:
        audit.record(session, actor=actor.username, action="evaluations.overwrite", entity_type="model_version",
                     entity_id=f"{m.name}:v{v.number}", project_id=m.project_id,
                     details={"windows": len(replaced), "replaced": replaced[:200]})
    return [evaluation_read(ev, m.name, v.number) for ev in out]


# --- evaluating ---------------------------------------------------------------------------------------

def _plan(session: Session, m: Model, v: ModelVersion, start: datetime | None, end: datetime | None,
          every: str | None) -> list[tuple[datetime, datetime]]:
    if start is None or end is None:  # the span is read only when the period is open
        first, last = prediction_store.span(model_id=m.id, version_id=v.id)
        if first is None:
            raise InvalidInput(f"{m.name} v{v.number} has no logged predictions to evaluate")
        start = start or first
        end = end or (last + timedelta(microseconds=1))
    return windows(start=start, end=end, every=every)


def evaluate(*, actor: Actor, model: str, version: int | None = None, start: datetime | None = None,
             end: datetime | None = None, every: str | None = None, overwrite: bool = False,
             only_changed: bool = False, progress: Callable[[str], None] = lambda _m: None) -> list[EvaluationRead]:
    """Evaluate a version (default: active) over [start, end) in one window or by 1D/7D/1M; windows without
    predictions are skipped. With only_changed, stored windows are redone only when rows or labels changed.

    Opens its own short units of work, so that no transaction stays open while windows are computed.
    """
    require(actor, "evaluation.write")
    with session_scope() as s:
        m = registry.model_row(s, model)
        v = registry.version_row(s, m, version)
        plan = _plan(s, m, v, start, end, every)
        stored = {(e.window_start, e.window_end): (e.rows, e.labelled_rows) for e in s.exec(
            select(Evaluation).where(Evaluation.model_version_id == v.id)).all()}
        # Every window reads the same table versions; the labelled counts only matter to compare with stored
        # windows (they join the labels).
        read, counts = prediction_store.window_counts(model_id=m.id, version_id=v.id, windows=plan,
                                                      labelled=only_changed)
        todo = []
        for (a, b), (rows, labelled) in zip(plan, counts, strict=True):
            if rows == 0:
                continue
            if (a, b) in stored and only_changed and stored[(a, b)] == (rows, labelled):
                continue
            todo.append((a, b, rows))
        number, name, version_id, model_id = v.number, m.name, v.id, m.id
        ctx = context_for(model=m, version=v) if todo else None
    if not todo:
        if only_changed:
            return []
        raise InvalidInput(f"{name} v{number} has no predictions between {plan[0][0]:%Y-%m-%d %H:%M} and "
                           f"{plan[-1][1]:%Y-%m-%d %H:%M}")
    results = []
    for i, (a, b, size) in enumerate(todo, 1):
        result = window_plan.measure(ctx, model_id=model_id, version_id=version_id, start=a, end=b,
                                     granularity=every or "custom", size=size, read=read)
        results.append(result)
        progress(f"window {i}/{len(todo)}: {a:%Y-%m-%d} → {b:%Y-%m-%d}, {result.rows:,} rows")
    with session_scope() as s:
        stored = store(session=s, actor=actor, model=name, version=number, results=results,
                       overwrite=overwrite or only_changed)
    # Subscribers see committed windows only, and never fail the evaluation.
    mlflow_mirror.evaluations_stored(actor=actor.username, version_id=version_id, evaluations=stored)
    return stored


def evaluate_new(*, actor: Actor, model: str, start: datetime | None = None, end: datetime | None = None,
                 every: str | None = None, progress: Callable[[str], None] = lambda _m: None) -> list[int]:
    """For scheduled runs: evaluate the active version's windows that are new or whose rows or labels changed."""
    done = evaluate(actor=actor, model=model, start=start, end=end, every=every, only_changed=True,
                    progress=progress)
    return [e.id for e in done]


# --- reading and exporting ------------------------------------------------------------------------------

def list_evaluations(*, session: Session, actor: Actor, model: str, version: int | None = None,
                     granularity: str | None = None) -> list[EvaluationRead]:
    """A version's stored windows (default: the active version), oldest first."""
    require(actor, "evaluation.view")
    m = registry.model_row(session, model)
    v = registry.version_row(session, m, version)
    q = select(Evaluation).where(Evaluation.model_version_id == v.id)
    if granularity:
        q = q.where(Evaluation.granularity == granularity)
    rows = session.exec(q.order_by(Evaluation.window_start, Evaluation.window_end)).all()
    return [evaluation_read(e, m.name, v.number) for e in rows]


def get_evaluation(*, session: Session, actor: Actor, evaluation_id: int) -> EvaluationRead:
    require(actor, "evaluation.view")
    ev = session.get(Evaluation, evaluation_id)
    if ev is None:
        raise NotFound(f"no evaluation {evaluation_id}")
    v = session.get(ModelVersion, ev.model_version_id)
    return evaluation_read(ev, session.get(Model, v.model_id).name, v.number)


def export_rows(evaluations: list[EvaluationRead]) -> list[dict]:
    """One flat row per window: realized, estimated (est_), business metrics and drift."""
    out = []
    for e in evaluations:
        top = max((f for f in e.field_drift if f.get("score") is not None and f.get("drifted")),
                  key=lambda f: f["score"], default=None)
        out.append({"model": e.model, "version": e.version, "window_start": e.window_start.isoformat(),
                    "window_end": e.window_end.isoformat(), "granularity": e.granularity, "rows": e.rows,
                    "labelled_rows": e.labelled_rows, **e.metrics,
                    **{f"est_{k}": v for k, v in e.estimated_metrics.items()}, **e.business_metrics,
                    "drift_share": e.drift_share, "drifted_fields": e.drifted_fields,
                    "prediction_drift_score": e.prediction_drift.get("score"),
                    "most_drifted_field": top["field"] if top else ""})
    return out


def export_evaluations(*, session: Session, actor: Actor, model: str, version: int | None = None,
                       fmt: str = "csv") -> str:
    """The windows as CSV (flat) or JSON (complete, with per-field drift)."""
    evaluations = list_evaluations(session=session, actor=actor, model=model, version=version)
    if fmt == "json":
        return json.dumps([{**asdict(e), "window_start": e.window_start.isoformat(),
                            "window_end": e.window_end.isoformat(), "created_at": e.created_at.isoformat()}
                           for e in evaluations], indent=2)
    if fmt != "csv":
        raise InvalidInput(f"format {fmt!r} is not csv or json")
    rows = export_rows(evaluations)
    buffer = io.StringIO()
    names = list(dict.fromkeys(k for r in rows for k in r)) or ["model", "version", "window_start", "window_end"]
    writer = csv.DictWriter(buffer, fieldnames=names)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


# --- files dropped for scheduled ingestion ----------------------------------------------------------------

def ingest_file(*, session: Session, actor: Actor, model: str, path: str) -> ingest.IngestOutcome:
    """A dropped CSV file of predictions and/or labels (see ingest_detected)."""
    return ingest.ingest_detected(session=session, actor=actor, model=model, source=path)


def ingest_frame(*, session: Session, actor: Actor, model: str, frame: pd.DataFrame,
                 source: str = "data frame") -> ingest.IngestOutcome:
    """Rows from a query, with the same column conventions as a dropped file."""
    return ingest.ingest_detected(session=session, actor=actor, model=model, source=frame)
