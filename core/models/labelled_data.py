"""Labelled data to train and validate on: a CSV, or the evaluation store's predictions joined with ground truth."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from sqlmodel import Session

from core.errors import InvalidInput
from core.lake import predictions as prediction_store
from core.models.registry import model_row

RECENT_DAYS = 28
RECENT_ROWS = 20_000


def _empty(names: list[str], target: str) -> pd.DataFrame:
    return pd.DataFrame(columns=["prediction_id", "ts", *names, target, "__score__"])


def latest_labelled_ts(*, session: Session, model: str) -> datetime | None:
    """The timestamp of the newest prediction of the model whose ground truth has arrived."""
    m = model_row(session, model)
    return prediction_store.span(model_id=m.id, labelled=True)[1]


def labelled_window(*, session: Session, model: str, start: datetime | None = None,
                    end: datetime | None = None) -> pd.DataFrame:
    """Features, target (named as the model's target), `ts`, `prediction_id` and logged `__score__`, in [start, end)."""
    m = model_row(session, model)
    rows = prediction_store.labelled_rows(model_id=m.id, start=start, end=end)
    names = [f["name"] for f in m.features]
    if rows.num_rows == 0:
        return _empty(names, m.target)
    logged = rows.drop_columns(["prediction_id", "ts", "score", "label"]).to_pandas()
    frame = pd.DataFrame({name: logged[name] if name in logged else np.nan for name in names}, index=logged.index)
    for extra in (c for c in logged.columns if c not in names):
        frame[extra] = logged[extra]
    frame.insert(0, "ts", pd.to_datetime(rows.column("ts").to_numpy()))
    frame.insert(0, "prediction_id", rows.column("prediction_id").to_pylist())
    labels = rows.column("label").to_numpy()
    frame[m.target] = labels.astype(int) if m.task == "binary" else labels.astype(float)
    frame["__score__"] = rows.column("score").to_pandas().astype("float64").to_numpy()
    return frame


def recent_labelled(*, session: Session, model: str,
                    days: int = RECENT_DAYS) -> tuple[pd.DataFrame, datetime | None, datetime | None]:
    """The last `days` of labelled predictions, ending at the newest labelled one, with the window."""
    latest = latest_labelled_ts(session=session, model=model)
    if latest is None:
        m = model_row(session, model)
        return _empty([f["name"] for f in m.features], m.target), None, None
    end = latest.replace(microsecond=0) + timedelta(seconds=1)
    start = end - timedelta(days=days)
    return labelled_window(session=session, model=model, start=start, end=end), start, end


def bounded(frame: pd.DataFrame, *, max_rows: int = RECENT_ROWS, seed: int = 0) -> pd.DataFrame:
    """At most `max_rows` rows, a fixed-seed sample in the original order."""
    if len(frame) <= max_rows:
        return frame
    return frame.sample(n=max_rows, random_state=seed).sort_index()


def read_training_csv(path: Path | str, *, time_column: str = "ts") -> pd.DataFrame:
    """A training CSV, its time column parsed when present."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"training file {path} does not exist")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"training file {path.name} is not a readable CSV: {str(exc).splitlines()[0]}") from exc
    if time_column in frame.columns:
        parsed = pd.to_datetime(frame[time_column], errors="coerce")
        bad = frame.index[parsed.isna() & frame[time_column].notna()]
        if len(bad):
            raise InvalidInput(f"time column {time_column!r} does not parse in row(s) "
                               f"{', '.join(str(i + 2) for i in bad[:5])} of {path.name}")
        frame[time_column] = parsed
    return frame
