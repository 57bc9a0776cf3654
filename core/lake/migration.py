"""Moving a store that kept predictions as SQL rows (the `prediction` and `groundtruth` tables) into the lake.

Each model moves in chunks of rows in id order; each chunk is one lake commit whose rows carry the batch
`migrated:<model id>:<last row id>`, so an interrupted migration resumes after the last chunk that landed.
Labels then merge by prediction id (idempotent). Once the lake holds as many of the model's migrated
predictions and labels as SQL does, the model's SQL rows are deleted, in the same unit of work as the
audit record; a model whose counts disagree keeps its rows and is reported.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson
from sqlalchemy import text
from sqlmodel import select

from core import audit
from core.access import Actor, require
from core.db import is_sqlite, session_scope
from core.entities import Model
from core.lake import predictions as store
from core.lake import tables as lake

CHUNK_ROWS = 200_000
PREFIX = "migrated"


@dataclass(frozen=True)
class ModelMigrated:
    model: str
    predictions: int  # SQL rows the model had
    labels: int
    in_lake: int  # migrated predictions the lake holds
    labels_in_lake: int
    moved: bool  # counts agreed and the SQL rows were deleted


def _logged_kinds(m: Model) -> dict[str, str]:
    kinds = {f["name"]: f.get("type", "numeric") for f in m.features}
    for spec in m.business_metrics:
        if spec.get("column"):
            kinds.setdefault(spec["column"], "numeric")
    return kinds


def _features(texts: list[str], kinds: dict[str, str]) -> dict[str, pa.Array]:
    """The JSON feature objects of a chunk as typed columns (numbers as float64, categories as text)."""
    n = len(texts)
    try:
        parsed = pajson.read_json(io.BytesIO("\n".join(texts).encode()))
        columns = {name: parsed.column(name).combine_chunks() for name in parsed.column_names}
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        records = [json.loads(t) for t in texts]
        columns = {name: pa.array([r.get(name) for r in records]) for name in {k for r in records for k in r}}
    out = {}
    for name, kind in kinds.items():
        values = columns.get(name)
        if values is None:
            out[name] = pa.nulls(n, pa.float64() if kind == "numeric" else pa.string())
        elif kind == "numeric":
            out[name] = pc.cast(values, pa.float64(), safe=False) if not pa.types.is_string(values.type) else \
                pa.array([None if v in (None, "") else float(v) for v in values.to_pylist()], pa.float64())
        else:
            out[name] = pc.cast(values, pa.string())
    return out


def _resume_after(model_id: int) -> int:
    """The last SQL row id already migrated for the model (0 when none)."""
    with lake.duck() as con:
        if store._register(con, model_id) is None:  # noqa: SLF001 - the same registration the reads use
            return 0
        last = con.execute("SELECT max(CAST(split_part(batch, ':', 3) AS BIGINT)) FROM preds "
                           "WHERE batch LIKE ?", [f"{PREFIX}:{model_id}:%"]).fetchone()[0]
    return int(last or 0)


def _migrated_count(model_id: int) -> int:
    with lake.duck() as con:
        if store._register(con, model_id) is None:  # noqa: SLF001
            return 0
        return int(con.execute("SELECT count(*) FROM preds WHERE batch LIKE ?",
                               [f"{PREFIX}:{model_id}:%"]).fetchone()[0])


def _move_predictions(m: Model, *, chunk: int, progress: Callable[[str], None]) -> None:
    kinds = _logged_kinds(m)
    after = _resume_after(m.id)
    while True:
        with session_scope() as s:
            features = "features" if is_sqlite(s) else "features::text"
            rows = s.execute(text(
                f"SELECT id, prediction_id, model_version_id, environment_id, ts, score, predicted, {features}, "
                "logged_by FROM prediction WHERE model_id = :m AND id > :after ORDER BY id LIMIT :n"),
                {"m": m.id, "after": after, "n": chunk}).all()
            if not rows:
                return
            ids, pids, versions, envs, ts, scores, predicted, feats, logged_by = zip(*rows, strict=True)
            after = ids[-1]
            columns = {
                "prediction_id": pa.array(pids, pa.string()), "version_id": pa.array(versions, pa.int64()),
                "environment_id": pa.array(envs, pa.int64()),
                "ts": pa.array([_naive(t) for t in ts], pa.timestamp("us")),
                "score": pa.array(scores, pa.float64()), "predicted": pa.array(predicted, pa.float64()),
                "logged_by": pa.array(logged_by, pa.string()),
                "batch": pa.array([f"{PREFIX}:{m.id}:{after}"] * len(rows), pa.string()),
            }
            for name, values in _features(list(feats), kinds).items():
                columns[lake.feature_column(name)] = values
            lake.stage_predictions(s, model_id=m.id, rows=pa.table(columns))
        progress(f"{m.name}: predictions moved up to row {after:,}")


def _naive(value: object):  # noqa: ANN202 - a datetime from either driver
    import pandas as pd

    return pd.Timestamp(value).to_pydatetime().replace(tzinfo=None)


def _move_labels(m: Model, *, chunk: int) -> None:
    after = 0
    while True:
        with session_scope() as s:
            rows = s.execute(text("SELECT id, prediction_id, label, arrived_at FROM groundtruth WHERE model_id = :m "
                                  "AND id > :after ORDER BY id LIMIT :n"), {"m": m.id, "after": after, "n": chunk}).all()
            if not rows:
                return
            after = rows[-1][0]
            store.insert_labels(s, model_id=m.id, ids=[r[1] for r in rows],
                                labels=pa.array([r[2] for r in rows], pa.float64()),
                                arrived=pa.array([_naive(r[3]) for r in rows], pa.timestamp("us")))


def migrate(*, actor: Actor, chunk: int = CHUNK_ROWS,
            progress: Callable[[str], None] = lambda _m: None) -> list[ModelMigrated]:
    """Move every model's SQL rows into the lake; resumable, checked by counts, audited per model.

    Opens its own units of work: one per chunk, so an interruption keeps what landed.
    """
    require(actor, "settings.manage")
    with session_scope() as s:
        models = list(s.exec(select(Model).order_by(Model.id)).all())
    out = []
    for m in models:
        with session_scope() as s:
            sql_predictions = s.execute(text("SELECT count(*) FROM prediction WHERE model_id = :m"), {"m": m.id}).one()[0]
            sql_labels = s.execute(text("SELECT count(*) FROM groundtruth WHERE model_id = :m"), {"m": m.id}).one()[0]
        if not sql_predictions and not sql_labels:
            continue
        _move_predictions(m, chunk=chunk, progress=progress)
        _move_labels(m, chunk=chunk)
        in_lake = _migrated_count(m.id)
        labels_in_lake = len(store.labels(model_id=m.id))
        moved = in_lake == sql_predictions and labels_in_lake >= sql_labels
        if moved:
            with session_scope() as s:
                s.execute(text("DELETE FROM groundtruth WHERE model_id = :m"), {"m": m.id})
                s.execute(text("DELETE FROM prediction WHERE model_id = :m"), {"m": m.id})
                audit.record(s, actor=actor.username, action="store.migrate", entity_type="model", entity_id=m.name,
                             project_id=m.project_id, details={"predictions": sql_predictions, "labels": sql_labels})
        progress(f"{m.name}: {in_lake:,} of {sql_predictions:,} predictions and {labels_in_lake:,} of {sql_labels:,} "
                 f"labels in the lake" + ("; SQL rows deleted" if moved else "; SQL rows kept: the counts differ"))
        out.append(ModelMigrated(model=m.name, predictions=sql_predictions, labels=sql_labels, in_lake=in_lake,
                                 labels_in_lake=labels_in_lake, moved=moved))
    return out
