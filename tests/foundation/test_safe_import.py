"""Importing a model never runs code from the upload: skops types are vetted, pickles need an exact allowance."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import joblib
import pytest
import skops.io
from click.testing import CliRunner
from sklearn.base import BaseEstimator, ClassifierMixin

from core import artifacts, audit
from core.cli import main
from core.db import session_scope
from core.errors import Forbidden, IntegrityFailure, InvalidInput
from core.identity import users
from core.models import registry, training
from tests.support import lab_world as world
from tests.support.people import ADMINISTRATOR
from tests.support.skops_files import ADMIN

PASSWORD = "s3cret-pass"


class Payload:
    """What an attacker uploads as model.joblib: unpickling it runs a shell command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (os.system, (f"touch {self.marker}",))


class PartnerScorer(ClassifierMixin, BaseEstimator):
    """A custom estimator class: not among the types skops trusts by default."""

    def fit(self, X, y):  # noqa: ANN001, ANN201, N803
        self.classes_ = [0, 1]
        return self

    def predict_proba(self, X):  # noqa: ANN001, ANN201, N803
        import numpy as np

        p = np.clip(np.asarray(X["amount"], dtype=float) / 1000.0, 0, 1)
        return np.column_stack([1 - p, p])

    def predict(self, X):  # noqa: ANN001, ANN201, N803
        return (self.predict_proba(X)[:, 1] > 0.5).astype(int)


def _world(tmp_path: Path) -> Path:
    world.build()
    data = world.traffic(600, seed=31)
    reference = tmp_path / "reference.csv"
    data[[*world.NAMES, world.TARGET]].to_csv(reference, index=False)
    with session_scope() as s:
        users.create_user(session=s, actor=ADMINISTRATOR, username="ada", name="Ada Admin", email="ada@x.io", roles=["admin"],
                          password=PASSWORD)
        users.create_user(session=s, actor=ADMINISTRATOR, username="mia", name="Mia", email="mia@x.io", roles=["ml_engineer"],
                          password=PASSWORD)
    return reference


def _cli(*args: str):  # noqa: ANN202
    return CliRunner().invoke(main, list(args), env={"WATCHTOWER_PASSWORD": PASSWORD})


def _refusals() -> list[audit.AuditRead]:
    with session_scope() as s:
        return [e for e in audit.events(session=s) if e.action == "artifact.refused"]


def _crafted(tmp_path: Path) -> tuple[Path, Path]:
    marker = tmp_path / "pwned"
    evil = tmp_path / "model.joblib"
    joblib.dump(Payload(marker), evil)
    # The payload is armed: loading a copy the unsafe way runs the command.
    control = tmp_path / "control-pwned"
    armed = tmp_path / "armed.joblib"
    joblib.dump(Payload(control), armed)
    subprocess.run([sys.executable, "-c", f"import joblib; joblib.load({str(armed)!r})"], check=False)
    assert control.exists()
    return evil, marker


def test_a_crafted_pickle_is_refused_by_the_cli_without_running(backend, tmp_path):
    reference = _world(tmp_path)
    evil, marker = _crafted(tmp_path)
    result = _cli("model", "import", world.MODEL, "--artifact", str(evil), "--reference", str(reference),
                  "--as", "mia")
    assert result.exit_code == 1
    assert "model.joblib is not a skops file" in result.output
    assert 'skops.io.dump(model, "model.skops")' in result.output
    assert not marker.exists()
    refused = _refusals()
    assert len(refused) == 1 and refused[0].actor == "mia" and refused[0].entity_id == "model.joblib"
    assert "pickle and joblib files run code" in refused[0].details["reason"]
    with session_scope() as s:
        assert registry.list_versions(session=s, model=world.MODEL) == []


def test_a_skops_file_with_an_untrusted_type_is_refused_until_an_administrator_trusts_it(backend, tmp_path):
    reference = _world(tmp_path)
    model = tmp_path / "partner.skops"
    data = world.traffic(200, seed=32)
    skops.io.dump(PartnerScorer().fit(data[world.NAMES], data[world.TARGET]), model)
    custom = f"{PartnerScorer.__module__}.PartnerScorer"
    refused = _cli("model", "import", world.MODEL, "--artifact", str(model), "--reference", str(reference),
                   "--as", "mia")
    assert refused.exit_code == 1 and f"contains types that are not trusted: {custom}" in refused.output
    assert len(_refusals()) == 1

    # Only an administrator may trust a type.
    denied = _cli("model", "trust-type", custom, "--as", "mia")
    assert denied.exit_code == 1 and "mia may not settings manage" in denied.output
    with pytest.raises(Forbidden), session_scope() as s:
        registry.trust_types(session=s, actor=world.actor("dario"), type_names=[custom])
    trusted = _cli("model", "trust-type", custom, "--as", "ada")
    assert trusted.exit_code == 0, trusted.output
    with session_scope() as s:
        assert registry.trusted_types(session=s) == [custom]
        assert [e.details for e in audit.events(session=s) if e.action == "artifact.trust_types"] == \
            [{"added": [custom]}]

    accepted = _cli("model", "import", world.MODEL, "--artifact", str(model), "--reference", str(reference),
                    "--as", "mia")
    assert accepted.exit_code == 0, accepted.output
    with session_scope() as s:
        v = registry.get_version(session=s, model=world.MODEL, version=1)
    assert v.artifact_path.endswith(".skops") and v.artifact_sha256 == artifacts.sha256_file(model)
    # Every later load still checks the sha256 first.
    loaded = artifacts.load_estimator(path=v.artifact_path, sha256=v.artifact_sha256)
    assert type(loaded).__name__ == "PartnerScorer"
    artifacts.resolve(v.artifact_path).write_bytes(model.read_bytes() + b"\0")
    with pytest.raises(IntegrityFailure):
        artifacts.load_estimator(path=v.artifact_path, sha256=v.artifact_sha256)


def test_an_administrator_allows_one_exact_pickle_for_one_model(backend, tmp_path):
    reference = _world(tmp_path)
    data = world.traffic(600, seed=33)
    pipe = training.build_pipeline(task="binary", algorithm="logistic_regression",
                                   numeric=["amount", "card_age_days", "hour"], categorical=["channel"], params={})
    pipe.fit(data[world.NAMES], data[world.TARGET])
    allowed = tmp_path / "legacy.joblib"
    joblib.dump(pipe, allowed)
    other = tmp_path / "other.joblib"
    joblib.dump(pipe, other, compress=3)  # the same model, another file
    sha = artifacts.sha256_file(allowed)
    assert artifacts.sha256_file(other) != sha

    denied = _cli("model", "allow-pickle", world.MODEL, "--sha256", sha, "--as", "mia")
    assert denied.exit_code == 1 and "mia may not settings manage" in denied.output
    with pytest.raises(InvalidInput, match="not 64 hexadecimal"), session_scope() as s:
        registry.allow_pickle(session=s, actor=ADMIN, model=world.MODEL, sha256="abc")
    ok = _cli("model", "allow-pickle", world.MODEL, "--sha256", sha, "--as", "ada")
    assert ok.exit_code == 0, ok.output

    different = _cli("model", "import", world.MODEL, "--artifact", str(other), "--reference", str(reference),
                     "--as", "mia")
    assert different.exit_code == 1 and "other.joblib is not a skops file" in different.output
    imported = _cli("model", "import", world.MODEL, "--artifact", str(allowed), "--reference", str(reference),
                    "--as", "mia")
    assert imported.exit_code == 0, imported.output
    with session_scope() as s:
        v = registry.get_version(session=s, model=world.MODEL, version=1)
        allowances = [e for e in audit.events(session=s) if e.action == "artifact.allow_pickle"]
    assert v.artifact_sha256 == sha and v.artifact_path.endswith(".joblib")
    assert [(e.actor, e.entity_id, e.details["sha256"]) for e in allowances] == [("ada", world.MODEL, sha)]
