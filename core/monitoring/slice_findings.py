"""Why did it drop: the segments behind a window's loss, found, stored per evaluation, read and worded.

The window's rows are read in a short unit of work and the search runs outside it (see core.monitoring.slice_report);
the findings are stored as one SliceFinding per evaluation and loss. The checks step stores the findings of
a failed metric or business check (`explain_failures`), the alert carries the first segment in its
audience's words, and a check with slice conditions measures its metric on that segment only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
from sqlmodel import Session, select

from core import audit
from core.access import Actor, require
from core.clock import now
from core.db import session_scope
from core.entities import Evaluation, Model, ModelVersion, SliceFinding
from core.errors import InvalidInput, NotFound, WatchtowerError
from core.lake.predictions import window_rows
from core.models import metrics
from core.monitoring import slices
from core.monitoring.evaluation_store import _decisions, align, context_for
from core.monitoring.slice_report import (
    NOT_ENOUGH,
    Report,
    Window,
    loss_for_check,
    losses,
    metric_label,
    metric_on,
    report,
)

PERIODS = {"7D": ("this week", "the week's"), "1D": ("that day", "the day's"), "1M": ("this month", "the month's")}


@dataclass(frozen=True)
class FindingRead:
    evaluation_id: int
    model: str
    version: int
    window_start: datetime
    window_end: datetime
    granularity: str
    loss: str
    loss_label: str
    metric_label: str
    status: str
    reason: str
    rows: int
    segments: list[dict]
    grown: list[dict]
    stored: bool

    @property
    def top(self) -> dict | None:
        return self.segments[0] if self.segments else None


# --- reading a window ----------------------------------------------------------------------------

def _rows_of(session: Session, ev: Evaluation) -> tuple[Model, ModelVersion, Window]:
    version = session.get(ModelVersion, ev.model_version_id)
    model = session.get(Model, version.model_id)
    ctx = context_for(model=model, version=version)
    rows = window_rows(session, version_id=version.id, start=ev.window_start, end=ev.window_end)
    labelled = np.isfinite(rows.label)
    has_score = bool(np.isfinite(rows.score).any())
    frame = align(rows.features, ctx.reference, ctx.features) if len(rows) else pd.DataFrame(
        {f["name"]: pd.Series(dtype=float) for f in ctx.features})
    business_columns = [b["column"] for b in ctx.business if b.get("column") and b["column"] not in frame]
    for c in business_columns:  # an amount that is not a feature still travels with the features
        frame[c] = pd.to_numeric(rows.features[c], errors="coerce") if c in rows.features else np.nan
    decision = _decisions(ctx, rows.score, rows.predicted) if len(rows) else np.array([], dtype=float)
    y = rows.label[labelled]
    window = Window(task=ctx.task, features=ctx.features, business=ctx.business,
                    frame=frame[labelled].reset_index(drop=True), y=y.astype(float), decision=decision[labelled],
                    score=rows.score[labelled] if has_score else None, reference=ctx.reference, rows=len(rows),
                    granularity=ev.granularity)
    return model, version, window


def _evaluation(session: Session, evaluation_id: int) -> Evaluation:
    ev = session.get(Evaluation, evaluation_id)
    if ev is None:
        raise NotFound(f"no evaluation {evaluation_id}")
    return ev


def _read(ev: Evaluation, model: str, version: int, r: Report | SliceFinding, stored: bool,
          labels: tuple[str, str]) -> FindingRead:
    return FindingRead(evaluation_id=ev.id, model=model, version=version, window_start=ev.window_start,
                       window_end=ev.window_end, granularity=ev.granularity, loss=r.loss, loss_label=labels[0],
                       metric_label=labels[1], status=r.status, reason=r.reason, rows=r.rows,
                       segments=list(r.segments), grown=list(r.grown), stored=stored)


def default_loss(model: Model, has_score: bool = True) -> str:
    """What a window is explained by when nobody asks for more: the first business amount, else errors."""
    amounts = [b["name"] for b in model.business_metrics if b.get("kind") == "amount_sum"]
    if amounts:
        return amounts[0]
    return "missed" if model.task == "binary" else "abs_error"


def available_losses(*, session: Session, actor: Actor, model: str) -> dict[str, str]:
    """The losses a model's windows can be explained by (name -> what it counts)."""
    require(actor, "evaluation.view")
    m = session.exec(select(Model).where(Model.name == model)).first()
    if m is None:
        raise NotFound(f"no model named {model!r}")
    return losses(task=m.task, business=m.business_metrics, has_score=m.task == "binary")


# --- finding and storing ---------------------------------------------------------------------------

def _labels(window: Window, r: Report) -> tuple[str, str]:
    return r.loss_label, r.metric_label


def compute(*, session: Session, evaluation_id: int, loss: str | None = None, k: int = 5) -> FindingRead:
    """The segments of one window for one loss (default: the model's), computed now and not stored."""
    ev = _evaluation(session, evaluation_id)
    model, version, window = _rows_of(session, ev)
    r = report(window, loss or default_loss(model, window.score is not None), k=k)
    return _read(ev, model.name, version.number, r, False, _labels(window, r))


def _store(session: Session, evaluation_id: int, r: Report, actor: str) -> None:
    row = session.exec(select(SliceFinding).where(SliceFinding.evaluation_id == evaluation_id,
                                                  SliceFinding.loss == r.loss)).first()
    row = row or SliceFinding(evaluation_id=evaluation_id, loss=r.loss)
    row.status, row.reason, row.rows, row.segments, row.grown = r.status, r.reason, r.rows, r.segments, r.grown
    row.created_by, row.created_at = actor, now()
    session.add(row)


def explain(*, session: Session, actor: Actor, evaluation_id: int, loss: str | None = None,
            refresh: bool = False) -> FindingRead:
    """The segments behind one window's loss: the stored finding, else found now (and stored when the actor
    may write evaluations)."""
    require(actor, "evaluation.view")
    ev = _evaluation(session, evaluation_id)
    version = session.get(ModelVersion, ev.model_version_id)
    model = session.get(Model, version.model_id)
    loss = loss or default_loss(model)
    known = losses(task=model.task, business=model.business_metrics, has_score=True)
    if loss not in known:
        raise InvalidInput(f"{model.name} has no loss {loss!r}; losses: {', '.join(known)}")
    stored = session.exec(select(SliceFinding).where(SliceFinding.evaluation_id == ev.id,
                                                     SliceFinding.loss == loss)).first()
    if stored is not None and not refresh:
        return _read(ev, model.name, version.number, stored, True,
                     (known[loss], metric_label(model.business_metrics, loss)))
    found = compute(session=session, evaluation_id=ev.id, loss=loss)
    if actor.has("evaluation.write"):
        r = Report(loss=found.loss, loss_label=found.loss_label, metric_label=found.metric_label,
                   status=found.status, reason=found.reason, rows=found.rows, segments=found.segments,
                   grown=found.grown)
        _store(session, ev.id, r, actor.username)
        audit.record(session, actor=actor.username, action="slices.find", entity_type="evaluation",
                     entity_id=ev.id, project_id=model.project_id,
                     details={"loss": loss, "status": found.status, "segments": [s["text"] for s in found.segments]})
    return found


def explain_failures(*, session: Session, actor: str, evaluation_id: int,
                     failed: list[tuple[str, str]]) -> dict[str, FindingRead]:
    """Find and store the segments behind each failed (kind, metric) of one window; one search per loss.

    A window that cannot be read (e.g. a reference that fails its checksum) gives no segments rather than
    stopping the checks."""
    ev = _evaluation(session, evaluation_id)
    version = session.get(ModelVersion, ev.model_version_id)
    model = session.get(Model, version.model_id)
    wanted = list(dict.fromkeys(x for kind, metric in failed
                                if (x := loss_for_check(kind=kind, metric=metric, task=model.task))))
    if not wanted:
        return {}
    try:
        _model, _version, window = _rows_of(session, ev)
    except WatchtowerError:
        return {}
    out = {}
    for loss in wanted:
        r = report(window, loss)
        _store(session, ev.id, r, actor)
        out[loss] = _read(ev, model.name, version.number, r, True, _labels(window, r))
    session.flush()
    return out


def stored_top(*, session: Session, evaluation_id: int, loss: str) -> dict | None:
    """The first stored segment of a window for a loss, or None."""
    row = session.exec(select(SliceFinding).where(SliceFinding.evaluation_id == evaluation_id,
                                                  SliceFinding.loss == loss)).first()
    return row.segments[0] if row is not None and row.status == "found" and row.segments else None


# --- words ----------------------------------------------------------------------------------------

def business_sentence(segment: dict, *, loss_label: str, granularity: str) -> str:
    """'68% of the fraud missed amount this week came from card age days under 30 (12% of the week's volume).'"""
    when, whose = PERIODS.get(granularity, ("in this period", "the period's"))
    return (f"{segment['loss_share']:.0%} of the {loss_label} {when} came from {segment['words']} "
            f"({segment['share']:.0%} of {whose} volume).")


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:,.3f}" if abs(value) < 10 else f"{value:,.0f}"


def engineering_sentence(segment: dict, *, loss_label: str) -> str:
    """The first segment in metric words."""
    change = (f"grew from {segment['reference_share']:.1%} of rows in the reference"
              if segment.get("grew") and segment.get("reference_share") is not None else "did not grow")
    return (f"Top segment: {segment['text']} — {segment['rows']:,} rows ({segment['share']:.1%} of the window, "
            f"{change}); {segment['metric']} {_fmt(segment['inside'])} inside vs {_fmt(segment['outside'])} outside; "
            f"{segment['loss_share']:.0%} of the {loss_label}.")


def change_kind(segment: dict) -> str:
    """Covariate shift (more such rows than in the reference) or concept drift (same share, worse model)."""
    if segment.get("grew"):
        return "covariate shift: this segment grew"
    return "concept drift: same share as the reference, the model does worse on it"


# --- a segment's metric in a window and over time -----------------------------------------------------

def _slice_window(window: Window, conditions: list[dict]) -> np.ndarray:
    return slices.mask(window.frame, [slices.Condition.from_dict(c) for c in conditions])


def slice_value(*, session: Session, evaluation_id: int, conditions: list[dict], kind: str,
                metric: str) -> tuple[float | None, int]:
    """A check's metric measured on one segment of a window: (value, labelled rows in the segment)."""
    ev = _evaluation(session, evaluation_id)
    _model, _version, window = _rows_of(session, ev)
    inside = _slice_window(window, conditions)
    if not inside.any():
        return None, 0
    y, p = window.y[inside], window.decision[inside]
    if kind == "business":
        spec = next((b for b in window.business if b["name"] == metric), None)
        if spec is None:
            return None, int(inside.sum())
        column = spec.get("column")
        columns = {column: pd.to_numeric(window.frame[column], errors="coerce").to_numpy(float)[inside]} \
            if column in window.frame else {}
        return metrics.business(specs=[spec], y_true=y, predicted=p, columns=columns).get(metric), int(inside.sum())
    if window.task == "binary":
        values = metrics.binary(y_true=y, score=window.score[inside] if window.score is not None else None,
                                predicted=p)
    else:
        values = metrics.regression(y_true=y, predicted=p)
    value = values.get(metric)
    return (float(value) if value is not None and np.isfinite(value) else None), int(inside.sum())


def trend(*, actor: Actor, evaluation_id: int, conditions: list[dict], loss: str, windows: int = 12) -> pd.DataFrame:
    """The loss's metric inside and outside a segment over the version's latest windows of the same
    granularity, up to the given one: window_start, series (inside | outside), value, rows."""
    require(actor, "evaluation.view")
    with session_scope() as s:  # one short read per window: windows are scored outside any transaction
        ev = _evaluation(s, evaluation_id)
        ids = s.exec(select(Evaluation.id).where(Evaluation.model_version_id == ev.model_version_id,
                                                 Evaluation.granularity == ev.granularity,
                                                 Evaluation.window_start <= ev.window_start)
                     .order_by(Evaluation.window_start.desc()).limit(windows)).all()
    out = []
    for other in reversed(ids):
        with session_scope() as s:
            ev = _evaluation(s, other)
            _model, _version, window = _rows_of(s, ev)
            start = ev.window_start
        if not len(window.y) or loss not in losses(task=window.task, business=window.business,
                                                    has_score=window.score is not None):
            continue
        inside = _slice_window(window, conditions)
        for series, rows in (("inside", inside), ("outside", ~inside)):
            out.append({"window_start": start, "series": series, "value": metric_on(window, loss, rows),
                        "rows": int(rows.sum())})
    return pd.DataFrame(out, columns=["window_start", "series", "value", "rows"])


def watch_suggestion(finding: FindingRead, segment: dict) -> dict:
    """The check that watches a segment: its kind, metric, condition and a threshold to start from (the rest
    of the window's value for a rate, the amount the segment would lose at the rest's rate for a business
    amount)."""
    loss = finding.loss
    if loss in ("missed", "false_alarms", "errors"):
        metric = {"missed": "recall", "false_alarms": "precision", "errors": "accuracy"}[loss]
        return {"kind": "metric", "metric": metric, "condition": "gte",
                "threshold": round(float(segment["outside"] or 0.0), 3)}
    if loss in ("log_loss", "abs_error"):
        metric = "log_loss" if loss == "log_loss" else "mae"
        return {"kind": "metric", "metric": metric, "condition": "lte",
                "threshold": round(float(segment["outside"] or 0.0), 3)}
    # Business figures are per 1,000 rows: the segment's rows at the rest of the window's rate.
    return {"kind": "business", "metric": loss, "condition": None,
            "threshold": round(float(segment["outside"] or 0.0) * segment["rows"] / 1000, 2)}


def not_enough(finding: FindingRead) -> bool:
    return finding.status == NOT_ENOUGH


def latest_labelled(*, session: Session, actor: Actor, model: str) -> int:
    """The id of the active version's latest evaluation window that has labels."""
    require(actor, "evaluation.view")
    m = session.exec(select(Model).where(Model.name == model)).first()
    if m is None:
        raise NotFound(f"no model named {model!r}")
    v = session.exec(select(ModelVersion).where(ModelVersion.model_id == m.id, ModelVersion.status == "active")).first()
    if v is None:
        raise NotFound(f"{model} has no active version; name an evaluation with --evaluation")
    ev = session.exec(select(Evaluation).where(Evaluation.model_version_id == v.id, Evaluation.labelled_rows > 0)
                      .order_by(Evaluation.window_end.desc(), Evaluation.id.desc())).first()
    if ev is None:
        raise NotFound(f"{model} v{v.number} has no evaluated window with labels yet")
    return ev.id


def model_of(*, session: Session, evaluation_id: int) -> str:
    ev = _evaluation(session, evaluation_id)
    return session.get(Model, session.get(ModelVersion, ev.model_version_id).model_id).name
