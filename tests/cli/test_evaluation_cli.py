"""The evaluation store from the command line: log, label, evaluate, export; bad input exits 1 and writes nothing."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from sqlalchemy import func
from sqlmodel import SQLModel, select

from core.cli import main
from core.db import session_scope
from core.identity import users
from tests.support import evaluation_world as world
from tests.support.people import ADMINISTRATOR, cli_token


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def row_counts() -> dict[str, int]:
    with session_scope() as s:
        return {t.name: s.exec(select(func.count()).select_from(t)).one() for t in SQLModel.metadata.sorted_tables}


@pytest.fixture
def files(backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """The model, two days of scored traffic as a predictions file, and the first day's labels; Maya's cli token."""
    world.build()
    for name, value in cli_token("maya", ("ml_engineer",)).items():
        monkeypatch.setenv(name, value)
    days = pd.concat([world.traffic(300, seed=1), world.traffic(300, seed=2, new_cards=0.6,
                                                                  start=world.DAY0 + timedelta(days=1))])
    paths = {"predictions": tmp_path / "predictions.csv", "labels": tmp_path / "labels.csv"}
    days.drop(columns=["is_fraud"]).to_csv(paths["predictions"], index=False)
    days.head(300)[["tx", "is_fraud"]].to_csv(paths["labels"], index=False)
    return paths


def test_log_label_evaluate_and_export(files):
    code, out, _ = run("predictions", "ingest", world.MODEL, files["predictions"], "--id-col", "tx", "--ts-col", "ts",
                       "--score-col", "score")
    assert code == 0 and out.startswith("600 predictions of fraud v1 logged from 2026-05-04")
    code, out, _ = run("ground-truth", "ingest", world.MODEL, files["labels"], "--id-col", "tx", "--label-col",
                       "is_fraud")
    assert (code, out.strip()) == (0, "300 labels for fraud: 300 new, 0 changed (audited), 0 unchanged")
    code, out, _ = run("ground-truth", "ingest", world.MODEL, files["labels"], "--id-col", "tx", "--label-col",
                       "is_fraud")
    assert out.strip().endswith("0 new, 0 changed (audited), 300 unchanged")

    code, out, _ = run("evaluate", world.MODEL, "--every", "1D")
    assert code == 0, out
    lines = out.strip().splitlines()
    assert lines[0].startswith("2026-05-04 00:00 → 2026-05-05 00:00") and "AUC 0." in lines[0]
    assert "estimated AUC" in lines[1], "the unlabelled day shows its estimate"
    assert lines[-1] == "2 window(s) of fraud v1 stored"

    code, out, _ = run("evaluations", world.MODEL, "--format", "csv")
    table = pd.read_csv(io.StringIO(out))
    assert code == 0 and list(table.labelled_rows) == [300, 0] and table.most_drifted_field.fillna("").tolist()[1] == "card_age_days"
    code, out, _ = run("evaluations", world.MODEL, "--version", "1", "--format", "json")
    assert [w["rows"] for w in json.loads(out)] == [300, 300]


def test_evaluating_a_window_again_needs_overwrite(files):
    run("predictions", "ingest", world.MODEL, files["predictions"], "--id-col", "tx", "--ts-col", "ts",
        "--score-col", "score")
    assert run("evaluate", world.MODEL, "--start", "2026-05-04", "--end", "2026-05-06")[0] == 0
    before = row_counts()
    code, out, err = run("evaluate", world.MODEL, "--start", "2026-05-04", "--end", "2026-05-06")
    assert code == 1 and out == "" and "append-only, use --overwrite" in err and len(err.strip().splitlines()) == 1
    assert row_counts() == before
    code, out, _ = run("evaluate", world.MODEL, "--start", "2026-05-04T00:00:00+00:00", "--end", "2026-05-06",
                       "--overwrite")
    assert code == 0 and out.strip().endswith("1 window(s) of fraud v1 stored")


@pytest.mark.parametrize(("args", "message"), [
    (["predictions", "ingest", world.MODEL, "{predictions}", "--id-col", "nope", "--score-col", "score"],
     "lacks required column(s) 'nope'"),
    (["predictions", "ingest", world.MODEL, "{predictions}", "--id-col", "tx", "--score-col", "amount"],
     "outside the probabilities [0, 1]"),
    (["predictions", "ingest", world.MODEL, "{predictions}", "--id-col", "tx", "--score-col", "score",
      "--version", "7"], "model fraud has no version 7"),
    (["predictions", "ingest", "nobody", "{predictions}", "--id-col", "tx", "--score-col", "score"],
     "no model named 'nobody'"),
    (["predictions", "ingest", world.MODEL, "missing.csv", "--id-col", "tx", "--score-col", "score"],
     "file missing.csv does not exist"),
    (["ground-truth", "ingest", world.MODEL, "{labels}", "--id-col", "tx", "--label-col", "is_fraud"],
     "no prediction of fraud has id(s)"),
    (["evaluate", world.MODEL, "--start", "last tuesday"], "--start 'last tuesday' is not an ISO 8601 date"),
    (["evaluate", world.MODEL], "fraud v1 has no logged predictions to evaluate"),
    (["predictions", "ingest", world.MODEL, "{predictions}", "--id-col", "tx", "--score-col", "score", "--as",
      "bianca"], "bianca may not evaluation write"),
])
def test_bad_input_exits_with_one_line_and_writes_nothing(files, monkeypatch, args, message):
    if "bianca" in args:  # a demo persona acting without credentials
        monkeypatch.delenv("WATCHTOWER_TOKEN")
        monkeypatch.setenv("WATCHTOWER_DEMO", "1")
    with session_scope() as s:
        users.create_user(session=s, actor=ADMINISTRATOR, username="bianca", name="Bianca", email="b@x.io", roles=["business"])
    before = row_counts()
    code, out, err = run(*[a.format(**files) if a.startswith("{") else a for a in args])
    assert code == 1 and message in err, err
    assert len(err.strip().splitlines()) == 1 and out == ""
    assert row_counts() == before


def test_the_business_stakeholder_may_read_the_store(files, monkeypatch):
    monkeypatch.delenv("WATCHTOWER_TOKEN")
    monkeypatch.setenv("WATCHTOWER_DEMO", "1")
    with session_scope() as s:
        users.create_user(session=s, actor=ADMINISTRATOR, username="bianca", name="Bianca", email="b@x.io", roles=["business"])
    code, out, _ = run("evaluations", world.MODEL, "--as", "bianca")
    assert code == 0 and out.startswith("model,version,window_start,window_end")
