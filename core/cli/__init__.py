"""The `watchtower` command line. Each command group lives in its own module and registers on `main`."""

# Command modules register themselves on `main` when imported.
from core.cli import (  # noqa: F401
    admin,
    catalog,
    connections,
    docs,
    evaluation,
    governance,
    mapping,
    mlflow_import,
    monitoring,
    projects,
    registry,
    slices,
    store,
    tokens,
)
from core.cli.base import fails_cleanly, main

__all__ = ["fails_cleanly", "main"]
