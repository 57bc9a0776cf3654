"""The models tests' own fixtures: a real MLflow tracking server (tests/support/mlflow_world.py)."""

from tests.support.mlflow_world import mlflow_server  # noqa: F401 - a fixture, used by name
