"""Reading a request's body: JSON without NaN or Infinity, records checked field by field against the model's
features, a deployment's version and note; each problem names its field.

A batch whose every value has its field's type is decoded straight into typed fields (msgspec), without a dict per
record; any other body is read record by record, and that reading names the first problem.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from functools import lru_cache
from operator import attrgetter, itemgetter
from typing import Any

import msgspec
import numpy as np
import orjson
import pandas as pd
import pyarrow as pa

from core.errors import (
    InvalidInput,
    WatchtowerError,
)

log = logging.getLogger("watchtower.api")


DEFAULT_MAX_BATCH = 10_000
DEFAULT_MAX_BYTES = 32 * 1024 * 1024
MAX_DEPLOY_BYTES = 64 * 1024
MAX_VERSION = 2**31 - 1  # a version number the database stores
MAX_NOTE = 2000


class TooLarge(WatchtowerError):
    """The request exceeds the batch or body size limit."""


class Unavailable(WatchtowerError):
    """The model (or the database) cannot serve right now; the client may retry later."""


def with_field(exc: WatchtowerError, field: str | None) -> WatchtowerError:
    exc.field = field  # type: ignore[attr-defined]
    return exc


def invalid(message: str, field: str | None) -> WatchtowerError:
    return with_field(InvalidInput(message), field)



# --- the request body ---------------------------------------------------------------------------------------

def _bad_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def parse_json(body: bytes) -> Any:
    """The body as JSON; InvalidInput (field 'body') when it is not JSON, has NaN/Infinity, a number too long,
    or nests deeper than the parser's limit. orjson reads well-formed bodies; a body it refuses is read again
    by the standard parser, whose answers name the problem (an overflowing number becomes infinity, refused
    later with its record and field)."""
    try:
        return orjson.loads(body or b"null")
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(body or b"null", parse_constant=_bad_constant)
    except RecursionError:
        raise invalid("the body nests deeper than this API accepts", "body") from None
    except (ValueError, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "digits" in first and "limit" in first:
            first = "a number has more digits than this API accepts"
        raise invalid(f"the body is not valid JSON: {first}", "body") from None


def parse_records(body: bytes, *, max_batch: int) -> list[dict]:
    """The records of a request body ({"records": [...]} or a bare list); InvalidInput/TooLarge say why not."""
    payload = parse_json(body)
    records = payload.get("records") if isinstance(payload, dict) else payload
    if not isinstance(records, list):
        raise invalid('the body must be {"records": [{feature: value, ...}, ...]}',
                      "records" if isinstance(payload, dict) else "body")
    if not records:
        raise invalid("the request holds no records", "records")
    if len(records) > max_batch:
        raise with_field(TooLarge(f"{len(records)} records exceed the limit of {max_batch} per request"), "records")
    return records


def kind_of(value: Any) -> str:
    if isinstance(value, str):
        return "text"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def number_problem(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        shown = f" {json.dumps(value)[:40]}" if isinstance(value, str) else ""
        return f"must be a number, got {kind_of(value)}{shown}"
    if isinstance(value, int):
        try:
            float(value)
        except OverflowError:
            return "is out of range (larger than a 64-bit float)"
        return None
    return None if math.isfinite(value) else "must be a finite number"


def value_problem(value: Any, kind: str) -> str | None:
    if kind == "numeric":
        return number_problem(value)
    if not isinstance(value, str):
        return f"must be a category (text), got {kind_of(value)}"
    return None


_PLAIN_NUMBERS = {int, float}  # bool and text are not numbers here, though numpy would convert them


def _column(values: Sequence[Any], kind: str, required: bool) -> tuple[Any, int | None, str | None]:
    """One field's values as a column (float64 with NaN where missing, or the texts), or the first record whose
    value is refused and why. Numbers all of plain int/float type convert in one block; anything else is checked
    value by value."""
    if kind == "numeric" and set(map(type, values)) <= _PLAIN_NUMBERS:
        try:
            block = np.array(values, dtype=float)
        except OverflowError:  # an integer beyond any float: named below
            block = None
        if block is not None and np.isfinite(block).all():
            return block, None, None
    for i, value in enumerate(values):
        why = ("is missing" if required else None) if value is None else value_problem(value, kind)
        if why:
            return None, i, why
    if kind == "numeric":
        return np.array([np.nan if v is None else v for v in values], dtype=float), None, None
    return list(values), None, None


def _field_values(records: list[dict], names: list[str]) -> list[Sequence[Any]]:
    """Each named field's values over the records, read column by column (a missing field is None)."""
    if len(names) > 1:
        try:  # every record has every field, the usual case: read in C, record by record
            return list(zip(*map(itemgetter(*names), records), strict=True)) if records else [()] * len(names)
        except KeyError:
            pass
    return [[rec.get(name) for rec in records] for name in names]


def read_records(records: list[Any], *, features: Sequence[tuple[str, str]],
                 extras: Sequence[str] = ()) -> tuple[pd.DataFrame, dict[str, pa.Array]]:
    """The records as the model's input frame (its FEATURES, (name, numeric|categorical), in order) and as the
    logged columns (the features, then each of EXTRAS, numeric columns a business metric sums, that some record
    holds), typed as file ingestion types them: numbers as float64, categories as text, missing values null.
    The first problem, by record then by field, is named with its record and field."""
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise invalid(f"record {i} is not an object of feature values", f"records[{i}]")
    kinds = _field_kinds(features, extras)
    required = {n for n, _ in features}
    names = list(kinds)
    columns: dict[str, Any] = {}
    problems: list[tuple[int, int, str, str]] = []  # (record, field position, field, why)
    for pos, (name, values) in enumerate(zip(names, _field_values(records, names), strict=True)):
        column, i, why = _column(values, kinds[name], name in required)
        if why:
            problems.append((i, pos, name, why))
        else:
            columns[name] = column
    if problems:
        i, _pos, name, why = min(problems)
        raise invalid(f"record {i}: field {name!r} {why}", f"records[{i}].{name}")
    return _frame_and_logged(columns, features=features, kinds=kinds)


def _frame_and_logged(columns: dict[str, Any], *, features: Sequence[tuple[str, str]],
                      kinds: dict[str, str]) -> tuple[pd.DataFrame, dict[str, pa.Array]]:
    """The model's input frame and the logged columns, from every field's checked column."""
    required = {n for n, _ in features}
    frame = pd.DataFrame({name: columns[name] for name, _ in features})
    logged = {name: pa.array(column, type=pa.float64(), from_pandas=True) if kinds[name] == "numeric"
              else pa.array(column, type=pa.string())
              for name, column in columns.items() if name in required or not np.isnan(column).all()}
    return frame, logged


def _field_kinds(features: Sequence[tuple[str, str]], extras: Sequence[str]) -> dict[str, str]:
    """Every field a record may hold: the features, then the extras (numeric) that are not features."""
    return {**{n: k for n, k in features}, **{n: "numeric" for n in extras if n not in dict(features)}}


@lru_cache(maxsize=64)
def _typed_decoder(fields: tuple[tuple[str, str], ...]) -> msgspec.json.Decoder:
    """A decoder of bodies whose every value is of its field's type: a number (numeric) or a text (categorical),
    null or absent as None; other fields are skipped. Attributes are f0, f1, ... in the order of FIELDS."""
    record = msgspec.defstruct(
        "Record", [(f"f{i}", (float | None) if kind == "numeric" else (str | None), None)
                   for i, (_, kind) in enumerate(fields)],
        rename={f"f{i}": name for i, (name, _) in enumerate(fields)}, gc=False)  # numbers and texts: no cycles
    body = msgspec.defstruct("Body", [("records", list[record])])
    return msgspec.json.Decoder(body | list[record])


def _typed_columns(body: bytes, *, kinds: dict[str, str], required: set[str],
                   max_batch: int) -> dict[str, Any] | None:
    """Every field's column, when the body is UTF-8 JSON whose records all hold a value of the right type for
    every feature (numbers finite); None for any other body."""
    fields = tuple(kinds.items())
    try:
        decoded = _typed_decoder(fields).decode(body.decode("utf-8"))  # a body must be UTF-8, even where skipped
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None
    records = decoded if isinstance(decoded, list) else decoded.records
    if not 0 < len(records) <= max_batch:
        return None
    attrs = [f"f{i}" for i in range(len(fields))]
    if len(attrs) == 1:
        values: list[Sequence[Any]] = [[getattr(rec, attrs[0]) for rec in records]]
    else:
        values = list(zip(*map(attrgetter(*attrs), records), strict=True))
    columns: dict[str, Any] = {}
    for (name, kind), column in zip(fields, values, strict=True):
        if kind == "numeric":
            block = np.array(column, dtype=float)  # None becomes NaN
            if np.isinf(block).any() or (name in required and np.isnan(block).any()):
                return None
            columns[name] = block
        else:
            if name in required and None in column:
                return None
            columns[name] = list(column)
    return columns


def read_body(body: bytes, *, features: Sequence[tuple[str, str]], extras: Sequence[str] = (),
              max_batch: int) -> tuple[pd.DataFrame, dict[str, pa.Array]]:
    """A request body's records as the model's input frame and the logged columns, as `read_records` makes them.
    A well-formed body is decoded straight into typed fields, without a dict per record; any other is read by
    `parse_records` and `read_records`, whose answers name the body's first problem."""
    kinds = _field_kinds(features, extras)
    columns = _typed_columns(body, kinds=kinds, required={n for n, _ in features}, max_batch=max_batch)
    if columns is None:
        return read_records(parse_records(body, max_batch=max_batch), features=features, extras=extras)
    return _frame_and_logged(columns, features=features, kinds=kinds)


def deploy_payload(body: bytes) -> tuple[int, str]:
    """The version (a positive integer the database can hold) and note of a deployment request."""
    payload = parse_json(body)
    if not isinstance(payload, dict):
        raise invalid('the body must be {"version": N, "note": "..."}', "body")
    if payload.get("version") is None:
        raise invalid("version is missing", "version")
    version = payload["version"]
    if isinstance(version, bool) or not isinstance(version, int):
        raise invalid(f"version must be a positive whole number, got {kind_of(version)}", "version")
    if not 1 <= version <= MAX_VERSION:
        raise invalid(f"version must be between 1 and {MAX_VERSION}", "version")
    note = payload.get("note", "")
    if note is None:
        note = ""
    if not isinstance(note, str):
        raise invalid(f"note must be text, got {kind_of(note)}", "note")
    if len(note) > MAX_NOTE:
        raise invalid(f"note is longer than {MAX_NOTE} characters", "note")
    return version, note
