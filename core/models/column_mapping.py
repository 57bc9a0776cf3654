"""Which column of a model's data is what: id, timestamp, target, score, prediction, features and their kinds.

What the user declares (options, a page form or a schema file) is checked against the reference file; what
they leave out is inferred: a column unique per row (text or integers) is the id, a column of dates is the
timestamp, and the rest are features. Other ids and dates are ignored and listed, never tested for drift.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from core.errors import InvalidInput

KINDS = ("numeric", "categorical")
ROLES = ("id", "timestamp", "target", "score", "prediction")
SCHEMA_KEYS = (*ROLES, "features")
# A categorical float column with this many distinct values is almost surely a measurement.
MANY_CATEGORIES = 1000
# Integers with this few distinct values may be coded categories.
FEW_CODES = 10
# Below this many rows a column unique per row says nothing about being an id.
ID_MIN_ROWS = 10
_ID_NAMES = ("id", "prediction_id", "transaction_id", "row_id", "uuid")
_TIME_NAMES = ("timestamp", "ts", "time", "datetime", "event_time", "created_at", "date")


@dataclass(frozen=True)
class Mapping:
    """A model's columns by role; features are {name, type} dicts as the model stores them."""

    target: str
    features: tuple[dict, ...]
    id_column: str | None = None
    timestamp_column: str | None = None
    score_column: str | None = None
    prediction_column: str | None = None

    @property
    def feature_names(self) -> list[str]:
        return [f["name"] for f in self.features]

    def roles(self) -> dict[str, str]:
        """Column → role, metadata first."""
        named = {"id": self.id_column, "timestamp": self.timestamp_column, "target": self.target,
                 "score": self.score_column, "prediction": self.prediction_column}
        return {**{c: r for r, c in named.items() if c}, **{f["name"]: f"feature ({f['type']})" for f in self.features}}

    def declared(self) -> Declared:
        """Everything said: registering with it records exactly this mapping."""
        return Declared(target=self.target, id_column=self.id_column, timestamp_column=self.timestamp_column,
                        score_column=self.score_column, prediction_column=self.prediction_column,
                        features=tuple(self.feature_names), kinds={f["name"]: f["type"] for f in self.features})

    def as_schema(self) -> dict:
        """The schema-file form (what `--schema FILE` reads)."""
        return {"id": self.id_column, "timestamp": self.timestamp_column, "target": self.target,
                "score": self.score_column, "prediction": self.prediction_column,
                "features": [{"name": f["name"], "kind": f["type"]} for f in self.features]}


@dataclass(frozen=True)
class Declared:
    """What the user said; None means "infer it"."""

    target: str | None = None
    id_column: str | None = None
    timestamp_column: str | None = None
    score_column: str | None = None
    prediction_column: str | None = None
    features: tuple[str, ...] | None = None
    kinds: dict[str, str] = field(default_factory=dict)

    def over(self, base: Declared) -> Declared:
        """This declaration where it says something, BASE elsewhere (options over a schema file)."""
        given = {k: getattr(self, k) for k in ("target", "id_column", "timestamp_column", "score_column",
                                               "prediction_column", "features") if getattr(self, k) is not None}
        return replace(base, **given, kinds={**base.kinds, **self.kinds})


@dataclass(frozen=True)
class Proposal:
    """A checked mapping, the columns it ignores (with why), what was inferred, and warnings."""

    mapping: Mapping
    ignored: dict[str, str]
    inferred: tuple[str, ...]
    warnings: tuple[str, ...]

    def lines(self) -> list[str]:
        """The mapping as a person reads it, one column per line."""
        out = [f"  {role:<20} {column}" for column, role in self.mapping.roles().items()]
        out += [f"  {'ignored':<20} {column} ({why})" for column, why in self.ignored.items()]
        return out


# --- declarations: options and schema files -----------------------------------------------------------

def parse_kinds(pairs: Iterable[str]) -> dict[str, str]:
    """NAME=numeric|categorical pairs."""
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, kind = pair.partition("=")
        if not sep or not name.strip():
            raise InvalidInput(f"--kind {pair!r} must look like NAME=numeric or NAME=categorical")
        out[name.strip()] = kind.strip()
    return out


def parse_features(text: str | None) -> tuple[str, ...] | None:
    """A comma-separated feature list (None when not given)."""
    if text is None:
        return None
    return tuple(name.strip() for name in text.split(",") if name.strip())


def declared_from_schema(data: object, *, source: str) -> Declared:
    """A schema ({id, timestamp, target, score, prediction, features}) as a declaration."""
    if not isinstance(data, dict):
        raise InvalidInput(f"{source} must hold a mapping of {', '.join(SCHEMA_KEYS)}")
    unknown = [str(k) for k in data if k not in SCHEMA_KEYS]
    if unknown:
        raise InvalidInput(f"{source} has unknown key(s) {', '.join(unknown)}; known: {', '.join(SCHEMA_KEYS)}")
    for key in ROLES:
        if data.get(key) is not None and not isinstance(data[key], str):
            raise InvalidInput(f"{source}: {key} must be a column name, not {data[key]!r}")
    names: list[str] = []
    kinds: dict[str, str] = {}
    raw = data.get("features")
    if isinstance(raw, dict):  # {name: kind}
        raw = [{"name": k, "kind": v} for k, v in raw.items()]
    if raw is not None and not isinstance(raw, list):
        raise InvalidInput(f"{source}: features must be a list of column names or {{name, kind}} entries")
    for entry in raw or []:
        if isinstance(entry, str):
            names.append(entry)
        elif isinstance(entry, dict) and isinstance(entry.get("name"), str):
            names.append(entry["name"])
            kind = entry.get("kind", entry.get("type"))
            if kind is not None:
                kinds[entry["name"]] = str(kind)
        else:
            raise InvalidInput(f"{source}: feature entry {entry!r} is neither a column name nor {{name, kind}}")
    return Declared(target=data.get("target"), id_column=data.get("id"), timestamp_column=data.get("timestamp"),
                    score_column=data.get("score"), prediction_column=data.get("prediction"),
                    features=tuple(names) if raw is not None else None, kinds=kinds)


def read_schema(path: Path | str) -> Declared:
    """A YAML or JSON schema file as a declaration."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"schema file {path} does not exist")
    return schema_text(path.read_text(), name=path.name)


def schema_text(text: str, *, name: str) -> Declared:
    """The text of a YAML or JSON schema file (JSON when NAME ends in .json) as a declaration."""
    import yaml

    try:
        data = json.loads(text) if name.lower().endswith(".json") else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise InvalidInput(f"schema file {name} is not readable: {str(exc).splitlines()[0]}") from exc
    return declared_from_schema(data, source=f"schema file {name}")


# --- inference and checks -------------------------------------------------------------------------------

def _is_id(col: pd.Series) -> bool:
    if len(col) < ID_MIN_ROWS or col.isna().any():
        return False
    typed = pd.api.types.is_integer_dtype(col) or pd.api.types.is_object_dtype(col) or \
        pd.api.types.is_string_dtype(col)
    return typed and not pd.api.types.is_bool_dtype(col) and col.nunique() == len(col)


def _parses_as_dates(col: pd.Series) -> bool:
    if pd.api.types.is_datetime64_any_dtype(col):
        return True
    if not (pd.api.types.is_object_dtype(col) or pd.api.types.is_string_dtype(col)):
        return False
    sample = col.dropna().astype(str).head(500)
    if sample.empty or not sample.str.contains(r"\d").all():
        return False
    try:
        parsed = pd.to_datetime(sample, format="ISO8601", utc=True, errors="coerce")
        if parsed.isna().any():
            parsed = pd.to_datetime(sample, format="mixed", utc=True, errors="coerce")
    except (ValueError, TypeError, OverflowError):
        return False
    return bool(parsed.notna().all())


def metadata_like(frame: pd.DataFrame, columns: Iterable[str]) -> set[str]:
    """The COLUMNS inference would take for an id (unique per row) or a timestamp (dates)."""
    return {c for c in columns if _is_id(frame[c]) or _parses_as_dates(frame[c])}


def _prefer(candidates: list[str], names: tuple[str, ...]) -> str:
    return next((c for n in names for c in candidates if c.lower() == n), candidates[0])


def _kind_of(col: pd.Series) -> str:
    numeric = pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)
    return "numeric" if numeric else "categorical"


def _absent(column: str, what: str, columns: Sequence[str], source: str) -> InvalidInput:
    return InvalidInput(f"{what} {column!r} is not in {source} (columns: {', '.join(columns)})")


def _check_declared(frame: pd.DataFrame, d: Declared, *, source: str) -> None:
    columns = [str(c) for c in frame.columns]
    for what, column in (("target column", d.target), ("id column", d.id_column), ("timestamp column", d.timestamp_column),
                         ("score column", d.score_column), ("prediction column", d.prediction_column)):
        if column is not None and column not in columns:
            raise _absent(column, what, columns, source)
    if d.features is not None:
        if not d.features:
            raise InvalidInput("the feature list is empty: a model needs at least one feature")
        seen: set[str] = set()
        for name in d.features:
            if name in seen:
                raise InvalidInput(f"feature {name!r} is listed twice")
            seen.add(name)
            if name not in columns:
                raise _absent(name, "feature", columns, source)
    roles = [("id column", d.id_column), ("timestamp column", d.timestamp_column), ("target", d.target),
             ("score column", d.score_column), ("prediction column", d.prediction_column)]
    taken: dict[str, str] = {}
    for what, column in roles:
        if column is None:
            continue
        if column in taken:
            raise InvalidInput(f"column {column!r} is both the {taken[column]} and the {what}")
        taken[column] = what
        if d.features is not None and column in d.features:
            raise InvalidInput(f"column {column!r} is both the {what} and a feature")
    bad = {n: k for n, k in d.kinds.items() if k not in KINDS}
    if bad:
        name, kind = next(iter(bad.items()))
        raise InvalidInput(f"feature {name!r} has kind {kind!r}; a kind is numeric or categorical")


def _checked_kinds(frame: pd.DataFrame, features: list[str], kinds: dict[str, str],
                   declared: dict[str, str]) -> list[str]:
    warnings = []
    for name in features:
        col = frame[name]
        if kinds[name] == "numeric" and not (pd.api.types.is_numeric_dtype(col) and not
                                             pd.api.types.is_bool_dtype(col)):
            shown = next((repr(v) for v in col.dropna() if not isinstance(v, (int, float))), "text")
            raise InvalidInput(f"feature {name!r} is declared numeric but holds {shown}, which is not a number")
        distinct = int(col.nunique())
        if kinds[name] == "categorical" and pd.api.types.is_float_dtype(col) and distinct >= MANY_CATEGORIES:
            warnings.append(f"feature {name!r} is declared categorical but is a float column with {distinct:,} "
                            "distinct values: each value becomes a category of its own")
        if name not in declared and kinds[name] == "numeric" and pd.api.types.is_integer_dtype(col) \
                and 2 < distinct <= FEW_CODES:  # 0/1 flags are fine as numbers
            warnings.append(f"feature {name!r} holds integers with only {distinct} distinct values, taken as "
                            f"numeric; if they code categories, declare {name}=categorical")
    return warnings


def propose(frame: pd.DataFrame, declared: Declared, *, source: str) -> Proposal:
    """Check what was declared against FRAME and infer the rest; refuses bad input naming the column."""
    _check_declared(frame, declared, source=source)
    if declared.target is None:
        raise InvalidInput("name the target column")
    columns = [str(c) for c in frame.columns]
    claimed = {c for c in (declared.target, declared.id_column, declared.timestamp_column, declared.score_column,
                           declared.prediction_column) if c}
    free = [c for c in columns if c not in claimed and c not in (declared.features or ())]
    inferred: list[str] = []
    ignored: dict[str, str] = {}
    ids = [c for c in free if _is_id(frame[c])]
    dates = [c for c in free if c not in ids and _parses_as_dates(frame[c])]
    id_column, timestamp_column = declared.id_column, declared.timestamp_column
    if id_column is None and ids:
        id_column = _prefer(ids, _ID_NAMES)
        inferred.append(f"id column {id_column!r}: unique per row")
    if timestamp_column is None and dates:
        timestamp_column = _prefer(dates, _TIME_NAMES)
        inferred.append(f"timestamp column {timestamp_column!r}: holds dates")
    if declared.features is None:
        ignored |= {c: "unique per row, like an id" for c in ids if c != id_column}
        ignored |= {c: "holds dates" for c in dates if c != timestamp_column}
        features = [c for c in free if c not in ignored and c not in (id_column, timestamp_column)]
        if not features:
            raise InvalidInput(f"{source} has no feature columns besides the target, ids and timestamps")
        inferred.append(f"features: every other column ({len(features)})")
    else:
        features = list(declared.features)
        ignored |= {c: "not mapped" for c in free if c not in (id_column, timestamp_column)}
    unknown = [n for n in declared.kinds if n not in features]
    if unknown:
        raise InvalidInput(f"a kind is given for {unknown[0]!r}, which is not a feature")
    kinds = {n: declared.kinds.get(n) or _kind_of(frame[n]) for n in features}
    warnings = _checked_kinds(frame, features, kinds, declared.kinds)
    if declared.timestamp_column and not _parses_as_dates(frame[declared.timestamp_column]):
        raise InvalidInput(f"timestamp column {declared.timestamp_column!r} holds values that are not dates, "
                           f"such as {frame[declared.timestamp_column].iloc[0]!r}")
    if declared.id_column and frame[declared.id_column].nunique() != len(frame):
        warnings.append(f"id column {declared.id_column!r} repeats values in {source}")
    mapping = Mapping(target=declared.target, features=tuple({"name": n, "type": kinds[n]} for n in features),
                      id_column=id_column, timestamp_column=timestamp_column,
                      score_column=declared.score_column, prediction_column=declared.prediction_column)
    return Proposal(mapping=mapping, ignored=ignored, inferred=tuple(inferred), warnings=tuple(warnings))


def check_incoming(*, columns: Sequence[str], features: Sequence[dict], read: Iterable[str | None],
                   source: str) -> list[str]:
    """A logged file must carry every mapped feature; the columns it has beyond what is read are returned."""
    present = [str(c) for c in columns]
    missing = [f["name"] for f in features if f["name"] not in present]
    if missing:
        raise InvalidInput(f"{source} lacks required column(s) {', '.join(map(repr, missing))}, mapped as "
                           "feature(s); nothing was ingested")
    used = {c for c in read if c} | {f["name"] for f in features}
    return [c for c in present if c not in used]
