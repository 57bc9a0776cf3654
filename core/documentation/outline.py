"""The documentation's structure, decided once for every format: which sections, and in them which
paragraphs, facts, tables and charts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.documentation import charts
from core.documentation.blocks import (
    Chart,
    Facts,
    Outline,
    Para,
    Section,
    Table,
    amount,
    day,
    num,
    when,
    window,
)

if TYPE_CHECKING:
    from core.documentation.facts import ModelDocumentation
    from core.monitoring.evaluation_store import EvaluationRead

KEY_METRICS = {
    "binary": ("roc_auc", "pr_auc", "precision", "recall", "f1", "accuracy"),
    "regression": ("mae", "rmse", "r2", "mape"),
}
TREND_METRICS = {"binary": ("roc_auc", "precision", "recall", "f1"), "regression": ("mae", "rmse")}
ROLE_NAMES = {"business": "Business", "data_scientist": "Data science", "ml_engineer": "ML engineering",
              "risk_manager": "Risk & compliance", "it_ops": "IT & operations", "admin": "Administration"}


def _flat(values: dict, prefix: str = "") -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.extend(_flat(value, prefix=f"{name}."))
        else:
            out.append((name, value))
    return out


def _chart(blocks: list, title: str, spec: dict | None) -> None:
    if spec is not None:
        blocks.append(Chart(title=title, spec=spec))


def context_section(d: ModelDocumentation) -> Section:
    p = d.project
    contacts = "; ".join(f"{c.get('name', '')} <{c.get('email', '')}> ({c.get('role', '')})" for c in p.contacts)
    blocks: list = [Facts(rows=(
        ("Project", f"{p.name} ({p.key})"), ("Business initiative", p.initiative or "—"),
        ("Sponsor", p.sponsor or "—"), ("Owner", p.owner or "—"), ("Risk level", p.risk_level),
        ("Blueprint", p.blueprint or "—"), ("Blueprint stage", p.stage), ("Contacts", contacts or "—"),
        ("Model", d.model.name), ("Task", d.model.task), ("Target", d.model.target),
        ("Version", f"v{d.version.number} ({d.version.status})"), ("Origin", d.version.origin),
    ))]
    blocks.append(Para(f"Project description: {p.description or 'none recorded.'}"))
    blocks.append(Para(f"Scope: {p.scope or 'none recorded.'}"))
    if d.initiative_description:
        blocks.append(Para(f"Initiative: {d.initiative_description}"))
    if d.model_description:
        blocks.append(Para(f"Model description: {d.model_description}"))
    return Section("Purpose and business context", tuple(blocks))


def data_section(d: ModelDocumentation) -> Section:
    v = d.version
    blocks: list = [Facts(rows=(
        ("Training window", f"{day(v.training_start)} → {day(v.training_end)}"
         if v.training_start or v.training_end else "not recorded"),
        ("Reference sample", f"{num(v.reference_rows)} rows"), ("Reference sha256", v.reference_sha256),
        ("Data fingerprint", v.data_fingerprint or "—"),
        ("Fields", f"{sum(f.role == 'feature' for f in d.fields)} features and the target {d.model.target}"),
    ))]
    numeric = [f for f in d.fields if f.type == "numeric" and f.stats and f.stats[0][0] == "mean"]
    other = [f for f in d.fields if f not in numeric]
    if numeric:
        blocks.append(Table(columns=("field", "role", "type", "rows", "missing", "mean", "std", "min", "median", "max"),
                            rows=tuple((f.name, f.role, f.type, num(f.count), num(f.missing),
                                        *(num(v) for _k, v in f.stats)) for f in numeric),
                            caption="Numeric fields in the reference sample"))
    if other:
        blocks.append(Table(columns=("field", "role", "type", "rows", "missing", "distinct", "most common values"),
                            rows=tuple((f.name, f.role, f.type, num(f.count), num(f.missing), num(f.stats[0][1]),
                                        ", ".join(f"{k[5:]} ({val:.1%})" for k, val in f.stats[1:]))
                                       for f in other),
                            caption="Categorical fields in the reference sample"))
    return Section("Data", tuple(blocks))


def recipe_section(d: ModelDocumentation) -> Section:
    v = d.version
    blocks: list = [Facts(rows=(
        ("Created by", v.created_by), ("Created", when(v.created_at)), ("Origin", v.origin),
        ("Triggered by", d.triggered_by or "—"),
    ))]
    # A recipe often repeats its hyperparameters; they are listed once, in their own table.
    recipe = _flat({k: val for k, val in v.recipe.items() if not (k == "params" and v.params)})
    blocks.append(Table(columns=("recipe", "value"), rows=tuple((k, num(val)) for k, val in recipe),
                        caption="Training recipe") if recipe else Para("No training recipe recorded "
                                                                       "(the model was built outside Watchtower).", "note"))
    params = _flat(v.params)
    blocks.append(Table(columns=("parameter", "value"), rows=tuple((k, num(val)) for k, val in params),
                        caption="Hyperparameters") if params else Para("No hyperparameters recorded.", "note"))
    return Section("Training recipe and parameters", tuple(blocks))


def _metric_names(windows: tuple[EvaluationRead, ...], task: str, source: str) -> list[str]:
    seen: list[str] = []
    for w in windows:
        for k, value in getattr(w, source).items():
            if k not in seen and isinstance(value, (int, float)):
                seen.append(k)
    key = [m for m in KEY_METRICS.get(task, ()) if m in seen]
    return key + [m for m in seen if m not in key]


def _training_table(training: dict) -> Table:
    """Held-out metrics beside the same metrics on the training split (recorded as train_<metric>)."""
    split = any(k.startswith("train_") for k in training)
    held_out = [k for k in training if not k.startswith("train_")]
    if split:
        return Table(columns=("metric", "held out", "training split"),
                     rows=tuple((k, num(training[k]), num(training.get(f"train_{k}"))) for k in held_out),
                     caption="Performance at training")
    return Table(columns=("metric", "at training"), rows=tuple((k, num(training[k])) for k in held_out),
                 caption="Performance at training (held-out data)")


def _trend_blocks(d: ModelDocumentation, windows: tuple[EvaluationRead, ...], training: dict, whose: str) -> list:
    task = d.model.task
    metrics = _metric_names(windows, task, "metrics")[:6]
    blocks: list = [Table(columns=("window", "rows", "labelled", *metrics),
                          rows=tuple((window(w.window_start, w.window_end), num(w.rows), num(w.labelled_rows),
                                      *(num(w.metrics.get(m)) for m in metrics)) for w in windows),
                          caption=f"{whose}: the latest {len(windows)} evaluation windows ({windows[0].granularity})")]
    trend = [m for m in TREND_METRICS.get(task, ()) if m in metrics] or metrics[:3]
    _chart(blocks, f"{whose}: performance per window against training",
           charts.metric_trend(windows, metrics=trend, baseline=training,
                                   title=f"{whose}: performance per window (dashed: v{d.version.number} at training)"))
    estimated = _metric_names(windows, task, "estimated_metrics")[:6]
    if estimated:
        blocks.append(Table(columns=("window", *estimated),
                            rows=tuple((window(w.window_start, w.window_end),
                                        *(num(w.estimated_metrics.get(m)) for m in estimated)) for w in windows),
                            caption=f"{whose}: estimated performance before labels arrived"))
    return blocks


def _comparison_note(d: ModelDocumentation) -> Para:
    return Para(f"Version {d.version.number} has no evaluation window of its own yet (no labelled traffic has been "
                f"scored by it). For comparison, the windows of the active version {d.comparison_version} follow; "
                f"they measure v{d.comparison_version}, not v{d.version.number}.", "note")


def performance_section(d: ModelDocumentation) -> Section:
    training = dict(_flat(d.version.training_metrics))
    blocks: list = [Para(f"Decision threshold {d.model.decision_threshold:g} on the score; task {d.model.task}, "
                         f"target {d.model.target}.")]
    blocks.append(_training_table(training) if training else Para("No metrics were recorded at training.", "note"))
    if d.latest is None:
        if d.comparison_windows:
            blocks.append(_comparison_note(d))
            blocks += _trend_blocks(d, d.comparison_windows, training, f"Active v{d.comparison_version}")
        else:
            blocks.append(Para("No evaluation window has been stored for this version yet.", "note"))
        return Section("Performance", tuple(blocks))
    latest = d.latest
    names = list(dict.fromkeys([*latest.metrics, *training]))
    blocks.append(Table(
        columns=("metric", "at training", "latest window", "change"),
        rows=tuple((m, num(training.get(m)), num(latest.metrics.get(m)), _change(training.get(m), latest.metrics.get(m)))
                   for m in names if m in latest.metrics),
        caption=f"Latest evaluation, {window(latest.window_start, latest.window_end)}: {num(latest.rows)} rows, "
                f"{num(latest.labelled_rows)} labelled"))
    blocks += _trend_blocks(d, d.windows, training, f"v{d.version.number}")
    return Section("Performance", tuple(blocks))


def _change(before: object, after: object) -> str:
    if isinstance(before, (int, float)) and isinstance(after, (int, float)) and not isinstance(before, bool):
        return f"{after - before:+.4f}"
    return "—"


def _definition(metric: dict) -> str:
    if metric.get("kind") == "cost_matrix":
        return "value per outcome: " + ", ".join(f"{k.upper()} {amount(metric.get(k, 0))}" for k in ("tp", "fp", "fn", "tn"))
    if metric.get("kind") == "amount_sum":
        return (f"sum of {metric.get('column', '?')} where label is {metric.get('label', '?')} "
                f"and prediction is {metric.get('prediction', '?')}")
    return ", ".join(f"{k} {num(v)}" for k, v in metric.items() if k not in ("name", "label_text", "better"))


def business_section(d: ModelDocumentation) -> Section:
    defs = d.model.business_metrics
    if not defs:
        return Section("Business metrics", (Para("No business metrics are declared on this model.", "note"),))
    training = dict(_flat(d.version.training_metrics))
    blocks: list = [Table(columns=("metric", "meaning", "definition", "better", "at training"),
                          rows=tuple((m.get("name", ""), m.get("label_text", "") or "—", _definition(m),
                                      m.get("better", "—"), amount(training.get(m.get("name", ""))))
                                     for m in defs),
                          caption="Business metrics declared on the model")]
    windows, whose = d.windows, f"v{d.version.number}"
    if not windows and d.comparison_windows:
        blocks.append(_comparison_note(d))
        windows, whose = d.comparison_windows, f"Active v{d.comparison_version}"
    if not windows:
        blocks.append(Para("No evaluation window has been stored yet, so no business metric has been measured.", "note"))
        return Section("Business metrics", tuple(blocks))
    names = [m.get("name", "") for m in defs]
    blocks.append(Table(columns=("window", *names),
                        rows=tuple((window(w.window_start, w.window_end), *(amount(w.business_metrics.get(n)) for n in names))
                                   for w in windows),
                        caption=f"{whose}: business metrics per evaluation window"))
    for m in defs:
        label = m.get("label_text") or m.get("name", "")
        _chart(blocks, f"{whose}: {label} per window",
               charts.metric_trend(windows, metrics=[m.get("name", "")], baseline=training,
                                       source="business_metrics", title=f"{whose}: {label} per window"))
    return Section("Business metrics", tuple(blocks))


def drift_section(d: ModelDocumentation) -> Section:
    if d.latest is None or not d.field_drift:
        return Section("Drift per field", (Para("No drift has been measured for this version yet.", "note"),))
    latest = d.latest
    drifted = [f.field for f in d.field_drift if f.drifted]
    share = "—" if latest.drift_share is None else f"{latest.drift_share:.0%}"
    blocks: list = [Para(f"Latest evaluation {window(latest.window_start, latest.window_end)} against the reference sample: "
                         f"{len(drifted)} of {len(d.field_drift)} fields drifted (share {share})"
                         + (f": {', '.join(drifted)}." if drifted else "."),
                         "warning" if drifted else "")]
    blocks.append(Table(columns=("field", "type", "method", "threshold", "score", "drifted"),
                        rows=tuple((f.field, f.type, f.method, num(f.threshold), num(f.score), num(f.drifted))
                                   for f in d.field_drift)))
    _chart(blocks, "Drift score per field", charts.drift_bars(
        d.field_drift, title="Drift score per field (tick: threshold)"))
    return Section("Drift per field", tuple(blocks))


def diagnostics_section(d: ModelDocumentation) -> Section:
    a = d.assessment
    blocks: list = [Para(a.note, "warning" if d.version.artifact_path else "note")] if a.note else []
    if a.diagnostics:
        blocks.append(Table(columns=("diagnostic", "verdict", "reason"),
                            rows=tuple((g.name, g.status, g.reason) for g in a.diagnostics),
                            caption=f"Computed on {a.data}" if a.data else ""))
        failing = [g.name for g in a.diagnostics if g.status != "pass"]
        if failing:
            blocks.append(Para(f"Not passing: {', '.join(failing)}.", "warning"))
    if a.calibration is not None:
        _chart(blocks, "Reliability curve", charts.reliability(
            a.calibration, title=f"Reliability (Brier {a.calibration.brier:.4f}, calibration error "
                                 f"{a.calibration.ece:.4f})"))
    if a.challenger is not None:
        c = a.challenger
        blocks.append(Para(f"Champion / challenger: {c.verdict.replace('_', ' ')}. {c.reason}"))
        if c.metrics:
            blocks.append(Table(columns=("metric", f"champion v{c.champion}", f"challenger v{c.challenger}"),
                                rows=tuple((k, num(x), num(y)) for k, x, y in c.metrics)
                                + tuple((label, amount(x), amount(y)) for label, x, y, _better in c.business),
                                caption=f"On the same data: {c.data}"))
        if c.segments:
            blocks.append(Table(columns=("segment (where the champion lost most)", "rows", "metric",
                                         f"champion v{c.champion}", f"challenger v{c.challenger}", "outcome"),
                                rows=tuple((g.segment, f"{g.rows:,}", g.metric, num(g.champion), num(g.challenger),
                                            g.outcome) for g in c.segments),
                                caption="Top segments of the champion's recent evaluation windows, on the same data"))
    if not blocks:
        blocks.append(Para("No diagnostics available.", "note"))
    return Section("Diagnostics", tuple(blocks))


def importance_section(d: ModelDocumentation) -> Section:
    a = d.assessment
    if not a.importance:
        return Section("Global importance", (Para(a.note or "No importance available.", "note"),))
    metric = "ROC AUC" if d.model.task == "binary" else "R²"
    blocks: list = [Para(f"Permutation importance: the drop in {metric} when each feature is shuffled, "
                         f"on {a.data}.")]
    blocks.append(Table(columns=("feature", "importance", "std"),
                        rows=tuple((i.feature, num(i.mean), num(i.std)) for i in a.importance)))
    _chart(blocks, "Global importance", charts.importance_bars(a.importance, title="Global importance"))
    return Section("Global importance", tuple(blocks))


def deployments_section(d: ModelDocumentation) -> Section:
    if not d.deployments:
        return Section("Deployments", (Para(f"Version {d.version.number} has never been deployed.", "note"),))
    return Section("Deployments", (Table(
        columns=("environment", "deployed", "by", "running", "ended", "note"),
        rows=tuple((x.environment, when(x.since), x.deployed_by, num(x.active), when(x.ended_at),
                    " ".join(t for t in (x.note, x.warning) if t) or "—") for x in d.deployments)),))


def review_section(d: ModelDocumentation) -> Section:
    if not d.reviews:
        return Section("Review and sign-off", (Para("No review has been requested for this version.", "note"),))
    blocks: list = []
    for r in d.reviews:
        blocks.append(Facts(rows=(
            ("Review", f"#{r.id} at stage {r.stage}"), ("State", r.state),
            ("Requested", f"{when(r.requested_at)} by {r.requested_by}"),
            ("Feedback required from", ", ".join(ROLE_NAMES.get(x, x) for x in r.required_roles) or "—"),
            ("Awaiting feedback from", ", ".join(ROLE_NAMES.get(x, x) for x in r.missing_roles) or "nobody"),
            ("Final approver", ROLE_NAMES.get(r.final_approver_role, r.final_approver_role)
             or "none (the sign-offs suffice)"),
            ("Decision", f"{r.state} by {r.decided_by} on {when(r.decided_at)}" if r.decided_by else "pending"),
            *((("Outcome", r.outcome),) if r.outcome else ()),
        )))
        if r.decision_comment:
            blocks.append(Para(f"Decision comment: {r.decision_comment}"))
        if r.signoffs:
            blocks.append(Table(columns=("role", "reviewer", "feedback", "comment", "when"),
                                rows=tuple((ROLE_NAMES.get(s.role, s.role), s.reviewer, s.verdict, s.comment or "—",
                                            when(s.at)) for s in r.signoffs),
                                caption=f"Feedback on review #{r.id}"))
        else:
            blocks.append(Para(f"No feedback has been given on review #{r.id} yet.", "note"))
    return Section("Review and sign-off", tuple(blocks))


def audit_section(d: ModelDocumentation) -> Section:
    if not d.audit:
        return Section("Audit trail", (Para("No recorded actions on this version.", "note"),))
    return Section("Audit trail", (Table(
        columns=("#", "when", "who", "action", "entity", "details"),
        rows=tuple((str(e.seq), when(e.at), e.actor, e.action, f"{e.entity_type} {e.entity_id}",
                    _short(num(e.details) if e.details else "—")) for e in d.audit),
        caption="Newest first, from the hash-chained audit trail"),))


def _short(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def document_section(d: ModelDocumentation) -> Section:
    return Section("About this document", (Facts(rows=(
        ("Generated", when(d.generated_at)), ("Generated by", d.generated_by),
        ("Artifact sha256", d.version.artifact_sha256 or "none (external model, no artifact)"),
        ("Reference sha256", d.version.reference_sha256),
    )), Para("Generated from Watchtower's records. It is out of date as soon as a newer evaluation of this "
             "version is stored; generate it again to see the latest windows.", "note")))


def build(d: ModelDocumentation) -> Outline:
    """The documentation of one version, section by section."""
    sections = tuple(f(d) for f in (context_section, data_section, recipe_section, performance_section,
                                    business_section, drift_section, diagnostics_section, importance_section,
                                    deployments_section, review_section, audit_section, document_section))
    subtitle = (f"{d.project.name} ({d.project.key}) · version {d.version.number} ({d.version.status}) · "
                f"generated {when(d.generated_at)} by {d.generated_by} · artifact sha256 "
                f"{d.version.artifact_sha256 or 'none'}")
    return Outline(title=f"Model documentation: {d.model.name} v{d.version.number}", subtitle=subtitle,
                   sections=sections)
