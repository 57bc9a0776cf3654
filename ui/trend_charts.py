"""The evaluation store's charts as plain Vega-Lite specs: a metric over the windows with its reference lines, and
field drift as a heat map. Written as dicts, not Altair objects, because the page draws one per metric and
Altair validates every chart against the whole Vega-Lite schema, which cost more than the rest of the page."""

from __future__ import annotations

import pandas as pd

SERIES = ["realized", "estimated", "at training"]


def _field(name: str, kind: str, **extra: object) -> dict:
    return {"field": name, "type": kind, **extra}


def metric_trend(*, title: str, trend: pd.DataFrame, lines: pd.DataFrame) -> dict:
    """One metric over the windows (realized, estimated, at training) with its baseline and check lines."""
    layers = [{
        "data": {"name": "trend"},
        "mark": {"type": "line", "point": True},
        "encoding": {
            "x": _field("window_start", "temporal", title="window"),
            "y": _field("value", "quantitative", title=title, scale={"zero": False}),
            "color": _field("series", "nominal", title=None,
                            scale={"domain": SERIES, "range": ["#1f77b4", "#ff7f0e", "#7f7f7f"]}),
            "strokeDash": _field("series", "nominal", legend=None,
                                 scale={"domain": SERIES, "range": [[1, 0], [5, 3], [2, 2]]}),
            "tooltip": [_field("window_start", "temporal", title="from"), _field("window_end", "temporal", title="to"),
                        _field("series", "nominal"), _field("value", "quantitative", format=",.4f"),
                        _field("labelled", "quantitative", format=".0%", title="labelled")],
        },
    }]
    datasets = {"trend": trend}
    if not lines.empty:
        datasets["lines"] = lines
        layers.append({
            "data": {"name": "lines"},
            "mark": {"type": "rule", "strokeDash": [4, 4]},
            "encoding": {
                "y": _field("value", "quantitative"),
                "color": _field("kind", "nominal", title="lines",
                                scale={"domain": ["baseline", "check"], "range": ["#2ca02c", "#d62728"]}),
                "tooltip": [_field("label", "nominal"), _field("value", "quantitative", format=",.4f")],
            },
        })
    return {"title": title, "height": 240, "datasets": datasets, "layer": layers,
            "resolve": {"scale": {"color": "independent"}}}


def drift_heat_map(heat: pd.DataFrame) -> dict:
    """Each field's drift score over the windows, as a share of its threshold (capped at 5)."""
    return {
        "height": 28 * heat.field.nunique() + 40,
        "datasets": {"heat": heat},
        "data": {"name": "heat"},
        "mark": "rect",
        "encoding": {
            "x": _field("window_start", "temporal", title="window"),
            "y": _field("field", "nominal", title=None),
            "color": _field("level", "quantitative", title="score / threshold",
                            scale={"scheme": "orangered", "domain": [0, 5]}),
            "tooltip": [_field("field", "nominal"), _field("window_start", "temporal", title="window"),
                        _field("method", "nominal"),
                        _field("severity", "quantitative", format=".2f", title="score / threshold"),
                        _field("drifted", "nominal")],
        },
    }
