"""The documentation's charts: Altair specifications with their data inline, rendered to PNG by vl-convert."""

from __future__ import annotations

import altair as alt
import pandas as pd
import vl_convert

from core.documentation.facts import FieldDrift
from core.monitoring.evaluation_store import EvaluationRead
from core.validation.comparison import Importance
from core.validation.diagnostics import Calibration

WIDTH = 520
HEIGHT = 220


def _title(text: str) -> alt.TitleParams:
    return alt.TitleParams(text=text, anchor="start", fontSize=13)


def metric_trend(windows: tuple[EvaluationRead, ...], *, metrics: list[str], baseline: dict, title: str,
                 source: str = "metrics") -> dict | None:
    """Each metric per window (lines) against its value at training (dashed rules of the same colour)."""
    points = [{"window_end": w.window_end.isoformat(), "metric": m, "value": float(getattr(w, source)[m])}
              for w in windows for m in metrics if _is_number(getattr(w, source).get(m))]
    if not points:
        return None
    data = pd.DataFrame(points)
    color = alt.Color("metric:N", title="metric", sort=metrics)
    lines = alt.Chart(data).mark_line(point=True).encode(
        x=alt.X("window_end:T", title="window end"), y=alt.Y("value:Q", title=None, scale=alt.Scale(zero=False)),
        color=color)
    layers: list[alt.Chart] = [lines]
    rules = [{"metric": m, "value": float(baseline[m])} for m in metrics if _is_number(baseline.get(m))]
    if rules:
        layers.append(alt.Chart(pd.DataFrame(rules)).mark_rule(strokeDash=[5, 4], opacity=0.8)
                      .encode(y="value:Q", color=color))
    chart = alt.layer(*layers).properties(width=WIDTH, height=HEIGHT, title=_title(title))
    return chart.to_dict()


def drift_bars(drift: tuple[FieldDrift, ...], *, title: str) -> dict | None:
    """Drift score per field, drifted fields highlighted, each field's threshold as a tick."""
    rows = [{"field": d.field, "score": d.score, "threshold": d.threshold,
             "status": "drifted" if d.drifted else "stable", "method": d.method}
            for d in drift if d.score is not None]
    if not rows:
        return None
    data = pd.DataFrame(rows)
    order = list(data["field"])
    y = alt.Y("field:N", sort=order, title=None)
    bars = alt.Chart(data).mark_bar().encode(
        x=alt.X("score:Q", title="drift score"), y=y,
        color=alt.Color("status:N", scale=alt.Scale(domain=["drifted", "stable"], range=["#d62728", "#8c9eb5"]),
                        title=None))
    ticks = alt.Chart(data.dropna(subset=["threshold"])).mark_tick(color="black", thickness=2).encode(
        x="threshold:Q", y=y)
    height = max(90, 22 * len(rows))
    return alt.layer(bars, ticks).properties(width=WIDTH - 120, height=height, title=_title(title)).to_dict()


def importance_bars(items: tuple[Importance, ...], *, title: str) -> dict | None:
    """Global importance per feature, largest first."""
    if not items:
        return None
    data = pd.DataFrame([{"feature": i.feature, "importance": i.mean} for i in items])
    chart = alt.Chart(data).mark_bar(color="#4c78a8").encode(
        x=alt.X("importance:Q", title="importance"), y=alt.Y("feature:N", sort=list(data["feature"]), title=None))
    return chart.properties(width=WIDTH - 120, height=max(90, 22 * len(items)), title=_title(title)).to_dict()


def reliability(curve: Calibration, *, title: str) -> dict | None:
    """Observed positive rate against the mean score per bin; a calibrated model follows the diagonal."""
    if not curve.predicted:
        return None
    data = pd.DataFrame({"mean score": curve.predicted, "observed rate": curve.observed, "rows": curve.counts})
    top = float(max(max(curve.predicted), max(curve.observed), 1e-6))
    diagonal = alt.Chart(pd.DataFrame({"x": [0.0, top], "y": [0.0, top]})).mark_line(
        color="#999999", strokeDash=[4, 4]).encode(x="x:Q", y="y:Q")
    points = alt.Chart(data).mark_line(point=True, color="#4c78a8").encode(
        x=alt.X("mean score:Q", title="mean score in bin"), y=alt.Y("observed rate:Q", title="observed rate"))
    return alt.layer(diagonal, points).properties(width=WIDTH - 200, height=HEIGHT, title=_title(title)).to_dict()


def to_png(spec: dict, *, scale: float = 2.0) -> bytes:
    """Render a Vega-Lite specification to PNG without a browser."""
    return vl_convert.vegalite_to_png(spec, scale=scale)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value
