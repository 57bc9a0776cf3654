"""The lake: every model's logged predictions and their ground truth, as Delta Lake tables (a local directory
or an S3-compatible object store), written in step with the SQL unit of work and read with DuckDB.

- `tables`: Where the lake is, its tables and their columns, staging writes until the unit of work commits, DuckDB.
- `predictions`: Reads and writes of logged predictions and labels: staged ingests, windows, spans and counts.
"""

from core.lazy import reexport

__getattr__, __dir__, __all__ = reexport(__name__, {
    "tables": (
        "location", "table", "versions", "feature_column", "field_name",
    ),
    "predictions": (
        "WindowRows", "insert_predictions", "insert_labels", "update_labels", "repeated_ids", "stored_positions", "stored_labels",
        "window_rows", "span", "counts", "labelled_rows",
    ),
})
