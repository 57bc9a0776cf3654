"""The lake: every model's logged predictions and ground truth as two Delta Lake tables, queried with DuckDB.

Layout under `WATCHTOWER_LAKE_URL` (default: `WATCHTOWER_HOME/lake`; `s3://bucket/prefix` for a team):
- `models/<model id>/predictions`, partitioned by day: `prediction_id`, `version_id`, `environment_id`, `ts`,
  `score`, `predicted`, `logged_by`, `batch` and one typed column per logged field (`f_<name>`);
- `models/<model id>/labels`: `prediction_id`, `label`, `arrived_at`, written by MERGE on the prediction id.

Writes follow the caller's SQL unit of work. While a service validates its input, rows are staged: predictions
as Parquet files written beside the table but not yet in its log (no reader sees them), labels in memory. When
the session commits, the staged predictions become one Delta commit per table and the labels one MERGE (a
`before_commit` hook, after the session's SQL is flushed); when it rolls back, the staged files are deleted.
A batch is therefore all or nothing, and a writer killed halfway leaves only files no commit refers to.
SQL keeps projects, models, versions, evaluations and audit; the lake keeps the rows.
"""

from __future__ import annotations

import os
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import duckdb
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.fs as pafs
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake
from deltalake.exceptions import TableNotFoundError
from sqlalchemy import event
from sqlmodel import Session

from core.config import get_settings
from core.errors import WatchtowerError
from core.lake.staging import StagedFiles, by_day

LAKE_URL_SETTING = "WATCHTOWER_LAKE_URL"
MEMORY_SETTING = "WATCHTOWER_LAKE_MEMORY"  # DuckDB's memory limit; above it, queries spill to disk
S3_SETTINGS = {  # setting -> delta-rs storage option
    "WATCHTOWER_LAKE_S3_ENDPOINT": "AWS_ENDPOINT_URL",
    "WATCHTOWER_LAKE_S3_REGION": "AWS_REGION",
    "WATCHTOWER_LAKE_S3_KEY_ID": "AWS_ACCESS_KEY_ID",
    "WATCHTOWER_LAKE_S3_SECRET": "AWS_SECRET_ACCESS_KEY",
}
FEATURE_PREFIX = "f_"
PREDICTION_BASE = pa.schema([
    ("prediction_id", pa.string()), ("version_id", pa.int64()), ("environment_id", pa.int64()),
    ("ts", pa.timestamp("us")), ("day", pa.date32()), ("score", pa.float64()), ("predicted", pa.float64()),
    ("logged_by", pa.string()), ("batch", pa.string()),
])
LABEL_SCHEMA = pa.schema([("prediction_id", pa.string()), ("label", pa.float64()), ("arrived_at", pa.timestamp("us"))])
_UNSAFE = re.compile(r"[ ,;{}()\n\t=%]")  # characters Delta does not allow in a column name, and our escape


def feature_column(name: str) -> str:
    """The lake column of a logged field (Delta forbids some characters in names: they are %-escaped)."""
    return FEATURE_PREFIX + _UNSAFE.sub(lambda m: f"%{ord(m.group()):02X}", name)


def field_name(column: str) -> str:
    """The logged field a lake column holds (the inverse of `feature_column`)."""
    return re.sub(r"%([0-9A-F]{2})", lambda m: chr(int(m.group(1), 16)), column[len(FEATURE_PREFIX):])


# --- where the lake is ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Location:
    url: str  # a local directory or s3://bucket/prefix
    storage_options: dict[str, str]

    @property
    def remote(self) -> bool:
        return "://" in self.url

    def table(self, model_id: int, name: str) -> str:
        return f"{self.url.rstrip('/')}/models/{model_id}/{name}"

    def filesystem(self) -> tuple[pafs.FileSystem, str]:
        """A pyarrow filesystem and the lake's root path in it (for writing staged Parquet files)."""
        if not self.remote:
            return pafs.LocalFileSystem(), self.url
        parsed = urlparse(self.url)
        if parsed.scheme != "s3":
            raise ValueError(f"{LAKE_URL_SETTING}: only local directories and s3:// URLs are supported")
        endpoint = self.storage_options.get("AWS_ENDPOINT_URL", "")
        ends = urlparse(endpoint) if endpoint else None
        fs = pafs.S3FileSystem(
            access_key=self.storage_options.get("AWS_ACCESS_KEY_ID"),
            secret_key=self.storage_options.get("AWS_SECRET_ACCESS_KEY"),
            region=self.storage_options.get("AWS_REGION", "us-east-1"),
            endpoint_override=ends.netloc if ends else None, scheme=ends.scheme if ends else "https")
        return fs, f"{parsed.netloc}{parsed.path}".rstrip("/")


class LakeUnreachable(WatchtowerError):
    """The lake's object store could not be reached or refused access; nothing was written."""


_REASONS = {  # what an S3 error says -> what it means, in the person's terms
    "NoSuchBucket": "the bucket does not exist", "InvalidAccessKeyId": "the key id is not known",
    "SignatureDoesNotMatch": "the secret does not match the key id", "AccessDenied": "access is denied",
    "Connection refused": "nothing answers at the endpoint", "dns error": "the endpoint's host is not known",
    "timed out": "the endpoint did not answer in time", "InvalidBucketName": "the bucket name is not valid",
}


@contextmanager
def reachable() -> Iterator[None]:
    """Turn a remote lake's storage error into one message naming the settings to check (no traceback)."""
    try:
        yield
    except OSError as exc:
        where = location()
        if not where.remote:
            raise
        text = str(exc)
        reason = next((meaning for marker, meaning in _REASONS.items() if marker.lower() in text.lower()),
                      text.strip().splitlines()[0][:200] if text.strip() else type(exc).__name__)
        settings = ", ".join([LAKE_URL_SETTING, *S3_SETTINGS])
        raise LakeUnreachable(f"the lake at {where.url} cannot be used: {reason}; check {settings}; "
                              "nothing was written") from None


def location() -> Location:
    """Where the lake is, from the settings (read each time: tests and commands point it elsewhere)."""
    url = os.environ.get(LAKE_URL_SETTING) or str(get_settings().home / "lake")
    options = {option: os.environ[setting] for setting, option in S3_SETTINGS.items() if os.environ.get(setting)}
    if url.startswith("s3://"):
        options.setdefault("AWS_REGION", "us-east-1")
        if options.get("AWS_ENDPOINT_URL", "").startswith("http://"):
            options["AWS_ALLOW_HTTP"] = "true"
        # Commits to S3 use its conditional writes (If-None-Match), so concurrent writers cannot overwrite a commit.
        options.setdefault("conditional_put", "etag")
    return Location(url=url, storage_options=options)


def table(model_id: int, name: str, *, version: int | None = None) -> DeltaTable | None:
    """A model's `predictions` or `labels` table (at a version when given), or None while it has none.

    A table at a given version never changes: the last ones opened are kept (opening reads the log), so that
    the windows of one evaluation do not each read it again."""
    where = location()
    key = (where.url, model_id, name, version)
    if version is not None:
        with _guard:
            if key in _OPENED:
                _OPENED.move_to_end(key)
                return _OPENED[key]
    try:
        with reachable():
            opened = DeltaTable(where.table(model_id, name), version=version,
                                storage_options=where.storage_options or None)
    except TableNotFoundError:
        return None
    if version is not None:
        with _guard:
            _OPENED[key] = opened
            while len(_OPENED) > _SNAPSHOTS_KEPT:
                _OPENED.popitem(last=False)
    return opened


def remove_all() -> None:
    """Delete every table of the lake (a demo starting over)."""
    fs, root = location().filesystem()
    with _guard:
        _SNAPSHOTS.clear()  # versions start again from 0 once the tables are gone
        _OPENED.clear()
    with reachable():
        if fs.get_file_info(f"{root}/models").type != pafs.FileType.NotFound:
            fs.delete_dir(f"{root}/models")


def versions(model_id: int) -> dict[str, int]:
    """The current version of each of the model's tables (what an evaluation read, to reproduce it)."""
    out = {}
    for name in ("predictions", "labels"):
        t = table(model_id, name)
        if t is not None:
            out[name] = t.version()
    return out


def new_batch_id() -> str:
    """The id written with every row of one unit of work's predictions (which ingest brought a row)."""
    return uuid.uuid4().hex


# --- staging and committing with the SQL unit of work -------------------------------------------------------

@dataclass
class _Staged:
    schema: pa.Schema
    files: StagedFiles = field(default_factory=StagedFiles)
    app_transaction: tuple[str, int] | None = None  # (app id, version) recorded with the commit, for exactly-once


@dataclass
class _Pending:
    predictions: dict[int, _Staged] = field(default_factory=dict)
    labels: dict[int, list[pa.Table]] = field(default_factory=dict)


def _pending(session: Session) -> _Pending:
    pending = session.info.get("lake")
    if pending is None:
        pending = session.info["lake"] = _Pending()
        event.listen(session, "before_commit", _commit)
        event.listen(session, "after_rollback", _discard)
    return pending


def stage_predictions(session: Session, *, model_id: int, rows: pa.Table,
                      app_transaction: tuple[str, int] | None = None) -> None:
    """Write validated predictions (PREDICTION_BASE's columns without `day`, plus `f_` columns) as Parquet files
    that the session's commit adds to the model's table: one file per day, its rows in time order, written in
    the background (`core.lake.staging`) while the caller goes on.
    APP_TRANSACTION (app id, version) is recorded with that commit, so a writer can tell what it already
    committed (`DeltaTable.transaction_version`)."""
    pending = _pending(session)
    where = location()
    fs, root = where.filesystem()
    staged = pending.predictions.get(model_id)
    schema = pa.schema([*PREDICTION_BASE, *(f for f in rows.schema if f.name.startswith(FEATURE_PREFIX))])
    if staged is None:
        staged = pending.predictions[model_id] = _Staged(schema=schema)
    else:
        staged.schema = pa.unify_schemas([staged.schema, schema])
    base = f"{root}/models/{model_id}/predictions"
    with reachable():
        for day, part in by_day(rows):
            staged.files.add(fs, base, day, part)
    staged.app_transaction = app_transaction or staged.app_transaction


def stage_labels(session: Session, *, model_id: int, rows: pa.Table) -> None:
    """Labels (LABEL_SCHEMA) that the session's commit merges into the model's labels table by prediction id."""
    _pending(session).labels.setdefault(model_id, []).append(rows.select(LABEL_SCHEMA.names).cast(LABEL_SCHEMA))


def staged_files(session: Session, *, model_id: int) -> list[str] | None:
    """The Parquet files of the predictions staged in this unit of work and not yet committed, once written (as
    `engines.snapshot_files` names a snapshot's), or None while nothing is staged. Staged rows are read from
    their files, never kept in memory."""
    staged = session.info.get("lake", _Pending()).predictions.get(model_id)
    if staged is None:
        return None
    with reachable():
        paths = staged.files.written()
    if not paths:
        return None
    where = location()
    scheme = f"{urlparse(where.url).scheme}://" if where.remote else ""
    return [scheme + path for path in paths]


def _commit(session: Session) -> None:
    pending: _Pending | None = session.info.get("lake")
    if pending is None or not (pending.predictions or pending.labels):
        return
    session.flush()  # SQL problems surface before the lake commits
    with reachable():
        _commit_staged(pending)


def _commit_staged(pending: _Pending) -> None:
    where = location()
    options = where.storage_options or None
    for model_id, staged in list(pending.predictions.items()):
        uri = where.table(model_id, "predictions")
        current = table(model_id, "predictions")
        if current is None:
            current = DeltaTable.create(uri, staged.schema, partition_by=["day"], storage_options=options)
        known = set(pa.schema(current.schema().to_arrow()).names)
        if set(staged.schema.names) - known:  # a field logged for the first time: widen the table's schema
            write_deltalake(uri, staged.schema.empty_table(), mode="append", schema_mode="merge", partition_by=["day"],
                            storage_options=options)
            current = table(model_id, "predictions")
        schema = pa.schema(current.schema().to_arrow())
        recorded = None
        if staged.app_transaction is not None:
            recorded = CommitProperties(app_transactions=[Transaction(*staged.app_transaction)])
        actions = staged.files.actions()
        current.create_write_transaction(actions, mode="append", schema=schema, partition_by=["day"],
                                         commit_properties=recorded)
        del pending.predictions[model_id]
    for model_id, parts in list(pending.labels.items()):
        rows = pa.concat_tables(parts)
        current = table(model_id, "labels")
        if current is None:
            write_deltalake(where.table(model_id, "labels"), rows, mode="append", storage_options=options)
        else:
            (current.merge(source=rows, predicate="t.prediction_id = s.prediction_id", source_alias="s",
                           target_alias="t").when_matched_update_all().when_not_matched_insert_all().execute())
        del pending.labels[model_id]


def _discard(session: Session) -> None:
    pending: _Pending | None = session.info.get("lake")
    if pending is None:
        return
    fs, _root = location().filesystem()
    for staged in pending.predictions.values():
        staged.files.stop()
        for path in staged.files.paths:
            try:
                fs.delete_file(path)
            except (FileNotFoundError, OSError):
                pass  # a file left behind belongs to no commit: no reader sees it
    pending.predictions.clear()
    pending.labels.clear()


# --- reading with DuckDB ------------------------------------------------------------------------------------

_SNAPSHOTS: OrderedDict[tuple[str, int, str, int], pads.Dataset] = OrderedDict()
_OPENED: OrderedDict[tuple[str, int, str, int], DeltaTable] = OrderedDict()
_SNAPSHOTS_KEPT = 64
_DUCK: dict[tuple[str, str], duckdb.DuckDBPyConnection] = {}
_guard = threading.Lock()


def dataset(model_id: int, name: str, *, version: int | None = None) -> pads.Dataset | None:
    """A table's snapshot as a pyarrow dataset (DuckDB scans it, pushing filters and projections down).

    A snapshot never changes, so the last ones read are kept: listing a table's files into a dataset costs far
    more than the query that reads a day of it."""
    if version is None:
        current = table(model_id, name)
        if current is None:
            return None
        version = current.version()
    key = (location().url, model_id, name, version)
    with _guard:
        if key in _SNAPSHOTS:
            _SNAPSHOTS.move_to_end(key)
            return _SNAPSHOTS[key]
    t = table(model_id, name, version=version)
    if t is None:
        return None
    snapshot = t.to_pyarrow_dataset()
    with _guard:
        _SNAPSHOTS[key] = snapshot
        while len(_SNAPSHOTS) > _SNAPSHOTS_KEPT:
            _SNAPSHOTS.popitem(last=False)
    return snapshot


@contextmanager
def duck(*, default_memory: str = "2GB") -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to this process's in-memory DuckDB, which has a memory limit (the setting, else
    DEFAULT_MEMORY) and spills to the home's temporary directory. Each caller gets a connection of its own: what
    it registers or creates as TEMP is its own, and gone when the block ends."""
    memory = os.environ.get(MEMORY_SETTING) or default_memory
    spill = get_settings().home / "tmp" / "duckdb"
    key = (memory, str(spill))
    with _guard:
        database = _DUCK.get(key)
        if database is None:
            spill.mkdir(parents=True, exist_ok=True)
            database = duckdb.connect(config={"memory_limit": memory, "threads": 2})
            database.execute(f"SET temp_directory = '{Path(spill).as_posix()}'")
            _DUCK[key] = database
            while len(_DUCK) > 4:  # another home or limit (tests, a command pointed elsewhere): the oldest goes
                _DUCK.pop(next(iter(_DUCK))).close()
        con = database.cursor()
    try:
        yield con
    finally:
        con.close()
