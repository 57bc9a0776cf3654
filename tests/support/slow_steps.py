"""Step kinds for the worker tests, imported by worker processes through WATCHTOWER_STEP_MODULES.

Like every step kind, each declares the permission the scenario's owner must hold (a kind that declares none
never runs).
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta
from pathlib import Path

from core.automation.step_kinds import StepContext, StepResult, step_kind
from core.db import session_scope
from core.entities import Evaluation


def _home() -> Path:
    return Path(os.environ["WATCHTOWER_HOME"])


@step_kind("record_execution", permission="automation.run")
def record_execution(ctx: StepContext) -> StepResult:
    """Append 'run pid' to executions.log (O_APPEND: one line per execution), after an optional pause."""
    time.sleep(float(ctx.params.get("seconds", 0)))
    with open(_home() / "executions.log", "a") as fh:
        fh.write(f"{ctx.run_id} {os.getpid()}\n")
    return StepResult(ok=True, message="recorded")


@step_kind("slow_write", permission="evaluation.write")
def slow_write(ctx: StepContext) -> StepResult:
    """Write an evaluation in one transaction that, the first time only, stays open `seconds` before committing."""
    start = datetime(2026, 1, 1) + timedelta(days=ctx.run_id)
    marker = _home() / "slow_write.started"
    first_time = not marker.exists()
    with session_scope() as s:
        s.add(Evaluation(model_version_id=int(ctx.params["version_id"]), window_start=start,
                         window_end=start + timedelta(days=1), rows=10, metrics={"roc_auc": 0.9}))
        s.flush()
        marker.write_text(str(os.getpid()))
        if first_time:
            time.sleep(float(ctx.params.get("seconds", 0)))
    return StepResult(ok=True, message="evaluation written")


@step_kind("hold", permission="automation.run")
def hold(ctx: StepContext) -> StepResult:
    """Write hold.<run>.started (with this pid), then log every ~0.2 s until hold.release exists (at most `seconds`)."""
    (_home() / f"hold.{ctx.run_id}.started").write_text(str(os.getpid()))
    deadline = time.monotonic() + float(ctx.params.get("seconds", 45))
    while not (_home() / "hold.release").exists() and time.monotonic() < deadline:
        ctx.log("holding")
        time.sleep(0.2)
    return StepResult(ok=True, message="released")


@step_kind("take_over_lease", permission="automation.run")
def take_over_lease(ctx: StepContext) -> StepResult:
    """Another holder takes this scenario's lease mid-step: its row gets a newer token."""
    from sqlalchemy import update

    from core.entities import Lease

    with session_scope() as s:
        s.execute(update(Lease).where(Lease.name == f"scenario:{ctx.scenario_id}")
                  .values(holder="elsewhere:1:x", token=Lease.token + 1))
    return StepResult(ok=True, message="lease taken over")
