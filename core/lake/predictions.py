"""Reads and writes of logged predictions and labels, over the lake (`core.monitoring.lake`).

Writes are staged in the caller's unit of work and committed with it. Reads run in DuckDB over the committed
snapshot of a model's tables (plus, for lookups during an ingest, what the same unit of work staged), so a
window is filtered, joined and projected by the engine and only its own rows reach pandas.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlmodel import Session

from core.entities import ModelVersion
from core.lake import engines
from core.lake import tables as lake

_ID_BLOCK = 1_000_000  # ids per lookup


def prediction_rows(*, version_id: int, environment_id: int | None, ids: list[str] | pa.Array, ts: pa.Array,
                    score: pa.Array | None, predicted: pa.Array | None, features: dict[str, pa.Array],
                    logged_by: str | None, batch: str) -> pa.Table:
    """Validated predictions as the lake's rows; FEATURES maps each logged field to its values (float64 for
    numbers, text for categories)."""
    ids = ids if isinstance(ids, pa.Array) else pa.array(ids, type=pa.string())
    n = len(ids)
    columns = {
        "prediction_id": ids, "version_id": pa.array(np.full(n, version_id, dtype=np.int64)),
        "environment_id": pa.nulls(n, pa.int64()) if environment_id is None
        else pa.array(np.full(n, environment_id, dtype=np.int64)),
        "ts": ts.cast(pa.timestamp("us")),
        "score": score.cast(pa.float64()) if score is not None else pa.nulls(n, pa.float64()),
        "predicted": predicted.cast(pa.float64()) if predicted is not None else pa.nulls(n, pa.float64()),
        "logged_by": pa.nulls(n, pa.string()) if logged_by is None
        else pa.repeat(pa.scalar(logged_by, pa.string()), n),
        "batch": pa.repeat(pa.scalar(batch, pa.string()), n),
    }
    for name, values in features.items():
        columns[lake.feature_column(name)] = values
    return pa.table(columns)


def insert_predictions(session: Session, *, model_id: int, version_id: int, environment_id: int | None,
                       ids: list[str] | pa.Array, ts: pa.Array, score: pa.Array | None, predicted: pa.Array | None,
                       features: dict[str, pa.Array], logged_by: str | None = None) -> None:
    """Stage validated predictions in the caller's unit of work; LOGGED_BY names who logged them (a token).
    FEATURES maps each logged field to its values: float64 for numbers, text for categories."""
    rows = prediction_rows(version_id=version_id, environment_id=environment_id, ids=ids, ts=ts, score=score,
                           predicted=predicted, features=features, logged_by=logged_by,
                           batch=session.info.setdefault("lake_batch", lake.new_batch_id()))
    lake.stage_predictions(session, model_id=model_id, rows=rows)


def _ids_table(ids: list[str]) -> pa.Table:
    return pa.table({"prediction_id": pa.array(ids, type=pa.string())})


CHECK_MEMORY = "256MB"  # DuckDB's memory for an ingest's id checks (unless set): above it, they spill to disk

IdsAgain = Callable[[], Iterator[pa.Array]]  # the file's prediction ids read again, chunk by chunk, in file order


def _in_file_order(con, table: str, ids_again: IdsAgain) -> Iterator[list[tuple[str, int]]]:  # noqa: ANN001
    """For each chunk of the file read again, its ids found in TABLE (a TEMP table of ids), with their 0-based
    positions in the file, in order."""
    start = 0
    for chunk in ids_again():
        part = pa.table({"prediction_id": chunk,  # noqa: F841 - scanned by DuckDB
                         "position": pa.array(np.arange(start, start + len(chunk), dtype=np.int64))})
        yield con.execute(f"SELECT p.prediction_id, p.position FROM part p JOIN {table} t "
                          "ON t.prediction_id = p.prediction_id ORDER BY p.position").fetchall()
        start += len(chunk)


def repeated_ids(*, files: list[str], ids_again: IdsAgain) -> tuple[list[tuple[str, list[int]]], int]:
    """Ids that appear more than once in one ingest's staged prediction FILES: the first five in file order, each with its
    0-based positions, and how many repeats there are in all. DuckDB groups the ids' 64-bit hashes out of core
    (its memory is limited and it spills), so no id is held in this process's memory whatever the file's size;
    only the ids whose hash repeats are then compared as text, and only when some id repeats is the file read
    again (IDS_AGAIN) to find where."""
    with lake.duck(default_memory=CHECK_MEMORY) as con:
        engines.register_ids(con, "incoming", files)
        con.execute("CREATE TEMP TABLE suspects AS SELECT hash(prediction_id) AS h FROM incoming GROUP BY 1 "
                    "HAVING count(*) > 1")
        if con.execute("SELECT count(*) FROM suspects").fetchone()[0] == 0:
            return [], 0
        con.execute("CREATE TEMP TABLE repeats AS SELECT prediction_id, count(*) - 1 AS extra FROM incoming "
                    "WHERE hash(prediction_id) IN (SELECT h FROM suspects) GROUP BY prediction_id "
                    "HAVING count(*) > 1")
        total = int(con.execute("SELECT coalesce(sum(extra), 0) FROM repeats").fetchone()[0])
        if total == 0:
            return [], 0
        groups: dict[str, list[int]] = {}  # in order of first appearance
        for found in _in_file_order(con, "repeats", ids_again):
            for pid, position in found:
                if pid in groups or len(groups) < 5:
                    groups.setdefault(pid, []).append(position)
    return list(groups.items()), total


def stored_positions(*, model_id: int, files: list[str], earlier: list[str] | None,
                     ids_again: IdsAgain) -> tuple[list[tuple[str, int]], int]:
    """Which ids of one ingest's staged prediction FILES the model already has, committed or in the files staged
    EARLIER in the unit of work: the first five in file order with their 0-based positions, and how many in all (the file's ids are
    known not to repeat). One scan of the stored ids, streaming past a hash of the incoming ones that DuckDB
    spills to disk above its memory limit; only when some clash is the file read again (IDS_AGAIN) to find
    where."""
    current = lake.table(model_id, "predictions")
    snapshot = engines.snapshot_files(model_id, "predictions", version=current.version()) if current else None
    known = [paths for paths in (snapshot[0] if snapshot else None, earlier) if paths is not None]
    if not known:
        return [], 0
    with lake.duck(default_memory=CHECK_MEMORY) as con:
        engines.register_ids(con, "incoming", files)
        for i, paths in enumerate(known):
            engines.register_ids(con, f"known{i}", paths)
        stored = " UNION ALL ".join(f"SELECT prediction_id FROM known{i}" for i in range(len(known)))
        con.execute(f"CREATE TEMP TABLE hits AS SELECT DISTINCT prediction_id FROM ({stored}) "
                    "WHERE prediction_id IN (SELECT prediction_id FROM incoming)")
        total = int(con.execute("SELECT count(*) FROM hits").fetchone()[0])
        if total == 0:
            return [], 0
        clashes: list[tuple[str, int]] = []
        for found in _in_file_order(con, "hits", ids_again):
            clashes += found
            if len(clashes) >= 5:
                break
    return clashes[:5], total


def stored_labels(session: Session, *, model_id: int,
                  ids: list[str]) -> tuple[dict[str, float | None], datetime | None, datetime | None]:
    """The known prediction ids among `ids` with their label (None when none yet), and their earliest and
    latest prediction time."""
    preds = lake.dataset(model_id, "predictions")
    staged = lake.staged_files(session, model_id=model_id)
    labels = lake.dataset(model_id, "labels")
    known: dict[str, float | None] = {}
    times: list[datetime] = []
    with lake.duck() as con:
        if labels is None:
            con.execute("CREATE TEMP TABLE labels (prediction_id VARCHAR, label DOUBLE)")
        else:
            con.register("labels", labels)
        sources = []
        if preds is not None:
            con.register("committed", preds)
            sources.append("committed")
        if staged is not None:  # predictions staged earlier in this unit of work, read from their files
            schema = pa.schema([("prediction_id", pa.string()), ("ts", pa.timestamp("us"))])
            engines.register_files(con, "staged", staged, schema)
            sources.append("staged")
        for start in range(0, len(ids), _ID_BLOCK):
            wanted = _ids_table(ids[start:start + _ID_BLOCK])  # noqa: F841 - scanned by DuckDB
            for source in sources:
                rows = con.execute(
                    f"SELECT p.prediction_id, l.label, p.ts FROM {source} p "
                    "LEFT JOIN labels l ON l.prediction_id = p.prediction_id "
                    "WHERE p.prediction_id IN (SELECT prediction_id FROM wanted)").fetchall()
                for pid, label, ts in rows:
                    known[pid] = label
                    times.append(ts)
    if not known:
        return {}, None, None
    return known, min(times), max(times)


def insert_labels(session: Session, *, model_id: int, ids: list[str], labels: pa.Array, arrived: pa.Array) -> None:
    """Stage labels (with the time each arrived); the commit merges them by prediction id, so a changed label
    replaces the old one and the same label sent twice changes nothing."""
    if not ids:
        return
    lake.stage_labels(session, model_id=model_id, rows=pa.table({
        "prediction_id": pa.array(ids, type=pa.string()), "label": labels.cast(pa.float64()),
        "arrived_at": arrived.cast(pa.timestamp("us"))}))


def update_labels(session: Session, *, model_id: int, rows: list[tuple[str, float, datetime]]) -> None:
    """Change the label of known predictions (the caller audits it)."""
    if rows:
        pids, labels, at = zip(*rows, strict=True)
        insert_labels(session, model_id=model_id, ids=list(pids), labels=pa.array(labels, type=pa.float64()),
                      arrived=pa.array(at, type=pa.timestamp("us")))


# --- windows -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class WindowRows:
    """One window's predictions with their labels (NaN where none has arrived), as columns."""

    prediction_id: list[str]
    ts: np.ndarray
    score: np.ndarray
    predicted: np.ndarray
    label: np.ndarray
    features: pd.DataFrame
    read: dict[str, int] = field(default_factory=dict)  # the table versions read, to reproduce the window

    def __len__(self) -> int:
        return len(self.prediction_id)


def _empty(read: dict[str, int]) -> WindowRows:
    nothing = np.array([], dtype=float)
    return WindowRows([], np.array([], dtype="datetime64[us]"), nothing, nothing, nothing, pd.DataFrame(), read)


def _register(con, model_id: int, read: dict[str, int] | None = None) -> dict[str, int] | None:  # noqa: ANN001
    """Register the model's `preds` and `labels` (at the versions in `read`, else the current ones); returns the
    versions registered, or None when the model has logged nothing."""
    read = dict(read or lake.versions(model_id))
    if "predictions" not in read:
        return None
    con.register("preds", lake.dataset(model_id, "predictions", version=read["predictions"]))
    if "labels" in read:
        con.register("labels", lake.dataset(model_id, "labels", version=read["labels"]))
    else:
        con.execute("CREATE TEMP TABLE labels (prediction_id VARCHAR, label DOUBLE, arrived_at TIMESTAMP)")
    return read


def _window_filter(version_id: int | None, start: datetime | None, end: datetime | None,
                   environment_id: int | None) -> tuple[str, list]:
    """A WHERE clause over `p` (with the day partitions it touches, for pruning) and its parameters."""
    where, params = ["TRUE"], []
    if version_id is not None:
        where.append("p.version_id = ?")
        params.append(version_id)
    if start is not None:
        where += ["p.day >= ?", "p.ts >= ?"]
        params += [start.date(), start]
    if end is not None:
        where += ["p.day <= ?", "p.ts < ?"]
        params += [end.date(), end]
    if environment_id is not None:
        where.append("p.environment_id = ?")
        params.append(environment_id)
    return " AND ".join(where), params


def window_rows(session: Session, *, version_id: int, start: datetime, end: datetime,
                environment_id: int | None = None, read: dict[str, int] | None = None) -> WindowRows:
    """Predictions of a version with start <= ts < end, left-joined with their labels (at the table versions in
    READ when given, to reproduce an earlier evaluation)."""
    model_id = session.get(ModelVersion, version_id).model_id
    with lake.duck() as con:
        read = _register(con, model_id, read)
        if read is None:
            return _empty({})
        feature_columns = [c for c in con.sql("SELECT * FROM preds LIMIT 0").to_arrow_table().schema.names
                           if c.startswith(lake.FEATURE_PREFIX)]
        where, params = _window_filter(version_id, start, end, environment_id)
        selected = "".join(f', p."{c}"' for c in feature_columns)
        result = con.sql(
            f"SELECT p.prediction_id, p.ts, p.score, p.predicted, l.label{selected} FROM preds p "
            f"LEFT JOIN labels l ON l.prediction_id = p.prediction_id WHERE {where} "
            "ORDER BY p.ts, p.prediction_id", params=params).to_arrow_table()
    if result.num_rows == 0:
        return _empty(read)
    features = result.select(feature_columns).rename_columns([lake.field_name(c) for c in feature_columns])
    return WindowRows(result.column("prediction_id").to_pylist(),
                      result.column("ts").to_numpy().astype("datetime64[us]"),
                      _floats(result.column("score")), _floats(result.column("predicted")),
                      _floats(result.column("label")), features.to_pandas(), read)


def _floats(col: pa.ChunkedArray) -> np.ndarray:
    return pc.fill_null(col.cast(pa.float64()), np.nan).to_numpy()


# --- summaries -------------------------------------------------------------------------------------------------

def span(*, model_id: int, version_id: int | None = None,
         labelled: bool = False) -> tuple[datetime | None, datetime | None]:
    """The earliest and latest prediction time of a model (or one version; only labelled ones with LABELLED)."""
    with lake.duck() as con:
        if _register(con, model_id) is None:
            return None, None
        where, params = _window_filter(version_id, None, None, None)
        join = "JOIN labels l ON l.prediction_id = p.prediction_id " if labelled else ""
        first, last = con.execute(f"SELECT min(p.ts), max(p.ts) FROM preds p {join}WHERE {where}", params).fetchone()
    return first, last


def counts(*, model_id: int, version_id: int | None = None, start: datetime | None = None,
           end: datetime | None = None, labelled: bool = True) -> tuple[int, int | None]:
    """How many predictions fall in the window, and how many of them have a label (None without LABELLED, which
    spares joining the labels)."""
    with lake.duck() as con:
        if _register(con, model_id) is None:
            return 0, 0 if labelled else None
        where, params = _window_filter(version_id, start, end, None)
        if not labelled:
            return int(con.execute(f"SELECT count(*) FROM preds p WHERE {where}", params).fetchone()[0]), None
        rows, known = con.execute(
            "SELECT count(*), count(l.label) FROM preds p LEFT JOIN labels l ON l.prediction_id = p.prediction_id "
            f"WHERE {where}", params).fetchone()
    return int(rows), int(known)


def window_counts(*, model_id: int, version_id: int, windows: list[tuple[datetime, datetime]], labelled: bool,
                  read: dict[str, int] | None = None) -> tuple[dict[str, int], list[tuple[int, int | None]]]:
    """`counts` of a version for many windows [start, end) in one scan, at the table versions in READ (else the
    current ones): the versions read, and (rows, labelled rows or None without LABELLED) per window, in order."""
    nothing = [(0, 0 if labelled else None)] * len(windows)
    if not windows:
        return dict(read or {}), nothing
    with lake.duck() as con:
        read = _register(con, model_id, read)
        if read is None:
            return {}, nothing
        con.register("w", pa.table({"i": pa.array(range(len(windows)), pa.int64()),
                                    "a": pa.array([a for a, _ in windows], pa.timestamp("us")),
                                    "b": pa.array([b for _, b in windows], pa.timestamp("us"))}))
        where, params = _window_filter(version_id, min(a for a, _ in windows), max(b for _, b in windows), None)
        join = "LEFT JOIN labels l ON l.prediction_id = p.prediction_id " if labelled else ""
        found = con.execute(
            f"SELECT w.i, count(*), {'count(l.label)' if labelled else 'NULL'} FROM preds p {join}"
            f"JOIN w ON p.ts >= w.a AND p.ts < w.b WHERE {where} GROUP BY w.i", params).fetchall()
    out = list(nothing)
    for i, rows, known in found:
        out[i] = (int(rows), int(known) if labelled else None)
    return read, out


def labelled_rows(*, model_id: int, start: datetime | None = None, end: datetime | None = None) -> pa.Table:
    """Predictions of a model with their label, in [start, end): prediction_id, ts, score, label and the
    logged fields under their own names, in time order."""
    with lake.duck() as con:
        if _register(con, model_id) is None:
            return pa.table({"prediction_id": pa.array([], pa.string()), "ts": pa.array([], pa.timestamp("us")),
                             "score": pa.array([], pa.float64()), "label": pa.array([], pa.float64())})
        where, params = _window_filter(None, start, end, None)
        result = con.sql(
            "SELECT p.* EXCLUDE (version_id, environment_id, day, predicted, logged_by, batch), l.label "
            f"FROM preds p JOIN labels l ON l.prediction_id = p.prediction_id WHERE {where} "
            "ORDER BY p.ts, p.prediction_id", params=params).to_arrow_table()
    return result.rename_columns([lake.field_name(c) if c.startswith(lake.FEATURE_PREFIX) else c
                                  for c in result.schema.names])


@dataclass(frozen=True)
class LoggedPrediction:
    """One logged prediction as stored, with its label when one has arrived (for exports and checks)."""

    prediction_id: str
    model_version_id: int
    environment_id: int | None
    ts: datetime
    score: float | None
    predicted: float | None
    logged_by: str | None
    features: dict
    label: float | None


def logged_predictions(*, model_id: int, environment_id: int | None = None) -> list[LoggedPrediction]:
    """Every prediction of a model in time order (then by id): small models and checks only, it reads them all."""
    with lake.duck() as con:
        if _register(con, model_id) is None:
            return []
        where, params = _window_filter(None, None, None, environment_id)
        result = con.sql(
            "SELECT p.* EXCLUDE (day, batch), l.label FROM preds p LEFT JOIN labels l "
            f"ON l.prediction_id = p.prediction_id WHERE {where} ORDER BY p.ts, p.prediction_id", params=params
        ).to_arrow_table().to_pylist()
    out = []
    for row in result:
        features = {lake.field_name(k): v for k, v in row.items() if k.startswith(lake.FEATURE_PREFIX)}
        out.append(LoggedPrediction(row["prediction_id"], row["version_id"], row["environment_id"], row["ts"],
                                    row["score"], row["predicted"], row["logged_by"], features, row["label"]))
    return out


def labels(*, model_id: int) -> dict[str, float]:
    """Every label of a model by prediction id."""
    t = lake.dataset(model_id, "labels")
    if t is None:
        return {}
    got = t.to_table(columns=["prediction_id", "label"])
    return dict(zip(got.column("prediction_id").to_pylist(), got.column("label").to_pylist(), strict=True))
