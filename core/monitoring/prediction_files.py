"""Reading prediction and label files in chunks: CSV and Parquet paths or uploads, and DataFrames.

pyarrow's streaming CSV reader parses blocks of 1 MB (every column as text; a row may not be longer), gathered
into chunks of about 32 MB; a Parquet file is read one record batch at a time with its own types (text columns
cast to text). A file's chunks are read by a background thread a couple of chunks ahead of the caller: pyarrow
parses without the GIL, so the next chunk is read while the caller validates and writes this one, and no more
than those few chunks are in memory. A DataFrame is cut into chunks and converted column by column (numbers as
float64, times as timestamps, everything else as text). A file is Parquet when it starts with Parquet's magic
bytes, whatever its name.
"""

from __future__ import annotations

import io
import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from core.errors import InvalidInput

Source = pd.DataFrame | str | Path | BinaryIO | bytes
BLOCK_BYTES = 1 << 20  # CSV bytes parsed at a time: small blocks parse faster than large ones (they stay in cache)
CHUNK_BYTES = 32 << 20  # CSV text per chunk handed to the caller
AHEAD = 2  # chunks read ahead of the caller
CHUNK_ROWS = 100_000  # DataFrame rows per chunk
PARQUET_ROWS = 100_000  # Parquet rows per record batch: a few in memory at once (250,000 took 1 GB at 10M rows)


def opened(source: Source) -> pd.DataFrame | str | Path | BinaryIO:
    """Bytes become a file object; everything else is read as it is."""
    return io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source


def name_of(source: Source) -> str:
    if isinstance(source, pd.DataFrame):
        return "the data frame"
    if isinstance(source, (str, Path)):
        return Path(source).name
    return getattr(source, "name", None) or "the uploaded file"


def is_parquet(source: Source) -> bool:
    """Whether a file (a path or an upload) is Parquet, by its first bytes."""
    if isinstance(source, pd.DataFrame):
        return False
    if isinstance(source, (bytes, bytearray)):
        return bytes(source[:4]) == b"PAR1"
    if isinstance(source, (str, Path)):
        if not Path(source).is_file():
            return False
        with open(source, "rb") as f:
            return f.read(4) == b"PAR1"
    start = source.tell()
    try:
        return source.read(4) == b"PAR1"
    finally:
        source.seek(start)


def _parquet(source: str | Path | BinaryIO, name: str) -> pq.ParquetFile:
    try:
        # Without pre-buffering: it keeps every byte read until the reader is closed (the whole file, in the end).
        return pq.ParquetFile(source, pre_buffer=False)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InvalidInput(f"{name} is not a readable Parquet file: {str(exc).splitlines()[0]}; "
                           "nothing was ingested") from None


def header(source: Source) -> list[str]:
    """The column names of a source (a CSV's header is read from its first block, a Parquet file's from its
    footer)."""
    if isinstance(source, pd.DataFrame):
        return [str(c) for c in source.columns]
    name = name_of(source)
    if isinstance(source, (str, Path)) and not Path(source).is_file():
        raise InvalidInput(f"file {source} does not exist")
    if is_parquet(source):
        source = opened(source)
        names = _parquet(source, name).schema_arrow.names
        if not isinstance(source, (str, Path)):
            source.seek(0)
        return names
    try:
        names = pcsv.open_csv(source, read_options=pcsv.ReadOptions(block_size=1 << 16)).schema.names
    except pa.ArrowInvalid as exc:
        raise InvalidInput(f"{name} has no rows; nothing was ingested" if "Empty CSV" in str(exc)
                           else f"{name} is not a readable CSV: {str(exc).splitlines()[0]}") from None
    finally:
        if not isinstance(source, (str, Path)):
            source.seek(0)
    return names


def _csv_batches(source: str | Path | BinaryIO, name: str, columns: list[str]) -> Iterator[pa.RecordBatch]:
    options = pcsv.ConvertOptions(column_types=dict.fromkeys(columns, pa.string()), include_columns=columns,
                                  strings_can_be_null=True, quoted_strings_can_be_null=False)
    try:
        gathered, size = [], 0
        blocks = pcsv.ReadOptions(block_size=min(BLOCK_BYTES, CHUNK_BYTES))
        for block in pcsv.open_csv(source, read_options=blocks,
                                   convert_options=options):
            gathered.append(block)
            size += block.nbytes
            if size >= CHUNK_BYTES:
                yield pa.concat_batches(gathered)
                gathered, size = [], 0
        if gathered:
            yield pa.concat_batches(gathered)
    except pa.ArrowInvalid as exc:
        first = str(exc).splitlines()[0]
        if "straddling" in first:
            first = f"a row is longer than {BLOCK_BYTES >> 20} MB"
        raise InvalidInput(f"{name} is not a readable CSV: {first}; nothing was ingested") from None


def _parquet_batches(source: str | Path | BinaryIO, name: str, columns: list[str],
                     text: set[str]) -> Iterator[pa.RecordBatch]:
    file = _parquet(source, name)
    try:
        for batch in file.iter_batches(batch_size=PARQUET_ROWS, columns=columns, use_threads=True):
            arrays = [batch.column(c) for c in columns]
            yield pa.RecordBatch.from_arrays(
                [a.cast(pa.string()) if c in text and not pa.types.is_string(a.type) else a
                 for c, a in zip(columns, arrays, strict=True)], names=columns)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
        raise InvalidInput(f"{name} is not a readable Parquet file: {str(exc).splitlines()[0]}; "
                           "nothing was ingested") from None


def _text(col: pd.Series) -> pa.Array:
    """A column as text, missing values as null (strings pass as they are; anything else through str())."""
    try:
        return pa.array(col.to_numpy(dtype=object), type=pa.string(), from_pandas=True)
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        return pa.array(col.astype(str).to_numpy(dtype=object), type=pa.string(), mask=col.isna().to_numpy())


def _frame_batches(frame: pd.DataFrame, columns: list[str], text: set[str]) -> Iterator[pa.RecordBatch]:
    for start in range(0, len(frame), CHUNK_ROWS):
        part = frame.iloc[start:start + CHUNK_ROWS]
        arrays = []
        for c in columns:
            col = part[c]
            if c in text or not (pd.api.types.is_numeric_dtype(col) or pd.api.types.is_datetime64_any_dtype(col)):
                arrays.append(_text(col))
            elif pd.api.types.is_datetime64_any_dtype(col):
                if col.dt.tz is not None:
                    col = col.dt.tz_convert("UTC").dt.tz_localize(None)
                arrays.append(pa.array(col.astype("datetime64[us]"), type=pa.timestamp("us")))
            else:
                arrays.append(pa.array(col.astype(float), type=pa.float64(), from_pandas=True))
        yield pa.RecordBatch.from_arrays(arrays, names=columns)


_DONE = object()


def _ahead(chunks: Iterator[pa.RecordBatch], depth: int = AHEAD) -> Iterator[pa.RecordBatch]:
    """CHUNKS read by a background thread, up to DEPTH ahead of the caller; a reading error is raised to the
    caller where the chunk would have been, and the thread stops when the caller stops early."""
    handed: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def hand(item: tuple) -> bool:
        while not stop.is_set():
            try:
                handed.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for chunk in chunks:
                if not hand((chunk, None)):
                    return
        except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread
            hand((None, exc))
            return
        hand((_DONE, None))

    reader = threading.Thread(target=read, name="watchtower-read-ahead", daemon=True)
    reader.start()
    try:
        while True:
            chunk, error = handed.get()
            if error is not None:
                raise error
            if chunk is _DONE:
                return
            yield chunk
    finally:
        stop.set()
        reader.join()


def batches(source: Source, columns: list[str], *, text: set[str]) -> Iterator[pa.RecordBatch]:
    """The source's `columns` in chunks; `text` columns are always read as text (ids, categories)."""
    name = name_of(source)
    present = set(header(source))
    missing = [c for c in columns if c not in present]
    if missing:
        raise InvalidInput(f"{name} lacks required column(s) {', '.join(map(repr, missing))}; nothing was ingested")
    if isinstance(source, pd.DataFrame):
        return _frame_batches(source, columns, text)
    if is_parquet(source):
        return _ahead(_parquet_batches(source, name, columns, text))
    return _ahead(_csv_batches(source, name, columns))
