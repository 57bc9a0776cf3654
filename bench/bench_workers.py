"""Scenario runs per minute with 1, 2 and 4 worker processes sharing one PostgreSQL database.

    .venv/bin/python bench/bench_workers.py [--scenarios 200] [--seconds 0.2]

A fresh schema in the benchmarks' database (`watchtower_bench`) with `--scenarios` manual scenarios, each
owned by a person (Maya, ML engineer) and made of one step that mostly waits, as an I/O-bound step does
(`bench_wait`, registered by this module: it sleeps `--seconds`, then appends "run pid" to a file). For
each number of workers, `watchtower worker` processes are started and ready, then one run of every scenario
is requested at once; the clock runs until every run has succeeded. Each run must have executed exactly once
(counted per run id in the executions file).
Targets: 2 workers ≥ 1.6× and 4 workers ≥ 2.5× the runs per minute of 1 worker. Exits 1 when missed.
BENCH_QUICK=1: 60 scenarios.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from common import finish, postgres_url, private_schema, report, sized  # noqa: E402

from core.automation.step_kinds import StepContext, StepResult, step_kind  # noqa: E402

TARGETS = {2: 1.6, 4: 2.5}


@step_kind("bench_wait", permission="automation.run")
def bench_wait(ctx: StepContext) -> StepResult:
    """Wait like an I/O call, then record this execution (O_APPEND: one whole line per execution)."""
    time.sleep(float(ctx.params.get("seconds", 0.2)))
    with open(Path(os.environ["WATCHTOWER_HOME"]) / "executions.log", "a") as fh:
        fh.write(f"{ctx.run_id} {os.getpid()}\n")
    return StepResult(ok=True, message="waited")


def seed(count: int, seconds: float) -> list[int]:
    """A person, a project and `count` manual scenarios of one waiting step; returns the scenario ids."""
    from core.access import SYSTEM, Actor
    from core.automation import scenarios
    from core.db import session_scope
    from core.identity import users
    from core.projects import projects

    maya = Actor(username="maya", roles=("ml_engineer",))
    with session_scope() as s:
        users.create_user(session=s, actor=SYSTEM, username="maya", name="Maya", email="maya@bank.example",
                          roles=["ml_engineer"])
        projects.create_project(session=s, actor=SYSTEM, key="BENCH", name="Bench")
        return [scenarios.create_scenario(session=s, actor=maya, project_key="BENCH", name=f"wait {i:03d}",
                                          steps=[{"kind": "bench_wait", "params": {"seconds": seconds}}]).id
                for i in range(count)]


def start_workers(n: int, home: Path) -> list[subprocess.Popen]:
    env = {**os.environ, "WATCHTOWER_STEP_MODULES": "bench_workers",
           "PYTHONPATH": os.pathsep.join([str(ROOT), str(HERE)])}
    procs = []
    for i in range(n):
        log = (home / f"worker-{n}-{i}.log").open("w")
        procs.append(subprocess.Popen([sys.executable, "-m", "core.cli", "worker", "--poll-seconds", "0.5",
                                       "--sync-seconds", "30"], cwd=ROOT, env=env, stdout=log,
                                      stderr=subprocess.STDOUT))
    deadline = time.monotonic() + 120
    for i in range(n):
        while "started with" not in (home / f"worker-{n}-{i}.log").read_text():
            if time.monotonic() > deadline or procs[i].poll() is not None:
                raise SystemExit(f"worker {i} never started:\n{(home / f'worker-{n}-{i}.log').read_text()}")
            time.sleep(0.2)
    return procs


def stop_workers(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def one_round(n: int, scenario_ids: list[int], home: Path) -> tuple[float, Counter, Counter]:
    """Runs per minute with `n` workers; the executions per run id and the runs per worker process."""
    from sqlmodel import func, select

    from core.access import Actor
    from core.automation import scenarios
    from core.db import session_scope
    from core.entities import ScenarioRun

    executions = home / "executions.log"
    executions.unlink(missing_ok=True)
    procs = start_workers(n, home)
    try:
        maya = Actor(username="maya", roles=("ml_engineer",))
        t0 = time.perf_counter()
        with session_scope() as s:
            runs = {scenarios.request_run(session=s, actor=maya, scenario_id=sid).id for sid in scenario_ids}
        deadline = time.monotonic() + 30 + len(runs) * 2
        while True:
            with session_scope() as s:
                left = s.exec(select(func.count()).select_from(ScenarioRun).where(
                    ScenarioRun.id.in_(runs), ScenarioRun.status.in_(["requested", "running"]))).one()
            if not left:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"{left} runs still unfinished with {n} worker(s)")
            time.sleep(0.05)
        elapsed = time.perf_counter() - t0
    finally:
        stop_workers(procs)
    with session_scope() as s:
        statuses = Counter(s.exec(select(ScenarioRun.status).where(ScenarioRun.id.in_(runs))).all())
    assert statuses == Counter({"succeeded": len(runs)}), statuses
    lines = [line.split() for line in executions.read_text().splitlines()]
    per_run = Counter(int(run) for run, _pid in lines)
    per_worker = Counter(pid for _run, pid in lines)
    assert set(per_run) == runs, "some runs were never executed"
    return len(runs) / elapsed * 60, per_run, per_worker


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", type=int, default=sized(200, 60))
    parser.add_argument("--seconds", type=float, default=0.2)
    args = parser.parse_args()
    url = postgres_url()
    if url is None:
        report("worker scaling (postgresql)", "PostgreSQL not reachable", "a PostgreSQL server", False)
        finish()
    home = Path(tempfile.mkdtemp(prefix="wt-bench-workers-"))
    os.environ["WATCHTOWER_HOME"] = str(home)
    with private_schema(url, prefix="bench_workers") as schema_url:
        os.environ["WATCHTOWER_DATABASE_URL"] = schema_url
        ids = seed(args.scenarios, args.seconds)
        rates: dict[int, float] = {}
        twice: dict[int, int] = {}
        for n in (1, 2, 4):
            rate, per_run, per_worker = one_round(n, ids, home)
            rates[n], twice[n] = rate, sum(1 for count in per_run.values() if count > 1)
            print(f"  {n} worker(s): {rate:6.0f} runs/min; runs per worker {sorted(per_worker.values())}; "
                  f"runs executed more than once: {twice[n]}", flush=True)
        from core.db import dispose_engines

        dispose_engines()
    shutil.rmtree(home, ignore_errors=True)
    report(f"each run executed once, {args.scenarios} runs × 3 rounds (postgresql)",
           f"{sum(twice.values())} executed twice", "0", not any(twice.values()))
    for n, target in TARGETS.items():
        ratio = rates[n] / rates[1]
        report(f"{n} workers vs 1, {args.scenarios} waiting runs (postgresql)",
               f"{ratio:.2f}x ({rates[n]:.0f} vs {rates[1]:.0f} runs/min)", f">= {target}x", ratio >= target)
    finish()


if __name__ == "__main__":
    main()
