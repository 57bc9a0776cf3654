"""The engines that query the lake: DuckDB in process by default, Spark when a cluster is configured.

An engine runs one SQL query over named views, each view being the Parquet files of one Delta table snapshot
(`snapshot_files`), and returns an Arrow table. Queries are written once, in the SQL that DuckDB and Spark SQL
share (SELECT, JOIN, GROUP BY, CASE, COUNT, SUM, MIN, MAX, FLOOR, CAST; values from `literal`, names from
`identifier`; no division, whose errors differ; NULLS FIRST or LAST spelled out in ORDER BY, whose defaults
differ; every output column named with AS), so the same plan gives the same answer on both, in the same Arrow
types (`core.lake.answers.plain_types`).

Settings: `WATCHTOWER_SPARK_REMOTE` (a Spark Connect URL, `sc://host:15002`) or `WATCHTOWER_SPARK_MASTER`
(`local[2]`, `spark://host:7077`) select Spark; otherwise DuckDB, limited by `WATCHTOWER_LAKE_MEMORY`.
"""

from __future__ import annotations

import math
import os
from datetime import date, datetime
from typing import Protocol

import pyarrow as pa

from core.lake import tables as lake
from core.lake.answers import plain_types

SPARK_SETTINGS = ("WATCHTOWER_SPARK_REMOTE", "WATCHTOWER_SPARK_MASTER")


class Engine(Protocol):
    name: str

    def query(self, sql: str, *, views: dict[str, list[str]], schemas: dict[str, pa.Schema]) -> pa.Table:
        """Run SQL over views (name -> the Parquet file URIs of a table snapshot, with the table's schema, so a
        snapshot without files is an empty view) and return the result."""


def literal(value: object) -> str:
    """A value as a SQL literal both engines read the same way (no parameters: Spark SQL has none)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} has no SQL literal")
        return f"CAST({value!r} AS DOUBLE)"
    if isinstance(value, datetime):
        return f"TIMESTAMP '{value.replace(tzinfo=None).isoformat(sep=' ')}'"
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"
    raise TypeError(f"no SQL literal for {type(value).__name__}")


def literal_list(values: list[str]) -> str:
    """Text values as a SQL list literal, `['a', 'b']`."""
    return "[" + ", ".join(literal(v) for v in values) + "]"


def identifier(name: str) -> str:
    """A column name in double quotes, which both engines read as an identifier (Spark with
    `spark.sql.ansi.doubleQuotedIdentifiers`, set by the Spark engine)."""
    return '"' + name.replace('"', '""') + '"'


def snapshot_files(model_id: int, name: str, *, version: int,
                   day_from: date | None = None, day_to: date | None = None) -> tuple[list[str], pa.Schema] | None:
    """The Parquet files of a table at a version (only the day partitions in [day_from, day_to] when given) and
    its schema without the partition column, or None while the table does not exist."""
    t = lake.table(model_id, name, version=version)
    if t is None:
        return None
    filters = []
    if day_from is not None:
        filters.append(("day", ">=", day_from.isoformat()))
    if day_to is not None:
        filters.append(("day", "<=", day_to.isoformat()))
    files = t.file_uris(partition_filters=filters or None)
    schema = pa.schema(t.schema().to_arrow())
    partitions = set(t.metadata().partition_columns)
    return list(files), pa.schema([f for f in schema if f.name not in partitions])


class DuckDBEngine:
    """DuckDB in this process: reads the Parquet files directly, spills to disk above its memory limit."""

    name = "duckdb"

    def query(self, sql: str, *, views: dict[str, list[str]], schemas: dict[str, pa.Schema]) -> pa.Table:
        with lake.duck() as con:
            for view, files in views.items():
                register_files(con, view, files, schemas[view])
            return plain_types(con.sql(sql).to_arrow_table())


def register_files(con, view: str, files: list[str], schema: pa.Schema) -> None:  # noqa: ANN001 - a DuckDB connection
    """Make VIEW on a DuckDB connection read a snapshot's Parquet FILES (`snapshot_files`) with SCHEMA."""
    import pyarrow.dataset as pads

    where = lake.location()
    if where.remote:
        fs, _root = where.filesystem()
        paths = [f.split("://", 1)[1] for f in files]
        con.register(view, pads.dataset(paths, schema=schema, filesystem=fs, format="parquet"))
    elif not files:
        con.register(view, schema.empty_table())
    else:
        # DuckDB's own Parquet reader (parallel, pushing filters into row groups); files written before a field
        # was first logged lack its column: the table's schema, by name, supplies it as NULL.
        paths = [f.removeprefix("file://") for f in files]
        con.register(f"{view}__schema", schema.empty_table())
        con.execute(f"CREATE TEMP VIEW {identifier(view)} AS SELECT * FROM {identifier(view + '__schema')} "
                    f"UNION ALL BY NAME SELECT * FROM read_parquet({literal_list(paths)}, "
                    "union_by_name = true, hive_partitioning = false)")


def register_ids(con, view: str, files: list[str]) -> None:  # noqa: ANN001 - a DuckDB connection
    """Make VIEW read only the prediction ids of prediction FILES (every one has them): without the union of
    the files' schemas, whose state per file took 0.3 GB more at 5,000 files."""
    ids = pa.schema([("prediction_id", pa.string())])
    if lake.location().remote or not files:
        register_files(con, view, files, ids)  # a pyarrow dataset with that schema reads that column only
        return
    paths = [f.removeprefix("file://") for f in files]
    con.execute(f"CREATE TEMP VIEW {identifier(view)} AS SELECT prediction_id FROM read_parquet("
                f"{literal_list(paths)}, hive_partitioning = false)")


_spark = None


def current() -> Engine:
    """Spark when WATCHTOWER_SPARK_REMOTE or WATCHTOWER_SPARK_MASTER is set (the `watchtower[spark]` extra),
    otherwise DuckDB."""
    global _spark
    if any(os.environ.get(s) for s in SPARK_SETTINGS):
        from core.lake.spark import SparkEngine

        if _spark is None:
            _spark = SparkEngine()
        return _spark
    return DuckDBEngine()
