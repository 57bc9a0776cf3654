"""Window evaluations written back to the MLflow run a version was imported from (`--mirror-metrics`).

Called after the evaluation store has committed new windows. Each window becomes one point per metric on the
run, named `watchtower/<metric>` (`watchtower/estimated/<metric>`, `watchtower/business/<name>`, and
`watchtower/drift_share`, `watchtower/rows`, `watchtower/labelled_rows`), with **step = the window's end in
milliseconds since the epoch (UTC)** and the same timestamp: steps stay ordered by time and stable when a window
is evaluated again, whatever the granularity. Mirroring never fails an evaluation: a server that is down, a
source no longer trusted or any MLflow error is logged and audited as `mlflow.mirror_failed`, and the windows
stay stored in Watchtower.
"""

from __future__ import annotations

import logging
from calendar import timegm
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from core import audit
from core.db import session_scope
from core.entities import Model, ModelVersion
from core.models import mlflow_client, mlflow_sources

log = logging.getLogger("watchtower.mlflow")
PREFIX = "watchtower"


def step_of(window_end: datetime) -> int:
    """A window's step on the run: its end (naive UTC) in milliseconds since the epoch."""
    return timegm(window_end.timetuple()) * 1000 + window_end.microsecond // 1000


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if value == value else None  # NaN is not a point worth drawing


def points(evaluations: Sequence[Any]) -> list[tuple[str, float, int, int]]:
    """(key, value, step, timestamp ms) for every numeric metric of every window."""
    out: list[tuple[str, float, int, int]] = []
    for ev in evaluations:
        step = step_of(ev.window_end)
        named = {**{f"{PREFIX}/{k}": v for k, v in ev.metrics.items()},
                 **{f"{PREFIX}/estimated/{k}": v for k, v in ev.estimated_metrics.items()},
                 **{f"{PREFIX}/business/{k}": v for k, v in ev.business_metrics.items()},
                 f"{PREFIX}/drift_share": ev.drift_share, f"{PREFIX}/rows": ev.rows,
                 f"{PREFIX}/labelled_rows": ev.labelled_rows}
        out += [(k, n, step, step) for k, v in named.items() if (n := _number(v)) is not None]
    return out


def _failed(*, actor: str, what: str, project_id: int | None, details: dict) -> None:
    log.warning("mirroring evaluations of %s to MLflow failed: %s", what, details.get("reason"))
    try:
        with session_scope() as s:
            audit.record(s, actor=actor, action="mlflow.mirror_failed", entity_type="model_version", entity_id=what,
                         project_id=project_id, details=details)
    except Exception:  # noqa: BLE001 - the warning above is all that can be done
        log.exception("could not audit the failed mirroring of %s", what)


def evaluations_stored(*, actor: str, version_id: int, evaluations: Sequence[Any]) -> int:
    """Mirror newly stored windows to the version's MLflow run when it was imported so; returns points logged."""
    if not evaluations:
        return 0
    with session_scope() as s:
        version = s.get(ModelVersion, version_id)
        recipe = dict(version.recipe) if version is not None else {}
        if recipe.get("source") != "mlflow" or not recipe.get("mirror_metrics") or not recipe.get("run_id"):
            return 0
        model = s.get(Model, version.model_id)
        what, project_id = f"{model.name}:v{version.number}", model.project_id
        trusted = mlflow_sources.is_trusted(s, recipe["tracking_uri"])
    details = {"tracking_uri": recipe["tracking_uri"], "run_id": recipe["run_id"], "windows": len(evaluations)}
    if not trusted:
        _failed(actor=actor, what=what, project_id=project_id,
                details={**details, "reason": "the tracking server is no longer a trusted MLflow source"})
        return 0
    try:
        mlflow_client.check_reachable(recipe["tracking_uri"], timeout=3.0)
        logged = mlflow_client.log_metrics(recipe["tracking_uri"], recipe["run_id"], points(evaluations))
    except Exception as exc:  # noqa: BLE001 - mirroring fails softly, whatever went wrong
        _failed(actor=actor, what=what, project_id=project_id, details={**details, "reason": str(exc)[:300]})
        return 0
    log.info("mirrored %d metric points of %s to MLflow run %s", logged, what, recipe["run_id"])
    return logged
