"""What a lake query answers, in the Arrow types DuckDB and Spark agree on (see `core.lake.engines`)."""

from __future__ import annotations

import pyarrow as pa


def plain_types(result: pa.Table) -> pa.Table:
    """A result in the types both engines agree on: whole numbers as int64 (DuckDB sums integers to a
    decimal(38, 0), Spark counts hours in int32), floats as float64, every column nullable and without metadata.
    FLOOR stays as each engine types it (DuckDB: DOUBLE, Spark: BIGINT): plans cast it."""
    fields = []
    for f in result.schema:
        kind = f.type
        if pa.types.is_integer(kind) or (pa.types.is_decimal(kind) and kind.scale == 0):
            kind = pa.int64()
        elif pa.types.is_floating(kind):
            kind = pa.float64()
        fields.append(pa.field(f.name, kind, nullable=True))
    schema = pa.schema(fields)
    return result if result.schema.equals(schema, check_metadata=True) else result.cast(schema)
