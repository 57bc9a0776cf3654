"""Worker processes against one database: each run executed once, a killed worker's run marked interrupted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlmodel import func, select

from core.access import Actor
from core.automation import scenarios
from core.db import session_scope
from core.entities import Evaluation, ModelVersion, ScenarioRun
from tests.support import monitoring_world as world

ROOT = Path(__file__).resolve().parents[2]
MAYA = Actor("maya", ("ml_engineer",))


class WorkerProcess:
    """`watchtower worker` in a subprocess, with the test step kinds and a short lease."""

    def __init__(self, home: Path, name: str) -> None:
        self.log = home / f"{name}.log"
        env = {**os.environ, "WATCHTOWER_STEP_MODULES": "tests.support.slow_steps", "WATCHTOWER_LEASE_TTL": "3",
               "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen([sys.executable, "-m", "core.cli", "worker", "--poll-seconds", "0.3",
                                      "--sync-seconds", "1"], cwd=ROOT, env=env,
                                     stdout=self.log.open("w"), stderr=subprocess.STDOUT)

    def wait_started(self, timeout: float = 60) -> None:
        wait_for(lambda: "started with" in self.log.read_text(), timeout, f"worker never started:\n{self.output}")

    @property
    def output(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


def wait_for(condition, timeout: float, message: str = "") -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(message or "condition not reached in time")
        time.sleep(0.2)


def _statuses() -> dict[int, str]:
    with session_scope() as s:
        return {r.id: r.status for r in s.exec(select(ScenarioRun)).all()}


@pytest.fixture
def workers(backend, tmp_path, monkeypatch):
    monkeypatch.setenv("WATCHTOWER_STEP_MODULES", "tests.support.slow_steps")
    started: list[WorkerProcess] = []

    def start(name: str) -> WorkerProcess:
        w = WorkerProcess(Path(os.environ["WATCHTOWER_HOME"]), name)
        started.append(w)
        return w

    world.build(tmp_path)
    yield start
    for w in started:
        w.stop()


def _scenario(name: str, steps: list[dict], **kw) -> int:
    with session_scope() as s:
        return scenarios.create_scenario(session=s, actor=MAYA, project_key="FRAUD", model="fraud-detector",
                                         name=name, steps=steps, **kw).id


@pytest.mark.slow
def test_two_workers_share_the_work_and_run_each_scenario_run_exactly_once(workers):
    home = Path(os.environ["WATCHTOWER_HOME"])
    ids = [_scenario(f"batch {i}", [{"kind": "record_execution", "params": {"seconds": 0.4}}]) for i in range(8)]
    ticking = _scenario("every two seconds", [{"kind": "record_execution"}], trigger_kind="interval", trigger_value=2)
    a, b = workers("a"), workers("b")
    a.wait_started()
    b.wait_started()
    with session_scope() as s:
        runs = [scenarios.request_run(session=s, actor=MAYA, scenario_id=i).id for i in ids]
    wait_for(lambda: all(_statuses()[r] == "succeeded" for r in runs), 60, a.output + b.output)
    time.sleep(5)  # a few firings of the interval trigger in both workers
    lines = [line.split() for line in (home / "executions.log").read_text().splitlines()]
    executions = Counter(int(run) for run, _pid in lines)
    assert all(count == 1 for count in executions.values()), executions
    assert {int(run) for run, pid in lines if int(run) in runs} == set(runs)
    assert {pid for run, pid in lines if int(run) in runs} == {str(a.proc.pid), str(b.proc.pid)}
    with session_scope() as s:
        fired = s.exec(select(ScenarioRun).where(ScenarioRun.scenario_id == ticking)
                       .order_by(ScenarioRun.requested_at)).all()
    gaps = [(later.requested_at - earlier.requested_at).total_seconds() for earlier, later in zip(fired, fired[1:])]
    assert len(fired) >= 2 and all(gap > 1.0 for gap in gaps), gaps  # one run per firing, not one per worker


@pytest.mark.slow
def test_a_worker_killed_mid_run_leaves_no_half_written_evaluation_and_the_run_interrupted(workers):
    home = Path(os.environ["WATCHTOWER_HOME"])
    with session_scope() as s:
        version_id = s.exec(select(func.max(ModelVersion.id))).one()
    sid = _scenario("slow evaluation", [{"kind": "slow_write", "params": {"version_id": version_id, "seconds": 60}},
                                        {"kind": "record_execution"}], trigger_kind="interval", trigger_value=2)
    first = workers("first")
    first.wait_started()
    wait_for(lambda: (home / "slow_write.started").exists(), 30, first.output)
    time.sleep(0.5)
    first.kill()
    with session_scope() as s:
        assert s.exec(select(func.count()).select_from(Evaluation)).one() == 0  # the open transaction died with it
        (run,) = s.exec(select(ScenarioRun).where(ScenarioRun.scenario_id == sid)).all()
        assert run.status == "running"
    second = workers("second")
    wait_for(lambda: _statuses()[run.id] == "interrupted", 30, second.output)
    with session_scope() as s:
        interrupted = scenarios.get_run(session=s, run_id=run.id)
    assert [st.status for st in interrupted.steps] == ["interrupted", "skipped"]
    assert "stopped mid-run" in interrupted.error
    # the next firing of the trigger runs normally
    wait_for(lambda: "succeeded" in _statuses().values(), 30, second.output)
    with session_scope() as s:
        assert s.exec(select(func.count()).select_from(Evaluation)).one() == 1
