"""What the lake holds, read back for assertions: every model's logged predictions and labels."""

from __future__ import annotations

from sqlmodel import select

from core.db import session_scope
from core.entities import Model
from core.lake import predictions, spool


def _model_ids(model: str | None) -> list[int]:
    with session_scope() as s:
        q = select(Model.id).order_by(Model.id)
        return list(s.exec(q.where(Model.name == model) if model else q).all())


def stored_predictions(model: str | None = None, *, environment_id: int | None = None
                       ) -> list[predictions.LoggedPrediction]:
    """The logged predictions of one model (default: every model), in time order, then by prediction id, once
    what a scoring API in this process spooled is committed (as its flusher does within a second)."""
    spool.flush_process()
    rows = [p for m in _model_ids(model) for p in predictions.logged_predictions(model_id=m, environment_id=environment_id)]
    return sorted(rows, key=lambda p: (p.ts, p.prediction_id))


def stored_labels(model: str | None = None) -> dict[str, float]:
    """The labels of one model (default: every model) by prediction id."""
    out: dict[str, float] = {}
    for m in _model_ids(model):
        out.update(predictions.labels(model_id=m))
    return out
