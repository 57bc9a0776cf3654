"""Executing scenario runs in the worker: claim under a lease, run the steps in order, pause for approvals.

A run is claimed by one worker only: the worker first takes the scenario's lease (see core.leases),
then flips the run from `requested` to `running` with a conditional UPDATE. While it works, a heartbeat
renews the lease and the run's `lease_expires_at`; a worker that dies stops renewing, and the next
worker to look marks its run `interrupted`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import traceback
from datetime import timedelta

from sqlalchemy import update
from sqlmodel import select

from core import alerts, audit, leases, scenarios
from core.clock import now
from core.db import session_scope
from core.entities import Model, Project, Scenario, ScenarioRun, StepRun
from core.errors import Forbidden
from core.scenarios import ACTIVE
from core.steps import STEP_KINDS, StepContext, StepResult

log = logging.getLogger("watchtower.worker")


def _lease_name(scenario_id: int) -> str:
    return f"scenario:{scenario_id}"


class _Heartbeat(threading.Thread):
    """Renews the lease and the run's expiry every third of the lease's time to live."""

    def __init__(self, run_id: int, held: leases.Held) -> None:
        super().__init__(daemon=True)
        self.run_id, self.held, self.stopped = run_id, held, threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.held.ttl / 3):
            try:
                self.held.renew()
                with session_scope() as s:
                    s.execute(update(ScenarioRun).where(ScenarioRun.id == self.run_id, ScenarioRun.status == "running")
                              .values(lease_expires_at=now() + timedelta(seconds=self.held.ttl)))
            except Exception:  # noqa: BLE001  (a busy database delays one renewal; the next one tries again)
                log.warning("run #%s: renewing its lease failed; retrying", self.run_id, exc_info=True)

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=5)


class _StepLog:
    """Collects a step's log lines and writes them through at most every half second (live progress)."""

    def __init__(self, step_id: int) -> None:
        self.step_id, self.lines, self.flushed_at = step_id, [], 0.0

    def __call__(self, line: str) -> None:
        self.lines.append(f"{now():%H:%M:%S} {line}")
        if time.monotonic() - self.flushed_at > 0.5:
            self.flush()

    def flush(self) -> None:
        self.flushed_at = time.monotonic()
        with session_scope() as s:
            s.execute(update(StepRun).where(StepRun.id == self.step_id).values(log="\n".join(self.lines) + "\n"))


def _jsonable(values: dict) -> dict:
    return json.loads(json.dumps(values, default=str))


def _finish(run_id: int, status: str, error: str = "") -> None:
    with session_scope() as s:
        run = s.get(ScenarioRun, run_id)
        run.status, run.error = status, error
        run.lease_expires_at = None
        if status != "waiting_approval":
            run.finished_at = now()
            for later in s.exec(select(StepRun).where(StepRun.run_id == run_id, StepRun.status == "pending")):
                later.status = "skipped"
                s.add(later)
        s.add(run)
        scenario = s.get(Scenario, run.scenario_id)
        audit.record(s, actor=run.worker_id or "worker", action=f"scenario.run.{status}", entity_type="scenario_run",
                     entity_id=run.id, project_id=scenario.project_id, details={"scenario": scenario.name,
                                                                               "error": error})
        if status == "failed":
            project = s.get(Project, scenario.project_id)
            alerts.notify(session=s, project_key=project.key, roles=["it_ops"], kind="scenario", severity="error",
                          title=f"Scenario {scenario.name} failed", message=f"Run #{run.id}: {error}",
                          link="/automation", actor="worker")


def _pause_for_approval(run_id: int, step_id: int, spec: dict, position: int) -> None:
    with session_scope() as s:
        step = s.get(StepRun, step_id)
        step.status = "waiting_approval"
        step.log = step.log + f"waiting for approval by a {spec['approver_role'].replace('_', ' ')}\n"
        s.add(step)
        run = s.get(ScenarioRun, run_id)
        scenario = s.get(Scenario, run.scenario_id)
        project = s.get(Project, scenario.project_id)
        alerts.notify(session=s, project_key=project.key, roles=[spec["approver_role"]], kind="scenario",
                      severity="warning", title=f"Scenario {scenario.name} waits for your approval",
                      message=f"Run #{run_id} paused before step {position + 1} ({spec['kind']}). "
                              "Approve or reject it on the Automation page.", link="/automation", actor="worker")
    _finish(run_id, "waiting_approval")


def _execute_steps(run_id: int) -> str:
    with session_scope() as s:
        run = s.get(ScenarioRun, run_id)
        scenario = s.get(Scenario, run.scenario_id)
        model = s.get(Model, scenario.model_id) if scenario.model_id else None
        specs, state = list(scenario.steps), dict(run.context)
        existing = {r.position: r for r in s.exec(select(StepRun).where(StepRun.run_id == run_id)).all()}
        for pos, spec in enumerate(specs):
            if pos not in existing:
                existing[pos] = StepRun(run_id=run_id, position=pos, kind=spec["kind"], mode=spec["mode"])
                s.add(existing[pos])
        s.flush()
        steps = {pos: (r.id, r.status, r.approved_by) for pos, r in existing.items()}
        base = dict(run_id=run_id, scenario_id=scenario.id, project_id=scenario.project_id,
                    model_name=model.name if model else None)
    for pos, spec in enumerate(specs):
        step_id, status, approved_by = steps[pos]
        if status in ("succeeded", "skipped", "failed"):
            continue
        if spec.get("when") == "checks_failed" and not state.get("failed_check_result_ids"):
            with session_scope() as s:
                s.execute(update(StepRun).where(StepRun.id == step_id).values(
                    status="skipped", log="skipped: no check failed in this run\n"))
            continue
        if spec["mode"] == "needs_approval" and not approved_by:
            _pause_for_approval(run_id, step_id, spec, pos)
            return "waiting_approval"
        log = _StepLog(step_id)
        with session_scope() as s:
            s.execute(update(StepRun).where(StepRun.id == step_id).values(status="running", started_at=now()))
            log.lines = [line for line in (s.get(StepRun, step_id).log or "").splitlines() if line]
        fn = STEP_KINDS.get(spec["kind"])
        try:
            if fn is None:
                raise LookupError(f"step kind {spec['kind']!r} is not known to this worker")
            with session_scope() as s:  # the owner's roles now, checked for this step's kind
                actor = scenarios.acting_actor(session=s, scenario_id=base["scenario_id"], kind=spec["kind"])
            log(f"acting as {actor.username} (scenario owner)")
            result = fn(StepContext(params=dict(spec.get("params") or {}), state=dict(state), log=log, actor=actor,
                                    **base))
        except Forbidden as exc:  # the owner may not do this step: its reason, and the run stops here
            result = StepResult(ok=False, message=str(exc))
        except Exception as exc:  # noqa: BLE001  (a failing step fails its run, never the worker)
            log(traceback.format_exc(limit=3).rstrip())
            result = StepResult(ok=False, message=f"{type(exc).__name__}: {exc}")
        state.update(_jsonable(result.outputs))
        log(result.message)
        with session_scope() as s:
            s.execute(update(StepRun).where(StepRun.id == step_id).values(
                status="succeeded" if result.ok else "failed", finished_at=now(), log="\n".join(log.lines) + "\n",
                error="" if result.ok else result.message))
            s.execute(update(ScenarioRun).where(ScenarioRun.id == run_id).values(context=state))
        if not result.ok:
            _finish(run_id, "failed", f"step {pos + 1} ({spec['kind']}) failed: {result.message}")
            return "failed"
        if result.skip_rest:
            break
    _finish(run_id, "succeeded")
    return "succeeded"


def execute_run(*, run_id: int, worker_id: str) -> str | None:
    """Run a requested run to its end or its next approval; None when another worker has it."""
    from core.scenario_steps import load_step_modules

    load_step_modules()
    with session_scope() as s:
        run = s.get(ScenarioRun, run_id)
        if run is None or run.status != "requested":
            return None
        scenario_id = run.scenario_id
    held = leases.acquire(_lease_name(scenario_id), holder=worker_id)
    if held is None:
        return None
    try:
        with session_scope() as s:
            claimed = s.execute(update(ScenarioRun).where(ScenarioRun.id == run_id, ScenarioRun.status == "requested")
                                .values(status="running", worker_id=worker_id, error="",
                                        lease_expires_at=now() + timedelta(seconds=held.ttl)))
            if claimed.rowcount != 1:
                return None
            run = s.get(ScenarioRun, run_id)
            run.started_at = run.started_at or now()
            s.add(run)
        heartbeat = _Heartbeat(run_id, held)
        heartbeat.start()
        try:
            return _execute_steps(run_id)
        finally:
            heartbeat.stop()
    finally:
        held.release()


def run_requested(*, worker_id: str, limit: int = 200) -> list[tuple[int, str]]:
    """Execute every requested run this worker can claim, oldest first; returns (run id, outcome)."""
    with session_scope() as s:
        ids = s.exec(select(ScenarioRun.id).where(ScenarioRun.status == "requested")
                     .order_by(ScenarioRun.requested_at, ScenarioRun.id).limit(limit)).all()
    done = []
    for run_id in ids:
        outcome = execute_run(run_id=run_id, worker_id=worker_id)
        if outcome is not None:
            done.append((run_id, outcome))
    return done


def recover_interrupted(*, worker_id: str) -> list[int]:
    """Mark runs whose worker died mid-run as interrupted (their scenario can then run again)."""
    with session_scope() as s:
        running = s.exec(select(ScenarioRun).where(ScenarioRun.status == "running")).all()
        candidates = [(r.id, r.scenario_id, r.worker_id) for r in running]
    marked = []
    for run_id, scenario_id, holder in candidates:
        # Exact on PostgreSQL (the server dropped the dead holder's lock); on SQLite the lease row expired.
        if not (leases.holder_is_dead_here(holder) or leases.is_free(_lease_name(scenario_id))):
            continue
        with session_scope() as s:
            changed = s.execute(update(ScenarioRun).where(ScenarioRun.id == run_id, ScenarioRun.status == "running",
                                                          ScenarioRun.worker_id == holder)
                                .values(status="interrupted", finished_at=now(), lease_expires_at=None,
                                        error=f"the worker running it ({holder}) stopped mid-run"))
            if changed.rowcount != 1:
                continue
            for step in s.exec(select(StepRun).where(StepRun.run_id == run_id, StepRun.status.in_(["running",
                                                                                                   "pending"]))):
                step.status = "interrupted" if step.status == "running" else "skipped"
                step.finished_at = now() if step.status == "interrupted" else None
                s.add(step)
            scenario = s.get(Scenario, scenario_id)
            audit.record(s, actor=worker_id, action="scenario.run.interrupted", entity_type="scenario_run",
                         entity_id=run_id, project_id=scenario.project_id,
                         details={"scenario": scenario.name, "worker": holder})
        marked.append(run_id)
    return marked


def request_scheduled_run(*, scenario_id: int, worker_id: str) -> int | None:
    """Record the run a trigger asks for, once across workers; a run still in progress absorbs the trigger."""
    with leases.exclusive(f"schedule:{scenario_id}", holder=worker_id), session_scope() as s:
        scenario = s.get(Scenario, scenario_id)
        if scenario is None or not scenario.enabled or scenario.trigger_kind == "manual":
            return None
        if s.exec(select(ScenarioRun.id).where(ScenarioRun.scenario_id == scenario_id,
                                               ScenarioRun.status.in_(ACTIVE))).first():
            return None
        # Another worker's scheduler fires the same trigger within moments of ours: the first request counts.
        period = int(scenario.trigger_value) if scenario.trigger_kind == "interval" else 60
        window = timedelta(seconds=min(30.0, period / 2))
        if s.exec(select(ScenarioRun.id).where(ScenarioRun.scenario_id == scenario_id,
                                               ScenarioRun.trigger == "schedule",
                                               ScenarioRun.requested_at >= now() - window)).first():
            return None
        run = ScenarioRun(scenario_id=scenario_id, status="requested", trigger="schedule", requested_by="scheduler")
        s.add(run)
        s.flush()
        audit.record(s, actor=worker_id, action="scenario.run.request", entity_type="scenario_run", entity_id=run.id,
                     project_id=scenario.project_id, details={"scenario": scenario.name, "trigger": "schedule"})
        return run.id
