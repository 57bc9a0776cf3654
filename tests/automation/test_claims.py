"""Several workers share the requested runs: each run is claimed by exactly one, a dead worker's run is taken
over by another, and a worker whose claim went stale writes nothing more to its run."""

from __future__ import annotations

import os
import re
import threading
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import text, update
from sqlmodel import select

from core import leases
from core.automation import claims, scenarios
from core.db import get_engine, session_scope
from core.entities import AuditEvent, ScenarioRun
from tests.automation import test_worker as harness
from tests.automation.test_worker import MAYA, _scenario, _statuses, wait_for
from tests.automation.test_worker_fencing import _executions, _write_newer_lease
from tests.support import slow_steps  # noqa: F401  (registers the test step kinds in this process)

workers = harness.workers  # the worker subprocess fixture


def _request(scenario_ids: list[int]) -> list[int]:
    with session_scope() as s:
        return [scenarios.request_run(session=s, actor=MAYA, scenario_id=i).id for i in scenario_ids]


def _worker_id(worker: harness.WorkerProcess) -> str:
    return re.search(r"worker (\S+) started with", worker.output).group(1)


def _run(run_id: int) -> ScenarioRun:
    with session_scope() as s:
        return s.get(ScenarioRun, run_id)


@pytest.mark.slow
def test_two_workers_on_one_database_execute_every_requested_run_exactly_once(workers):
    ids = [_scenario(f"batch {i}", [{"kind": "record_execution", "params": {"seconds": 0.25}}]) for i in range(30)]
    a, b = workers("a"), workers("b")
    a.wait_started()
    b.wait_started()
    runs = _request(ids)
    wait_for(lambda: all(_statuses()[r] == "succeeded" for r in runs), 90, a.output + b.output)

    executions = _executions()
    assert set(executions) == set(runs) and set(executions.values()) == {1}, executions
    # Each run names the worker that ran it, and both workers ran some.
    by_worker = Counter(_run(r).worker_id for r in runs)
    assert set(by_worker) == {_worker_id(a), _worker_id(b)}, by_worker
    assert all(count >= 3 for count in by_worker.values()), by_worker


@pytest.mark.slow
def test_a_worker_killed_mid_run_has_its_run_taken_over_by_the_other_worker(workers):
    home = Path(os.environ["WATCHTOWER_HOME"])
    held_sid = _scenario("held", [{"kind": "hold", "params": {"seconds": 60}}, {"kind": "record_execution"}])
    a, b = workers("a"), workers("b")
    a.wait_started()
    b.wait_started()
    (run_id,) = _request([held_sid])
    wait_for(lambda: (home / f"hold.{run_id}.started").exists(), 30, a.output + b.output)
    pid = int((home / f"hold.{run_id}.started").read_text())
    victim, survivor = (a, b) if a.proc.pid == pid else (b, a)

    # While it runs, the run carries its worker and a heartbeat that moves forward.
    first = _run(run_id)
    assert first.status == "running" and first.worker_id == _worker_id(victim)
    wait_for(lambda: _run(run_id).lease_expires_at > first.lease_expires_at, 10, victim.output)

    victim.kill()
    wait_for(lambda: _statuses()[run_id] == "interrupted", 40, survivor.output)
    interrupted = _run(run_id)
    assert "stopped mid-run" in interrupted.error and _worker_id(victim) in interrupted.error
    with session_scope() as s:
        taken_over_by = s.exec(select(AuditEvent.actor).where(AuditEvent.action == "scenario.run.interrupted",
                                                              AuditEvent.entity_id == str(run_id))).all()
    assert taken_over_by == [_worker_id(survivor)]

    # The scenario runs again on the surviving worker, and other requested runs are not held up.
    (home / "hold.release").write_text("")
    others = _request([_scenario(f"after {i}", [{"kind": "record_execution"}]) for i in range(3)])
    (again,) = _request([held_sid])
    wait_for(lambda: all(_statuses()[r] == "succeeded" for r in [*others, again]), 40, survivor.output)
    assert {_run(r).worker_id for r in [*others, again]} == {_worker_id(survivor)}
    assert run_id not in _executions()


def test_a_worker_whose_token_went_stale_writes_nothing_more_to_its_run(backend, tmp_path):
    from tests.support import monitoring_world as world

    world.build(tmp_path)
    sid = _scenario("taken over", [{"kind": "record_execution"}])
    (run_id,) = _request([sid])
    claim = claims.claim_next(worker_id="a:1:x")
    try:
        claimed = _run(run_id)
        assert (claimed.status, claimed.worker_id, claimed.lease_token) == ("running", "a:1:x", claim.token)
        with claim.write() as s:  # a current token writes
            s.execute(update(ScenarioRun).where(ScenarioRun.id == run_id).values(context={"step": 1}))

        newer = _write_newer_lease(sid)  # another worker took the scenario's lease over
        with pytest.raises(leases.LeaseLost, match=f"a newer lease \\(token {newer}\\) was taken"), claim.write() as s:
            s.execute(update(ScenarioRun).where(ScenarioRun.id == run_id).values(context={"step": 2}))
        assert _run(run_id).context == {"step": 1}
    finally:
        claim.held.release()


def test_concurrent_claims_hand_each_run_to_exactly_one_worker(backend, tmp_path):
    from tests.support import monitoring_world as world

    world.build(tmp_path)
    runs = set(_request([_scenario(f"batch {i}", [{"kind": "record_execution"}]) for i in range(24)]))
    got: dict[str, list[int]] = {f"w{i}:{i}:x": [] for i in range(4)}

    def claim_all(worker_id: str) -> None:
        while (claim := claims.claim_next(worker_id=worker_id)) is not None:
            claim.held.release()
            got[worker_id].append(claim.run_id)

    threads = [threading.Thread(target=claim_all, args=(w,)) for w in got]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    claimed = [r for ids in got.values() for r in ids]
    assert sorted(claimed) == sorted(runs)  # every run once, none twice
    with session_scope() as s:
        recorded = {r.id: r.worker_id for r in s.exec(select(ScenarioRun)).all()}
    assert all(recorded[r] == w for w, ids in got.items() for r in ids)


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_a_worker_does_not_wait_for_a_run_another_worker_is_claiming(backend, tmp_path):
    from tests.support import monitoring_world as world

    world.build(tmp_path)
    oldest, next_one = _request([_scenario(f"batch {i}", [{"kind": "record_execution"}]) for i in range(2)])
    got: list[claims.Claim | None] = []
    with get_engine().connect() as other:  # another worker, midway through claiming the oldest run
        other.execute(text("select id from scenariorun where id = :id for update"), {"id": oldest})
        claimer = threading.Thread(target=lambda: got.append(claims.claim_next(worker_id="b:2:y")))
        claimer.start()
        claimer.join(5)
        waited = claimer.is_alive()
        other.rollback()
    claimer.join(30)
    (claim,) = got
    claim.held.release()
    assert not waited, "the claim waited for the row another worker holds"
    assert claim.run_id == next_one
    assert _statuses()[oldest] == "requested"
