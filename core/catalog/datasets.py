"""Datasets: a CSV file or a SQL query registered as versions with a schema, a fingerprint and a profile."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import func, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlmodel import Session, select

from core import artifacts, audit
from core.access import Actor, require
from core.catalog import components
from core.clock import now
from core.config import get_settings
from core.db import get_engine
from core.entities import Component, Dataset, DatasetVersion
from core.errors import Conflict, InvalidInput, NotFound

TOP_VALUES = 5
HISTOGRAM_BINS = 10
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?")


@dataclass(frozen=True)
class DatasetVersionRead:
    dataset: str
    number: int
    rows: int
    columns: list[dict]  # [{"name", "type"}]
    profile: list[dict]  # [{"name", "type", "missing_rate", "summary": {...}}]
    fingerprint: str
    source: str
    schema_changes: dict
    flagged: bool
    accepted_by: str | None
    created_by: str
    created_at: datetime
    warning: str = ""  # set when registering: a flagged schema change, projects depending on the dataset

    @property
    def column_names(self) -> list[str]:
        return [c["name"] for c in self.columns]


@dataclass(frozen=True)
class DatasetRead:
    name: str
    source_kind: str
    source: str
    connection: str
    versions: list[DatasetVersionRead]

    @property
    def latest(self) -> DatasetVersionRead:
        return self.versions[-1]


def _read(dataset: Dataset, v: DatasetVersion, warning: str = "") -> DatasetVersionRead:
    return DatasetVersionRead(dataset=dataset.name, number=v.number, rows=v.rows, columns=list(v.columns),
                              profile=list(v.profile), fingerprint=v.fingerprint, source=v.source,
                              schema_changes=dict(v.schema_changes),
                              flagged=v.flagged, accepted_by=v.accepted_by, created_by=v.created_by,
                              created_at=v.created_at, warning=warning)


# --- reading sources ---------------------------------------------------------------------------

def read_csv(path: Path | str) -> pd.DataFrame:
    """A CSV file as a frame, or a one-line reason why it cannot be one."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"dataset file {path} does not exist")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"dataset file {path.name} is not a readable CSV: {str(exc).splitlines()[0]}") from exc
    with path.open(newline="", encoding="utf-8") as fh:
        header = next(csv.reader(fh), [])
    dupes = sorted({c for c in header if header.count(c) > 1})  # pandas would silently rename them "a.1"
    if dupes:
        raise InvalidInput(f"dataset file {path.name} has duplicate or unnamed columns: {', '.join(dupes)}")
    return frame


def read_query(query: str, *, database_url: str | None = None) -> pd.DataFrame:
    """Run a SELECT against a database (default: Watchtower's own) and roll back whatever it did."""
    if not re.match(r"\s*(select|with)\b", query, re.IGNORECASE):
        raise InvalidInput("a dataset query must be a SELECT (or WITH ... SELECT) statement")
    try:
        engine = get_engine(database_url) if database_url else get_engine()
        with engine.connect() as conn:
            try:
                return pd.read_sql_query(text(query), conn)
            finally:
                conn.rollback()
    except ArgumentError as exc:
        raise InvalidInput(f"database URL is not valid: {exc}") from exc
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise InvalidInput(f"the dataset query failed: {reason}") from exc


def _masked(url: str | None) -> str:
    """The URL to store and show: never the password."""
    if not url:
        return ""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError as exc:
        raise InvalidInput(f"database URL is not valid: {exc}") from exc


# --- schema and profile --------------------------------------------------------------------------

def _looks_like_dates(values: pd.Series) -> bool:
    sample = values.dropna().astype(str).head(50)
    return not sample.empty and bool(sample.str.match(_ISO_DATE).all())


def column_type(values: pd.Series) -> str:
    """The logical type of a column: numeric, boolean, datetime or categorical."""
    if pd.api.types.is_bool_dtype(values):
        return "boolean"
    if pd.api.types.is_numeric_dtype(values):
        return "numeric"
    if pd.api.types.is_datetime64_any_dtype(values) or (values.dtype == object and _looks_like_dates(values)):
        return "datetime"
    return "categorical"


def _round(value: float) -> float | None:
    return None if value is None or not np.isfinite(value) else float(round(value, 6))


def _summary(values: pd.Series, kind: str) -> dict:
    present = values.dropna()
    if present.empty:
        return {}
    if kind == "numeric":
        nums = present.astype(float)
        q = nums.quantile([0.25, 0.5, 0.75])
        counts, edges = np.histogram(nums, bins=HISTOGRAM_BINS)
        return {"min": _round(nums.min()), "p25": _round(q[0.25]), "median": _round(q[0.5]), "p75": _round(q[0.75]),
                "max": _round(nums.max()), "mean": _round(nums.mean()), "std": _round(nums.std(ddof=0)),
                "histogram": {"edges": [_round(e) for e in edges], "counts": [int(c) for c in counts]}}
    if kind == "datetime":
        stamps = pd.to_datetime(present, errors="coerce", format="ISO8601").dropna()
        if stamps.empty:
            return {}
        return {"min": stamps.min().isoformat(), "max": stamps.max().isoformat()}
    shares = present.astype(str).value_counts(normalize=True)
    return {"distinct": int(present.astype(str).nunique()),
            "top": [{"value": str(k), "share": _round(v)} for k, v in shares.head(TOP_VALUES).items()]}


def profile_frame(frame: pd.DataFrame) -> tuple[list[dict], list[dict]]:
    """The schema ([{name, type}]) and the profile (type, missing rate, distribution summary) of a frame."""
    columns, profile = [], []
    for name in frame.columns:
        values = frame[name]
        kind = column_type(values)
        columns.append({"name": str(name), "type": kind})
        profile.append({"name": str(name), "type": kind, "missing_rate": _round(float(values.isna().mean())),
                        "summary": _summary(values, kind)})
    return columns, profile


def describe_summary(entry: dict) -> str:
    """A profile entry's distribution in a few words, for tables and the command line."""
    summary = entry.get("summary") or {}
    if not summary:
        return "no values"
    if entry["type"] == "numeric":
        return (f"median {summary['median']:g} (p25 {summary['p25']:g}, p75 {summary['p75']:g}), "
                f"range {summary['min']:g} to {summary['max']:g}")
    if entry["type"] == "datetime":
        return f"{summary['min'][:10]} to {summary['max'][:10]}"
    top = ", ".join(f"{t['value']} {t['share']:.0%}" for t in summary.get("top", [])[:3])
    return f"{summary.get('distinct', 0)} distinct: {top}"


def schema_diff(before: list[dict], after: list[dict]) -> dict:
    """Columns added, removed, or whose type changed between two schemas (empty dict: identical)."""
    old = {c["name"]: c["type"] for c in before}
    new = {c["name"]: c["type"] for c in after}
    diff = {"added": [n for n in new if n not in old], "removed": [n for n in old if n not in new],
            "changed": [{"column": n, "from": old[n], "to": new[n]} for n in new if n in old and old[n] != new[n]]}
    return {k: v for k, v in diff.items() if v}


def _validate_frame(frame: pd.DataFrame, source: str) -> None:
    if frame.empty:
        raise InvalidInput(f"{source} has no rows")
    dupes = sorted({str(c) for c in frame.columns if list(frame.columns).count(c) > 1})
    if dupes or any(str(c).startswith("Unnamed: ") for c in frame.columns):
        bad = dupes or [str(c) for c in frame.columns if str(c).startswith("Unnamed: ")]
        raise InvalidInput(f"{source} has duplicate or unnamed columns: {', '.join(bad)}")


# --- registering versions ------------------------------------------------------------------------

def register_dataset(*, session: Session, actor: Actor, name: str, csv_path: Path | str | None = None,
                     query: str | None = None, database_url: str | None = None, description: str = "",
                     owner: str | None = None, tags: list[str] | tuple[str, ...] = (),
                     strict: bool = False) -> DatasetVersionRead:
    """Register a CSV file or a SQL query as the next version of a dataset (the first one catalogs it).

    A version whose schema differs from the previous one is flagged until someone accepts it; with
    strict=True it is refused instead.
    """
    require(actor, "dataset.register")
    name = name.strip()
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name):
        raise InvalidInput(f"dataset name {name!r} must be 1-64 letters, digits, '.', '-' or '_'")
    if (csv_path is None) == (query is None):
        raise InvalidInput("give a dataset either a CSV file or a SQL query, not both and not neither")
    if csv_path is not None:
        frame, kind, source, connection = read_csv(csv_path), "csv", Path(csv_path).name, ""
        where = f"dataset file {Path(csv_path).name}"
    else:
        frame, kind, source, connection = read_query(query, database_url=database_url), "sql", query.strip(), \
            _masked(database_url)
        where = "the dataset query's result"
    _validate_frame(frame, where)
    columns, profile = profile_frame(frame)
    fingerprint = artifacts.fingerprint_frame(frame)

    dataset = session.exec(select(Dataset).where(Dataset.name == name)).first()
    previous = None
    if dataset is not None:
        previous = session.exec(select(DatasetVersion).where(DatasetVersion.dataset_id == dataset.id)
                                .order_by(DatasetVersion.number.desc())).first()
    if previous is not None and previous.fingerprint == fingerprint:
        raise Conflict(f"dataset {name} is unchanged since v{previous.number} (same content fingerprint)")
    changes = schema_diff(previous.columns, columns) if previous is not None else {}
    number = previous.number + 1 if previous is not None else 1
    if changes and strict:
        raise InvalidInput(f"dataset {name} v{number} changes the schema ({components.describe_changes(changes)}); "
                           "refused in strict mode")
    try:
        data_path, data_sha = artifacts.save_reference(frame)
    except (ValueError, TypeError) as exc:  # pyarrow refuses a column of mixed types
        raise InvalidInput(f"{where} cannot be stored: {str(exc).splitlines()[0]}") from exc

    if dataset is None:
        dataset = Dataset(name=name, source_kind=kind, source=source, connection=connection, created_by=actor.username)
        session.add(dataset)
        session.flush()
        components.register_component(session=session, actor=actor, kind="dataset", name=name, description=description,
                                   owner=owner, tags=tags, ref=name)
    else:
        dataset.source_kind, dataset.source, dataset.connection = kind, source, connection
        session.add(dataset)
    version = DatasetVersion(dataset_id=dataset.id, number=number, rows=len(frame), columns=columns, profile=profile,
                             fingerprint=fingerprint, source=source, data_path=data_path, data_sha256=data_sha,
                             schema_changes=changes, flagged=bool(changes), created_by=actor.username)
    session.add(version)
    session.flush()
    audit.record(session, actor=actor.username, action="dataset.version", entity_type="dataset",
                 entity_id=f"{name}:v{number}", details={"rows": len(frame), "fingerprint": fingerprint,
                                                         "schema_changes": changes, "source": kind})
    warnings = []
    if changes:
        warnings.append(f"schema changed since v{number - 1} ({components.describe_changes(changes)}): "
                        f"v{number} is flagged and no scenario uses it until someone accepts it")
    if previous is not None:
        component = session.exec(select(Component).where(Component.kind == "dataset", Component.ref == name)).first()
        if component is not None:
            _deps, dependents = components.note_change(session, actor=actor, c=component, what=f"new version v{number}")
            if dependents:
                warnings.append(dependents)
    return _read(dataset, version, warning="; ".join(warnings))


def _dataset_row(session: Session, name: str) -> Dataset:
    found = session.exec(select(Dataset).where(Dataset.name == name.strip())).first()
    if found is None:
        raise NotFound(f"no dataset named {name!r}")
    return found


def _version_row(session: Session, dataset: Dataset, version: int | None) -> DatasetVersion:
    q = select(DatasetVersion).where(DatasetVersion.dataset_id == dataset.id)
    found = session.exec(q.where(DatasetVersion.number == version) if version is not None
                         else q.order_by(DatasetVersion.number.desc())).first()
    if found is None:
        raise NotFound(f"dataset {dataset.name} has no version {version}" if version else
                       f"dataset {dataset.name} has no versions")
    return found


def accept_version(*, session: Session, actor: Actor, name: str, version: int) -> DatasetVersionRead:
    """Accept a flagged schema change, so scenarios and templates may use that version."""
    require(actor, "dataset.register")
    dataset = _dataset_row(session, name)
    row = _version_row(session, dataset, version)
    if not row.flagged:
        raise InvalidInput(f"dataset {dataset.name} v{version} is not flagged: nothing to accept")
    row.flagged, row.accepted_by, row.accepted_at = False, actor.username, now()
    session.add(row)
    audit.record(session, actor=actor.username, action="dataset.accept", entity_type="dataset",
                 entity_id=f"{dataset.name}:v{version}", details={"schema_changes": row.schema_changes})
    session.flush()
    return _read(dataset, row)


def require_usable(*, session: Session, name: str, version: int | None = None) -> DatasetVersionRead:
    """The version (default: latest) a scenario or template may use; a flagged schema change is refused."""
    dataset = _dataset_row(session, name)
    row = _version_row(session, dataset, version)
    if row.flagged:
        raise Conflict(f"dataset {dataset.name} v{row.number} changed schema "
                       f"({components.describe_changes(row.schema_changes)}) and is not accepted yet: "
                       f"accept it with `watchtower dataset accept {dataset.name} {row.number}` before use")
    return _read(dataset, row)


def load_frame(*, session: Session, name: str, version: int | None = None) -> pd.DataFrame:
    """The stored content of a dataset version, verified against its sha256."""
    dataset = _dataset_row(session, name)
    row = _version_row(session, dataset, version)
    return artifacts.load_reference(path=row.data_path, sha256=row.data_sha256,
                                    what=f"dataset {dataset.name} v{row.number}")


def get_dataset(*, session: Session, name: str) -> DatasetRead:
    dataset = _dataset_row(session, name)
    versions = session.exec(select(DatasetVersion).where(DatasetVersion.dataset_id == dataset.id)
                            .order_by(DatasetVersion.number)).all()
    return DatasetRead(name=dataset.name, source_kind=dataset.source_kind, source=dataset.source,
                       connection=dataset.connection or f"Watchtower database ({_masked(get_settings().database_url)})"
                       if dataset.source_kind == "sql" else "",
                       versions=[_read(dataset, v) for v in versions])


def list_datasets(*, session: Session) -> list[DatasetVersionRead]:
    """The latest version of every dataset, by name."""
    latest = select(DatasetVersion.dataset_id, func.max(DatasetVersion.number).label("n")) \
        .group_by(DatasetVersion.dataset_id).subquery()
    rows = session.exec(select(Dataset, DatasetVersion).join(DatasetVersion, DatasetVersion.dataset_id == Dataset.id)
                        .join(latest, (latest.c.dataset_id == DatasetVersion.dataset_id)
                              & (latest.c.n == DatasetVersion.number)).order_by(Dataset.name)).all()
    return [_read(d, v) for d, v in rows]
