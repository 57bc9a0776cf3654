"""Spark runs the lake's queries when a cluster is configured (the `watchtower[spark]` extra).

`WATCHTOWER_SPARK_REMOTE` (a Spark Connect URL, `sc://host:15002`) connects to a Spark Connect server;
`WATCHTOWER_SPARK_MASTER` (`local[2]`, `spark://host:7077`) starts a driver in this process, which needs Java 17
or later. One session serves the whole process. Each view is a table snapshot's Parquet files read with the
table's schema; the SQL is the one DuckDB runs (see `core.lake.engines`), and the answer comes back as Arrow.

The session reads SQL as DuckDB does: double quotes name identifiers, `TIMESTAMP '...'` and the lake's
timestamps are both without time zone (the lake writes naive microseconds; Spark reads them as TIMESTAMP_NTZ),
and the session time zone is UTC. The cluster must reach the lake: a local directory is read by path (a
cluster's executors need it mounted at the same path), an `s3://` lake through Hadoop's `s3a://` with the
cluster's own credentials.
"""

from __future__ import annotations

import os
import re
import shutil
import threading

import pyarrow as pa

from core.lake.answers import plain_types

REMOTE_SETTING = "WATCHTOWER_SPARK_REMOTE"
MASTER_SETTING = "WATCHTOWER_SPARK_MASTER"
# Read as DuckDB reads the same SQL; set on every session, also a Spark Connect one.
SQL_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.ansi.doubleQuotedIdentifiers": "true",
    "spark.sql.timestampType": "TIMESTAMP_NTZ",
}
# A driver started here: no UI, modest memory, few shuffle partitions on a local master.
DRIVER_CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.memory": "1g",
}
LOCAL_CONF = {"spark.sql.shuffle.partitions": "4", "spark.default.parallelism": "2"}

_lock = threading.Lock()
_queries = threading.Lock()  # the views of one query at a time: temporary views are named per session
_session = None
_GLOB = re.compile(r"([\\\[\]{}*?])")  # characters Spark would read as a path pattern


class SparkUnavailable(RuntimeError):
    """Spark is configured but cannot run here (pyspark or Java missing)."""


class SparkEngine:
    """The lake's queries on Spark: a Spark Connect server, or a driver in this process."""

    name = "spark"

    def __init__(self, *, remote: str | None = None, master: str | None = None) -> None:
        if not remote and not master:  # from the settings; the Spark Connect server wins when both are set
            remote = os.environ.get(REMOTE_SETTING) or None
            master = None if remote else os.environ.get(MASTER_SETTING) or None
        if not remote and not master:
            raise SparkUnavailable(f"set {REMOTE_SETTING} (sc://host:15002) or {MASTER_SETTING} (local[2]) to use Spark")
        setting = REMOTE_SETTING if remote else MASTER_SETTING
        try:
            import pyspark  # noqa: F401
        except ImportError as exc:
            raise SparkUnavailable(f"{setting} is set but pyspark is not installed: "
                                   "pip install 'watchtower[spark]'") from exc
        if not remote and not _java_found():
            raise SparkUnavailable(f"{MASTER_SETTING}={master} starts a Spark driver here, which needs Java 17 or "
                                   "later: install it (apt-get install openjdk-17-jre-headless) or set JAVA_HOME")
        self.remote, self.master = remote, master

    def session(self):
        """The process's SparkSession, started on first use."""
        global _session
        with _lock:
            if _session is None:
                from pyspark.sql import SparkSession

                builder = SparkSession.builder.appName("watchtower")
                if self.remote:
                    builder = builder.remote(self.remote)
                else:
                    builder = builder.master(self.master)
                    conf = {**DRIVER_CONF, **(LOCAL_CONF if self.master.startswith("local") else {})}
                    for key, value in conf.items():
                        builder = builder.config(key, value)
                _session = builder.getOrCreate()
                if not self.remote:
                    _session.sparkContext.setLogLevel("ERROR")
                for key, value in SQL_CONF.items():
                    _session.conf.set(key, value)
            return _session

    def query(self, sql: str, *, views: dict[str, list[str]], schemas: dict[str, pa.Schema]) -> pa.Table:
        from pyspark.sql.pandas.types import from_arrow_schema

        spark = self.session()
        with _queries:
            try:
                for view, files in views.items():
                    schema = from_arrow_schema(schemas[view], prefer_timestamp_ntz=True)
                    if files:
                        frame = spark.read.schema(schema).parquet(*[spark_path(f) for f in files])
                    else:
                        frame = spark.createDataFrame([], schema)
                    frame.createOrReplaceTempView(view)
                return plain_types(spark.sql(sql).toArrow())
            finally:
                for view in views:
                    spark.catalog.dropTempView(view)


def spark_path(uri: str) -> str:
    """A Parquet file URI of the lake as Spark reads it: local paths as `file:` URIs, S3 through `s3a://`, and
    characters of path patterns escaped (a file is read as named, never as a pattern)."""
    if uri.startswith("s3://"):
        uri = "s3a://" + uri.removeprefix("s3://")
    elif "://" not in uri:
        uri = "file://" + os.path.abspath(uri)
    return _GLOB.sub(r"\\\1", uri)


def _java_found() -> bool:
    home = os.environ.get("JAVA_HOME")
    if home and os.path.exists(os.path.join(home, "bin", "java")):
        return True
    return shutil.which("java") is not None


def stop() -> None:
    """Stop the process's session (tests and benchmarks, at their end)."""
    global _session
    with _lock:
        if _session is not None:
            _session.stop()
            _session = None
