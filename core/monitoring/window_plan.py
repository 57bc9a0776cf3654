"""One evaluation window planned as a few SQL aggregates over the lake, run by the lake's engine.

The rows of a window never reach Python. Two queries over the predictions snapshot (`preds`, pruned to the
window's days) and the labels snapshot (`labels`), at the table versions recorded in `read_versions`, return
small results that sum over partitions, so the same plan runs in DuckDB in process or on a Spark cluster:

- outcomes: predictions left-joined with their labels, grouped by score (the score itself, or one of
  SCORE_BINS bins on [0, 1) when the window is large), decision at the threshold and label class: counts,
  score sums, log-loss and Brier sums, business column sums. Confusion matrices, ROC AUC, average precision,
  CBPE estimates and business metrics follow from them. Regression models get one row of error sums.
- fields: per numeric field, the count, smallest, largest and sum of its values per distinct value, or, above
  EXACT_ROWS rows, per fine bin of the reference's range (BINS_PER_NORM bins per reference standard deviation,
  values outside the range in two more bins); per text field, the count of each value.

`drift.data_drift_counted` turns the field groups into Evidently's per-field tests and decisions. Up to
EXACT_ROWS rows every group is one distinct value and every score is Evidently's; above, scores stay within
1e-3 of them. The SQL is the subset DuckDB and Spark share (see `core.lake.engines`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa

from core.lake import engines
from core.lake import tables as lake
from core.lake.engines import identifier, literal
from core.models import metrics
from core.monitoring import drift, estimation

SCORE, PREDICTION = "__score__", "__prediction__"
EXACT_ROWS = 100_000  # up to this many rows a window's values are grouped by distinct value, above by fine bins
BINS_PER_NORM = 2_000  # bins per reference standard deviation: Wasserstein within 1e-3 of the exact distance
MAX_BINS = 1_000_000  # at most this many bins over a reference's range
SCORE_BINS = 2**18  # score bins on [0, 1) for ROC AUC and average precision above EXACT_ROWS rows
_MAX = float(np.finfo(float).max)
_EPS = float(np.finfo(float).eps)


@dataclass(frozen=True)
class Context:
    """What every window of a version is measured against: the model, its reference and calibration."""

    task: str
    threshold: float
    features: list[dict]
    business: list[dict]
    target: str
    reference: pd.DataFrame
    calibration: estimation.Calibration | None
    drift_reference: dict  # the reference's columns cleaned once for every window's drift tests


@dataclass(frozen=True)
class WindowResult:
    """What one window measured, before it is stored."""

    start: datetime
    end: datetime
    granularity: str
    rows: int
    labelled_rows: int
    metrics: dict = field(default_factory=dict)
    estimated_metrics: dict = field(default_factory=dict)
    business_metrics: dict = field(default_factory=dict)
    data_quality: dict = field(default_factory=dict)
    drift_share: float | None = None
    drifted_fields: int = 0
    prediction_drift: dict = field(default_factory=dict)
    field_drift: list[dict] = field(default_factory=list)
    read_versions: dict = field(default_factory=dict)  # the lake table versions the rows were read at


def as_text(series: pd.Series) -> pd.Series:
    """Categories as text. Whole floats read as "3", not "3.0": codes logged as numbers match a reference's
    integer categories once a mapping correction declares them categorical."""
    if pd.api.types.is_float_dtype(series):
        present = series.dropna()
        if len(present) and bool((present == present.round()).all()) and present.abs().max() < 2**53:
            series = series.astype("Int64")
    return series.astype(str).astype(object).where(series.notna(), None)


def clean(values: dict) -> dict:
    return {k: (None if v is None or not np.isfinite(v) else float(v)) for k, v in values.items()}


# --- the queries ----------------------------------------------------------------------------------------------

def _finite(expr: str) -> str:
    return f"{expr} BETWEEN {literal(-_MAX)} AND {literal(_MAX)}"


def _where(version_id: int, start: datetime, end: datetime) -> str:
    return f"p.version_id = {literal(version_id)} AND p.ts >= {literal(start)} AND p.ts < {literal(end)}"


def _amount_columns(ctx: Context, numeric: dict[str, str]) -> list[str]:
    """Business `amount_sum` columns the lake holds as numbers."""
    wanted = [b["column"] for b in ctx.business if b.get("kind") == "amount_sum" and b.get("column")]
    return [c for c in dict.fromkeys(wanted) if c in numeric]


def outcomes_sql(ctx: Context, *, where: str, numeric: dict[str, str], binned: bool) -> str:
    """Binary: one row per (score group, decision, label class); regression: one row of sums."""
    amounts = "".join(f", SUM(p.{identifier(numeric[c])}) AS {identifier('amount:' + c)}"
                      for c in _amount_columns(ctx, numeric))
    join = f"FROM preds p LEFT JOIN labels l ON l.prediction_id = p.prediction_id WHERE {where}"
    if ctx.task != "binary":
        return _regression_sql(ctx, join=join, numeric=numeric)
    key = f"CAST(FLOOR(p.score * {literal(float(SCORE_BINS))}) AS BIGINT)" if binned else "p.score"
    decided = (f"CASE WHEN p.score IS NOT NULL THEN CASE WHEN p.score >= {literal(float(ctx.threshold))} THEN 1 "
               "ELSE 0 END WHEN p.predicted = 0 THEN 0 ELSE 1 END")
    label_class = "CASE WHEN l.label IS NULL THEN -1 WHEN l.label = 0 THEN 0 ELSE 1 END"
    clipped = (f"CASE WHEN p.score < {literal(_EPS)} THEN {literal(_EPS)} WHEN p.score > {literal(1 - _EPS)} "
               f"THEN {literal(1 - _EPS)} ELSE p.score END")
    scored_label = "l.label IS NOT NULL AND p.score IS NOT NULL"
    return (f"SELECT {key} AS score_key, {decided} AS decided, {label_class} AS label_class, COUNT(*) AS n, "
            "COUNT(p.score) AS scored, SUM(p.score) AS score_sum, "
            f"SUM(CASE WHEN {scored_label} THEN l.label * LN({clipped}) + (1 - l.label) * LN(1 - {clipped}) END) "
            "AS log_sum, "
            f"SUM(CASE WHEN {scored_label} THEN (p.score - l.label) * (p.score - l.label) END) AS brier_sum"
            f"{amounts} {join} GROUP BY {key}, {decided}, {label_class}")


def _regression_sql(ctx: Context, *, join: str, numeric: dict[str, str]) -> str:
    shift = literal(float(np.nanmean(ctx.reference[ctx.target])) if ctx.target in ctx.reference and
                    len(ctx.reference) and np.isfinite(np.nanmean(ctx.reference[ctx.target])) else 0.0)
    labelled = "l.label IS NOT NULL AND p.predicted IS NOT NULL"
    err = "(p.predicted - l.label)"
    dy = f"(l.label - {shift})"
    amounts = []
    for spec in ctx.business:
        if spec.get("kind") == "amount_sum" and spec.get("column") in numeric:
            amounts.append(f", SUM(CASE WHEN l.label = {literal(float(spec.get('label', 1)))} AND p.predicted = "
                           f"{literal(float(spec.get('prediction', 0)))} THEN p.{identifier(numeric[spec['column']])} "
                           f"END) AS {identifier('amount:' + spec['name'])}")
    cells = {"tp": "l.label <> 0 AND p.predicted <> 0", "fp": "l.label = 0 AND p.predicted <> 0",
             "fn": "l.label <> 0 AND p.predicted = 0", "tn": "l.label = 0 AND p.predicted = 0"}
    confusion = "".join(f", SUM(CASE WHEN {c} THEN 1 ELSE 0 END) AS {name}" for name, c in cells.items())
    # |error| / max(|y|, eps): the divisor is never zero, so both engines agree.
    return ("SELECT COUNT(*) AS n, COUNT(l.label) AS labelled, COUNT(p.score) AS scored, "
            f"SUM(CASE WHEN {labelled} THEN 1 ELSE 0 END) AS both_known, "
            f"SUM(CASE WHEN {labelled} THEN ABS{err} END) AS abs_err, "
            f"SUM(CASE WHEN {labelled} THEN {err} * {err} END) AS sq_err, "
            f"SUM(CASE WHEN {labelled} THEN {dy} END) AS dy, SUM(CASE WHEN {labelled} THEN {dy} * {dy} END) AS dy2, "
            f"SUM(CASE WHEN {labelled} THEN ABS{err} / CASE WHEN ABS(l.label) > {literal(_EPS)} THEN ABS(l.label) "
            f"ELSE {literal(_EPS)} END END) AS ape{confusion}{''.join(amounts)} {join}")


@dataclass(frozen=True)
class _Bins:
    low: float
    high: float
    per_unit: float  # bins per unit of the field's values


def bins_for(reference: pd.Series | None) -> _Bins | None:
    """Fine bins over a numeric reference's range (None without numbers to derive them from)."""
    if reference is None or reference.empty or not pd.api.types.is_numeric_dtype(reference):
        return None
    values = reference.to_numpy(float)
    low, high = float(values.min()), float(values.max())
    width = max(float(np.std(values)), 0.001) / BINS_PER_NORM
    if (high - low) / width > MAX_BINS:
        width = (high - low) / MAX_BINS
    return _Bins(low=low, high=high, per_unit=1.0 / width)


def _numeric_select(index: int, expr: str, *, where: str, bins: _Bins | None, exact: bool) -> str:
    if exact:
        key = expr
    elif bins is None:
        key = None  # one group: the count and range are all that is needed without a reference
    else:
        key = (f"CASE WHEN {expr} < {literal(bins.low)} THEN -1 WHEN {expr} > {literal(bins.high)} THEN -2 "
               f"ELSE CAST(FLOOR(({expr} - {literal(bins.low)}) * {literal(bins.per_unit)}) AS BIGINT) END")
    return (f"SELECT {index} AS field, CAST(NULL AS STRING) AS value, COUNT(*) AS n, MIN({expr}) AS low, "
            f"MAX({expr}) AS high, SUM({expr}) AS total, "
            f"SUM(CASE WHEN {expr} = FLOOR({expr}) THEN 0 ELSE 1 END) AS fractional "
            f"FROM preds p WHERE {where} AND {_finite(expr)}" + (f" GROUP BY {key}" if key else ""))


def _text_select(index: int, expr: str, *, where: str) -> str:
    nothing = "CAST(NULL AS DOUBLE)"
    return (f"SELECT {index} AS field, {expr} AS value, COUNT(*) AS n, {nothing} AS low, {nothing} AS high, "
            f"{nothing} AS total, CAST(0 AS BIGINT) AS fractional FROM preds p WHERE {where} AND {expr} IS NOT NULL "
            f"GROUP BY {expr}")


# --- from aggregates to a window's figures ----------------------------------------------------------------------

def _ranked_auc(positive: np.ndarray, negative: np.ndarray) -> tuple[float | None, float | None]:
    """ROC AUC and average precision from (positive, negative) counts per score, highest score first."""
    tps, fps = np.cumsum(positive), np.cumsum(negative)
    if tps.size == 0:
        return None, None
    auc = None
    if tps[-1] > 0 and fps[-1] > 0:
        auc = float(np.trapezoid(np.r_[0.0, tps / tps[-1]], np.r_[0.0, fps / fps[-1]]))
    ap = float(np.sum(np.diff(np.r_[0.0, tps / tps[-1]]) * tps / (tps + fps))) if tps[-1] > 0 else None
    return auc, ap


def _binary(ctx: Context, table: pa.Table, numeric: dict[str, str]) -> dict:
    g = table.to_pandas()
    amounts = _amount_columns(ctx, numeric)
    for c in ("n", "scored", "score_sum", "log_sum", "brier_sum", *(f"amount:{a}" for a in amounts)):
        g[c] = pd.to_numeric(g[c], errors="coerce").astype(float).fillna(0.0) if c in g else 0.0
    rows = int(g.n.sum())
    lab = g[g.label_class >= 0]
    labelled = int(lab.n.sum())
    has_score = bool(g.scored.sum() > 0)

    def cell(y: int, d: int) -> float:
        return float(lab.n[(lab.label_class == y) & (lab.decided == d)].sum())

    tp, fp, fn, tn = cell(1, 1), cell(0, 1), cell(1, 0), cell(0, 0)
    out: dict = {"rows": rows, "labelled": labelled, "has_score": has_score, "realized": {}, "business": {},
                 "estimated": {}}
    scored = g[g.score_key.notna()]
    if labelled:
        realized = dict.fromkeys(metrics.BINARY_METRICS)
        realized.update(metrics.from_confusion(tp, fp, fn, tn))
        realized["positive_rate"] = (tp + fp) / labelled
        if has_score:
            ranked = lab[lab.score_key.notna()].assign(pos=lambda f: np.where(f.label_class == 1, f.n, 0.0),
                                                       neg=lambda f: np.where(f.label_class == 0, f.n, 0.0))
            per_score = ranked.groupby(["score_key", "decided"], as_index=False)[["pos", "neg", "score_sum", "n"]].sum()
            per_score = per_score.assign(mean=per_score.score_sum / per_score.n).sort_values(
                ["mean", "score_key"], ascending=False, kind="mergesort")
            realized["roc_auc"], realized["pr_auc"] = _ranked_auc(per_score.pos.to_numpy(float),
                                                                  per_score.neg.to_numpy(float))
            known = float(ranked.scored.sum())
            if known:
                realized["log_loss"] = float(-ranked.log_sum.sum() / known)
                realized["brier"] = float(ranked.brier_sum.sum() / known)
        out["realized"] = realized
        business = {}
        for spec in ctx.business:
            if spec.get("kind") == "amount_sum":
                if spec["column"] not in {f["name"] for f in ctx.features}:
                    business[spec["name"]] = None
                    continue
                label, decision = float(spec.get("label", 1)), float(spec.get("prediction", 0))
                mask = (lab.label_class == label) & (lab.decided == decision) if label in (0.0, 1.0) else \
                    np.zeros(len(lab), dtype=bool)
                column = f"amount:{spec['column']}"
                business[spec["name"]] = float(lab[column][mask].sum()) if column in lab else 0.0
            elif spec.get("kind") == "cost_matrix":
                business[spec["name"]] = float(spec.get("tp", 0) * tp + spec.get("fp", 0) * fp
                                               + spec.get("fn", 0) * fn + spec.get("tn", 0) * tn)
        out["business"] = business
    if ctx.calibration is not None and has_score and len(scored):
        out["estimated"] = _estimated(ctx, scored, amounts)
    return out


def _estimated(ctx: Context, scored: pd.DataFrame, amounts: list[str]) -> dict:
    """CBPE from the score groups: each group counts p positive and 1 - p negative at its mean score."""
    columns = [f"amount:{a}" for a in amounts]
    groups = scored.groupby(["score_key", "decided"], as_index=False)[["n", "score_sum", *columns]].sum()
    groups = groups.assign(mean=groups.score_sum / groups.n).sort_values(["mean", "score_key"], ascending=False,
                                                                         kind="mergesort")
    n = groups.n.to_numpy(float)
    p = ctx.calibration.probability(groups["mean"].to_numpy(float))
    decided = groups.decided.to_numpy() == 1
    tp, fp = float((p * n)[decided].sum()), float(((1 - p) * n)[decided].sum())
    fn, tn = float((p * n)[~decided].sum()), float(((1 - p) * n)[~decided].sum())
    out = metrics.from_confusion(tp, fp, fn, tn)
    tps, fps = np.cumsum(p * n), np.cumsum((1 - p) * n)
    out["roc_auc"] = float(np.trapezoid(np.r_[0.0, tps / tps[-1]], np.r_[0.0, fps / fps[-1]])) \
        if tps[-1] > 0 and fps[-1] > 0 else None
    for spec in ctx.business:
        if spec.get("kind") == "cost_matrix":
            out[spec["name"]] = (spec.get("tp", 0) * tp + spec.get("fp", 0) * fp + spec.get("fn", 0) * fn
                                 + spec.get("tn", 0) * tn)
        elif spec.get("kind") == "amount_sum" and f"amount:{spec['column']}" in groups:
            label_p = p if float(spec.get("label", 1)) == 1.0 else 1.0 - p
            mask = decided if float(spec.get("prediction", 0)) == 1.0 else ~decided
            values = groups[f"amount:{spec['column']}"].to_numpy(float)
            out[spec["name"]] = float((values * label_p)[mask].sum())
    return out


def _regression(ctx: Context, table: pa.Table) -> dict:
    row = {k: (v if v is not None else 0) for k, v in table.to_pylist()[0].items()}
    known = float(row["both_known"])
    out = {"rows": int(row["n"]), "labelled": int(row["labelled"]), "has_score": row["scored"] > 0,
           "realized": {}, "business": {}, "estimated": {}}
    if not row["labelled"]:
        return out
    realized = dict.fromkeys(metrics.REGRESSION_METRICS)
    if known:
        ss_res = float(row["sq_err"])
        ss_tot = max(float(row["dy2"]) - float(row["dy"]) ** 2 / known, 0.0)
        realized = {"mae": row["abs_err"] / known, "rmse": float(np.sqrt(ss_res / known)),
                    "r2": (1.0 - ss_res / ss_tot) if ss_tot else (1.0 if ss_res == 0 else 0.0),
                    "mape": row["ape"] / known}
    out["realized"] = realized
    business = {}
    for spec in ctx.business:
        if spec.get("kind") == "amount_sum":
            column = f"amount:{spec['name']}"
            business[spec["name"]] = float(row[column]) if column in row else \
                (0.0 if spec["column"] in {f["name"] for f in ctx.features} else None)
        elif spec.get("kind") == "cost_matrix":
            business[spec["name"]] = float(sum(spec.get(c, 0) * row[c] for c in ("tp", "fp", "fn", "tn")))
    out["business"] = business
    return out


def _numbers(groups: pd.DataFrame, *, kind: str | None = "numeric") -> drift.Counted:
    return drift.Counted(kind=kind, counts=groups.n.to_numpy(float), low=groups.low.to_numpy(float),
                         high=groups.high.to_numpy(float), total=groups.total.to_numpy(float))


def _typed_text(values: pd.Series, counts: np.ndarray) -> drift.Counted:
    """Evidently's typing of a text column from its value counts: categorical, or text when more than half of
    its values are distinct; None when it has no value."""
    kind = None
    if len(values):
        kind = "text" if len(values) > 0.5 * counts.sum() else "categorical"
    return drift.Counted(kind=kind, counts=counts.astype(float), values=values.to_numpy(object))


def _field_column(ctx: Context, feature: dict, *, numeric_groups: pd.DataFrame | None,
                  text_groups: pd.DataFrame | None, rows: int) -> tuple[drift.Counted, int]:
    """A field's current column as Evidently types it after `align`, and its missing values."""
    name = feature["name"]
    empty = pd.DataFrame({"n": [], "low": [], "high": [], "total": [], "fractional": []})
    if feature["type"] == "categorical":
        if text_groups is not None:
            present = text_groups.assign(value=text_groups.value.astype(str))
        elif numeric_groups is not None and len(numeric_groups):
            keys = as_text(pd.Series(numeric_groups.low.to_numpy(float)))
            present = pd.DataFrame({"value": keys.to_numpy(object), "n": numeric_groups.n.to_numpy(float)})
        else:
            present = pd.DataFrame({"value": [], "n": []})
        merged = present.groupby("value", sort=False, as_index=False)["n"].sum()
        return _typed_text(merged.value, merged.n.to_numpy(float)), rows - int(present.n.sum())
    ref_int = name in ctx.reference and pd.api.types.is_integer_dtype(ctx.reference[name])
    if text_groups is not None:  # numbers logged as text: read as `pd.to_numeric` would
        numbers = pd.to_numeric(text_groups.value, errors="coerce").to_numpy(float)
        ok = np.isfinite(numbers)
        numeric_groups = pd.DataFrame({"n": text_groups.n.to_numpy(float)[ok], "low": numbers[ok],
                                       "high": numbers[ok]}).groupby(["low", "high"], as_index=False)["n"].sum()
        numeric_groups = numeric_groups.assign(total=numeric_groups.low * numeric_groups.n,
                                               fractional=np.where(numeric_groups.low % 1 == 0, 0,
                                                                   numeric_groups.n))
    groups = numeric_groups if numeric_groups is not None else empty
    present = int(groups.n.sum())
    missing = rows - present
    kind = "numeric"
    if ref_int and missing == 0 and present and float(groups.fractional.sum()) == 0:
        # Aligned as integers, which Evidently types as categories when they take at most 10 values.
        if bool((groups.low == groups.high).all()) and len(groups) <= 10:
            kind = "categorical"
    return _numbers(groups, kind=kind), missing


def measure(ctx: Context, *, model_id: int, version_id: int, start: datetime, end: datetime, granularity: str,
            read: dict[str, int] | None = None, engine: engines.Engine | None = None,
            exact_rows: int | None = None, size: int | None = None) -> WindowResult:
    """Evaluate one window of a version over the lake (at the table versions in READ, else the current ones).
    SIZE, the window's prediction count when the caller has it, spares counting them first."""
    engine = engine or engines.current()
    exact_rows = EXACT_ROWS if exact_rows is None else exact_rows
    read = dict(read or lake.versions(model_id))
    preds = engines.snapshot_files(model_id, "predictions", version=read["predictions"], day_from=start.date(),
                                   day_to=(end - timedelta(microseconds=1)).date())
    labels = engines.snapshot_files(model_id, "labels", version=read["labels"]) if "labels" in read else None
    files, schema = preds
    label_files, label_schema = labels or ([], lake.LABEL_SCHEMA)
    views = {"preds": files, "labels": label_files}
    schemas = {"preds": schema, "labels": label_schema}
    stored = {lake.field_name(f.name): f for f in schema if f.name.startswith(lake.FEATURE_PREFIX)}
    numeric = {n: f.name for n, f in stored.items() if pa.types.is_floating(f.type) or pa.types.is_integer(f.type)}
    where = _where(version_id, start, end)

    first = engine.query(outcomes_sql(ctx, where=where, numeric=numeric, binned=False), views=views,
                         schemas=schemas) if ctx.task != "binary" else None
    outcome = _regression(ctx, first) if first is not None else None
    if outcome is None:
        # The window's size decides score grouping: count it in the same plan first (a cheap scan).
        if size is None:
            size = engine.query(f"SELECT COUNT(*) AS n FROM preds p WHERE {where}", views=views,
                                schemas=schemas).column("n")[0].as_py()
        table = engine.query(outcomes_sql(ctx, where=where, numeric=numeric, binned=size > exact_rows),
                             views=views, schemas=schemas)
        outcome = _binary(ctx, table, numeric)
    rows = outcome["rows"]
    binned = rows > exact_rows

    # Fields: numbers grouped (by value, or by fine bins of numeric fields in large windows), text by value.
    numeric_parts, text_parts, index = [], [], {}
    targets = [(f["name"], f) for f in ctx.features]
    targets += [(SCORE, {"name": SCORE, "type": "numeric"}), (PREDICTION, {"name": PREDICTION, "type": "numeric"})]
    for i, (name, feature) in enumerate(targets):
        expr = "p.score" if name == SCORE else "p.predicted" if name == PREDICTION else \
            (f"p.{identifier(stored[name].name)}" if name in stored else None)
        if expr is None:
            continue
        index[i] = name
        if name in (SCORE, PREDICTION) or name in numeric:
            exact = not binned or feature["type"] == "categorical"
            numeric_parts.append(_numeric_select(i, expr, where=where, exact=exact,
                                                 bins=bins_for(ctx.drift_reference.get(name))))
        else:
            text_parts.append(_text_select(i, expr, where=where))
    parts = numeric_parts + text_parts
    groups = engine.query(" UNION ALL ".join(parts), views=views, schemas=schemas).to_pandas() if parts else \
        pd.DataFrame({"field": [], "value": [], "n": [], "low": [], "high": [], "total": [], "fractional": []})
    numeric_groups = groups[groups.low.notna() & (groups.n > 0)]
    text_groups = groups[groups.value.notna()][["field", "value", "n"]]

    current, missing = {}, {}
    for i, (name, feature) in enumerate(targets):
        nums = texts = None
        if i in index and (name in numeric or name in (SCORE, PREDICTION)):
            nums = numeric_groups[numeric_groups.field == i]
        elif i in index:
            texts = text_groups[text_groups.field == i] if len(text_groups) else \
                pd.DataFrame({"field": [], "value": [], "n": []})
        column, absent = _field_column(ctx, feature, numeric_groups=nums, text_groups=texts, rows=rows)
        current[name] = column
        missing[name] = absent / rows if rows else 0.0
    has_score = outcome["has_score"]
    summary = drift.data_drift_counted(reference=ctx.drift_reference, current=current,
                                       columns=[f["name"] for f in ctx.features],
                                       prediction_column=SCORE if has_score else PREDICTION)
    labelled = outcome["labelled"]
    return WindowResult(start=start, end=end, granularity=granularity, rows=rows, labelled_rows=labelled,
                        metrics=clean(outcome["realized"]) if labelled else {},
                        estimated_metrics=clean(outcome["estimated"]), business_metrics=clean(outcome["business"]),
                        data_quality={"missing_rate": {f["name"]: missing[f["name"]] for f in ctx.features},
                                      "rows": rows},
                        drift_share=summary.drift_share, drifted_fields=summary.drifted_fields,
                        prediction_drift=summary.prediction.as_dict() if summary.prediction else {},
                        field_drift=[f.as_dict() for f in summary.fields], read_versions=read)

