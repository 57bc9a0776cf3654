"""The lab's findings are computed once per version by the worker and read back by whoever may see the lab."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from core.automation.worker import Worker
from core.db import session_scope
from core.entities import LabResult
from core.errors import Forbidden
from core.models import registry
from core.validation import comparison, lab, lab_results
from tests.support import lab_world as world


def _stored(number: int, username: str = "maya") -> lab_results.StoredFindings:
    with session_scope() as s:
        return lab_results.stored(session=s, actor=world.actor(username), model=world.MODEL, version=number)


def _champion_and_challenger() -> tuple[int, int]:
    world.build()
    champion = world.train_version(world.traffic(3000, seed=16, days=20))
    recent = world.traffic(4000, seed=17, start=world.START + timedelta(days=60), days=40, shift=0.3)
    world.log_traffic(recent, version=champion)
    challenger = world.train_version(recent.iloc[:2000], algorithm="hist_gradient_boosting",
                                     params={"max_iter": 60}, status="candidate")
    return champion, challenger


def test_registering_a_version_queues_its_findings_and_the_worker_computes_them(backend):
    champion, challenger = _champion_and_challenger()
    queued = _stored(challenger)
    assert (queued.status, queued.done, queued.total, queued.findings) == ("pending", 0, 4, None)

    Worker().compute_lab()

    found = _stored(challenger)
    assert found.status == "done" and found.done == found.total == 4
    verdict = found.findings.verdict
    assert (verdict.champion, verdict.challenger, verdict.verdict) == (champion, challenger, "challenger_wins")
    assert sorted(i.feature for i in found.findings.importances) == sorted(world.NAMES)
    assert [d.name for d in found.findings.report.items][:2] == ["Overfit", "Leakage"]
    assert found.findings.report.calibration is not None and len(found.findings.report.calibration.counts) > 0
    assert dict((m, (a, b)) for m, a, b in verdict.metrics)["roc_auc"][1] > 0.5
    with session_scope() as s:  # stored as plain JSON, read back without computing
        row = s.exec(select(LabResult).where(LabResult.status == "done")).first()
        assert isinstance(row.results["importances"][0]["mean"], float)


def test_reading_stored_findings_computes_nothing(backend, monkeypatch):
    _, challenger = _champion_and_challenger()
    lab_results.compute_queued()

    def computed(*_args, **_kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("permutation importance was computed on read")

    monkeypatch.setattr(comparison, "permutation_importances", computed)
    monkeypatch.setattr(lab, "permutation_importances", computed)
    monkeypatch.setattr(lab, "open_lab", computed)
    assert _stored(challenger).status == "done"


def test_an_old_version_without_findings_is_offered_and_a_changed_champion_makes_them_stale(backend):
    champion, challenger = _champion_and_challenger()
    lab_results.compute_queued()
    with session_scope() as s:  # a version registered before findings were stored
        for row in s.exec(select(LabResult)).all():
            if row.status == "done" and row.champion == champion and row.results["verdict"]["challenger"] == champion:
                s.delete(row)
    assert _stored(champion).status == "absent"

    with session_scope() as s:
        registry.set_version_status(session=s, actor=world.actor("maya"), model=world.MODEL, version=challenger,
                                    status="active")
    stale = _stored(challenger)  # it was compared with the old champion
    assert stale.status == "stale" and stale.findings is not None

    with session_scope() as s:
        lab_results.queue(session=s, actor=world.actor("maya"), model=world.MODEL, version=champion)
    assert _stored(champion).status == "pending"
    lab_results.compute_queued()
    assert _stored(champion).findings.verdict.champion == challenger


def test_reading_needs_the_lab_permission_and_queuing_the_right_to_register_versions(backend):
    _, challenger = _champion_and_challenger()
    with pytest.raises(Forbidden):
        _stored(challenger, username="bianca")  # business: no access to the lab
    assert _stored(challenger, username="rhea").status == "pending"  # risk may read the lab's findings
    with session_scope() as s, pytest.raises(Forbidden):
        lab_results.queue(session=s, actor=world.actor("rhea"), model=world.MODEL, version=challenger)
    with session_scope() as s:
        lab_results.queue(session=s, actor=world.actor("dario"), model=world.MODEL, version=challenger)


def test_a_failed_computation_is_stored_and_offered_again(backend, monkeypatch):
    _, challenger = _champion_and_challenger()

    def broken(*_args, **_kwargs):  # noqa: ANN002, ANN003, ANN202
        raise ValueError("no estimator")

    monkeypatch.setattr(lab, "open_lab", broken)
    assert ("failed" in {outcome for _, outcome in lab_results.compute_queued()})
    failed = _stored(challenger)
    assert failed.status == "failed" and "no estimator" in failed.error
