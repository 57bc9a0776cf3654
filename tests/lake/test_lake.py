"""The lake keeps every model's predictions and labels as Delta tables: a batch lands whole or not at all, a killed
writer leaves no trace a reader can see, an evaluation can be read again exactly as it was, and a store kept as
SQL rows by an earlier release moves in with one resumable command."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta

import pandas as pd
import pyarrow as pa
import pytest
from click.testing import CliRunner
from sqlalchemy import text

from core import audit
from core.access import SYSTEM, Actor
from core.cli import main
from core.db import session_scope
from core.errors import Forbidden
from core.lake import migration
from core.lake import predictions as store
from core.lake import tables as lake
from core.models import registry
from core.monitoring import evaluation_store, ingest
from core.projects import projects
from tests.support.lake import stored_labels, stored_predictions
from tests.support.people import ADMINISTRATOR, cli_token

MAYA = Actor(username="maya", roles=("ml_engineer",))
FEATURES = [{"name": "amount", "type": "numeric"}, {"name": "merchant type", "type": "categorical"}]
DAY = datetime(2026, 5, 4)


def world() -> None:
    reference = pd.DataFrame({"amount": [12.5, 80.0, 431.0, 9.9] * 25, "merchant type": ["fuel", "web"] * 50,
                              "is_fraud": [0, 0, 1, 0] * 25, "__score__": [0.1, 0.2, 0.9, 0.05] * 25})
    with session_scope() as s:
        projects.create_project(session=s, actor=SYSTEM, key="CARDS", name="Card payments")
        registry.create_model(session=s, actor=SYSTEM, project_key="CARDS", name="fraud", task="binary",
                              target="is_fraud", features=FEATURES, decision_threshold=0.5)
        registry.add_version(session=s, actor=SYSTEM, model="fraud", reference=reference, status="active")


def traffic(n: int, *, first: int = 0, day: datetime = DAY) -> pd.DataFrame:
    return pd.DataFrame({"id": [f"tx-{first + i}" for i in range(n)],
                         "ts": [day + timedelta(minutes=i) for i in range(n)],
                         "score": [(i % 10) / 10 for i in range(n)], "amount": [float(i) for i in range(n)],
                         "merchant type": ["fuel", "web", "travel"] * (n // 3) + ["fuel"] * (n % 3)})


def log(frame: pd.DataFrame) -> None:
    with session_scope() as s:
        ingest.ingest_predictions(session=s, actor=MAYA, model="fraud", source=frame, id_col="id", ts_col="ts",
                                  score_col="score")


def label(ids: list[str], values: list[int]) -> None:
    with session_scope() as s:
        ingest.ingest_ground_truth(session=s, actor=MAYA, model="fraud", source=pd.DataFrame({"id": ids, "y": values}),
                                   id_col="id", label_col="y")


def model_id() -> int:
    with session_scope() as s:
        return registry.model_row(s, "fraud").id


def test_a_batch_is_one_commit_and_a_field_name_with_spaces_comes_back_as_it_was(backend):
    world()
    log(traffic(90))
    log(traffic(30, first=90, day=DAY + timedelta(days=1)))
    predictions = lake.table(model_id(), "predictions")
    assert predictions.version() == 2, "the table's creation, then one commit per ingest"
    assert {p["day"] for p in predictions.partitions()} == {"2026-05-04", "2026-05-05"}
    rows = stored_predictions("fraud")
    assert len(rows) == 120 and rows[0].features == {"amount": 0.0, "merchant type": "fuel"}


def test_a_unit_of_work_that_fails_after_an_ingest_leaves_no_row_and_no_file(backend):
    world()
    log(traffic(10))
    with pytest.raises(RuntimeError), session_scope() as s:
        ingest.ingest_predictions(session=s, actor=MAYA, model="fraud", source=traffic(10, first=10), id_col="id",
                                  ts_col="ts", score_col="score")
        raise RuntimeError("something after the ingest failed")
    assert len(stored_predictions("fraud")) == 10
    files = {str(p) for p in pa.table(lake.table(model_id(), "predictions").get_add_actions(flatten=True)).column("path").to_pylist()}
    on_disk = {str(p.relative_to(lake.location().table(model_id(), "predictions")))
               for p in (lake.get_settings().home / "lake").rglob("*.parquet")}
    assert on_disk == files, "the rolled-back ingest's staged file was deleted"


@pytest.mark.slow
def test_a_writer_killed_in_the_middle_of_a_batch_leaves_no_partial_commit(backend, tmp_path):
    world()
    log(traffic(10))
    script = textwrap.dedent("""
        import os, signal, pandas as pd
        from datetime import datetime, timedelta
        from core.access import Actor
        from core.db import session_scope
        from core.monitoring import ingest
        frame = pd.DataFrame({"id": [f"big-{i}" for i in range(50_000)],
                              "ts": [datetime(2026, 5, 6) + timedelta(seconds=i) for i in range(50_000)],
                              "score": 0.5, "amount": 1.0, "merchant type": "web"})
        with session_scope() as s:
            ingest.ingest_predictions(session=s, actor=Actor("maya", ("ml_engineer",)), model="fraud", source=frame,
                                      id_col="id", ts_col="ts", score_col="score")
            os.kill(os.getpid(), signal.SIGKILL)  # staged, not committed: the process dies here
    """)
    done = subprocess.run([sys.executable, "-c", script], env=os.environ.copy(), capture_output=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()[-2000:]
    assert len(stored_predictions("fraud")) == 10, "a reader sees nothing of the killed batch"
    log(traffic(5, first=100))  # and the next writer commits as usual
    assert len(stored_predictions("fraud")) == 15


def test_labels_merge_by_prediction_id_and_an_evaluation_reads_again_what_it_read(backend):
    world()
    log(traffic(60))
    label([f"tx-{i}" for i in range(30)], [i % 2 for i in range(30)])
    [ev] = evaluation_store.evaluate(actor=MAYA, model="fraud", start=DAY, end=DAY + timedelta(days=1))
    assert ev.labelled_rows == 30
    label([f"tx-{i}" for i in range(30, 60)], [1] * 30)  # more labels arrive later
    label(["tx-0"], [1])  # and one is corrected
    assert len(stored_labels("fraud")) == 60 and stored_labels("fraud")["tx-0"] == 1.0
    with session_scope() as s:
        from core.entities import Evaluation

        stored = s.get(Evaluation, ev.id)
        read = dict(stored.read_versions)
        version_id = stored.model_version_id
        then = store.window_rows(s, version_id=version_id, start=DAY, end=DAY + timedelta(days=1), read=read)
        now = store.window_rows(s, version_id=version_id, start=DAY, end=DAY + timedelta(days=1))
    assert (int((then.label == then.label).sum()), then.label[0]) == (30, 0.0), "as the evaluation read it"
    assert (int((now.label == now.label).sum()), now.label[0]) == (60, 1.0)
    assert now.read["labels"] > read["labels"]


def _sql_rows(n: int) -> None:
    """Predictions and labels as an earlier release kept them: SQL rows with JSON features."""
    with session_scope() as s:
        m = registry.model_row(s, "fraud")
        v = registry.version_row(s, m, None)
        for i in range(n):
            s.execute(text("INSERT INTO prediction (model_id, model_version_id, prediction_id, ts, score, predicted, "
                           "features) VALUES (:m, :v, :pid, :ts, :score, NULL, :f)"),
                      {"m": m.id, "v": v.id, "pid": f"old-{i}", "ts": DAY + timedelta(minutes=i), "score": 0.25,
                       "f": '{"amount": %d, "merchant type": "web"}' % i})
            if i % 2 == 0:
                s.execute(text("INSERT INTO groundtruth (model_id, prediction_id, label, arrived_at) "
                               "VALUES (:m, :pid, 1, :at)"), {"m": m.id, "pid": f"old-{i}", "at": DAY})


def test_a_store_kept_as_sql_rows_moves_into_the_lake_resuming_after_an_interruption(backend, monkeypatch):
    world()
    _sql_rows(250)
    calls = {"n": 0}
    real = lake.stage_predictions

    def dies_on_the_third_chunk(session, **kw):  # noqa: ANN001, ANN003
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        real(session, **kw)

    monkeypatch.setattr(lake, "stage_predictions", dies_on_the_third_chunk)
    with pytest.raises(KeyboardInterrupt):
        migration.migrate(actor=ADMINISTRATOR, chunk=100)
    assert len(stored_predictions("fraud")) == 200, "the two chunks that landed stay"
    monkeypatch.setattr(lake, "stage_predictions", real)
    [moved] = migration.migrate(actor=ADMINISTRATOR, chunk=100)
    assert (moved.predictions, moved.in_lake, moved.labels, moved.labels_in_lake, moved.moved) == (250, 250, 125, 125, True)
    rows = stored_predictions("fraud")
    assert [r.prediction_id for r in rows[:2]] == ["old-0", "old-1"] and rows[1].features == {"amount": 1.0,
                                                                                              "merchant type": "web"}
    with session_scope() as s:
        assert s.execute(text("SELECT count(*) FROM prediction")).one()[0] == 0
        assert "store.migrate" in [e.action for e in audit.events(session=s, entity_type="model")]
    assert migration.migrate(actor=ADMINISTRATOR) == [], "a second run finds nothing to move"


def test_only_an_administrator_migrates_the_store_through_the_service_and_the_command_line(backend, monkeypatch):
    world()
    _sql_rows(3)
    with pytest.raises(Forbidden):
        migration.migrate(actor=MAYA)
    for name, value in cli_token("maya", ("ml_engineer",)).items():
        monkeypatch.setenv(name, value)
    refused = CliRunner().invoke(main, ["store", "migrate"])
    assert refused.exit_code == 1 and "maya may not settings manage" in refused.stderr
    for name, value in cli_token("ada", ("admin",)).items():
        monkeypatch.setenv(name, value)
    done = CliRunner().invoke(main, ["store", "migrate"])
    assert done.exit_code == 0, done.stderr
    assert "1 model(s) moved to the lake" in done.stdout and len(stored_predictions("fraud")) == 3


def test_a_duplicate_id_against_the_lake_is_named_and_nothing_is_written(backend):
    world()
    log(traffic(20))
    with pytest.raises(Exception, match=r"'tx-19' are already stored for fraud"):
        log(traffic(5, first=19))
    assert len(stored_predictions("fraud")) == 20
    assert pa.types.is_float64(lake.dataset(model_id(), "predictions").schema.field(lake.feature_column("amount")).type)
