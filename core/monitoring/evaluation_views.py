"""What the evaluation store and drift pages show: trends against training and checks, and one window in depth.

Read models only, plus the on-demand full drift report (stored under WATCHTOWER_HOME/reports and audited).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd
from sqlmodel import Session, select

from core import artifacts, audit
from core.access import Actor, require
from core.config import get_settings
from core.db import session_scope
from core.entities import Evaluation, Model, ModelVersion, Project
from core.errors import NotFound
from core.lake.predictions import window_rows
from core.models import metrics, registry
from core.monitoring import checks, drift, evaluation_store

DISTRIBUTION_ROWS = 20_000  # rows of a window a distribution chart is drawn from


@dataclass(frozen=True)
class MetricLine:
    """A horizontal line on a metric's chart: the training baseline or a check's threshold."""

    metric: str
    label: str
    value: float
    kind: str  # baseline | check


@dataclass(frozen=True)
class StoreView:
    models: list[str]
    model: str
    task: str
    versions: list[tuple[int, str]]  # (number, status)
    version: int
    granularities: list[str]  # those stored for the version
    granularity: str | None
    metrics: list[str]  # standard metrics, then business metrics
    business: list[str]
    labels: dict[str, str]
    trend: pd.DataFrame  # window_start, window_end, metric, series (realized|estimated|training), value, labelled
    lines: list[MetricLine]
    windows: pd.DataFrame  # one row per window, newest first, with its evaluation id
    field_drift: pd.DataFrame  # window_start, field, severity, drifted


def severity(entry: dict) -> float | None:
    """How far past its threshold a field's score is (1 = at the threshold), comparable across methods."""
    score, threshold = entry.get("score"), entry.get("threshold")
    if score is None or not threshold:
        return None
    if entry.get("method") in ("ks", "chisquare", "z") or "p_value" in str(entry.get("method_label", "")):
        return float(threshold / max(score, 1e-300))  # p-values: smaller means more drift
    return float(score / threshold)


def _lines(session: Session, m: Model, baseline: dict, names: list[str]) -> list[MetricLine]:
    project = session.get(Project, m.project_id)
    out = [MetricLine(k, "at training", float(baseline[k]), "baseline") for k in names
           if isinstance(baseline.get(k), (int, float))]
    for c in checks.list_checks(session=session, project_key=project.key, model=m.name):
        if not c.enabled:
            continue
        if c.kind in ("metric", "estimated", "business") and c.metric:
            out.append(MetricLine(c.metric, f"check {c.name}", c.threshold, "check"))
        elif c.kind == "metric_drop" and isinstance(baseline.get(c.metric), (int, float)):
            base = float(baseline[c.metric])
            worse = -1 if metrics.HIGHER_IS_BETTER.get(c.metric, True) else 1
            out.append(MetricLine(c.metric, f"check {c.name}", base * (1 + worse * c.threshold), "check"))
        elif c.kind == "drift_share":
            out.append(MetricLine("drift_share", f"check {c.name}", c.threshold, "check"))
    return out


def _business_per_row(m: Model, v: ModelVersion) -> dict[str, float]:
    """Business metrics of the reference sample's own decisions, per row: the 'at training' rate."""
    reference = artifacts.load_reference(path=v.reference_path, sha256=v.reference_sha256)
    if m.target not in reference or "__score__" not in reference:
        return {}
    y = reference[m.target].to_numpy(float)
    decided = metrics.decide(score=reference["__score__"].to_numpy(float), threshold=m.decision_threshold)
    columns = {c: pd.to_numeric(reference[c], errors="coerce").to_numpy(float) for c in reference.columns
               if any(b.get("column") == c for b in m.business_metrics)}
    values = metrics.business(specs=m.business_metrics, y_true=y, predicted=decided, columns=columns)
    return {k: v / len(reference) for k, v in values.items() if v is not None and len(reference)}


def _most_recently_evaluated(session: Session) -> str | None:
    """The model whose windows were evaluated last: what someone opening the store most likely wants."""
    return session.exec(select(Model.name).join(ModelVersion, ModelVersion.model_id == Model.id)
                        .join(Evaluation, Evaluation.model_version_id == ModelVersion.id)
                        .order_by(Evaluation.created_at.desc(), Evaluation.id.desc())).first()


def store_view(*, session: Session, actor: Actor, model: str | None = None, version: int | None = None,
               granularity: str | None = None) -> StoreView | None:
    """A model version's windows as trends (realized, estimated, at training) with check thresholds; None if no models."""
    require(actor, "evaluation.view")
    names = list(session.exec(select(Model.name).order_by(Model.name)).all())
    if not names:
        return None
    m = registry.model_row(session, model if model in names else _most_recently_evaluated(session) or names[0])
    v = registry.version_row(session, m, version)
    versions = [(x.number, x.status) for x in session.exec(
        select(ModelVersion).where(ModelVersion.model_id == m.id).order_by(ModelVersion.number.desc())).all()]
    stored = sorted(set(session.exec(select(Evaluation.granularity).where(Evaluation.model_version_id == v.id)).all()))
    order = {"7D": 0, "1D": 1, "1M": 2}  # weeks first: daily windows of a rare event are noisy
    stored.sort(key=lambda g: order.get(g, 3))
    chosen = granularity if granularity in stored else (stored[0] if stored else None)
    evaluations = evaluation_store.list_evaluations(session=session, actor=actor, model=m.name, version=v.number,
                                                    granularity=chosen) if chosen else []
    standard = list(metrics.BINARY_METRICS if m.task == "binary" else metrics.REGRESSION_METRICS)
    business = [b["name"] for b in m.business_metrics]
    labels = {**{k: checks.label(k) for k in standard}, "drift_share": "share of drifted fields",
              **{b["name"]: b.get("label_text") or b["name"].replace("_", " ") for b in m.business_metrics}}
    per_row = _business_per_row(m, v) if evaluations and business else {}
    rows, windows, heat = [], [], []
    for e in evaluations:
        base = {"window_start": e.window_start, "window_end": e.window_end,
                "labelled": e.labelled_rows / e.rows if e.rows else 0.0}
        for k in [*standard, *business]:
            for series, source in (("realized", e.metrics), ("estimated", e.estimated_metrics),
                                   ("realized", e.business_metrics)):
                if source.get(k) is not None:
                    rows.append({**base, "metric": k, "series": series, "value": float(source[k])})
        for k, rate in per_row.items():
            rows.append({**base, "metric": k, "series": "at training", "value": rate * e.labelled_rows})
        if e.drift_share is not None:
            rows.append({**base, "metric": "drift_share", "series": "realized", "value": e.drift_share})
        for f in e.field_drift:
            if (sev := severity(f)) is not None:
                heat.append({"window_start": e.window_start, "field": f["field"], "severity": sev,
                             "drifted": bool(f["drifted"]), "method": f.get("method_label", "")})
        top = max((f for f in e.field_drift if f.get("drifted")), key=lambda f: severity(f) or 0, default=None)
        first = {b: e.business_metrics.get(b) for b in business}
        windows.append({"evaluation": e.id, "window_start": e.window_start, "window_end": e.window_end,
                        "rows": e.rows, "labelled_rows": e.labelled_rows, "roc_auc": e.metrics.get("roc_auc"),
                        "recall": e.metrics.get("recall"), "est_roc_auc": e.estimated_metrics.get("roc_auc"),
                        "est_recall": e.estimated_metrics.get("recall"), **first, "drift_share": e.drift_share,
                        "most_drifted_field": top["field"] if top else ""})
    trend = pd.DataFrame(rows, columns=["window_start", "window_end", "labelled", "metric", "series", "value"])
    return StoreView(models=names, model=m.name, task=m.task, versions=versions, version=v.number,
                     granularities=stored, granularity=chosen, metrics=standard, business=business, labels=labels,
                     trend=trend, lines=_lines(session, m, dict(v.training_metrics), [*standard, *business]),
                     windows=pd.DataFrame(windows[::-1]),
                     field_drift=pd.DataFrame(heat, columns=["window_start", "field", "severity", "drifted", "method"]))


# --- one window in depth ------------------------------------------------------------------------------

@dataclass(frozen=True)
class DriftView:
    evaluation: evaluation_store.EvaluationRead
    windows: list[tuple[int, datetime, datetime, str]]  # the version's windows: (id, start, end, granularity)
    fields: pd.DataFrame  # field, type, method, threshold, score, drifted, severity — most drifted first
    feature_types: dict[str, str]  # as declared on the model: numeric | categorical


def _evaluation(session: Session, model: str | None, evaluation_id: int | None) -> Evaluation:
    if evaluation_id is not None:
        ev = session.get(Evaluation, evaluation_id)
        if ev is None:
            raise NotFound(f"no evaluation {evaluation_id}")
        return ev
    names = list(session.exec(select(Model.name).order_by(Model.name)).all())
    if not names:
        raise NotFound("no models yet")
    m = registry.model_row(session, model if model in names else _most_recently_evaluated(session) or names[0])
    v = registry.version_row(session, m)
    ev = session.exec(select(Evaluation).where(Evaluation.model_version_id == v.id)
                      .order_by(Evaluation.window_end.desc(), Evaluation.granularity)).first()
    if ev is None:
        raise NotFound(f"{m.name} v{v.number} has no evaluation windows yet")
    return ev


def drift_view(*, session: Session, actor: Actor, evaluation_id: int | None = None,
               model: str | None = None) -> DriftView:
    """One window's fields, most drifted first (the latest window of a model's active version by default)."""
    require(actor, "evaluation.view")
    ev = _evaluation(session, model, evaluation_id)
    e = evaluation_store.get_evaluation(session=session, actor=actor, evaluation_id=ev.id)
    v = session.get(ModelVersion, ev.model_version_id)
    m = session.get(Model, v.model_id)
    windows = [(w.id, w.window_start, w.window_end, w.granularity) for w in session.exec(
        select(Evaluation).where(Evaluation.model_version_id == v.id)
        .order_by(Evaluation.granularity, Evaluation.window_start.desc())).all()]
    fields = pd.DataFrame([{"field": f["field"], "type": f["type"], "method": f.get("method_label") or "not tested",
                            "threshold": f.get("threshold"), "score": f.get("score"), "drifted": bool(f["drifted"]),
                            "severity": severity(f)} for f in e.field_drift],
                          columns=["field", "type", "method", "threshold", "score", "drifted", "severity"])
    fields = fields.sort_values(["drifted", "severity"], ascending=False, na_position="last").reset_index(drop=True)
    return DriftView(evaluation=e, windows=windows, fields=fields,
                     feature_types={f["name"]: f["type"] for f in m.features})


def _window_and_reference(evaluation_id: int, limit: int) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    with session_scope() as s:  # read the window, then compute outside any transaction
        ev = s.get(Evaluation, evaluation_id)
        if ev is None:
            raise NotFound(f"no evaluation {evaluation_id}")
        v = s.get(ModelVersion, ev.model_version_id)
        m = s.get(Model, v.model_id)
        rows = window_rows(s, version_id=v.id, start=ev.window_start, end=ev.window_end)
        ctx = evaluation_store.context_for(model=m, version=v)
    current = evaluation_store.align(rows.features, ctx.reference, ctx.features)
    columns = [f["name"] for f in ctx.features]
    return drift.bounded(current, limit=limit), drift.bounded(ctx.reference[columns], limit=limit), columns


def field_distribution(*, actor: Actor, evaluation_id: int, field: str, bins: int = 30) -> pd.DataFrame:
    """Reference vs current shares of one field: bins of numbers (start, end) or categories."""
    require(actor, "evaluation.view")
    current, reference, columns = _window_and_reference(evaluation_id, DISTRIBUTION_ROWS)
    if field not in columns:
        raise NotFound(f"the model has no field {field!r}")
    if pd.api.types.is_numeric_dtype(reference[field]) and pd.api.types.is_numeric_dtype(current[field]):
        return drift.histogram(reference=reference[field], current=current[field], bins=bins)
    return drift.category_shares(reference=reference[field], current=current[field])


@dataclass(frozen=True)
class Report:
    file_name: str
    html: str  # `</` already escaped inside its scripts: safe to embed


def full_report(*, actor: Actor, evaluation_id: int) -> Report:
    """Evidently's full drift report of a window from bounded samples, stored under reports/ (audited)."""
    require(actor, "evaluation.view")
    current, reference, columns = _window_and_reference(evaluation_id, drift.REPORT_ROWS)
    html = drift.full_report_html(reference=reference, current=current, columns=columns)
    folder = get_settings().reports_dir
    folder.mkdir(parents=True, exist_ok=True)
    name = f"drift-evaluation-{evaluation_id}.html"
    (folder / name).write_text(html, encoding="utf-8")
    with session_scope() as s:  # a short write after the long render
        ev = s.get(Evaluation, evaluation_id)
        v = s.get(ModelVersion, ev.model_version_id)
        m = s.get(Model, v.model_id)
        ev.report_path = f"reports/{name}"
        s.add(ev)
        audit.record(s, actor=actor.username, action="evaluation.report", entity_type="evaluation",
                     entity_id=evaluation_id, project_id=m.project_id,
                     details={"model": m.name, "version": v.number, "rows": [len(reference), len(current)]})
    return Report(file_name=f"{m.name}-v{v.number}-{ev.window_start:%Y%m%d}-drift.html", html=html)

