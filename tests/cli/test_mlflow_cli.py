"""`watchtower model import-mlflow` and the trusted MLflow sources, end to end on the command line."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from core.cli import main
from tests.support import external_logs
from tests.support import mlflow_world as world
from tests.support.people import cli_token

pytestmark = pytest.mark.xdist_group("mlflow")


def _run(args: list[str], env: dict[str, str]):  # noqa: ANN202
    return CliRunner().invoke(main, args, env=env)


@pytest.mark.slow
def test_an_administrator_trusts_the_server_and_an_ml_engineer_imports_its_champion(backend, mlflow_server, tmp_path):
    external_logs.create_project()
    admin, maya = cli_token("alex", ("admin",)), cli_token("maya", ("ml_engineer",))
    name = world.unique("card-fraud")
    run_id, _ = world.log_and_register(mlflow_server.uri, name)
    reference = world.reference_csv(tmp_path)
    args = ["model", "import-mlflow", "FRAUD", f"models:/{name}@champion", "--tracking-uri", mlflow_server.uri,
            "--reference", str(reference), "--mirror-metrics"]

    refused = _run(args, maya)
    assert refused.exit_code == 1
    assert refused.output.strip().splitlines()[-1].startswith(f"error: {mlflow_server.uri} is not a trusted MLflow source")
    not_admin = _run(["admin", "trust-mlflow", mlflow_server.uri], maya)
    assert not_admin.exit_code == 1 and "maya may not settings manage" in not_admin.output

    trusted = _run(["admin", "trust-mlflow", mlflow_server.uri, "--note", "the data science platform"], admin)
    assert trusted.exit_code == 0, trusted.output
    listed = json.loads(_run(["admin", "mlflow-sources", "--format", "json"], maya).output)
    assert [(s["tracking_uri"], s["trusted_by"], s["note"]) for s in listed] == \
        [(mlflow_server.uri, "alex", "the data science platform")]

    done = _run(args, maya)
    assert done.exit_code == 0, done.output
    lines = done.output.splitlines()
    assert "  feature (categorical) merchant" in lines and "  id                   id" in lines
    assert any(line.startswith(f"{name} v1 (active) imported from MLflow {name} v1 (run {run_id}, sklearn flavour, "
                               "saved with skops, sha256 ") for line in lines)
    assert "training baseline from the run: roc_auc 0.912, training_accuracy 0.98" in lines
    assert f"window evaluations will be written to MLflow run {run_id} (step: window end, epoch ms)" in lines
    versions = _run(["versions", name], maya)
    assert versions.output.startswith("v1   active    imported          roc_auc 0.9120")


def test_a_server_that_is_down_fails_in_one_line_naming_it(backend, tmp_path):
    external_logs.create_project()
    admin, maya = cli_token("alex", ("admin",)), cli_token("maya", ("ml_engineer",))
    down = world.dead_uri()
    assert _run(["admin", "trust-mlflow", down], admin).exit_code == 0
    result = _run(["model", "import-mlflow", "FRAUD", "models:/card-fraud/3", "--tracking-uri", down,
                   "--reference", str(world.reference_csv(tmp_path))], maya)
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"error: the MLflow tracking server at {down} is not reachable (ConnectionRefusedError: [Errno 111] Connection refused); "
        "nothing was written"]
    assert _run(["model", "list"], maya).output.strip() == "no models yet"
