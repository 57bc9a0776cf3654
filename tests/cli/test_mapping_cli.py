"""An external model whose files carry an `id` and a `timestamp`: registered, logged, labelled, evaluated.

Maya registers it from the command line. Without a mapping Watchtower recognises the id and the timestamp
and tests only the features for drift, so a week drawn from the reference's own distribution reports no
drifted field; a mapping that once named them as features is corrected, and the next evaluation agrees.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from sqlalchemy import func
from sqlmodel import SQLModel, select

from core import audit
from core.cli import main
from core.db import session_scope
from tests.support import external_logs as ext
from tests.support.people import cli_token


def run(*args: object) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def row_counts() -> dict[str, int]:
    with session_scope() as s:
        return {t.name: s.exec(select(func.count()).select_from(t)).one() for t in SQLModel.metadata.sorted_tables}


def register(name: str, files: dict[str, Path], *options: object) -> tuple[int, str, str]:
    return run("model", "register", "FRAUD", name, "--task", "binary", "--target", "is_fraud",
               "--reference", files["reference"], "--score-col", "score", *options)


def stored_windows(model: str) -> list[dict]:
    code, out, err = run("evaluations", model, "--format", "json")
    assert code == 0, err
    return json.loads(out)


@pytest.fixture
def files(backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Project FRAUD; the reference export, a later week's log with an extra `batch` column, its labels."""
    ext.create_project()
    monkeypatch.setenv("WATCHTOWER_TOKEN", cli_token("maya", ("ml_engineer",))["WATCHTOWER_TOKEN"])
    return ext.write_files(tmp_path)


def test_an_undrifted_week_of_an_external_model_reports_no_drifted_field(files):
    code, out, err = register("card-fraud", files)
    assert code == 0, err
    assert "inferred id column 'id': unique per row" in out
    assert "inferred timestamp column 'timestamp': holds dates" in out
    assert "model card-fraud registered: version 1 (external), 3000 reference rows" in out
    assert "warning: feature 'region_code' holds integers with only 5 distinct values" in err

    code, out, err = run("predictions", "ingest", "card-fraud", files["predictions"])  # columns from the mapping
    assert code == 0, err
    assert out.splitlines() == ["1,500 predictions of card-fraud v1 logged from 2026-06-15 00:00 to 2026-06-21 23:49",
                                "ignored column(s), not in the mapping: batch"]
    code, out, err = run("ground-truth", "ingest", "card-fraud", files["labels"], "--id-col", "id",
                         "--label-col", "is_fraud")
    assert code == 0 and "1,500 new" in out, err

    code, out, err = run("evaluate", "card-fraud")
    assert code == 0, err
    assert "1,500 labelled" in out and "0 drifted field(s)" in out
    [window] = stored_windows("card-fraud")
    assert window["drift_share"] == 0.0 and window["drifted_fields"] == 0
    assert [f["field"] for f in window["field_drift"]] == list(ext.FEATURES)
    assert window["metrics"]["roc_auc"] > 0.6


def test_a_mapping_that_tested_the_id_and_timestamp_is_corrected_and_the_next_evaluation_uses_it(files):
    features = ",".join(["id", "timestamp", *ext.FEATURES])
    assert register("card-fraud", files, "--features", features)[0] == 0
    assert run("predictions", "ingest", "card-fraud", files["predictions"], "--id-col", "id",
               "--ts-col", "timestamp")[0] == 0
    assert run("ground-truth", "ingest", "card-fraud", files["labels"], "--id-col", "id", "--label-col", "is_fraud")[0] == 0
    assert run("evaluate", "card-fraud")[0] == 0
    [before] = stored_windows("card-fraud")
    assert [f["field"] for f in before["field_drift"] if f["drifted"]] == ["timestamp"]
    assert before["drift_share"] == pytest.approx(1 / 6)

    code, out, err = run("model", "set-mapping", "card-fraud", "--id-col", "id", "--ts-col", "timestamp",
                         "--kind", "region_code=categorical", "--notes", "id and timestamp are not features")
    assert code == 0, err
    assert out.splitlines()[-1] == "card-fraud mapping 2 recorded: 4 feature(s)"
    assert run("evaluate", "card-fraud", "--overwrite")[0] == 0
    [after] = stored_windows("card-fraud")
    assert after["drift_share"] == 0.0 and [f["field"] for f in after["field_drift"]] == list(ext.FEATURES)

    code, out, _ = run("model", "mapping", "card-fraud", "--history")
    assert "card-fraud mapping 1 by maya" in out and "card-fraud mapping 2 by maya" in out
    current = json.loads(run("model", "mapping", "card-fraud", "--format", "json")[1])
    assert (current["id"], current["timestamp"]) == ("id", "timestamp")
    assert {"name": "region_code", "kind": "categorical"} in current["features"]
    with session_scope() as s:
        trail = [e for e in audit.events(session=s, entity_id="card-fraud") if e.action == "mapping.set"]
    assert [e.details["number"] for e in trail] == [2, 1]
    assert trail[0].actor == "maya" and trail[0].details["notes"] == "id and timestamp are not features"


def test_someone_who_may_not_register_versions_cannot_correct_a_mapping(files, monkeypatch):
    assert register("card-fraud", files)[0] == 0
    monkeypatch.setenv("WATCHTOWER_TOKEN", cli_token("rhea", ("risk_manager",))["WATCHTOWER_TOKEN"])
    before = row_counts()
    code, _, err = run("model", "set-mapping", "card-fraud", "--features", "amount,merchant")
    assert code == 1 and err == "error: rhea may not model register (allowed roles: admin, data_scientist, ml_engineer)\n"
    assert row_counts() == before
    assert run("model", "mapping", "card-fraud")[0] == 0  # reading it is fine


def test_a_schema_file_declares_the_mapping_and_a_dry_run_registers_nothing(files, tmp_path):
    schema = tmp_path / "mapping.yaml"
    schema.write_text("id: id\ntimestamp: timestamp\ntarget: is_fraud\nscore: score\n"
                      "features:\n  - amount\n  - merchant\n  - name: region_code\n    kind: categorical\n")
    before = row_counts()
    code, out, _ = run("model", "register", "FRAUD", "card-fraud", "--task", "binary", "--reference",
                       files["reference"], "--schema", schema, "--dry-run")
    assert code == 0 and out.splitlines()[-1] == "dry run: nothing registered"
    assert "  ignored              card_age_days (not mapped)" in out
    assert row_counts() == before

    code, out, err = run("model", "register", "FRAUD", "card-fraud", "--task", "binary", "--reference",
                         files["reference"], "--schema", schema)
    assert code == 0, err
    assert "inferred" not in out and not err  # everything was declared, nothing to warn about
    assert json.loads(run("model", "mapping", "card-fraud", "--format", "json")[1])["features"] == [
        {"name": "amount", "kind": "numeric"}, {"name": "merchant", "kind": "categorical"},
        {"name": "region_code", "kind": "categorical"}]


@pytest.mark.parametrize(("options", "reason"), [
    (("--id-col", "transaction_id"), "id column 'transaction_id' is not in reference.csv"),
    (("--features", "amount,merchant,amount"), "feature 'amount' is listed twice"),
    (("--id-col", "id", "--features", "id,amount"), "column 'id' is both the id column and a feature"),
    (("--features", " , "), "the feature list is empty"),
    (("--kind", "merchant=numeric"), "feature 'merchant' is declared numeric but holds"),
])
def test_a_bad_mapping_at_registration_exits_with_one_line_and_writes_nothing(files, options, reason):
    before = row_counts()
    code, out, err = register("card-fraud", files, *options)
    assert code == 1 and err.startswith(f"error: {reason}") and len(err.splitlines()) == 1, (out, err)
    assert row_counts() == before


def test_a_categorical_float_with_thousands_of_values_registers_with_a_warning(files):
    frame = pd.read_csv(files["reference"])
    frame["amount"] = frame.index + 0.25  # every amount distinct
    frame.to_csv(files["reference"], index=False)
    code, _, err = register("card-fraud", files, "--kind", "amount=categorical")
    assert code == 0
    assert "warning: feature 'amount' is declared categorical but is a float column with 3,000 distinct" in err


def test_a_log_without_a_mapped_feature_is_refused_by_name_and_writes_nothing(files, tmp_path):
    assert register("card-fraud", files)[0] == 0
    pd.read_csv(files["predictions"]).drop(columns=["merchant"]).to_csv(tmp_path / "partial.csv", index=False)
    before = row_counts()
    code, _, err = run("predictions", "ingest", "card-fraud", tmp_path / "partial.csv")
    assert code == 1
    assert err == "error: partial.csv lacks required column(s) 'merchant', mapped as feature(s); nothing was ingested\n"
    assert row_counts() == before
