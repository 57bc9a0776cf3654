"""Staged prediction files: one Parquet file per day of each staged chunk, written by a background thread while
the caller reads and validates the next chunk, with the Delta action (path, size, statistics) that adds it.

pyarrow's Parquet writer and compute kernels release the GIL, so the writing overlaps the caller's work on a
second core. Only a few files are in flight at once (the caller waits for the oldest beyond that), which keeps
the memory bounded whatever the input's size. Every path is recorded before its file is written, so a rollback
deletes even a half-written file once the writes in flight have stopped.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from deltalake.transaction import AddAction

ZSTD_LEVEL = 2  # measured on logged features: smaller than 1 and 3 alike, as fast as 1; from 5 on, slower
_SAMPLE = 2048  # values of a float column compressed both ways to choose its encoding
IN_FLIGHT = 8  # files written or waiting to be written at once


def _stat(value: object) -> object:
    if hasattr(value, "isoformat"):
        return value.isoformat(timespec="microseconds") + "Z" if hasattr(value, "hour") else value.isoformat()
    return value


def file_stats(part: pa.Table, written: pq.FileMetaData | None = None) -> str:
    """Delta file statistics for every column: readers skip files by them and trust them, so none may be missing.
    The bounds come from the Parquet file's own statistics (WRITTEN) where it kept them (it leaves out a text
    value longer than 4 kB), else from the rows."""
    low, high, nulls = {}, {}, {}
    kept = _parquet_bounds(written) if written is not None else {}
    for name in part.schema.names:
        col = part.column(name)
        nulls[name] = col.null_count
        if col.null_count < len(col):
            if name in kept:
                low[name], high[name] = kept[name]
            else:
                bounds = pc.min_max(col)
                low[name], high[name] = bounds["min"].as_py(), bounds["max"].as_py()
            low[name], high[name] = _stat(low[name]), _stat(high[name])
    return json.dumps({"numRecords": part.num_rows, "minValues": low, "maxValues": high, "nullCount": nulls})


def _parquet_bounds(written: pq.FileMetaData) -> dict[str, tuple[object, object]]:
    """Each column's smallest and largest value over the file's row groups, where every row group has them."""
    found: dict[str, tuple[object, object]] = {}
    missing: set[str] = set()
    for g in range(written.num_row_groups):
        group = written.row_group(g)
        for c in range(group.num_columns):
            column = group.column(c)
            name, stats = column.path_in_schema, column.statistics
            if stats is None or not stats.has_min_max:
                if stats is None or stats.null_count != group.num_rows:  # bounds dropped, not a group of nulls
                    missing.add(name)
                continue
            lo, hi = found.get(name, (stats.min, stats.max))
            found[name] = (min(lo, stats.min), max(hi, stats.max))
    return {name: bounds for name, bounds in found.items() if name not in missing}


def splits_better(col: pa.ChunkedArray, codec: pa.Codec) -> bool:
    """Whether a float column compresses smaller with its bytes split into streams (model scores, measurements
    at full precision) than as plain values (numbers logged with few decimals repeat byte patterns zstd finds)."""
    values = pc.fill_null(col.slice(0, _SAMPLE), 0.0).combine_chunks().to_numpy(zero_copy_only=False)
    plain = np.ascontiguousarray(values, dtype=np.float64)
    split = np.ascontiguousarray(plain.view(np.uint8).reshape(-1, 8).T)
    return len(codec.compress(split.tobytes())) < len(codec.compress(plain.tobytes()))


def write_options(part: pa.Table, floats: dict[str, str]) -> dict:
    """How a staged file stores each column: times as deltas (rows are sorted by time), ids with their shared
    prefixes, floats as logged (float64) either plain or byte-stream-split, whichever compresses smaller,
    and text that repeats (categories, who logged a batch, the batch) in a dictionary, nearly free when constant.
    FLOATS remembers each float column's encoding once chosen on a column's first values holding any: the
    values of one input share their form, and sampling every file would cost more than a file's statistics."""
    codec = pa.Codec("zstd", ZSTD_LEVEL)
    encoding = {}
    for f in part.schema:
        if pa.types.is_timestamp(f.type) or pa.types.is_integer(f.type) and f.name != "version_id":
            encoding[f.name] = "DELTA_BINARY_PACKED"
        elif f.name == "prediction_id":
            encoding[f.name] = "DELTA_BYTE_ARRAY"
        elif pa.types.is_floating(f.type):
            chosen = floats.get(f.name)
            if chosen is None:
                col = part.column(f.name)
                chosen = "BYTE_STREAM_SPLIT" if splits_better(col, codec) else "PLAIN"
                if col.null_count < len(col):
                    floats[f.name] = chosen
            encoding[f.name] = chosen
    return {"compression": "zstd", "compression_level": ZSTD_LEVEL, "column_encoding": encoding,
            "use_dictionary": [n for n in part.schema.names if n not in encoding], "store_schema": False}


def _in_order(ts: pa.ChunkedArray | pa.Array) -> bool:
    return len(ts) < 2 or pc.all(pc.greater_equal(ts.slice(1), ts.slice(0, len(ts) - 1))).as_py()


def by_day(rows: pa.Table) -> list[tuple[date, pa.Table]]:
    """The rows of each day, each in time order (rows in time order are cut where the day changes, without a
    copy; others are sorted by time and id first)."""
    if rows.num_rows == 0:
        return []
    if not _in_order(rows.column("ts")):
        rows = rows.take(pc.sort_indices(rows, sort_keys=[("ts", "ascending"), ("prediction_id", "ascending")]))
    days = pc.cast(rows.column("ts"), pa.date32()).to_numpy()
    cuts = [0, *(np.flatnonzero(days[1:] != days[:-1]) + 1).tolist(), len(days)]
    first = pa.array(days[cuts[:-1]], type=pa.date32()).to_pylist()
    return [(day, rows.slice(start, end - start)) for day, start, end in zip(first, cuts[:-1], cuts[1:], strict=True)]


class StagedFiles:
    """Staged files of one table in one unit of work, written in order by one background thread."""

    def __init__(self) -> None:
        self.paths: list[str] = []  # every file begun, for a rollback to delete
        self._floats: dict[str, str] = {}
        self._writes: deque[Future] = deque()
        self._actions: list[AddAction] = []
        self._writer: ThreadPoolExecutor | None = None

    def add(self, fs: pafs.FileSystem, base: str, day: date, part: pa.Table) -> None:
        """Write one day's rows (in time order) as one Parquet file under BASE, in the background; the write of
        the oldest file in flight is waited for (and its error raised) when too many are."""
        relative = f"day={day.isoformat()}/part-{uuid.uuid4().hex}.parquet"
        self.paths.append(f"{base}/{relative}")
        if self._writer is None:
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="watchtower-lake-writer")
        self._writes.append(self._writer.submit(self._write, fs, base, relative, day, part))
        while len(self._writes) > IN_FLIGHT:
            self._actions.append(self._writes.popleft().result())

    def _write(self, fs: pafs.FileSystem, base: str, relative: str, day: date, part: pa.Table) -> AddAction:
        fs.create_dir(f"{base}/day={day.isoformat()}", recursive=True)
        written: list[pq.FileMetaData] = []
        pq.write_table(part, f"{base}/{relative}", filesystem=fs, metadata_collector=written,
                       **write_options(part, self._floats))
        size = fs.get_file_info(f"{base}/{relative}").size
        return AddAction(relative, size, {"day": day.isoformat()}, int(time.time() * 1000), True,
                         file_stats(part, written[0]))

    def written(self) -> list[str]:
        """Every file staged so far, once written: waits for the writes in flight (the first failed one raises)
        without stopping the writer, so that more can be staged after a read of these."""
        while self._writes:
            self._actions.append(self._writes.popleft().result())
        return list(self.paths)

    def actions(self) -> list[AddAction]:
        """The actions adding every staged file, once all are written (the first failed write raises)."""
        try:
            self.written()
        finally:
            self.stop()
        return self._actions

    def stop(self) -> None:
        """Wait until no write is in flight (their errors ignored: the files are about to be deleted)."""
        for write in self._writes:
            write.exception()
        self._writes.clear()
        if self._writer is not None:
            self._writer.shutdown(wait=True)
            self._writer = None
