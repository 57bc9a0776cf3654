"""Checks: a rule on a model's evaluations (metric, drift, business metric, data quality), its results and history."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, select

from core import audit
from core.access import Actor, require
from core.entities import ROLES, Channel, Check, CheckResult, Evaluation, Model, ModelVersion, Project, User
from core.errors import Conflict, InvalidInput, NotFound
from core.monitoring import slice_findings, slices
from core.projects.projects import project_row

BINARY_METRICS = ("roc_auc", "pr_auc", "precision", "recall", "f1", "accuracy", "log_loss", "brier", "positive_rate")
REGRESSION_METRICS = ("mae", "rmse", "r2", "mape")
LOWER_IS_BETTER = frozenset({"log_loss", "brier", "mae", "rmse", "mape"})
METRIC_LABELS = {"roc_auc": "AUC", "pr_auc": "PR AUC", "precision": "precision", "recall": "recall", "f1": "F1",
                 "accuracy": "accuracy", "log_loss": "log loss", "brier": "Brier score",
                 "positive_rate": "positive rate", "mae": "MAE", "rmse": "RMSE", "r2": "R²", "mape": "MAPE"}
# Kinds measured on an evaluation window; "endpoint" is measured by a probe of a scoring endpoint instead.
WINDOW_KINDS = ("metric", "metric_drop", "drift_share", "field_drift", "business", "missing_rate", "volume",
                "estimated")
CHECK_KINDS = (*WINDOW_KINDS, "endpoint")
SEVERITIES = ("warning", "error")
CONDITIONS = ("gte", "lte")
TICKS = {"pass": "✅", "error": "❌", "warning": "⚠️", "no_data": "⬜"}


@dataclass(frozen=True)
class CheckRead:
    id: int
    project_id: int
    model: str | None
    name: str
    kind: str
    metric: str
    field: str | None
    condition: str
    threshold: float
    severity: str
    audience_roles: tuple[str, ...]
    audience_users: tuple[str, ...]
    channels: tuple[str, ...]
    description: str
    business_wording: str
    enabled: bool
    slice_conditions: tuple[dict, ...] = ()  # a check on one segment of the data; empty for the whole window

    @property
    def rule(self) -> str:
        """The rule in a few words, e.g. 'AUC ≥ 0.8' or 'AUC drop ≤ 5%'."""
        return describe_rule(kind=self.kind, metric=self.metric, field=self.field, condition=self.condition,
                             threshold=self.threshold, slice_conditions=self.slice_conditions)


@dataclass(frozen=True)
class CheckResultRead:
    id: int
    check_id: int
    check_name: str
    evaluation_id: int | None
    at: datetime
    value: float | None
    passed: bool | None
    status: str
    message: str


@dataclass(frozen=True)
class CheckHistory:
    check: CheckRead
    ticks: tuple[CheckResultRead, ...]  # oldest first

    @property
    def icons(self) -> str:
        return "".join(TICKS.get(t.status, "⬜") for t in self.ticks)

    @property
    def latest(self) -> str:
        return self.ticks[-1].status if self.ticks else "no_data"


def label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric.replace("_", " "))


def describe_rule(*, kind: str, metric: str, field: str | None, condition: str, threshold: float,
                  slice_conditions: list[dict] | tuple[dict, ...] = ()) -> str:
    if slice_conditions:
        segment = slices.describe([slices.Condition.from_dict(c) for c in slice_conditions])
        whole = describe_rule(kind=kind, metric=metric, field=field, condition=condition, threshold=threshold)
        return f"{whole} where {segment}"
    op = "≥" if condition == "gte" else "≤"
    if kind == "metric_drop":
        return f"{label(metric)} drop from training ≤ {threshold:.0%}"
    if kind == "drift_share":
        return f"share of drifted fields ≤ {threshold:.0%}"
    if kind == "field_drift":
        return f"no drift in {field}"
    if kind == "missing_rate":
        return f"missing values in {field or 'any field'} ≤ {threshold:.1%}"
    if kind == "volume":
        return f"rows per window {op} {threshold:,.0f}"
    if kind == "estimated":
        return f"estimated {label(metric)} {op} {threshold:g}"
    if kind == "endpoint":
        return f"endpoint {metric} answers healthy"
    return f"{label(metric)} {op} {threshold:g}"


def check_read(c: Check, model_name: str | None) -> CheckRead:
    return CheckRead(id=c.id, project_id=c.project_id, model=model_name, name=c.name, kind=c.kind, metric=c.metric,
                     field=c.field, condition=c.condition, threshold=c.threshold, severity=c.severity,
                     audience_roles=tuple(c.audience_roles), audience_users=tuple(c.audience_users),
                     channels=tuple(c.channels), description=c.description, business_wording=c.business_wording,
                     enabled=c.enabled, slice_conditions=tuple(c.slice_conditions or ()))


def result_read(r: CheckResult, check_name: str) -> CheckResultRead:
    return CheckResultRead(id=r.id, check_id=r.check_id, check_name=check_name, evaluation_id=r.evaluation_id,
                           at=r.at, value=r.value, passed=r.passed, status=r.status, message=r.message)


def _number(value: object, what: str) -> float:
    if isinstance(value, bool):
        raise InvalidInput(f"{what} {value!r} is not a number")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidInput(f"{what} {value!r} is not a number") from None
    if not math.isfinite(number):
        raise InvalidInput(f"{what} {value!r} is not a finite number")
    return number


def render_wording(wording: str, *, value: float | None, threshold: float, window_end: datetime | None,
                   project: str, model: str | None) -> str:
    """Fill a business wording such as 'Fraud missed this week: {value:,.0f} EUR (limit {threshold:,.0f})'."""
    return wording.format(value=value if value is not None else float("nan"), threshold=threshold,
                          window_end=window_end.strftime("%d %b %Y") if window_end else "", project=project,
                          model=model or "")


def _validate_metric(kind: str, metric: str, models: list[Model]) -> None:
    tasks = {m.task for m in models} or {"binary", "regression"}
    known = [*(BINARY_METRICS if "binary" in tasks else ()), *(REGRESSION_METRICS if "regression" in tasks else ())]
    if kind == "business":
        declared = sorted({b["name"] for m in models for b in m.business_metrics})
        if metric not in declared:
            names = ", ".join(m.name for m in models) or "the project"
            raise InvalidInput(f"{names} has no business metric {metric!r} (declared: {', '.join(declared) or 'none'})")
        return
    if metric not in known:
        names = ", ".join(m.name for m in models) or "the project"
        raise InvalidInput(f"{names} has no metric {metric!r} (metrics: {', '.join(known)})")
    if kind == "metric_drop" and metric == "positive_rate":
        raise InvalidInput("positive_rate has no better direction; use an absolute metric check for it")


SEGMENT_OPS = ("<", ">=", "between", "=", "other", "missing")


def _validate_segment(conditions: list[dict], kind: str, model: Model | None) -> list[dict]:
    """Slice conditions of a segment check, checked against the model's features; [] for the whole window."""
    if not conditions:
        return []
    if model is None:
        raise InvalidInput("a check on a segment names its model")
    if kind not in ("metric", "business"):
        raise InvalidInput(f"a segment check measures a metric or a business metric, not {kind}")
    if len(conditions) > slices.MAX_LEVEL:
        raise InvalidInput(f"a segment has at most {slices.MAX_LEVEL} conditions, not {len(conditions)}")
    names = {f["name"] for f in model.features}
    out = []
    for i, c in enumerate(conditions, 1):
        if not isinstance(c, dict) or c.get("field") not in names:
            raise InvalidInput(f"segment condition {i} names no feature of {model.name}: {c!r}")
        if c.get("op") not in SEGMENT_OPS:
            raise InvalidInput(f"segment condition {i} has operator {c.get('op')!r}; "
                               f"operators are {', '.join(SEGMENT_OPS)}")
        if c["op"] in ("<", ">=", "between") and not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                for v in ([c.get("value")] + ([c.get("upper")] if c["op"] == "between" else []))):
            raise InvalidInput(f"segment condition {i} ({c['field']} {c['op']}) needs a finite number")
        out.append(slices.Condition.from_dict(c).as_dict())
    return out


def _validate_audience(session: Session, roles: list[str], users: list[str], channels: list[str]) -> None:
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise InvalidInput(f"unknown audience role(s) {', '.join(unknown)}; roles are {', '.join(ROLES)}")
    if users:
        found = set(session.exec(select(User.username).where(User.username.in_(users), User.active)).all())
        missing = [u for u in users if u not in found]
        if missing:
            raise InvalidInput(f"unknown audience user(s) {', '.join(missing)}")
    if not roles and not users:
        raise InvalidInput("a check needs an audience: at least one role or user")
    if channels:
        found = set(session.exec(select(Channel.name).where(Channel.name.in_(channels))).all())
        missing = [c for c in channels if c not in found]
        if missing:
            raise InvalidInput(f"unknown channel(s) {', '.join(missing)}")


def define_check(*, session: Session, actor: Actor, project_key: str, name: str, kind: str,
                 model: str | None = None, metric: str = "", field: str | None = None, condition: str | None = None,
                 threshold: object = 0.0, severity: str = "error", audience_roles: list[str] | None = None,
                 audience_users: list[str] | None = None, channels: list[str] | None = None,
                 description: str = "", business_wording: str = "",
                 slice_conditions: list[dict] | None = None) -> CheckRead:
    """Define a check on a project (or one of its models); every part is validated before anything is written.

    With slice conditions, the metric is measured on that segment of each window only ("watch this segment")."""
    require(actor, "monitoring.manage")
    project = project_row(session, project_key)
    name = name.strip()
    if not name:
        raise InvalidInput("a check needs a name")
    if kind not in CHECK_KINDS:
        raise InvalidInput(f"check kind {kind!r} is not one of {', '.join(CHECK_KINDS)}")
    if severity not in SEVERITIES:
        raise InvalidInput(f"severity {severity!r} is not one of {', '.join(SEVERITIES)}")
    models = list(session.exec(select(Model).where(Model.project_id == project.id)).all())
    model_row = None
    if model:
        model_row = next((m for m in models if m.name == model), None)
        if model_row is None:
            raise NotFound(f"project {project.key} has no model {model!r}")
        models = [model_row]
    threshold_value = _number(threshold, "threshold")
    if condition is None:
        condition = "gte" if kind in ("metric", "estimated", "volume") and metric not in LOWER_IS_BETTER else "lte"
        if kind == "business":
            declared = {b["name"]: b for m in models for b in m.business_metrics}
            condition = "gte" if declared.get(metric, {}).get("better") == "higher" else "lte"
    if condition not in CONDITIONS:
        raise InvalidInput(f"condition {condition!r} is not one of {', '.join(CONDITIONS)}")
    if kind in ("metric", "metric_drop", "estimated", "business"):
        _validate_metric(kind, metric, models)
    if kind == "estimated" and metric in REGRESSION_METRICS:
        raise InvalidInput(f"estimated {metric} is not available: estimates exist for binary classifiers only")
    if kind in ("metric_drop", "drift_share", "missing_rate") and not 0.0 <= threshold_value <= 1.0:
        raise InvalidInput(f"threshold {threshold_value:g} for a {kind} check is a share and must lie between 0 and 1")
    if kind in ("metric_drop", "drift_share", "missing_rate", "field_drift"):
        condition = "lte"
    if kind == "volume" and threshold_value < 0:
        raise InvalidInput(f"expected volume {threshold_value:g} cannot be negative")
    if kind == "field_drift" or (kind == "missing_rate" and field):
        names = {f["name"] for m in models for f in m.features}
        if not field or field not in names:
            raise InvalidInput(f"field {field!r} is not a feature of {', '.join(m.name for m in models) or 'the project'}")
    if kind == "endpoint" and not metric.strip():
        raise InvalidInput("an endpoint check names the environment whose endpoint it probes (metric)")
    segment = _validate_segment(list(slice_conditions or []), kind, model_row)
    roles, users, chans = list(audience_roles or []), list(audience_users or []), list(channels or [])
    _validate_audience(session, roles, users, chans)
    if business_wording:
        try:
            render_wording(business_wording, value=1.0, threshold=threshold_value, window_end=None,
                           project=project.key, model=model)
        except (KeyError, IndexError, ValueError) as exc:
            raise InvalidInput(f"business wording has an unknown placeholder or format: {exc}; "
                               "use {value}, {threshold}, {window_end}, {project}, {model}") from None
    if session.exec(select(Check).where(Check.project_id == project.id, Check.name == name)).first():
        raise Conflict(f"project {project.key} already has a check named {name!r}")
    check = Check(project_id=project.id, model_id=model_row.id if model_row else None, name=name, kind=kind,
                  metric=metric, field=field, condition=condition, threshold=threshold_value, severity=severity,
                  audience_roles=roles, audience_users=users, channels=chans, description=description,
                  business_wording=business_wording, slice_conditions=segment)
    session.add(check)
    session.flush()
    audit.record(session, actor=actor.username, action="check.define", entity_type="check", entity_id=check.id,
                 project_id=project.id, details={"name": name, "kind": kind, "metric": metric, "field": field,
                                                 "condition": condition, "threshold": threshold_value,
                                                 "severity": severity, "audience": roles + users,
                                                 **({"segment": segment} if segment else {})})
    return check_read(check, model)


def set_enabled(*, session: Session, actor: Actor, check_id: int, enabled: bool) -> CheckRead:
    """Switch a check on or off (its history stays)."""
    require(actor, "monitoring.manage")
    check = session.get(Check, check_id)
    if check is None:
        raise NotFound(f"no check {check_id}")
    check.enabled = enabled
    session.add(check)
    audit.record(session, actor=actor.username, action="check.enable" if enabled else "check.disable",
                 entity_type="check", entity_id=check.id, project_id=check.project_id, details={"name": check.name})
    model = session.get(Model, check.model_id) if check.model_id else None
    return check_read(check, model.name if model else None)


def list_checks(*, session: Session, project_key: str, model: str | None = None) -> list[CheckRead]:
    project = project_row(session, project_key)
    names = {m.id: m.name for m in session.exec(select(Model).where(Model.project_id == project.id)).all()}
    q = select(Check).where(Check.project_id == project.id).order_by(Check.name)
    rows = [c for c in session.exec(q).all() if model is None or c.model_id is None or names.get(c.model_id) == model]
    return [check_read(c, names.get(c.model_id)) for c in rows]


def get_check(*, session: Session, check_id: int) -> CheckRead:
    check = session.get(Check, check_id)
    if check is None:
        raise NotFound(f"no check {check_id}")
    model = session.get(Model, check.model_id) if check.model_id else None
    return check_read(check, model.name if model else None)



# --- evaluating checks on a window ------------------------------------------------------------------

def _finite(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _compare(value: float | None, check: Check) -> bool | None:
    if value is None:
        return None
    return value >= check.threshold if check.condition == "gte" else value <= check.threshold


def _measure_segment(session: Session, check: Check, ev: Evaluation) -> tuple[float | None, bool | None, str]:
    value, rows = slice_findings.slice_value(session=session, evaluation_id=ev.id, conditions=check.slice_conditions,
                                             kind=check.kind, metric=check.metric)
    name = check.metric.replace("_", " ") if check.kind == "business" else label(check.metric)
    if value is None:
        return None, None, f"no {name} on the segment ({rows:,} labelled rows in it)"
    shown = f"{value:,.2f}" if check.kind == "business" else f"{value:.3f}"
    return value, _compare(value, check), f"{name} {shown} on the segment ({rows:,} labelled rows)"


def _measure(check: Check, ev: Evaluation, baseline: dict) -> tuple[float | None, bool | None, str]:
    """(value, passed, what was seen) for one window; passed is None when the window lacks the data."""
    kind, metric = check.kind, check.metric
    if kind in ("metric", "estimated"):
        value = _finite((ev.metrics if kind == "metric" else ev.estimated_metrics).get(metric))
        prefix = "estimated " if kind == "estimated" else ""
        seen = f"{prefix}{label(metric)} {value:.3f}" if value is not None else f"no {prefix}{label(metric)} yet"
        return value, _compare(value, check), seen
    if kind == "metric_drop":
        current, base = _finite(ev.metrics.get(metric)), _finite(baseline.get(metric))
        if current is None or not base:
            return None, None, f"no {label(metric)} in this window or at training"
        drop = ((current - base) if metric in LOWER_IS_BETTER else (base - current)) / abs(base)
        return drop, drop <= check.threshold, (f"{label(metric)} {current:.3f} against {base:.3f} at training "
                                               f"({drop:.1%} worse)" if drop > 0 else
                                               f"{label(metric)} {current:.3f}, not below {base:.3f} at training")
    if kind == "drift_share":
        value = _finite(ev.drift_share)
        seen = f"{ev.drifted_fields} drifted field(s), {value:.0%} of fields" if value is not None else "no drift data"
        return value, _compare(value, check), seen
    if kind == "field_drift":
        entry = next((f for f in ev.field_drift if f.get("field") == check.field), None)
        if entry is None:
            return None, None, f"no drift data for {check.field}"
        score, drifted = _finite(entry.get("score")), bool(entry.get("drifted"))
        return score, not drifted, (f"{check.field} {'drifted' if drifted else 'stable'}: {entry.get('method', '')} "
                                    f"score {score if score is not None else float('nan'):.3f} "
                                    f"(threshold {entry.get('threshold')})")
    if kind == "business":
        value = _finite(ev.business_metrics.get(metric))
        seen = f"{metric.replace('_', ' ')} {value:,.2f}" if value is not None else f"no {metric} yet"
        return value, _compare(value, check), seen
    if kind == "missing_rate":
        rates = {k: r for k, v in (ev.data_quality.get("missing_rate") or {}).items() if (r := _finite(v)) is not None}
        if check.field:
            value, where = rates.get(check.field), check.field
        else:
            where = max(rates, key=rates.get) if rates else ""
            value = rates.get(where)
        seen = f"missing values in {where}: {value:.1%}" if value is not None else "no data-quality figures"
        return value, _compare(value, check), seen
    if kind == "volume":
        value = float(ev.data_quality.get("rows", ev.rows))
        return value, _compare(value, check), f"{value:,.0f} rows in the window"
    return None, None, f"{kind} checks are not measured on evaluation windows"


def run_checks(*, session: Session, actor: Actor, evaluation_id: int) -> list[CheckResultRead]:
    """Run the model's and project's enabled checks on one evaluation; a result is recorded once per window."""
    require(actor, "monitoring.manage")
    ev = session.get(Evaluation, evaluation_id)
    if ev is None:
        raise NotFound(f"no evaluation {evaluation_id}")
    version = session.get(ModelVersion, ev.model_version_id)
    model = session.get(Model, version.model_id)
    checks = session.exec(select(Check).where(Check.project_id == model.project_id, Check.enabled,
                                              Check.kind.in_(WINDOW_KINDS))
                          .where((Check.model_id == model.id) | (Check.model_id.is_(None))).order_by(Check.id)).all()
    existing = {r.check_id: r for r in session.exec(select(CheckResult).where(CheckResult.evaluation_id == ev.id)).all()}
    window = f"{model.name} v{version.number}, window {ev.window_start:%Y-%m-%d} → {ev.window_end:%Y-%m-%d}"
    out, new = [], {}
    for check in checks:
        value, passed, seen = _measure_segment(session, check, ev) if check.slice_conditions else \
            _measure(check, ev, version.training_metrics)
        status = "no_data" if passed is None else "pass" if passed else check.severity
        result = existing.get(check.id)
        # A window re-evaluated as late labels arrived updates its result; an unchanged one keeps it.
        if result is None or (result.status, result.value) != (status, value):
            verdict = {"pass": "passed", "no_data": "has no data"}.get(status, f"failed ({status})")
            rule = describe_rule(kind=check.kind, metric=check.metric, field=check.field, condition=check.condition,
                                 threshold=check.threshold, slice_conditions=check.slice_conditions)
            result = result or CheckResult(check_id=check.id, evaluation_id=ev.id, at=ev.window_end)
            result.value, result.passed, result.status = value, passed, status
            result.message = f"{check.name} {verdict}: {seen}; rule: {rule}. {window}"
            session.add(result)
            new[check.name] = status
        out.append((result, check.name))
    session.flush()
    # The segments behind each failed metric or business check, stored for the alert and the "Why?" view.
    failed = [(c.kind, c.metric) for c, (r, _n) in zip(checks, out, strict=True)
              if r.status in ("warning", "error") and not c.slice_conditions]
    if failed and new:
        slice_findings.explain_failures(session=session, actor=actor.username, evaluation_id=ev.id, failed=failed)
    if new:
        audit.record(session, actor=actor.username, action="checks.run", entity_type="evaluation", entity_id=ev.id,
                     project_id=model.project_id, details={"results": new})
    return [result_read(r, name) for r, name in out]


def record_probe(*, session: Session, check_id: int, value: float | None, passed: bool | None,
                 message: str) -> CheckResultRead:
    """Record the outcome of a probe (e.g. an endpoint health check) as a result of that check."""
    check = session.get(Check, check_id)
    if check is None:
        raise NotFound(f"no check {check_id}")
    status = "no_data" if passed is None else "pass" if passed else check.severity
    result = CheckResult(check_id=check.id, value=value, passed=passed, status=status, message=message)
    session.add(result)
    session.flush()
    return result_read(result, check.name)


# --- history -----------------------------------------------------------------------------------------

def history(*, session: Session, check_id: int, limit: int = 26) -> CheckHistory:
    """The latest `limit` results of a check, oldest first: the row of ticks."""
    check = get_check(session=session, check_id=check_id)
    rows = session.exec(select(CheckResult).where(CheckResult.check_id == check_id)
                        .order_by(CheckResult.at.desc(), CheckResult.id.desc()).limit(limit)).all()
    return CheckHistory(check=check, ticks=tuple(result_read(r, check.name) for r in reversed(rows)))


def project_histories(*, session: Session, project_key: str, limit: int = 26) -> list[CheckHistory]:
    """Every check of a project with its recent ticks."""
    return [history(session=session, check_id=c.id, limit=limit)
            for c in list_checks(session=session, project_key=project_key)]


def get_result(*, session: Session, result_id: int) -> CheckResultRead:
    result = session.get(CheckResult, result_id)
    if result is None:
        raise NotFound(f"no check result {result_id}")
    return result_read(result, session.get(Check, result.check_id).name)


# --- the standard "AI quality checks" template ---------------------------------------------------------

# Allowed degradation scales with the project's risk: stricter for high risk.
RISK_FACTOR = {"low": 1.5, "medium": 1.0, "high": 0.6}
_TEMPLATE = {
    "binary": [("auc", "metric_drop", "roc_auc", 0.05, "error"), ("recall", "metric_drop", "recall", 0.10, "error"),
               ("precision", "metric_drop", "precision", 0.10, "warning"),
               ("estimated auc", "estimated", "roc_auc", 0.05, "warning")],
    "regression": [("r2", "metric_drop", "r2", 0.10, "error"), ("rmse", "metric_drop", "rmse", 0.10, "error")],
    "any": [("data drift", "drift_share", "", 0.30, "warning"), ("missing values", "missing_rate", "", 0.05, "warning")],
}


def apply_template(*, session: Session, actor: Actor, model: str, audience_roles: list[str] | None = None,
                   channels: list[str] | None = None) -> list[CheckRead]:
    """Apply the standard AI quality checks to a model in one action; checks it already has are kept."""
    require(actor, "monitoring.manage")
    m = session.exec(select(Model).where(Model.name == model)).first()
    if m is None:
        raise NotFound(f"no model named {model!r}")
    project = session.get(Project, m.project_id)
    factor = RISK_FACTOR.get(project.risk_level, 1.0)
    version = session.exec(select(ModelVersion).where(ModelVersion.model_id == m.id)
                           .order_by(ModelVersion.number.desc())).first()
    baseline = dict(version.training_metrics) if version else {}
    taken = {c.name: c for c in session.exec(select(Check).where(Check.project_id == project.id)).all()}
    out = []
    for name, kind, metric, allowed, severity in [*_TEMPLATE[m.task], *_TEMPLATE["any"]]:
        threshold = round(allowed * factor, 4)
        if kind == "estimated":
            if _finite(baseline.get(metric)) is None:
                continue  # no training value to anchor an estimate to
            threshold = round(float(baseline[metric]) * (1 - threshold), 4)
        existing = taken.get(name)
        if existing is not None and existing.model_id not in (m.id, None):
            name = f"{m.name} {name}"
            existing = taken.get(name)
        if existing is not None:
            out.append(check_read(existing, m.name if existing.model_id else None))
            continue
        out.append(define_check(session=session, actor=actor, project_key=project.key, name=name, kind=kind,
                                model=m.name, metric=metric, threshold=threshold,
                                severity="error" if project.risk_level == "high" else severity,
                                audience_roles=list(audience_roles or ["ml_engineer", "data_scientist"]),
                                channels=list(channels or []),
                                description=f"standard AI quality check ({project.risk_level} risk)"))
    return out


# --- watching a segment --------------------------------------------------------------------------------

def watch_segment(*, session: Session, actor: Actor, evaluation_id: int, loss: str, rank: int,
                  threshold: float | None = None, audience_roles: list[str] | None = None,
                  channels: list[str] | None = None) -> CheckRead:
    """A check on the metric of one segment found in a window ("watch this segment"), added like any other."""
    require(actor, "monitoring.manage")
    finding = slice_findings.explain(session=session, actor=actor, evaluation_id=evaluation_id, loss=loss)
    segment = next((s for s in finding.segments if s["rank"] == rank), None)
    if segment is None:
        raise NotFound(f"evaluation {evaluation_id} has no segment {rank} for {loss}")
    model = session.exec(select(Model).where(Model.name == finding.model)).one()
    project = session.get(Project, model.project_id)
    rule = slice_findings.watch_suggestion(finding, segment)
    return define_check(session=session, actor=actor, project_key=project.key, model=model.name,
                        name=f"segment: {segment['text']}"[:120], kind=rule["kind"], metric=rule["metric"],
                        condition=rule["condition"], threshold=rule["threshold"] if threshold is None else threshold,
                        audience_roles=list(audience_roles or ["ml_engineer"]), channels=list(channels or []),
                        description=f"{label(rule['metric'])} on the segment {segment['text']}, found in "
                                    f"{finding.window_start:%Y-%m-%d} → {finding.window_end:%Y-%m-%d}",
                        slice_conditions=segment["conditions"])
