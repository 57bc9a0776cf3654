"""The lake on an S3-compatible object store (moto on loopback): a batch lands whole or not at all, labels merge by
id, a window reads back and is evaluated, an old SQL store moves in, a demo reset empties it, and a store that
cannot be reached is named with the settings to check, with nothing written."""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest
from click.testing import CliRunner

from core.cli import main
from core.db import session_scope
from core.errors import InvalidInput
from core.lake import engines, migration
from core.lake import predictions as store
from core.lake import tables as lake
from core.monitoring import evaluation_store
from tests.lake.test_lake import DAY, MAYA, _sql_rows, label, log, model_id, traffic, world
from tests.support.lake import stored_labels, stored_predictions
from tests.support.people import ADMINISTRATOR, cli_token


def objects(client, bucket: str) -> set[str]:  # noqa: ANN001
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {o["Key"] for page in pages for o in page.get("Contents", [])}


def committed_files(client, bucket: str) -> set[str]:  # noqa: ANN001
    t = lake.table(model_id(), "predictions")
    root = f"lake/models/{model_id()}/predictions/"
    return {root + uri.split(root, 1)[1] for uri in t.file_uris()}


def test_predictions_land_whole_labels_merge_and_a_window_is_evaluated_on_s3(backend, s3_lake):
    client, bucket = s3_lake
    world()
    log(traffic(90))
    version = lake.table(model_id(), "predictions").version()
    with pytest.raises(InvalidInput, match=r"'tx-89' are already stored for fraud \(row 1; 1 in all\)"):
        log(traffic(20, first=89, day=DAY + timedelta(days=1)))
    assert lake.table(model_id(), "predictions").version() == version, "the refused batch made no commit"
    parquet = {k for k in objects(client, bucket) if k.endswith(".parquet")}
    assert parquet == committed_files(client, bucket), "and left no staged object behind"

    label([f"tx-{i}" for i in range(40)], [i % 2 for i in range(40)])
    label([f"tx-{i}" for i in range(40)], [i % 2 for i in range(40)])  # the same labels again change nothing
    label(["tx-0"], [1])
    assert len(stored_labels("fraud")) == 40 and stored_labels("fraud")["tx-0"] == 1.0
    assert store.counts(model_id=model_id(), start=DAY, end=DAY + timedelta(days=1)) == (90, 40)
    with session_scope() as s:
        from core.models import registry

        version_id = registry.version_row(s, registry.model_row(s, "fraud"), None).id
        window = store.window_rows(s, version_id=version_id, start=DAY, end=DAY + timedelta(hours=1))
    assert len(window) == 60 and window.prediction_id[:2] == ["tx-0", "tx-1"]
    assert window.features["merchant type"].tolist()[:3] == ["fuel", "web", "travel"]

    files, schema = engines.snapshot_files(model_id(), "predictions", version=version)
    counted = engines.DuckDBEngine().query("SELECT count(*) AS n, max(score) AS top FROM p", views={"p": files},
                                           schemas={"p": schema})
    assert counted.to_pylist() == [{"n": 90, "top": 0.9}], "DuckDB scans the snapshot's objects on S3"

    [ev] = evaluation_store.evaluate(actor=MAYA, model="fraud", start=DAY, end=DAY + timedelta(days=1))
    assert (ev.rows, ev.labelled_rows) == (90, 40)


def test_the_command_line_evaluates_and_migrates_an_old_store_into_s3(backend, s3_lake, monkeypatch):
    world()
    _sql_rows(30)
    for name, value in cli_token("ada", ("admin",)).items():
        monkeypatch.setenv(name, value)
    done = CliRunner().invoke(main, ["store", "migrate"])
    assert done.exit_code == 0, done.stderr
    assert len(stored_predictions("fraud")) == 30 and len(stored_labels("fraud")) == 15
    assert migration.migrate(actor=ADMINISTRATOR) == [], "nothing is left to move"
    evaluated = CliRunner().invoke(main, ["evaluate", "fraud", "--start", "2026-05-04", "--end", "2026-05-05"])
    assert evaluated.exit_code == 0, evaluated.stderr


def test_a_demo_reset_empties_the_lake_on_s3(backend, s3_lake):
    client, bucket = s3_lake
    world()
    log(traffic(12))
    assert any(k.startswith("lake/models/") for k in objects(client, bucket))
    lake.remove_all()
    assert not [k for k in objects(client, bucket) if k.startswith("lake/models")]
    lake.remove_all()  # an empty lake stays empty


@pytest.mark.parametrize("broken", ["no bucket", "endpoint down"])
def test_a_store_that_cannot_be_used_is_named_with_its_settings_and_nothing_is_written(backend, s3_lake, monkeypatch,
                                                                                       broken):
    client, bucket = s3_lake
    world()
    if broken == "no bucket":
        monkeypatch.setenv("WATCHTOWER_LAKE_URL", "s3://no-such-bucket/lake")
        reason = "the bucket does not exist"
    else:
        monkeypatch.setenv("WATCHTOWER_LAKE_S3_ENDPOINT", f"http://127.0.0.1:{unused_port()}")
        reason = "nothing answers at the endpoint"
    with pytest.raises(lake.LakeUnreachable, match=rf"{reason}; check WATCHTOWER_LAKE_URL, "
                                                   r"WATCHTOWER_LAKE_S3_ENDPOINT.*nothing was written"):
        log(traffic(5))
    assert not [k for k in objects(client, bucket) if k.startswith("lake/models")]
    with session_scope() as s:
        from core.audit import events

        assert "predictions.ingest" not in [e.action for e in events(session=s, entity_type="model_version")]
    for name, value in cli_token("maya", ("ml_engineer",)).items():
        monkeypatch.setenv(name, value)
    refused = CliRunner().invoke(main, ["evaluate", "fraud"])
    assert refused.exit_code == 1 and reason in refused.stderr and "Traceback" not in refused.stderr + refused.stdout


def unused_port() -> int:
    """A port on loopback that nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
