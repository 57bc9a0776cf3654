"""Logging predictions and their delayed ground truth: from a DataFrame, a CSV path or an uploaded file.

Files are streamed in record batches (pyarrow's CSV reader, every column read as text) and each batch is
validated with vector operations, then staged in the lake (`core.monitoring.lake`) as typed columns: numbers
as float64, categories as text. The lake commits what was staged when the caller's unit of work commits, so
a problem anywhere in the file raises before anything is committed (all-or-nothing), while the file is never
held in memory whole. Its ids are checked once it is read, by DuckDB over the files just staged (none is kept in
this process's memory); the file is read a second time only to name the rows of a refused id.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlmodel import Session, select

from core import audit
from core.access import Actor, require
from core.clock import now
from core.entities import Environment, Model
from core.errors import InvalidInput, NotFound
from core.lake import tables as lake
from core.lake.predictions import (
    IdsAgain,
    insert_labels,
    insert_predictions,
    repeated_ids,
    stored_labels,
    stored_positions,
    update_labels,
)
from core.models import column_mapping, mapping_records, registry
from core.monitoring.prediction_files import Source, batches, header, name_of, opened


@dataclass(frozen=True)
class PredictionsIngested:
    model: str
    version: int
    environment: str | None
    rows: int
    source: str
    window_start: datetime | None = None  # earliest and latest prediction time in the file
    window_end: datetime | None = None
    kind: str = "predictions"
    ignored_columns: tuple[str, ...] = ()  # columns of the file neither mapped nor read


@dataclass(frozen=True)
class LabelsIngested:
    model: str
    rows: int
    inserted: int
    updated: int
    unchanged: int
    source: str
    window_start: datetime | None = None  # earliest and latest time of the labelled predictions
    window_end: datetime | None = None
    kind: str = "ground_truth"


def _rows(positions: list[int], offset: int) -> str:
    shown = ", ".join(str(offset + p + 1) for p in positions[:5])
    return f"row {shown}" if len(positions) == 1 else f"rows {shown}" + (
        f" (and {len(positions) - 5} more)" if len(positions) > 5 else "")


def _where(mask: pa.Array) -> list[int]:
    return pc.indices_nonzero(pc.fill_null(mask, True)).to_pylist()


def _numbers(col: pa.Array, *, column: str, offset: int, name: str, what: str = "numbers",
             show_trimmed: bool = False) -> pa.Array:
    """Text or numbers as float64, surrounding spaces ignored; names the rows whose text is not a number (as
    written, or trimmed with SHOW_TRIMMED)."""
    if not pa.types.is_string(col.type):
        return col.cast(pa.float64())
    try:
        return pc.cast(col, pa.float64())  # plain numbers, the usual case, need no trimmed copy
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    trimmed = pc.utf8_trim_whitespace(col)
    try:
        return pc.cast(trimmed, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        if show_trimmed:
            col = trimmed
        bad, values = [], []
        for i, text in enumerate(col.to_pylist()):
            try:
                values.append(None if text is None else float(text))
            except ValueError:
                bad.append(i)
        if bad:
            shown = ", ".join(repr(col[i].as_py())[:40] for i in bad[:3])
            raise InvalidInput(f"{name}: column {column!r} {_rows(bad, offset)} hold {shown}, which are not "
                               f"{what}; nothing was ingested") from None
        return pa.array(values, type=pa.float64())


def _feature_numbers(col: pa.Array, *, column: str, offset: int, name: str) -> pa.Array:
    """A numeric field as float64 (null when missing, infinite or NaN); names the rows that are not numbers."""
    col = _numbers(col, column=column, offset=offset, name=name, show_trimmed=True)
    finite = pc.is_finite(col)
    if pc.all(finite).as_py() is not False:  # nothing to blank: every value present is finite
        return col
    return pc.if_else(pc.fill_null(finite, False), col, pa.scalar(None, pa.float64()))


def _feature_strings(col: pa.Array) -> pa.Array:
    """A categorical field as text."""
    return col if pa.types.is_string(col.type) else pc.cast(col, pa.string())


def feature_values(batch: pa.RecordBatch, features: list[dict], *, offset: int, name: str) -> dict[str, pa.Array]:
    """Each logged field's values, typed as it is stored: numbers as float64, categories as text."""
    return {f["name"]: (_feature_numbers(batch.column(f["name"]), column=f["name"], offset=offset, name=name)
                        if f["type"] == "numeric" else _feature_strings(batch.column(f["name"])))
            for f in features}


def timestamps(col: pa.Array, *, column: str, offset: int, name: str) -> pa.Array:
    """ISO 8601 text (any offset) as naive UTC timestamps; names the rows that do not parse."""
    if pa.types.is_timestamp(col.type):
        parsed = col.cast(pa.timestamp("us"))
    else:
        try:
            parsed = pc.cast(col, pa.timestamp("us"))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            series = pd.to_datetime(col.to_pandas(), utc=True, format="ISO8601", errors="coerce")
            parsed = pa.array(series.dt.tz_localize(None).astype("datetime64[us]"), type=pa.timestamp("us"))
    bad = _where(pc.is_null(parsed))
    if bad:
        shown = ", ".join(repr(col[i].as_py()) for i in bad[:3])
        raise InvalidInput(f"{name}: column {column!r} {_rows(bad, offset)} hold {shown}, which are not ISO 8601 "
                           "timestamps; nothing was ingested")
    return parsed


def _ids(col: pa.Array, *, column: str, offset: int, name: str, seen: set[str]) -> list[str]:
    text = pc.utf8_trim_whitespace(col.cast(pa.string()))
    blank = _where(pc.equal(pc.utf8_length(text), 0))
    if blank:
        raise InvalidInput(f"{name}: {_rows(blank, offset)} have no {column!r}; nothing was ingested")
    long = _where(pc.greater(pc.utf8_length(text), 128))
    if long:
        raise InvalidInput(f"{name}: {_rows(long, offset)} have a {column!r} longer than 128 characters")
    ids = text.to_pylist()
    repeated = []
    for value in ids:
        if value in seen:
            repeated.append(value)
        seen.add(value)
    if repeated:
        shown = ", ".join(map(repr, list(dict.fromkeys(repeated))[:5]))
        raise InvalidInput(f"{name}: prediction id(s) {shown} appear more than once in the file "
                           f"({len(repeated)} repeat(s)); nothing was ingested")
    return ids


def _prediction_ids(col: pa.Array, *, column: str, offset: int, name: str) -> pa.Array:
    """A chunk's prediction ids, trimmed: none blank, none longer than 128 characters (repeats, within the file
    and against stored ids, are found in one pass once the whole file is read)."""
    text = pc.utf8_trim_whitespace(col.cast(pa.string()))
    lengths = pc.utf8_length(text)
    blank = _where(pc.equal(lengths, 0))
    if blank:
        raise InvalidInput(f"{name}: {_rows(blank, offset)} have no {column!r}; nothing was ingested")
    long = _where(pc.greater(lengths, 128))
    if long:
        raise InvalidInput(f"{name}: {_rows(long, offset)} have a {column!r} longer than 128 characters")
    return text


def _refuse_repeats(files: list[str], *, ids_again: IdsAgain, column: str, name: str) -> None:
    repeated, total = repeated_ids(files=files, ids_again=ids_again)
    if repeated:
        shown = ", ".join(repr(pid) for pid, _positions in repeated)
        where = "; ".join(f"{pid!r} at {_rows(positions, 0)}" for pid, positions in repeated)
        raise InvalidInput(f"{name}: column {column!r}: prediction id(s) {shown} appear more than once in the file "
                           f"({where}; {total} repeat(s)); nothing was ingested")


def _refuse_stored(files: list[str], *, model: Model, earlier: list[str] | None, ids_again: IdsAgain, column: str,
                   name: str) -> None:
    clashes, total = stored_positions(model_id=model.id, files=files, earlier=earlier, ids_again=ids_again)
    if clashes:
        shown = ", ".join(repr(pid) for pid, _position in clashes)
        raise InvalidInput(f"{name}: column {column!r}: prediction id(s) {shown} are already stored for {model.name} "
                           f"({_rows([p for _pid, p in clashes], 0)}; {total} in all); nothing was ingested")


def _check_scores(score: pa.Array, *, column: str, offset: int, name: str, task: str) -> None:
    missing = _where(pc.invert(pc.fill_null(pc.is_finite(score), False)))
    if missing:
        raise InvalidInput(f"{name}: column {column!r} {_rows(missing, offset)} are empty, NaN or infinite; "
                           "nothing was ingested")
    if task == "binary":
        outside = _where(pc.or_(pc.less(score, 0.0), pc.greater(score, 1.0)))
        if outside:
            shown = ", ".join(f"{score[i].as_py():g}" for i in outside[:3])
            raise InvalidInput(f"{name}: column {column!r} {_rows(outside, offset)} hold {shown}, outside the "
                               "probabilities [0, 1]; nothing was ingested")


def _check_classes(values: pa.Array, *, column: str, offset: int, name: str, task: str, what: str) -> None:
    missing = _where(pc.invert(pc.fill_null(pc.is_finite(values), False)))
    if missing:
        raise InvalidInput(f"{name}: column {column!r} {_rows(missing, offset)} have no {what}; "
                           "nothing was ingested")
    if task == "binary":
        outside = _where(pc.invert(pc.is_in(values, value_set=pa.array([0.0, 1.0]))))
        if outside:
            shown = ", ".join(f"{values[i].as_py():g}" for i in outside[:3])
            raise InvalidInput(f"{name}: column {column!r} {_rows(outside, offset)} hold {shown}, but the model's "
                               "classes are 0 and 1; nothing was ingested")


def _environment_id(session: Session, environment: str | None) -> int | None:
    if not environment:
        return None
    env = session.exec(select(Environment).where(Environment.name == environment)).first()
    if env is None:
        raise NotFound(f"no environment named {environment!r}")
    return env.id


def logged_columns(model: Model) -> list[dict]:
    """Features, plus any column a business metric sums, as stored with each prediction."""
    return logged_fields(features=model.features, business_metrics=model.business_metrics)


def logged_fields(*, features: list[dict], business_metrics: list[dict]) -> list[dict]:
    """A model's FEATURES, plus any column one of its BUSINESS_METRICS sums (optional), as logged."""
    out = [dict(f) for f in features]
    names = {f["name"] for f in out}
    for spec in business_metrics:
        column = spec.get("column")
        if column and column not in names:
            out.append({"name": column, "type": "numeric", "optional": True})
            names.add(column)
    return out


def ingest_predictions(*, session: Session, actor: Actor, model: str, source: Source, id_col: str,
                       version: int | None = None, ts_col: str | None = None, score_col: str | None = None,
                       prediction_col: str | None = None, environment: str | None = None) -> PredictionsIngested:
    """Log predictions of a version (default: the active one); the whole file or nothing."""
    require(actor, "evaluation.write")
    m = registry.model_row(session, model)
    v = registry.version_row(session, m, version)
    env_id = _environment_id(session, environment)
    name = name_of(source)
    if m.task == "binary" and not (score_col or prediction_col):
        raise InvalidInput("a binary model's predictions need a score column (probability) or a prediction column")
    if m.task == "regression" and not prediction_col:
        raise InvalidInput("a regression model's predictions need a prediction column")
    if score_col and m.task == "regression":
        raise InvalidInput("a regression model has no probability score; give its prediction column only")
    source = opened(source)
    present = set(header(source))
    columns = [c for c in logged_columns(m) if not c.get("optional") or c["name"] in present]
    wanted = list(dict.fromkeys([id_col, *(c for c in (ts_col, score_col, prediction_col) if c),
                                 *(c["name"] for c in columns)]))
    ignored = column_mapping.check_incoming(columns=header(source), features=m.features, read=wanted, source=name)
    committed = lake.table(m.id, "predictions") is not None
    staged_before = lake.staged_files(session, model_id=m.id)  # an earlier ingest in this unit of work
    rows = 0
    span: tuple = (None, None)
    received = now()
    text = {id_col, *(c["name"] for c in columns if c["type"] != "numeric")}
    for batch in batches(source, wanted, text=text):
        if batch.num_rows == 0:
            continue
        ids = _prediction_ids(batch.column(id_col), column=id_col, offset=rows, name=name)
        ts = (timestamps(batch.column(ts_col), column=ts_col, offset=rows, name=name) if ts_col
              else pa.array([received] * batch.num_rows, type=pa.timestamp("us")))
        score = predicted = None
        if score_col:
            score = _numbers(batch.column(score_col), column=score_col, offset=rows, name=name)
            _check_scores(score, column=score_col, offset=rows, name=name, task=m.task)
        if prediction_col:
            predicted = _numbers(batch.column(prediction_col), column=prediction_col, offset=rows, name=name)
            _check_classes(predicted, column=prediction_col, offset=rows, name=name, task=m.task,
                           what="prediction")
        first, last = pc.min_max(ts).values()
        found = [t for t in (*span, first.as_py(), last.as_py()) if t is not None]
        span = (min(found), max(found))
        features = feature_values(batch, columns, offset=rows, name=name)
        insert_predictions(session, model_id=m.id, version_id=v.id, environment_id=env_id, ids=ids, ts=ts,
                           score=score, predicted=predicted, features=features)
        rows += batch.num_rows
    if rows == 0:
        raise InvalidInput(f"{name} has no rows; nothing was ingested")
    # The file's ids are checked once it is read, from the files just staged (none is kept in memory): repeats
    # within the file, then ids the model already has.
    files = lake.staged_files(session, model_id=m.id)[len(staged_before or []):]  # this file's
    pa.default_memory_pool().release_unused()  # what the reading kept for reuse (240 MB at 10M rows) goes back

    def ids_again() -> Iterator[pa.Array]:  # where a refused id is: the file's ids read again, in order
        if hasattr(source, "seek"):
            source.seek(0)
        for again in batches(source, [id_col], text={id_col}):
            yield _prediction_ids(again.column(id_col), column=id_col, offset=0, name=name)

    _refuse_repeats(files, ids_again=ids_again, column=id_col, name=name)
    if committed or staged_before is not None:
        _refuse_stored(files, model=m, earlier=staged_before, ids_again=ids_again, column=id_col, name=name)
    audit.record(session, actor=actor.username, action="predictions.ingest", entity_type="model_version",
                 entity_id=f"{m.name}:v{v.number}", project_id=m.project_id,
                 details={"rows": rows, "source": name, "environment": environment})
    return PredictionsIngested(model=m.name, version=v.number, environment=environment, rows=rows, source=name,
                               window_start=span[0], window_end=span[1], ignored_columns=tuple(ignored))


def ingest_ground_truth(*, session: Session, actor: Actor, model: str, source: Source, id_col: str,
                        label_col: str, arrived_col: str | None = None) -> LabelsIngested:
    """Join labels to logged predictions by id: new ones added, same ones unchanged, changed ones updated (audited)."""
    require(actor, "evaluation.write")
    m = registry.model_row(session, model)
    name = name_of(source)
    wanted = list(dict.fromkeys([id_col, label_col, *([arrived_col] if arrived_col else [])]))
    seen: set[str] = set()
    rows = inserted = unchanged = 0
    span: tuple = (None, None)
    changes: list[dict] = []
    received = now()
    source = opened(source)
    for batch in batches(source, wanted, text={id_col}):
        if batch.num_rows == 0:
            continue
        ids = _ids(batch.column(id_col), column=id_col, offset=rows, name=name, seen=seen)
        labels = _numbers(batch.column(label_col), column=label_col, offset=rows, name=name, what="labels")
        _check_classes(labels, column=label_col, offset=rows, name=name, task=m.task, what="label")
        arrived = (timestamps(batch.column(arrived_col), column=arrived_col, offset=rows, name=name)
                   if arrived_col else pa.array([received] * batch.num_rows, type=pa.timestamp("us")))
        known, first, last = stored_labels(session, model_id=m.id, ids=ids)
        unknown = [i for i in ids if i not in known]
        if unknown:
            raise InvalidInput(f"{name}: no prediction of {m.name} has id(s) {', '.join(map(repr, unknown[:5]))} "
                               f"({len(unknown)} unknown in all); nothing was ingested")
        times = [t for t in (*span, first, last) if t is not None]
        span = (min(times), max(times))
        new_rows, updates = [], []
        for i, (pid, label) in enumerate(zip(ids, labels.to_pylist(), strict=True)):
            old = known[pid]
            if old is None:
                new_rows.append(i)
            elif old == label:
                unchanged += 1
            else:
                updates.append((pid, label, arrived[i].as_py()))
                changes.append({"id": pid, "from": old, "to": label})
        taken = pa.array(new_rows, type=pa.int64())
        insert_labels(session, model_id=m.id, ids=[ids[i] for i in new_rows], labels=labels.take(taken),
                      arrived=arrived.take(taken))
        update_labels(session, model_id=m.id, rows=updates)
        inserted += len(new_rows)
        rows += batch.num_rows
    if rows == 0:
        raise InvalidInput(f"{name} has no rows; nothing was ingested")
    if inserted:
        audit.record(session, actor=actor.username, action="ground_truth.ingest", entity_type="model",
                     entity_id=m.name, project_id=m.project_id,
                     details={"rows": rows, "inserted": inserted, "unchanged": unchanged, "source": name})
    if changes:
        audit.record(session, actor=actor.username, action="ground_truth.update", entity_type="model",
                     entity_id=m.name, project_id=m.project_id,
                     details={"updated": len(changes), "source": name, "changes": changes[:1000]})
    return LabelsIngested(model=m.name, rows=rows, inserted=inserted, updated=len(changes), unchanged=unchanged,
                          source=name, window_start=span[0], window_end=span[1])


# --- files with conventional column names (dropped files, query results) -------------------------------

@dataclass(frozen=True)
class IngestOutcome:
    kind: str  # predictions | ground_truth | predictions_and_ground_truth
    rows: int
    window_start: datetime | None
    window_end: datetime | None


def _first(names: list[str], candidates: tuple[str, ...]) -> str | None:
    return next((c for c in candidates if c in names), None)


def _role_column(names: list[str], mapped: str | None, role: str, conventions: tuple[str, ...],
                 source: Source) -> str | None:
    """The column holding ROLE: the mapped one (which the file must have), else the first conventional name."""
    if mapped:
        if mapped not in names:
            raise InvalidInput(f"{name_of(source)} has no column {mapped!r}, the model's {role} column in its "
                               f"column mapping (its columns: {', '.join(names)})")
        return mapped
    return _first(names, conventions)


def ingest_detected(*, session: Session, actor: Actor, model: str, source: Source) -> IngestOutcome:
    """Ingest a file of predictions and/or labels, its columns read as the model's column mapping names them
    (id, timestamp, score, prediction, target); roles the mapping leaves open follow the conventions: an id
    (prediction_id, transaction_id or id), a time (ts or timestamp), a score (score, probability) or a
    prediction, and the model's target as the label."""
    m = registry.model_row(session, model)
    names = header(source)
    info = mapping_records.newest(session, m)
    mapped = info.mapping if info else None
    pid = _role_column(names, mapped and mapped.id_column, "id", ("prediction_id", "transaction_id", "id"), source)
    score = _first(names, (*([mapped.score_column] if mapped and mapped.score_column else []),
                           "score", "__score__", "probability"))
    prediction = _first(names, (*([mapped.prediction_column] if mapped and mapped.prediction_column else []),
                                "prediction", "predicted", "__prediction__"))
    label = _first(names, (m.target, "label"))
    if pid is None or not (score or prediction or label):
        raise InvalidInput(f"{name_of(source)} has no id column (prediction_id, transaction_id or id) with "
                           f"scores, predictions or labels ({m.target})")
    outcomes = []
    if score or prediction:
        ts = _role_column(names, mapped and mapped.timestamp_column, "timestamp", ("ts", "timestamp"), source)
        outcomes.append(ingest_predictions(session=session, actor=actor, model=model, source=source, id_col=pid,
                                           ts_col=ts,
                                           score_col=score if m.task == "binary" else None,
                                           prediction_col=prediction))
        if hasattr(source, "seek"):
            source.seek(0)  # an upload is read once more for its labels
    if label:
        outcomes.append(ingest_ground_truth(session=session, actor=actor, model=model, source=source, id_col=pid,
                                            label_col=label))
    starts = [o.window_start for o in outcomes if o.window_start]
    ends = [o.window_end for o in outcomes if o.window_end]
    return IngestOutcome(kind="_and_".join(o.kind for o in outcomes), rows=outcomes[0].rows,
                         window_start=min(starts) if starts else None, window_end=max(ends) if ends else None)
