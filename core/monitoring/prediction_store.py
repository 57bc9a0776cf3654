"""Bulk reads and writes of logged predictions and labels, through the database driver, not the ORM.

Writes run on the session's own connection, so they belong to the caller's transaction: `executemany` on
SQLite, `COPY ... FROM STDIN` on PostgreSQL. Reads of a window return plain columns ready for pandas.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from datetime import datetime
from itertools import repeat

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson
from sqlalchemy import text
from sqlmodel import Session

from core.db import is_sqlite

_PREDICTION_COLUMNS = ("model_id, model_version_id, environment_id, prediction_id, ts, score, predicted, features, "
                       "logged_by")
_LOOKUP = 20_000  # ids per lookup query


def _driver(session: Session):  # noqa: ANN202 - sqlite3 or psycopg connection
    return session.connection().connection.driver_connection


def _copy_text(values: pa.Array) -> pa.Array:
    """Text escaped for COPY's text format (backslash, tab, newline, carriage return), null as \\N."""
    escaped = pc.replace_substring(values, "\\", "\\\\")
    for raw, sub in (("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r")):
        escaped = pc.replace_substring(escaped, raw, sub)
    return escaped


def _copy_block(columns: list[pa.Array | str]) -> bytes:
    """One COPY text block: constant strings or arrays per column, tab-separated, one line per row."""
    lines = pc.binary_join_element_wise(*columns, "\t", null_handling="replace", null_replacement="\\N")
    return ("\n".join(lines.to_pylist()) + "\n").encode()


def _sqlite_ts(ts: pa.Array) -> list[str]:
    # The text form SQLAlchemy stores DateTime as on SQLite, so ORM reads and range queries agree.
    return pc.cast(ts.cast(pa.timestamp("us")), pa.string()).to_pylist()


def insert_predictions(session: Session, *, model_id: int, version_id: int, environment_id: int | None,
                       ids: list[str], ts: pa.Array, score: pa.Array | None, predicted: pa.Array | None,
                       features: pa.Array, logged_by: str | None = None) -> None:
    """Append validated predictions to the caller's transaction; LOGGED_BY names who logged them (a token)."""
    n = len(ids)
    if is_sqlite(session):
        rows = zip(repeat(model_id), repeat(version_id), repeat(environment_id), ids, _sqlite_ts(ts),
                   score.to_pylist() if score is not None else repeat(None, n),
                   predicted.to_pylist() if predicted is not None else repeat(None, n),
                   features.to_pylist(), repeat(logged_by), strict=False)
        _driver(session).executemany(f"INSERT INTO prediction ({_PREDICTION_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)",
                                     rows)
        return
    null = pa.nulls(n, pa.string())
    block = _copy_block([
        str(model_id), str(version_id), "\\N" if environment_id is None else str(environment_id),
        _copy_text(pa.array(ids, type=pa.string())), pc.cast(ts.cast(pa.timestamp("us")), pa.string()),
        pc.cast(score, pa.string()) if score is not None else null,
        pc.cast(predicted, pa.string()) if predicted is not None else null,
        _copy_text(features),
        "\\N" if logged_by is None else _copy_text(pa.array([logged_by], type=pa.string()))[0].as_py(),
    ])
    with _driver(session).cursor() as cur, cur.copy(f"COPY prediction ({_PREDICTION_COLUMNS}) FROM STDIN") as copy:
        copy.write(block)


def _lookup(session: Session, sql_sqlite: str, sql_pg: str, *, model_id: int, ids: list[str]) -> list[tuple]:
    out: list[tuple] = []
    for start in range(0, len(ids), _LOOKUP):
        part = ids[start:start + _LOOKUP]
        if is_sqlite(session):
            out += session.execute(text(sql_sqlite), {"m": model_id, "ids": json.dumps(part)}).all()
        else:
            out += session.execute(text(sql_pg), {"m": model_id, "ids": part}).all()
    return out


def stored_ids(session: Session, *, model_id: int, ids: list[str]) -> list[str]:
    """Which of these prediction ids the model already has."""
    rows = _lookup(session,
                   "SELECT prediction_id FROM prediction WHERE model_id = :m "
                   "AND prediction_id IN (SELECT value FROM json_each(:ids))",
                   "SELECT prediction_id FROM prediction WHERE model_id = :m AND prediction_id = ANY(:ids)",
                   model_id=model_id, ids=ids)
    return sorted(r[0] for r in rows)


def stored_labels(session: Session, *, model_id: int,
                  ids: list[str]) -> tuple[dict[str, float | None], datetime | None, datetime | None]:
    """The known prediction ids among `ids` with their label (None when none yet), and their earliest and
    latest prediction time."""
    join = ("FROM prediction p LEFT JOIN groundtruth g ON g.model_id = p.model_id "
            "AND g.prediction_id = p.prediction_id WHERE p.model_id = :m AND p.prediction_id ")
    rows = _lookup(session, f"SELECT p.prediction_id, g.label, p.ts {join} IN (SELECT value FROM json_each(:ids))",
                   f"SELECT p.prediction_id, g.label, p.ts {join} = ANY(:ids)", model_id=model_id, ids=ids)
    if not rows:
        return {}, None, None
    # SQLite hands back its stored text, which sorts like the time it holds; only the ends are converted.
    times = [r[2] for r in rows]
    first, last = (pd.Timestamp(t).to_pydatetime() for t in (min(times), max(times)))
    return {pid: label for pid, label, _ in rows}, first, last


def insert_labels(session: Session, *, model_id: int, ids: list[str], labels: pa.Array, arrived: pa.Array) -> None:
    """Append labels (with the time each arrived) to the caller's transaction."""
    if not ids:
        return
    at = pc.cast(arrived.cast(pa.timestamp("us")), pa.string())
    if is_sqlite(session):
        _driver(session).executemany(
            "INSERT INTO groundtruth (model_id, prediction_id, label, arrived_at) VALUES (?,?,?,?)",
            zip(repeat(model_id), ids, labels.to_pylist(), at.to_pylist(), strict=False))
        return
    block = _copy_block([str(model_id), _copy_text(pa.array(ids, type=pa.string())), pc.cast(labels, pa.string()), at])
    with _driver(session).cursor() as cur, \
            cur.copy("COPY groundtruth (model_id, prediction_id, label, arrived_at) FROM STDIN") as copy:
        copy.write(block)


def update_labels(session: Session, *, model_id: int, rows: list[tuple[str, float, datetime]]) -> None:
    """Change the label of known predictions (the caller audits it)."""
    for pid, label, at in rows:
        session.execute(text("UPDATE groundtruth SET label = :label, arrived_at = :at "
                             "WHERE model_id = :m AND prediction_id = :pid"),
                        {"label": label, "at": at, "m": model_id, "pid": pid})


@dataclass(frozen=True)
class WindowRows:
    """One window's predictions with their labels (NaN where none has arrived), as columns."""

    prediction_id: list[str]
    ts: np.ndarray
    score: np.ndarray
    predicted: np.ndarray
    label: np.ndarray
    features: pd.DataFrame

    def __len__(self) -> int:
        return len(self.prediction_id)


def window_rows(session: Session, *, version_id: int, start: datetime, end: datetime,
                environment_id: int | None = None) -> WindowRows:
    """Predictions of a version with start <= ts < end, left-joined with their labels."""
    sqlite = is_sqlite(session)
    mark = "?" if sqlite else "%s"
    sql = (f"SELECT p.prediction_id, p.ts, p.score, p.predicted, g.label, "
           f"{'p.features' if sqlite else 'p.features::text'} "
           "FROM prediction p LEFT JOIN groundtruth g ON g.model_id = p.model_id "
           "AND g.prediction_id = p.prediction_id "
           f"WHERE p.model_version_id = {mark} AND p.ts >= {mark} AND p.ts < {mark}")
    stamp = "%Y-%m-%d %H:%M:%S.%f"
    params: list = [version_id, start.strftime(stamp) if sqlite else start, end.strftime(stamp) if sqlite else end]
    if environment_id is not None:
        sql += f" AND p.environment_id = {mark}"
        params.append(environment_id)
    # The driver's cursor directly: a window can hold many rows and the ORM's row processing would dominate.
    cursor = _driver(session).cursor()
    try:
        cursor.execute(sql + " ORDER BY p.ts, p.id", params)
        rows = cursor.fetchall()
    finally:
        cursor.close()
    if not rows:
        empty = np.array([], dtype=float)
        return WindowRows([], np.array([], dtype="datetime64[us]"), empty, empty, empty, pd.DataFrame())
    pid, ts, score, predicted, label, feats = zip(*rows, strict=True)
    frame = _features(feats)
    return WindowRows(list(pid), pd.to_datetime(pd.Series(ts)).to_numpy(),
                      np.array(score, dtype=float), np.array(predicted, dtype=float), np.array(label, dtype=float),
                      frame)


def _features(texts: tuple[str, ...]) -> pd.DataFrame:
    """The JSON feature objects as columns. Our encoding keeps a type per column (numbers or text), which
    lets pyarrow's parser read them in bulk; anything else falls back to the standard library."""
    try:
        return pajson.read_json(io.BytesIO("\n".join(texts).encode())).to_pandas()
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pd.DataFrame.from_records(json.loads("[" + ",".join(texts) + "]"))
