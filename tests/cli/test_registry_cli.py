"""`watchtower model register` and `watchtower audit verify` from the command line, good input and bad.

Bad input exits non-zero with a one-line reason and leaves every table exactly as it was (a refused artifact is
only audited).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import skops.io
from click.testing import CliRunner
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sqlalchemy import func, text
from sqlmodel import SQLModel, select

from core import artifacts
from core.access import Actor
from core.cli import main
from core.db import session_scope
from core.demo import story
from core.demo.training import preprocessor
from core.identity import users
from core.models import registry
from core.projects import blueprints, projects
from tests.support.people import ADMINISTRATOR, cli_token
from tests.support.skops_files import save_skops

ROOT = Path(__file__).resolve().parents[2]


def _row_counts() -> dict[str, int]:
    with session_scope() as s:
        return {t.name: s.exec(select(func.count()).select_from(t)).one() for t in SQLModel.metadata.sorted_tables
                if t.name not in ("auditevent", "audithead")}


def _stored_files(home: Path) -> set[str]:
    return {str(p.relative_to(home)) for p in home.rglob("*") if p.is_file() and not p.name.startswith("watchtower.db")}


@pytest.fixture
def workspace(backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Project FRAUD, a reference CSV of card transactions scored by a fitted estimator, and its skops file.

    The command line acts as Maya (ML engineer) through her cli token.
    """
    with session_scope() as s:
        blueprints.ensure_standard_blueprints(session=s)
        projects.create_project(session=s, actor=Actor(username="rhea", roles=("risk_manager",)), key="FRAUD",
                                name="Credit card fraud", risk_level="high")
    frame = story.transactions(start=story.STORY_START, days=2, per_day=300, seed=3)
    names = story.FEATURE_NAMES
    estimator = Pipeline([("prepare", preprocessor(story.FEATURES, scale=True)),
                          ("model", LogisticRegression(max_iter=500))]).fit(frame[names], frame[story.TARGET])
    reference = frame[[*names, story.TARGET]].copy()
    reference["score"] = estimator.predict_proba(frame[names])[:, 1]
    reference.to_csv(tmp_path / "reference.csv", index=False)
    save_skops(estimator, tmp_path / "model.skops")
    monkeypatch.setenv("WATCHTOWER_TOKEN", cli_token("maya", ("ml_engineer",))["WATCHTOWER_TOKEN"])
    return tmp_path


def _register(*args: str) -> object:
    return CliRunner().invoke(main, ["model", "register", "FRAUD", "fraud-detector", "--task", "binary", *args])


def _assert_refused(result, reason: str, before: dict[str, int], files_before: set[str], home: Path) -> None:
    assert result.exit_code != 0, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert reason in lines[0], lines[0]
    assert _row_counts() == before
    assert _stored_files(home) == files_before


def _home() -> Path:
    from core.config import get_settings

    return get_settings().home


def test_bad_registrations_exit_with_one_line_and_write_nothing(workspace: Path):
    ref = str(workspace / "reference.csv")
    model = workspace / "model.skops"
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    skops.io.dump({"weights": [1, 2, 3]}, workspace / "weights.skops")
    (workspace / "notes.joblib").write_text("this is not a pickle")
    other = Pipeline([("prepare", preprocessor([{"name": "x", "type": "numeric"}], scale=True)),
                      ("model", LogisticRegression())])
    other.fit(pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]}), [0, 0, 1, 1])
    skops.io.dump(other, workspace / "other.skops")
    tampered = workspace / "tampered.skops"
    tampered.write_bytes(model.read_bytes())
    (workspace / "tampered.skops.sha256").write_text("0" * 64 + "  tampered.skops\n")
    home = _home()
    before, files_before = _row_counts(), _stored_files(home)
    assert before["project"] == 1 and before["model"] == 0

    cases = [
        (["--target", "is_fraud", "--reference", str(workspace / "missing.csv")], "missing.csv does not exist"),
        (["--target", "fraud_flag", "--reference", ref], "target column 'fraud_flag' is not in reference.csv"),
        (["--target", "is_fraud", "--reference", ref, "--score-col", "proba"], "score column 'proba' is not in"),
        (["--target", "is_fraud", "--reference", ref, "--artifact", str(tampered)],
         "artifact tampered.skops was tampered with"),
        (["--target", "is_fraud", "--reference", ref, "--artifact", str(model), "--sha256", "ab" * 32],
         "artifact model.skops was tampered with"),
        (["--target", "is_fraud", "--reference", ref, "--artifact", str(workspace / "weights.skops")],
         "weights.skops is not a scikit-learn estimator"),
        (["--target", "is_fraud", "--reference", ref, "--artifact", str(workspace / "notes.joblib")],
         "notes.joblib is not a skops file"),
        (["--target", "is_fraud", "--reference", ref, "--artifact", str(workspace / "other.skops")],
         "other.skops cannot score the reference features"),
        (["--target", "is_fraud", "--reference", ref, "--threshold", "1.5"], "decision threshold 1.5"),
    ]
    for args, reason in cases:
        _assert_refused(_register(*args), reason, before, files_before, home)
    result = _register("--target", "is_fraud", "--reference", ref, "--artifact", str(model), "--sha256", digest,
                       "--score-col", "score")
    assert result.exit_code == 0, result.output


def test_a_duplicate_model_name_is_refused_and_writes_nothing(workspace: Path):
    ref = str(workspace / "reference.csv")
    assert _register("--target", "is_fraud", "--reference", ref).exit_code == 0
    home = _home()
    before, files_before = _row_counts(), _stored_files(home)
    _assert_refused(_register("--target", "is_fraud", "--reference", ref),
                    "a model named 'fraud-detector' already exists", before, files_before, home)


def test_an_external_model_registers_from_its_reference_data_alone(workspace: Path):
    result = _register("--target", "is_fraud", "--reference", str(workspace / "reference.csv"), "--score-col",
                       "score", "--threshold", "0.1")
    assert result.exit_code == 0, result.output
    assert "version 1 (external), 600 reference rows" in result.output
    with session_scope() as s:
        model = registry.get_model(session=s, name="fraud-detector")
        version = registry.get_version(session=s, model="fraud-detector")
    assert model.feature_names == story.FEATURE_NAMES
    assert {f["name"]: f["type"] for f in model.features}["channel"] == "categorical"
    assert (version.status, version.origin, version.artifact_path) == ("active", "external", None)
    reference = artifacts.load_reference(path=version.reference_path, sha256=version.reference_sha256)
    assert "__score__" in reference.columns and len(reference) == 600


def test_a_model_with_its_artifact_registers_and_loads_after_verification(workspace: Path):
    model = workspace / "model.skops"
    (workspace / "model.skops.sha256").write_text(hashlib.sha256(model.read_bytes()).hexdigest() + "\n")
    with session_scope() as s:
        users.create_user(session=s, actor=ADMINISTRATOR, username="dario", name="Dario Conti", email="dario@example.com",
                          roles=["data_scientist"], password="s3cret-pass")
    args = ["model", "register", "FRAUD", "fraud-detector", "--task", "binary", "--target", "is_fraud",
            "--reference", str(workspace / "reference.csv"), "--artifact", str(model), "--score-col", "score",
            "--as", "dario"]
    wrong = CliRunner().invoke(main, args, env={"WATCHTOWER_TOKEN": None, "WATCHTOWER_PASSWORD": "guess"})
    assert wrong.exit_code == 1 and "unknown user or wrong password" in wrong.output
    result = CliRunner().invoke(main, args, env={"WATCHTOWER_TOKEN": None, "WATCHTOWER_PASSWORD": "s3cret-pass"})
    assert result.exit_code == 0, result.output
    with session_scope() as s:
        version = registry.get_version(session=s, model="fraud-detector", version=1)
    assert version.origin == "manual" and version.created_by == "dario"
    assert version.artifact_sha256 == hashlib.sha256(model.read_bytes()).hexdigest()
    estimator = artifacts.load_estimator(path=version.artifact_path, sha256=version.artifact_sha256)
    frame = story.transactions(start=story.WAVE_START, days=1, per_day=50)
    assert estimator.predict_proba(frame[story.FEATURE_NAMES]).shape == (50, 2)


def test_audit_verify_names_an_event_edited_in_the_database(workspace: Path):
    assert _register("--target", "is_fraud", "--reference", str(workspace / "reference.csv")).exit_code == 0
    with session_scope() as s:
        users.create_user(session=s, actor=ADMINISTRATOR, username="rhea", name="Rhea Risk", email="rhea@example.com",
                          roles=["risk_manager"], password="s3cret-pass")
    verify = ["audit", "verify", "--as", "rhea"]
    intact = CliRunner().invoke(main, verify, env={"WATCHTOWER_PASSWORD": "s3cret-pass", "WATCHTOWER_TOKEN": ""})
    assert intact.exit_code == 0 and "audit chain intact" in intact.output
    with session_scope() as s:
        seq = s.exec(text("SELECT seq FROM auditevent WHERE action = 'model.register'")).one()[0]
        s.exec(text("UPDATE auditevent SET actor = 'mallory' WHERE seq = :seq").bindparams(seq=seq))
    edited = CliRunner().invoke(main, verify, env={"WATCHTOWER_PASSWORD": "s3cret-pass", "WATCHTOWER_TOKEN": ""})
    assert edited.exit_code == 1
    assert f"event {seq} (model.register by mallory) was edited" in edited.output


def test_the_installed_command_lists_its_commands(sqlite_home: Path):
    out = subprocess.run([sys.executable, "-m", "core.cli", "--help"], capture_output=True, text=True, cwd=ROOT,
                         check=True).stdout
    for command in ("demo", "serve", "project", "model", "audit"):
        assert f"  {command} " in out
    register_help = CliRunner().invoke(main, ["model", "register", "--help"]).output
    assert "--reference" in register_help and "--artifact" in register_help
