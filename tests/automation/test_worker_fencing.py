"""A worker that loses its lease stops before its next step; its run ends interrupted and stays so.

Workers run as `watchtower worker` subprocesses (see test_worker.py). On PostgreSQL the test terminates the
worker's lease-holding database session; on SQLite (and PostgreSQL) it writes a newer lease over the worker's.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import text, update
from sqlmodel import select

from core import leases
from core.automation import run_states, runner, scenarios
from core.db import get_engine, session_scope
from core.entities import Lease, ScenarioRun
from core.errors import Conflict
from tests.automation import test_worker as harness
from tests.automation.test_worker import MAYA, _scenario, _statuses, wait_for
from tests.support import slow_steps  # noqa: F401  (registers the test step kinds in this process)

workers = harness.workers  # the worker subprocess fixture


def _home() -> Path:
    return Path(os.environ["WATCHTOWER_HOME"])


def _executions() -> Counter:
    log = _home() / "executions.log"
    lines = log.read_text().splitlines() if log.exists() else []
    return Counter(int(line.split()[0]) for line in lines)


def _run(run_id: int):  # noqa: ANN202
    with session_scope() as s:
        return scenarios.get_run(session=s, run_id=run_id)


def _terminate_lease_session(scenario_id: int) -> None:
    """pg_terminate_backend on the one session holding the scenario's advisory lock (the worker's lease)."""
    with get_engine().connect() as conn:
        key = leases.advisory_key(conn, f"scenario:{scenario_id}")
        pids = conn.execute(text("select pid from pg_locks where locktype = 'advisory' and granted and objsubid = 1 "
                                 "and classid = :hi and objid = :lo"),
                            {"hi": (key >> 32) & 0xFFFFFFFF, "lo": key & 0xFFFFFFFF}).scalars().all()
        assert len(pids) == 1, pids
        assert conn.execute(text("select pg_terminate_backend(:pid)"), {"pid": pids[0]}).scalar() is True
        conn.commit()


def _write_newer_lease(scenario_id: int) -> int:
    """Another holder takes the lease over: its row gets the next token (and a fresh expiry on SQLite)."""
    from datetime import timedelta

    from core.clock import now

    with session_scope() as s:
        newer = s.get(Lease, f"scenario:{scenario_id}").token + 1
        s.execute(update(Lease).where(Lease.name == f"scenario:{scenario_id}").values(
            holder="elsewhere:1:x", token=newer, expires_at=now() + timedelta(seconds=30)))
        return newer


@pytest.mark.slow
@pytest.mark.parametrize(("backend", "loss"), [("postgres", "session terminated"), ("sqlite", "newer lease"),
                                               ("postgres", "newer lease")], indirect=["backend"])
def test_a_worker_that_loses_its_lease_mid_run_stops_before_its_next_step(workers, loss):
    home = _home()
    sid = _scenario("guarded", [{"kind": "hold", "params": {"seconds": 40}}, {"kind": "record_execution"}],
                    trigger_kind="interval", trigger_value=3)
    a, b = workers("a"), workers("b")
    a.wait_started()
    b.wait_started()
    wait_for(lambda: list(home.glob("hold.*.started")), 45, a.output + b.output)
    (started,) = home.glob("hold.*.started")
    run_id, pid = int(started.name.split(".")[1]), int(started.read_text())
    holder = a if a.proc.pid == pid else b
    if loss == "session terminated":
        _terminate_lease_session(sid)
        reason = "its database session ended"
    else:
        reason = f"a newer lease (token {_write_newer_lease(sid)}) was taken"

    # The run is marked interrupted with the reason while its step still runs; the worker process runs on.
    wait_for(lambda: _statuses()[run_id] == "interrupted", 30, holder.output)
    interrupted = _run(run_id)
    assert "lost its lease" in interrupted.error and reason in interrupted.error, interrupted.error
    assert [st.status for st in interrupted.steps] == ["interrupted", "skipped"]
    assert holder.proc.poll() is None

    # The step returns: its result is refused, the next step never starts, the run never changes again.
    (home / "hold.release").write_text("")
    wait_for(lambda: f"run #{run_id}: lease lost" in holder.output and "stopped before its next step"
             in holder.output, 30, holder.output)
    if loss == "newer lease":  # the other holder lets go; the scenario's next tick runs normally
        with session_scope() as s:
            s.execute(update(Lease).where(Lease.name == f"scenario:{sid}").values(holder=""))
    wait_for(lambda: any(status == "succeeded" for status in _statuses().values()), 40, a.output + b.output)
    after = _run(run_id)
    assert after.status == "interrupted" and after.error == interrupted.error
    assert [st.status for st in after.steps] == ["interrupted", "skipped"]
    assert "released" not in after.steps[0].log  # the step's end (its last log line) was never written
    executions = _executions()
    assert run_id not in executions and executions and set(executions.values()) == {1}, executions


def test_a_run_whose_lease_is_taken_over_mid_step_writes_nothing_more(backend, tmp_path):
    from tests.support import monitoring_world as world

    world.build(tmp_path)
    sid = _scenario("taken over", [{"kind": "take_over_lease"}, {"kind": "record_execution"}])
    with session_scope() as s:
        run_id = scenarios.request_run(session=s, actor=MAYA, scenario_id=sid).id
    assert runner.execute_run(run_id=run_id, worker_id="w1:1:a") == "interrupted"
    run = _run(run_id)
    assert run.status == "interrupted" and "a newer lease (token 2) was taken" in run.error
    assert [st.status for st in run.steps] == ["interrupted", "skipped"]  # the step's "succeeded" was refused
    assert run_id not in _executions()
    # An interrupted run never changes state again, whichever way it is attempted.
    with session_scope() as s, pytest.raises(Conflict, match="is interrupted; it cannot become succeeded"):
        s.get(ScenarioRun, run_id).status = "succeeded"
    with session_scope() as s, pytest.raises(Conflict, match="not waiting for an approval"):
        scenarios.approve_step(session=s, actor=MAYA, run_id=run_id)
    assert runner.execute_run(run_id=run_id, worker_id="w2:2:b") is None
    assert _run(run_id).status == "interrupted"


def test_every_final_status_is_final():
    for final in ("succeeded", "failed", "interrupted"):
        assert final in run_states.FINAL
        for target in run_states.TRANSITIONS:
            assert not run_states.allowed(final, target)
    assert run_states.sources("interrupted") == ("running",)


@pytest.mark.slow
def test_two_workers_run_each_tick_of_a_frequent_scenario_exactly_once(workers):
    ticking = _scenario("every three seconds", [{"kind": "record_execution"}], trigger_kind="interval",
                        trigger_value=3)
    a, b = workers("a"), workers("b")
    a.wait_started()
    b.wait_started()

    def runs() -> list[ScenarioRun]:
        with session_scope() as s:
            return s.exec(select(ScenarioRun).where(ScenarioRun.scenario_id == ticking)
                          .order_by(ScenarioRun.scheduled_for)).all()

    wait_for(lambda: sum(r.status == "succeeded" for r in runs()) >= 4, 45, a.output + b.output)
    fired = runs()
    per_tick = Counter(r.scheduled_for for r in fired)
    assert all(count == 1 for count in per_tick.values()), per_tick
    ticks = sorted(per_tick)
    assert all((later - earlier).total_seconds() % 3 == 0 for earlier, later in zip(ticks, ticks[1:])), ticks
    executions = _executions()
    done = [r.id for r in fired if r.status == "succeeded"]
    assert all(executions[run_id] == 1 for run_id in done), executions
    assert set(executions) <= {r.id for r in fired}
