"""Logging predictions and delayed labels: whole files or nothing, with messages naming the rows and ids."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
from sqlmodel import func, select

from core import audit
from core.access import SYSTEM, Actor
from core.db import session_scope
from core.entities import Environment
from core.errors import Forbidden, InvalidInput, NotFound
from core.lake import staging
from core.models import registry
from core.monitoring import ingest, prediction_files
from core.projects import projects
from tests.support.lake import stored_labels, stored_predictions

MAYA = Actor(username="maya", roles=("ml_engineer",))
FEATURES = [{"name": "amount", "type": "numeric"}, {"name": "merchant", "type": "categorical"},
            {"name": "card_age_days", "type": "numeric"}]
HOSTILE = "</script><script>alert(1)</script>"


def world(*, task: str = "binary") -> None:
    """A project with one model (v1 active, from a small reference) and a production environment."""
    reference = pd.DataFrame({"amount": [12.5, 80.0, 431.0, 9.9] * 10, "merchant": ["fuel", "travel", "web", "fuel"] * 10,
                              "card_age_days": [400, 12, 3, 900] * 10, "is_fraud": [0, 0, 1, 0] * 10})
    if task == "binary":
        reference["__score__"] = [0.05, 0.2, 0.9, 0.01] * 10
    else:
        reference["is_fraud"] = reference["amount"] * 1.5
        reference["__prediction__"] = reference["amount"] * 1.4
    with session_scope() as s:
        projects.create_project(session=s, actor=SYSTEM, key="CARDS", name="Card payments")
        registry.create_model(session=s, actor=SYSTEM, project_key="CARDS", name="fraud", task=task,
                              target="is_fraud", features=FEATURES, decision_threshold=0.5)
        registry.add_version(session=s, actor=SYSTEM, model="fraud", reference=reference, status="active")
        s.add(Environment(name="production", tier="higher", position=1))


def predictions_csv(tmp_path: Path, rows: list[dict] | None = None, name: str = "predictions.csv") -> Path:
    rows = rows if rows is not None else [
        {"id": "tx-1", "ts": "2026-05-01T10:00:00Z", "score": 0.91, "amount": 431.0, "merchant": "web", "card_age_days": 3},
        {"id": "tx-2", "ts": "2026-05-01 11:30:00", "score": 0.02, "amount": 12.5, "merchant": "fuel", "card_age_days": 400},
        {"id": "tx-3", "ts": "2026-05-01T14:00:00+02:00", "score": 0.4, "amount": None, "merchant": None,
         "card_age_days": 12},
    ]
    path = tmp_path / name
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def ingest_file(path: Path | io.BytesIO | pd.DataFrame, **options) -> ingest.PredictionsIngested:
    options = {"id_col": "id", "ts_col": "ts", "score_col": "score", **options}
    with session_scope() as s:
        return ingest.ingest_predictions(session=s, actor=MAYA, model="fraud", source=path, **options)




def count(table) -> int:  # noqa: ANN001
    with session_scope() as s:
        return s.exec(select(func.count()).select_from(table)).one()


def test_predictions_from_a_csv_are_stored_with_features_and_utc_times(backend, tmp_path):
    world()
    result = ingest_file(predictions_csv(tmp_path), environment="production")
    assert (result.rows, result.version, result.environment) == (3, 1, "production")
    rows = stored_predictions()
    assert [r.prediction_id for r in rows] == ["tx-1", "tx-2", "tx-3"]
    assert [r.ts for r in rows] == [datetime(2026, 5, 1, 10), datetime(2026, 5, 1, 11, 30), datetime(2026, 5, 1, 12)]
    assert rows[0].score == 0.91 and rows[0].predicted is None
    assert rows[0].features == {"amount": 431, "merchant": "web", "card_age_days": 3}
    assert rows[2].features == {"amount": None, "merchant": None, "card_age_days": 12}
    assert all(r.environment_id is not None for r in rows)
    with session_scope() as s:
        event = audit.events(session=s, entity_type="model_version")[0]
    assert event.action == "predictions.ingest" and event.actor == "maya" and event.details["rows"] == 3


def test_a_data_frame_and_an_upload_are_ingested_like_a_file(backend, tmp_path):
    world()
    frame = pd.DataFrame({"id": [1, 2], "ts": pd.to_datetime(["2026-05-02 08:00", "2026-05-02 09:00"]),
                          "score": [0.3, 0.7], "amount": [5.0, 7.25], "merchant": ["fuel", "web"],
                          "card_age_days": [10, 20]})
    ingest_file(frame)
    upload = io.BytesIO(predictions_csv(tmp_path).read_bytes())
    upload.name = "upload.csv"
    assert ingest_file(upload).source == "upload.csv"
    rows = {r.prediction_id: r for r in stored_predictions()}
    assert set(rows) == {"1", "2", "tx-1", "tx-2", "tx-3"}
    assert rows["2"].features == {"amount": 7.25, "merchant": "web", "card_age_days": 20}
    assert rows["1"].environment_id is None, "the environment of a logged prediction is optional"


def test_hostile_names_and_values_are_stored_as_plain_data(backend, tmp_path):
    world()
    path = predictions_csv(tmp_path, [{"id": "<b>x</b>", "ts": "2026-05-01", "score": 0.5, "amount": 1,
                                       "merchant": HOSTILE + '"\\\n', "card_age_days": 2,
                                       "<img src=x onerror=alert(1)>": "ignored"}])
    ingest_file(path)
    row = stored_predictions()[0]
    assert row.prediction_id == "<b>x</b>"
    assert row.features["merchant"] == HOSTILE + '"\\\n'


def test_predictions_without_timestamps_are_stamped_on_arrival(backend, tmp_path):
    world()
    before = datetime.utcnow().replace(microsecond=0)  # noqa: DTZ003 - the store keeps naive UTC
    ingest_file(predictions_csv(tmp_path), ts_col=None)
    assert all(r.ts >= before for r in stored_predictions())


@pytest.mark.parametrize(("rows", "options", "message"), [
    ([{"id": "a", "ts": "2026-05-01", "score": 0.5, "amount": 1, "merchant": "x"}], {},
     r"lacks required column\(s\) 'card_age_days'"),
    ([{"id": "a", "ts": "2026-05-01", "score": 0.5, "amount": 1, "merchant": "x", "card_age_days": 1},
      {"id": "b", "ts": "2026-05-01", "score": 0.5, "amount": 1, "merchant": "x", "card_age_days": 1},
      {"id": "a", "ts": "2026-05-01", "score": 0.5, "amount": 1, "merchant": "x", "card_age_days": 1}], {},
     r"column 'id': prediction id\(s\) 'a' appear more than once in the file \('a' at rows 1, 3; 1 repeat"),
    ([{"id": "a", "ts": "2026-05-01", "score": "high", "amount": 1, "merchant": "x", "card_age_days": 1}], {},
     r"column 'score' row 1 hold 'high', which are not numbers"),
    ([{"id": "a", "ts": "2026-05-01", "score": 0.5, "amount": 1, "merchant": "x", "card_age_days": 1},
      {"id": "b", "ts": "2026-05-01", "score": None, "amount": 1, "merchant": "x", "card_age_days": 1}], {},
     r"column 'score' row 2 are empty, NaN or infinite"),
    ([{"id": "a", "ts": "2026-05-01", "score": 1.5, "amount": 1, "merchant": "x", "card_age_days": 1}], {},
     r"row 1 hold 1.5, outside the probabilities \[0, 1\]"),
    ([{"id": "a", "ts": "2026-05-01", "score": 0.5, "amount": 1, "merchant": "x", "card_age_days": 1},
      {"id": "b", "ts": "yesterday", "score": 0.5, "amount": 1, "merchant": "x", "card_age_days": 1}], {},
     r"column 'ts' row 2 hold 'yesterday', which are not ISO 8601 timestamps"),
    ([{"id": "a", "ts": "2026-05-01", "score": 0.5, "amount": "lots", "merchant": "x", "card_age_days": 1}], {},
     r"column 'amount' row 1 hold 'lots', which are not numbers"),
    ([{"id": "a", "ts": "2026-05-01", "score": 0.5, "pred": 2, "amount": 1, "merchant": "x", "card_age_days": 1}],
     {"prediction_col": "pred"}, r"row 1 hold 2, but the model's classes are 0 and 1"),
    ([{"id": "", "ts": "2026-05-01", "score": 0.5, "amount": 1, "merchant": "x", "card_age_days": 1}], {},
     r"row 1 have no 'id'"),
])
def test_bad_prediction_files_are_refused_whole(backend, tmp_path, rows, options, message):
    world()
    ingest_file(predictions_csv(tmp_path, name="earlier.csv"))
    with pytest.raises(InvalidInput, match=message):
        ingest_file(predictions_csv(tmp_path, rows, name="bad.csv"), **options)
    assert len(stored_predictions()) == 3, "nothing of the bad file was written"


@pytest.mark.parametrize("content", [b"", b"id,ts,score,amount,merchant,card_age_days\n"], ids=["empty", "header-only"])
def test_a_file_without_rows_is_refused(backend, tmp_path, content):
    world()
    path = tmp_path / "nothing.csv"
    path.write_bytes(content)
    with pytest.raises(InvalidInput, match="nothing.csv has no rows"):
        ingest_file(path)
    assert len(stored_predictions()) == 0


def test_ids_already_stored_are_named_and_nothing_is_written(backend, tmp_path):
    world()
    ingest_file(predictions_csv(tmp_path))
    again = predictions_csv(tmp_path, [{"id": "tx-9", "ts": "2026-05-03", "score": 0.1, "amount": 1, "merchant": "x",
                                        "card_age_days": 1},
                                       {"id": "tx-2", "ts": "2026-05-03", "score": 0.1, "amount": 1, "merchant": "x",
                                        "card_age_days": 1}], name="again.csv")
    with pytest.raises(InvalidInput, match=r"prediction id\(s\) 'tx-2' are already stored for fraud \(row 2; 1 in all\)"):
        ingest_file(again)
    assert len(stored_predictions()) == 3


def test_a_bad_row_deep_in_a_large_streamed_file_writes_nothing(backend, tmp_path, monkeypatch):
    monkeypatch.setattr(prediction_files, "CHUNK_BYTES", 4096)  # many chunks: earlier ones are inserted before the bad one
    world()
    rows = [{"id": f"tx-{i}", "ts": "2026-05-01", "score": 0.5, "amount": i, "merchant": "fuel", "card_age_days": i}
            for i in range(3000)]
    rows[2950]["score"] = 7
    with pytest.raises(InvalidInput, match=r"row 2951 hold 7, outside the probabilities"):
        ingest_file(predictions_csv(tmp_path, rows))
    assert len(stored_predictions()) == 0


def test_an_id_repeated_in_another_chunk_is_named_with_both_rows_and_nothing_is_written(backend, tmp_path,
                                                                                       monkeypatch):
    monkeypatch.setattr(prediction_files, "CHUNK_BYTES", 4096)  # the repeat lands in a later chunk than the first
    world()
    rows = [{"id": f"tx-{i}", "ts": "2026-05-01", "score": 0.5, "amount": i, "merchant": "fuel", "card_age_days": i}
            for i in range(3000)]
    rows[2500]["id"] = "tx-7"
    with pytest.raises(InvalidInput, match=r"column 'id': prediction id\(s\) 'tx-7' appear more than once in the "
                                           r"file \('tx-7' at rows 8, 2501; 1 repeat"):
        ingest_file(predictions_csv(tmp_path, rows))
    assert len(stored_predictions()) == 0


def test_an_uploaded_file_with_a_repeated_id_and_a_stored_one_is_refused_naming_their_rows(backend, tmp_path,
                                                                                          monkeypatch):
    monkeypatch.setattr(prediction_files, "CHUNK_BYTES", 4096)  # several chunks, read again to find the rows
    world()
    rows = [{"id": f"tx-{i}", "ts": "2026-05-01", "score": 0.5, "amount": i, "merchant": "fuel", "card_age_days": i}
            for i in range(3000)]
    ingest_file(predictions_csv(tmp_path, rows[:10], name="first.csv"))
    later = [dict(r, id=f"new-{i}") for i, r in enumerate(rows)]
    later[1200]["id"], later[2999]["id"] = "new-4", "new-4"
    upload = io.BytesIO(predictions_csv(tmp_path, later, name="upload.csv").read_bytes())
    with pytest.raises(InvalidInput, match=r"'new-4' appear more than once in the file \('new-4' at rows 5, 1201, "
                                           r"3000; 2 repeat"):
        ingest_file(upload)
    later[1200]["id"], later[2999]["id"] = "tx-3", "tx-9"
    upload = io.BytesIO(predictions_csv(tmp_path, later, name="upload.csv").read_bytes())
    with pytest.raises(InvalidInput, match=r"'tx-3', 'tx-9' are already stored for fraud \(rows 1201, 3000; 2 in all"):
        ingest_file(upload)
    assert len(stored_predictions()) == 10


def test_a_second_file_in_the_same_unit_of_work_may_not_log_an_id_the_first_staged(backend, tmp_path):
    world()
    first = predictions_csv(tmp_path, name="first.csv")
    second = predictions_csv(tmp_path, [{"id": "tx-9", "ts": "2026-05-02", "score": 0.5, "amount": 1, "merchant": "x",
                                         "card_age_days": 1},
                                        {"id": "tx-2", "ts": "2026-05-02", "score": 0.5, "amount": 1, "merchant": "x",
                                         "card_age_days": 1}], name="second.csv")
    with pytest.raises(InvalidInput, match=r"'tx-2' are already stored for fraud \(row 2; 1 in all\)"), \
            session_scope() as s:
        ingest.ingest_predictions(session=s, actor=MAYA, model="fraud", source=first, id_col="id", ts_col="ts",
                                  score_col="score")
        ingest.ingest_predictions(session=s, actor=MAYA, model="fraud", source=second, id_col="id", ts_col="ts",
                                  score_col="score")
    assert len(stored_predictions()) == 0


def test_a_staged_file_that_fails_to_write_fails_the_ingest_and_leaves_no_file_behind(backend, tmp_path,
                                                                                       monkeypatch):
    monkeypatch.setattr(prediction_files, "CHUNK_BYTES", 4096)  # many chunks, each written in the background
    world()
    rows = [{"id": f"tx-{i}", "ts": f"2026-05-{1 + i // 1000:02d}", "score": 0.5, "amount": i, "merchant": "fuel",
             "card_age_days": i} for i in range(3000)]
    real, written = staging.pq.write_table, []

    def full_disk_on_the_third(*args, **kwargs) -> None:  # noqa: ANN002, ANN003
        written.append(args[1])
        if len(written) == 3:
            raise OSError(28, "No space left on device")
        real(*args, **kwargs)

    monkeypatch.setattr(staging.pq, "write_table", full_disk_on_the_third)
    with pytest.raises(OSError, match="No space left"):
        ingest_file(predictions_csv(tmp_path, rows))
    assert len(written) >= 3 and len(stored_predictions()) == 0
    assert not list((tmp_path / "home" / "lake").rglob("*.parquet")), "every staged file was deleted"


def test_a_parquet_file_is_ingested_with_its_own_types_and_checked_like_a_csv(backend, tmp_path):
    world()
    frame = pd.DataFrame({"id": [101, 102, 103], "ts": pd.to_datetime(["2026-05-01T10:00:00Z"] * 3),
                          "score": [0.91, 0.02, 0.4], "amount": [431.0, 12.5, None], "merchant": ["web", "fuel", None],
                          "card_age_days": [3, 400, 12]})
    frame.to_parquet(tmp_path / "predictions.parquet")
    done = ingest_file(tmp_path / "predictions.parquet")
    assert (done.rows, done.window_start) == (3, datetime(2026, 5, 1, 10))
    first = stored_predictions()[0]
    assert (first.prediction_id, first.score, first.features) == ("101", 0.91, {"amount": 431.0, "merchant": "web",
                                                                                 "card_age_days": 3.0})
    frame.assign(id=[201, 202, 203], score=[0.5, 1.5, 0.5]).to_parquet(tmp_path / "upload")  # any name: read by its bytes
    with pytest.raises(InvalidInput, match=r"column 'score' row 2 hold 1.5, outside the probabilities"):
        ingest_file(io.BytesIO((tmp_path / "upload").read_bytes()))
    frame.assign(id=[301, 302, 101]).to_parquet(tmp_path / "again.parquet")
    with pytest.raises(InvalidInput, match=r"'101' are already stored for fraud \(row 3; 1 in all\)"):
        ingest_file(tmp_path / "again.parquet")
    assert len(stored_predictions()) == 3


def test_only_people_who_may_write_evaluations_log_predictions(backend, tmp_path):
    world()
    with pytest.raises(Forbidden), session_scope() as s:
        ingest.ingest_predictions(session=s, actor=Actor("bianca", ("business",)), model="fraud",
                                  source=predictions_csv(tmp_path), id_col="id", score_col="score")
    with pytest.raises(NotFound, match="no environment named 'moon'"):
        ingest_file(predictions_csv(tmp_path), environment="moon")


def test_regression_predictions_need_a_prediction_column(backend, tmp_path):
    world(task="regression")
    with pytest.raises(InvalidInput, match="need a prediction column"):
        ingest_file(predictions_csv(tmp_path))
    path = predictions_csv(tmp_path, [{"id": "r1", "ts": "2026-05-01", "pred": 1234.5, "amount": 1, "merchant": "x",
                                       "card_age_days": 3}], name="reg.csv")
    ingest_file(path, score_col=None, prediction_col="pred")
    assert stored_predictions()[0].predicted == 1234.5


# --- ground truth -------------------------------------------------------------------------------------

def labels_csv(tmp_path: Path, labels: dict[str, object], name: str = "labels.csv") -> Path:
    path = tmp_path / name
    pd.DataFrame({"id": list(labels), "is_fraud": list(labels.values())}).to_csv(path, index=False)
    return path


def ingest_labels(path: Path) -> ingest.LabelsIngested:
    with session_scope() as s:
        return ingest.ingest_ground_truth(session=s, actor=MAYA, model="fraud", source=path, id_col="id",
                                          label_col="is_fraud")


def audit_actions() -> list[str]:
    with session_scope() as s:
        return [e.action for e in audit.events(session=s, entity_type="model")]


def test_re_ingesting_the_same_labels_changes_nothing(backend, tmp_path):
    world()
    ingest_file(predictions_csv(tmp_path))
    first = ingest_labels(labels_csv(tmp_path, {"tx-1": 1, "tx-2": 0}))
    trail = audit_actions()
    second = ingest_labels(labels_csv(tmp_path, {"tx-1": 1, "tx-2": 0}))
    assert (first.inserted, first.unchanged) == (2, 0)
    assert (second.inserted, second.updated, second.unchanged) == (0, 0, 2)
    assert stored_labels() == {"tx-1": 1.0, "tx-2": 0.0}
    assert audit_actions() == trail, "an idempotent re-ingest leaves no trace"


def test_a_changed_label_is_an_audited_update(backend, tmp_path):
    world()
    ingest_file(predictions_csv(tmp_path))
    ingest_labels(labels_csv(tmp_path, {"tx-1": 1, "tx-2": 0}))
    result = ingest_labels(labels_csv(tmp_path, {"tx-1": 0, "tx-2": 0, "tx-3": 1}, name="corrected.csv"))
    assert (result.inserted, result.updated, result.unchanged) == (1, 1, 1)
    assert stored_labels() == {"tx-1": 0.0, "tx-2": 0.0, "tx-3": 1.0}
    with session_scope() as s:
        update = next(e for e in audit.events(session=s, entity_type="model") if e.action == "ground_truth.update")
    assert update.actor == "maya" and update.details["changes"] == [{"id": "tx-1", "from": 1.0, "to": 0.0}]


@pytest.mark.parametrize(("labels", "message"), [
    ({"tx-1": 1, "tx-404": 0, "tx-405": 1}, r"no prediction of fraud has id\(s\) 'tx-404', 'tx-405' \(2 unknown"),
    ({"tx-1": 1, "tx-2": 3}, r"column 'is_fraud' row 2 hold 3, but the model's classes are 0 and 1"),
    ({"tx-1": 1, "tx-2": "yes"}, r"column 'is_fraud' row 2 hold 'yes', which are not labels"),
])
def test_bad_label_files_are_refused_naming_ids_and_rows(backend, tmp_path, labels, message):
    world()
    ingest_file(predictions_csv(tmp_path))
    with pytest.raises(InvalidInput, match=message):
        ingest_labels(labels_csv(tmp_path, labels))
    assert stored_labels() == {}, "not even the good labels of a bad file are kept"


def test_feature_values_are_typed_for_every_kind_of_number(tmp_path):
    import pyarrow as pa

    batch = pa.RecordBatch.from_arrays(
        [pa.array(["1", "-2.5", "1e-7", "1.", "+3", "NaN", None, " 4 "]), pa.array(["a", 'q"', None, "x", "y", "z", "w", "v"])],
        names=["n", "c"])
    out = ingest.feature_values(batch, [{"name": "n", "type": "numeric"}, {"name": "c", "type": "categorical"}],
                                offset=0, name="t")
    assert out["n"].to_pylist() == [1, -2.5, 1e-7, 1.0, 3.0, None, None, 4]
    assert out["c"].to_pylist() == ["a", 'q"', None, "x", "y", "z", "w", "v"]


def test_a_dropped_file_is_recognised_by_its_column_names(backend, tmp_path):
    world()
    path = tmp_path / "drop.csv"
    pd.DataFrame({"transaction_id": ["d1", "d2"], "timestamp": ["2026-05-06T08:00:00", "2026-05-07T09:00:00"],
                  "probability": [0.8, 0.1], "amount": [3.0, 4.0], "merchant": ["web", "fuel"],
                  "card_age_days": [5, 500], "is_fraud": [1, 0]}).to_csv(path, index=False)
    with session_scope() as s:
        outcome = ingest.ingest_detected(session=s, actor=MAYA, model="fraud", source=path)
    assert outcome.kind == "predictions_and_ground_truth" and outcome.rows == 2
    assert (outcome.window_start, outcome.window_end) == (datetime(2026, 5, 6, 8), datetime(2026, 5, 7, 9))
    assert stored_labels() == {"d1": 1.0, "d2": 0.0}
    labels_only = labels_csv(tmp_path, {"d1": 1}, name="late.csv")
    with session_scope() as s:
        later = ingest.ingest_detected(session=s, actor=MAYA, model="fraud", source=labels_only)
    assert later.kind == "ground_truth" and later.window_start == datetime(2026, 5, 6, 8)
