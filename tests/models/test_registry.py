"""The registry: imported models, lineage, which environment runs which version, and comparing two versions."""

from __future__ import annotations

from datetime import timedelta

import pytest
import skops.io
from click.testing import CliRunner
from sqlmodel import func, select

from core import artifacts, audit, validation
from core.cli import main
from core.db import session_scope
from core.entities import Deployment, Environment, ModelVersion
from core.errors import IntegrityFailure, InvalidInput
from core.models import lineage, registry, training
from core.validation import comparison
from tests.support import lab_world as world
from tests.support.people import cli_token
from tests.support.skops_files import save_skops


def _versions() -> int:
    with session_scope() as s:
        return s.exec(select(func.count()).select_from(ModelVersion)).one()


def _stored_artifacts() -> list[str]:
    from core.config import get_settings

    store = get_settings().artifacts_dir
    return sorted(p.name for p in store.iterdir()) if store.is_dir() else []


def _fitted(tmp_path, seed: int = 20):  # noqa: ANN001, ANN202
    """A pipeline trained elsewhere, saved with skops, and its reference CSV."""
    data = world.traffic(1500, seed=seed)
    pipe = training.build_pipeline(task="binary", algorithm="random_forest", numeric=["amount", "card_age_days", "hour"],
                                   categorical=["channel"], params={"n_estimators": 20})
    pipe.fit(data[world.NAMES], data[world.TARGET])
    path = save_skops(pipe, tmp_path / "partner-model.skops")
    reference = tmp_path / "partner-reference.csv"
    data[[*world.NAMES, world.TARGET]].to_csv(reference, index=False)
    return path, reference


def test_an_existing_model_is_imported_with_its_reference_data(backend, tmp_path):
    world.build()
    path, reference = _fitted(tmp_path)
    with session_scope() as s:
        v = registry.import_version(session=s, actor=world.actor("maya"), model=world.MODEL, artifact=path,
                                    reference=reference, expected_sha256=artifacts.sha256_file(path))
    assert (v.number, v.origin, v.status) == (1, "imported", "candidate")
    assert v.artifact_sha256 == artifacts.sha256_file(path) and v.reference_rows == 1500
    with session_scope() as s:
        lab = validation.open_lab(session=s, actor=world.actor("maya"), model=world.MODEL, version=1)
        assert lineage.verify_artifact(session=s, actor=world.actor("maya"), model=world.MODEL, version=1)
    assert "__score__" in lab.version.reference.columns  # scored at import, for prediction drift later
    assert 0 <= validation.what_if(lab, validation.typical_record(lab)).score <= 1


def test_an_artifact_whose_sha256_does_not_match_is_refused_and_audited(backend, tmp_path):
    world.build()
    path, reference = _fitted(tmp_path)
    wrong = "0" * 64
    with pytest.raises(IntegrityFailure, match="partner-model.skops was tampered with"), session_scope() as s:
        registry.import_version(session=s, actor=world.actor("maya"), model=world.MODEL, artifact=path,
                                reference=reference, expected_sha256=wrong)
    assert _versions() == 0 and _stored_artifacts() == []
    with session_scope() as s:
        refused = [e for e in audit.events(session=s) if e.action == "artifact.refused"]
    assert len(refused) == 1 and refused[0].actor == "maya" and refused[0].entity_id == "partner-model.skops"

    result = CliRunner().invoke(main, ["model", "import", world.MODEL, "--artifact", str(path), "--reference",
                                       str(reference), "--sha256", wrong], env=cli_token("maya"))
    assert result.exit_code == 1 and "was tampered with" in result.output.strip().splitlines()[-1]
    assert _versions() == 0


def test_a_file_that_is_not_an_estimator_is_refused(backend, tmp_path):
    world.build()
    _, reference = _fitted(tmp_path)
    weights = tmp_path / "weights.skops"
    skops.io.dump({"amount": 0.7, "hour": 0.1}, weights)
    text = tmp_path / "notes.skops"
    text.write_text("this is a model card, not a model")
    for artifact, message in ((weights, "weights.skops is not a scikit-learn estimator"),
                              (text, "notes.skops is not a skops file")):
        with pytest.raises(InvalidInput, match=message), session_scope() as s:
            registry.import_version(session=s, actor=world.actor("maya"), model=world.MODEL, artifact=artifact,
                                    reference=reference)
    assert _versions() == 0 and _stored_artifacts() == []


def test_a_stored_artifact_altered_on_disk_is_refused_before_loading_and_audited(backend):
    world.build()
    number = world.train_version(world.traffic(1000, seed=21))
    with session_scope() as s:
        v = registry.get_version(session=s, model=world.MODEL, version=number)
    stored = artifacts.resolve(v.artifact_path)
    stored.write_bytes(stored.read_bytes() + b"\x00")
    with pytest.raises(IntegrityFailure, match=r"card-fraud v1 was tampered with \(sha256 mismatch\)"), \
            session_scope() as s:
        validation.open_lab(session=s, actor=world.actor("maya"), model=world.MODEL, version=number)
    with session_scope() as s:
        assert not lineage.verify_artifact(session=s, actor=world.actor("maya"), model=world.MODEL, version=number)
        tampered = [e for e in audit.events(session=s) if e.action == "artifact.tampered"]
    assert len(tampered) == 1 and tampered[0].entity_id == "card-fraud v1"


def test_versions_show_where_they_run_and_where_they_come_from(backend):
    world.build()
    first = world.train_version(world.traffic(1000, seed=22))
    second = world.train_version(world.traffic(1000, seed=23), algorithm="random_forest",
                                 params={"n_estimators": 20}, status="candidate", by="maya")
    with session_scope() as s:
        env = Environment(name="production", tier="higher", position=1, policy="block")
        s.add(env)
        s.flush()
        m = registry.model_row(s, world.MODEL)
        s.add(Deployment(environment_id=env.id, model_version_id=registry.version_row(s, m, first).id, model_id=m.id,
                         deployed_by="omar"))
    with session_scope() as s:
        rows = lineage.versions_overview(session=s, actor=world.actor("rhea"), model=world.MODEL)
        story = lineage.lineage(session=s, actor=world.actor("rhea"), model=world.MODEL, version=second)
    assert [(r.number, r.status, r.running_in) for r in rows] == [(2, "candidate", ()), (1, "active", ("production",))]
    assert rows[0].primary_metric == "roc_auc" and rows[0].primary_value is not None
    assert story.version.created_by == "maya" and story.version.recipe["algorithm"] == "random_forest"
    assert story.training_rows == 1000 and story.trigger is None and story.running_in == ()
    assert len(story.version.data_fingerprint) == 64 and story.version.training_start is not None
    listed = CliRunner().invoke(main, ["versions", world.MODEL], env=cli_token("rhea")).output.splitlines()
    assert listed[0].startswith("v2   candidate manual") and listed[1].endswith("running in: production")


def test_two_versions_side_by_side_on_the_same_recent_data(backend):
    world.build()
    old = world.train_version(world.traffic(2500, seed=24, days=20))
    recent = world.traffic(3000, seed=25, start=world.START + timedelta(days=60), days=30, shift=0.6)
    world.log_traffic(recent, version=old)
    new = world.train_version(recent.iloc[:1500], algorithm="hist_gradient_boosting", params={"max_iter": 50},
                              status="candidate")
    c = comparison.compare_versions(actor=world.actor("maya"), model=world.MODEL, a=old, b=new)
    assert (c.a.number, c.b.number) == (old, new)
    assert 0 < c.rows < len(recent)  # the rows the new version trained on are left out
    metrics = {name: (a, b, better) for name, a, b, better in c.metrics}
    assert metrics["roc_auc"][2] == "b" and metrics["roc_auc"][1] > metrics["roc_auc"][0]
    assert [label for _n, label, *_ in c.business] == ["Fraud missed (amount)", "Net value"]
    assert {i.feature for i in c.importance_a} == {i.feature for i in c.importance_b} == set(world.NAMES)
    assert c.drift[0].field == "card_age_days" and c.drift[0].drifted and c.drifted_fields >= 1
    printed = CliRunner().invoke(main, ["compare", world.MODEL, str(old), str(new)], env=cli_token("maya"))
    assert printed.exit_code == 0 and f"v{old} vs v{new} on {c.rows:,} recent labelled predictions" in printed.output
    assert [line.split()[-1] for line in printed.output.splitlines() if line.strip().startswith("roc_auc")] == [f"v{new}"]

    with pytest.raises(InvalidInput, match="pick two different versions"):
        comparison.compare_versions(actor=world.actor("maya"), model=world.MODEL, a=old, b=old)
