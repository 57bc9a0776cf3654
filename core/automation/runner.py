"""Executing scenario runs in the worker: claim one, run its steps in order, pause for approvals.

A run is claimed by one worker only (see core.automation.claims): the oldest requested run, under its
scenario's lease, flipped from `requested` to `running` with the worker's id and the lease's fencing token.
While it works, a heartbeat renews the lease and the run's `lease_expires_at`; a worker that dies stops
renewing, and the next worker to look takes the lease over and marks its run `interrupted`. A worker goes
straight on to the next requested run when one is done (`run_next`).

Fencing: the run records its lease's token, and each of its writes (status, step runs, logs, final state)
runs in `claims.fenced`, which first locks the lease row and checks the token (`Held.fence`), then checks that
the run is still `running` under that token — so a worker that lost its lease (its database session was
terminated, or a newer lease was taken) writes nothing more. Such a worker stops before its next step
and marks its run `interrupted` with the reason; status changes follow `core.automation.run_states`, under which an
interrupted run never changes again.
The runner is the worker's entry point to a run: each fenced write is its own short unit of work, and no
transaction stays open while a step runs.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import traceback
from datetime import UTC, datetime, timedelta

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import update
from sqlmodel import Session, select

from core import audit, leases
from core.alerting import alerts
from core.automation import claims, run_states, scenarios
from core.automation.scenarios import ACTIVE
from core.automation.step_kinds import STEP_KINDS, StepContext, StepResult
from core.clock import now
from core.db import session_scope
from core.entities import Model, Project, Scenario, ScenarioRun, StepRun
from core.errors import Forbidden

log = logging.getLogger("watchtower.worker")


def _still_held(held: leases.Held) -> bool:
    try:
        return held.renew()
    except Exception as exc:  # noqa: BLE001  (a lease that cannot be renewed is not worked under)
        return held.mark_lost(f"it could not renew it ({type(exc).__name__}: {exc})")


def _interrupted_reason(held: leases.Held) -> str:
    return f"the worker running it ({held.holder}) lost its lease: {held.lost}; it stopped mid-run"


def _mark_interrupted(s: Session, *, run_id: int, scenario_id: int, error: str, actor: str, holder: str | None,
                      token: int | None) -> bool:
    """running → interrupted for the run still held under `token` by `holder`; its running step is interrupted."""
    changed = s.execute(update(ScenarioRun).where(
        ScenarioRun.id == run_id, ScenarioRun.status.in_(run_states.sources("interrupted")),
        ScenarioRun.worker_id == holder if holder is not None else ScenarioRun.worker_id.is_(None),
        ScenarioRun.lease_token == token if token is not None else ScenarioRun.lease_token.is_(None))
        .values(status="interrupted", finished_at=now(), lease_expires_at=None, error=error))
    if changed.rowcount != 1:
        return False
    for step in s.exec(select(StepRun).where(StepRun.run_id == run_id, StepRun.status.in_(["running", "pending"]))):
        step.status = "interrupted" if step.status == "running" else "skipped"
        step.finished_at = now() if step.status == "interrupted" else None
        s.add(step)
    scenario = s.get(Scenario, scenario_id)
    audit.record(s, actor=actor, action="scenario.run.interrupted", entity_type="scenario_run", entity_id=run_id,
                 project_id=scenario.project_id, details={"scenario": scenario.name, "worker": holder, "error": error})
    return True


def _interrupt(run_id: int, held: leases.Held) -> bool:
    """The worker that lost its lease records so on its run (the one write it still makes, and only this one:
    it moves a run still running under its token to the final state that any newer holder would also write)."""
    with session_scope() as s:
        scenario_id = s.exec(select(ScenarioRun.scenario_id).where(ScenarioRun.id == run_id)).one()
        return _mark_interrupted(s, run_id=run_id, scenario_id=scenario_id, error=_interrupted_reason(held),
                                 actor=held.holder, holder=held.holder, token=held.token)


class _Heartbeat(threading.Thread):
    """Renews the lease and the run's expiry every third of the lease's time to live; once the lease is lost
    (or cannot be renewed for a whole time to live), marks the run interrupted and stops."""

    def __init__(self, run_id: int, held: leases.Held) -> None:
        super().__init__(daemon=True)
        self.run_id, self.held, self.stopped = run_id, held, threading.Event()

    def run(self) -> None:
        renewed = time.monotonic()
        while not self.stopped.wait(self.held.ttl / 3):
            try:
                if self.held.renew():
                    with claims.fenced(self.run_id, self.held):
                        pass
                    renewed = time.monotonic()
            except leases.LeaseLost:
                pass
            except Exception:  # noqa: BLE001  (a busy database delays one renewal; the next one tries again)
                log.warning("run #%s: renewing its lease failed; retrying", self.run_id, exc_info=True)
                if time.monotonic() - renewed > self.held.ttl:
                    self.held.mark_lost(f"it could not renew it for {self.held.ttl:g} s")
            if self.held.lost:
                log.warning("run #%s: lease lost (%s); stopping before the next step", self.run_id, self.held.lost)
                try:
                    _interrupt(self.run_id, self.held)
                except Exception:  # noqa: BLE001  (the worker's loop tries again when the step returns)
                    log.warning("run #%s: could not mark it interrupted yet", self.run_id, exc_info=True)
                return

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=5)


class _StepLog:
    """Collects a step's log lines and writes them through at most every half second (live progress)."""

    def __init__(self, step_id: int, run_id: int, held: leases.Held) -> None:
        self.step_id, self.lines, self.flushed_at = step_id, [], 0.0
        self.run_id, self.held = run_id, held

    def __call__(self, line: str) -> None:
        self.lines.append(f"{now():%H:%M:%S} {line}")
        if time.monotonic() - self.flushed_at > 0.5:
            self.flush()

    def flush(self) -> None:
        self.flushed_at = time.monotonic()
        try:
            with claims.fenced(self.run_id, self.held) as s:
                s.execute(update(StepRun).where(StepRun.id == self.step_id).values(log="\n".join(self.lines) + "\n"))
        except leases.LeaseLost:
            pass  # the step runs to its end; the runner stops after it


def _jsonable(values: dict) -> dict:
    return json.loads(json.dumps(values, default=str))


def _finish(run_id: int, status: str, error: str = "", *, held: leases.Held) -> None:
    with claims.fenced(run_id, held) as s:
        _record_finish(s, run_id, status, error)


def _record_finish(s: Session, run_id: int, status: str, error: str) -> None:
    run = s.get(ScenarioRun, run_id)
    values = dict(status=status, error=error, lease_expires_at=None)
    if status != "waiting_approval":
        values["finished_at"] = now()
    changed = s.execute(update(ScenarioRun).where(ScenarioRun.id == run_id,
                                                  ScenarioRun.status.in_(run_states.sources(status))).values(**values))
    if changed.rowcount != 1:
        run_states.check(run.status, status, run_id=run_id)
    if status != "waiting_approval":
        for later in s.exec(select(StepRun).where(StepRun.run_id == run_id, StepRun.status == "pending")):
            later.status = "skipped"
            s.add(later)
    scenario = s.get(Scenario, run.scenario_id)
    audit.record(s, actor=run.worker_id or "worker", action=f"scenario.run.{status}", entity_type="scenario_run",
                 entity_id=run.id, project_id=scenario.project_id, details={"scenario": scenario.name,
                                                                           "error": error})
    if status == "failed":
        project = s.get(Project, scenario.project_id)
        alerts.notify(session=s, project_key=project.key, roles=["it_ops"], kind="scenario", severity="error",
                      title=f"Scenario {scenario.name} failed", message=f"Run #{run.id}: {error}",
                      link="/automation", actor="worker")


def _pause_for_approval(run_id: int, step_id: int, spec: dict, position: int, held: leases.Held) -> None:
    with claims.fenced(run_id, held) as s:
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
        _record_finish(s, run_id, "waiting_approval", "")


def _execute_steps(run_id: int, held: leases.Held) -> str:
    with claims.fenced(run_id, held) as s:
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
        if not _still_held(held):  # stop before the next step once the lease is lost
            raise leases.LeaseLost(held.lost)
        if spec.get("when") == "checks_failed" and not state.get("failed_check_result_ids"):
            with claims.fenced(run_id, held) as s:
                s.execute(update(StepRun).where(StepRun.id == step_id).values(
                    status="skipped", log="skipped: no check failed in this run\n"))
            continue
        if spec["mode"] == "needs_approval" and not approved_by:
            _pause_for_approval(run_id, step_id, spec, pos, held)
            return "waiting_approval"
        log = _StepLog(step_id, run_id, held)
        with claims.fenced(run_id, held) as s:
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
        with claims.fenced(run_id, held) as s:
            s.execute(update(StepRun).where(StepRun.id == step_id).values(
                status="succeeded" if result.ok else "failed", finished_at=now(), log="\n".join(log.lines) + "\n",
                error="" if result.ok else result.message))
            s.execute(update(ScenarioRun).where(ScenarioRun.id == run_id).values(context=state))
        if not result.ok:
            _finish(run_id, "failed", f"step {pos + 1} ({spec['kind']}) failed: {result.message}", held=held)
            return "failed"
        if result.skip_rest:
            break
    _finish(run_id, "succeeded", held=held)
    return "succeeded"


def _run_claimed(claim: claims.Claim) -> str:
    """Execute a claimed run to its end or its next approval, heartbeating meanwhile; releases the claim's lease."""
    run_id, held = claim.run_id, claim.held
    try:
        heartbeat = _Heartbeat(run_id, held)
        heartbeat.start()
        try:
            return _execute_steps(run_id, held)
        except leases.LeaseLost:
            log.warning("run #%s: lease lost (%s); stopped before its next step", run_id, held.lost)
            heartbeat.stop()
            _interrupt(run_id, held)
            return "interrupted"
        finally:
            heartbeat.stop()
    finally:
        held.release()


def execute_run(*, run_id: int, worker_id: str) -> str | None:
    """Run a requested run to its end or its next approval; None when another worker has it."""
    from core.automation.step_kinds import load_step_kinds

    load_step_kinds()
    claim = claims.claim_next(worker_id=worker_id, run_id=run_id)
    return None if claim is None else _run_claimed(claim)


def run_next(*, worker_id: str) -> tuple[int, str] | None:
    """Claim the oldest requested run and execute it; (run id, outcome), or None when nothing is left to claim."""
    from core.automation.step_kinds import load_step_kinds

    load_step_kinds()
    claim = claims.claim_next(worker_id=worker_id)
    return None if claim is None else (claim.run_id, _run_claimed(claim))


def run_requested(*, worker_id: str, limit: int = 200) -> list[tuple[int, str]]:
    """Claim and execute requested runs one after another, oldest first, until none is left (or `limit`)."""
    done = []
    while len(done) < limit and (outcome := run_next(worker_id=worker_id)) is not None:
        done.append(outcome)
    return done


def recover_interrupted(*, worker_id: str) -> list[int]:
    """Mark runs whose worker died or lost its lease mid-run as interrupted (their scenario can then run again).

    A run counts as abandoned when its scenario's lease can be taken: exact on PostgreSQL (the server dropped
    the lock of the dead holder's session); on SQLite the lease row expired or its holder's process is gone.
    Taking the lease raises its fencing token, so the old holder's later writes are refused.
    """
    with session_scope() as s:
        running = s.exec(select(ScenarioRun).where(ScenarioRun.status == "running")).all()
        candidates = [(r.id, r.scenario_id, r.worker_id, r.lease_token) for r in running]
    marked = []
    for run_id, scenario_id, holder, token in candidates:
        held = leases.acquire(claims.lease_name(scenario_id), holder=worker_id)
        if held is None:
            continue
        try:
            with session_scope() as s:
                held.fence(s)
                if _mark_interrupted(s, run_id=run_id, scenario_id=scenario_id, actor=worker_id, holder=holder,
                                     token=token, error=f"the worker running it ({holder}) stopped mid-run: "
                                                        "it no longer held its lease"):
                    marked.append(run_id)
        except leases.LeaseLost:
            continue
        finally:
            held.release()
    return marked


TICK_EPOCH = datetime(2000, 1, 1)  # intervals count from here on every worker (see core.automation.worker)
TICK_GRACE = timedelta(minutes=10)  # core.automation.worker's misfire grace: older ticks are not run


def last_tick(kind: str, value: str, at: datetime) -> datetime | None:
    """The trigger's latest firing at or before `at` (naive UTC), or None when it has none within the grace."""
    if kind == "interval":
        period = int(value)
        return TICK_EPOCH + timedelta(seconds=((at - TICK_EPOCH).total_seconds() // period) * period)
    if kind != "cron":
        return None
    trigger, until = CronTrigger.from_crontab(value, timezone=UTC), at.replace(tzinfo=UTC)
    fire, last = trigger.get_next_fire_time(None, until - TICK_GRACE), None
    while fire is not None and fire <= until:
        last, fire = fire, trigger.get_next_fire_time(fire, fire + timedelta(microseconds=1))
    return last.astimezone(UTC).replace(tzinfo=None) if last else None


def request_scheduled_run(*, scenario_id: int, worker_id: str) -> int | None:
    """Record the run a trigger asks for, once across workers; a run still in progress absorbs the trigger.

    Every worker's scheduler fires the same trigger: the run is keyed by the tick it answers (`scheduled_for`),
    and the first request for a tick counts.
    """
    with leases.exclusive(f"schedule:{scenario_id}", holder=worker_id), session_scope() as s:
        scenario = s.get(Scenario, scenario_id)
        if scenario is None or not scenario.enabled or scenario.trigger_kind == "manual":
            return None
        if s.exec(select(ScenarioRun.id).where(ScenarioRun.scenario_id == scenario_id,
                                               ScenarioRun.status.in_(ACTIVE))).first():
            return None
        tick = last_tick(scenario.trigger_kind, scenario.trigger_value, now())
        if tick is not None:
            if s.exec(select(ScenarioRun.id).where(ScenarioRun.scenario_id == scenario_id,
                                                   ScenarioRun.scheduled_for == tick)).first():
                return None
        else:  # a firing outside the trigger's schedule (called by hand): one per moment
            period = int(scenario.trigger_value) if scenario.trigger_kind == "interval" else 60
            window = timedelta(seconds=min(30.0, period / 2))
            if s.exec(select(ScenarioRun.id).where(ScenarioRun.scenario_id == scenario_id,
                                                   ScenarioRun.trigger == "schedule",
                                                   ScenarioRun.requested_at >= now() - window)).first():
                return None
        run = ScenarioRun(scenario_id=scenario_id, status="requested", trigger="schedule", requested_by="scheduler",
                          scheduled_for=tick)
        s.add(run)
        s.flush()
        audit.record(s, actor=worker_id, action="scenario.run.request", entity_type="scenario_run", entity_id=run.id,
                     project_id=scenario.project_id, details={"scenario": scenario.name, "trigger": "schedule",
                                                              "scheduled_for": tick})
        return run.id
