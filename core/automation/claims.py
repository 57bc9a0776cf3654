"""Claiming requested runs: each run goes to exactly one worker, and workers never queue behind each other.

A worker claims the oldest requested run. On PostgreSQL it selects it `FOR UPDATE SKIP LOCKED`: a run another
worker is claiming at this moment is passed over, not waited for. On SQLite the claim is a conditional
`UPDATE … WHERE status = 'requested'`, which only one worker's statement can win.

Before flipping the run to `running`, the worker takes its scenario's lease (see core.leases; non-blocking),
so runs of one scenario never overlap and a dead worker's run can be recognised (its lease is free again).
The run records the worker and the lease's fencing token; every later write of that worker to the run is
refused once the token is stale (`fenced`, `Claim.write`). A run whose scenario's lease is busy is left for
a later pass.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import update
from sqlmodel import Session, select

from core import leases
from core.automation import run_states
from core.clock import now
from core.db import get_engine, is_sqlite, session_scope
from core.entities import ScenarioRun


@dataclass(frozen=True)
class Claim:
    """A run this worker now runs, under its scenario's lease (release it when the run stops)."""

    run_id: int
    scenario_id: int
    held: leases.Held

    @property
    def token(self) -> int:
        return self.held.token

    def write(self) -> AbstractContextManager[Session]:
        """A unit of work for this worker's writes to its run; refused (LeaseLost) once its token is stale."""
        return fenced(self.run_id, self.held)


def lease_name(scenario_id: int) -> str:
    """The lease under which runs of a scenario execute."""
    return f"scenario:{scenario_id}"


@contextmanager
def fenced(run_id: int, held: leases.Held) -> Iterator[Session]:
    """A unit of work for a run's own writes; LeaseLost (nothing written) unless its lease is still the newest
    and the run is still running under that lease's token. Also pushes the run's `lease_expires_at` forward."""
    with session_scope() as s:
        held.fence(s)
        mine = s.execute(update(ScenarioRun).where(ScenarioRun.id == run_id, ScenarioRun.status == "running",
                                                   ScenarioRun.lease_token == held.token)
                         .values(lease_expires_at=now() + timedelta(seconds=held.ttl)))
        if mine.rowcount != 1:
            held.mark_lost(f"run #{run_id} is no longer running under its lease")
            raise leases.LeaseLost(held.lost)
        yield s


def _oldest(s: Session, *, run_id: int | None, passed: set[int], lock: bool) -> tuple[int, int] | None:
    q = select(ScenarioRun.id, ScenarioRun.scenario_id).where(ScenarioRun.status == "requested")
    if run_id is not None:
        q = q.where(ScenarioRun.id == run_id)
    if passed:
        q = q.where(ScenarioRun.id.not_in(passed))
    q = q.order_by(ScenarioRun.requested_at, ScenarioRun.id).limit(1)
    if lock:
        q = q.with_for_update(skip_locked=True)
    row = s.exec(q).first()
    return (row[0], row[1]) if row else None


def _flip(s: Session, *, run_id: int, worker_id: str, held: leases.Held) -> bool:
    """requested → running for this worker under the lease's token, when the run is still requested."""
    held.fence(s)
    at = now()
    claimed = s.execute(update(ScenarioRun).where(ScenarioRun.id == run_id,
                                                  ScenarioRun.status.in_(run_states.sources("running")))
                        .values(status="running", worker_id=worker_id, error="", lease_token=held.token,
                                lease_expires_at=at + timedelta(seconds=held.ttl)))
    if claimed.rowcount != 1:
        return False
    run = s.get(ScenarioRun, run_id)
    if run.started_at is None:  # a run resumed after an approval keeps its first start
        s.execute(update(ScenarioRun).where(ScenarioRun.id == run_id).values(started_at=at))
    return True


def _claim_pg(worker_id: str, run_id: int | None) -> Claim | None:
    passed: set[int] = set()
    with session_scope() as s:
        # The row lock lasts for this short transaction only; other workers skip the row meanwhile.
        while (found := _oldest(s, run_id=run_id, passed=passed, lock=True)) is not None:
            candidate, scenario_id = found
            held = leases.acquire(lease_name(scenario_id), holder=worker_id)
            if held is None:
                passed.add(candidate)
                continue
            try:
                if _flip(s, run_id=candidate, worker_id=worker_id, held=held):
                    s.commit()
                    return Claim(run_id=candidate, scenario_id=scenario_id, held=held)
            except BaseException:
                held.release()
                raise
            held.release()
            passed.add(candidate)
    return None


def _claim_sqlite(worker_id: str, run_id: int | None) -> Claim | None:
    passed: set[int] = set()
    while True:
        with session_scope() as s:
            found = _oldest(s, run_id=run_id, passed=passed, lock=False)
        if found is None:
            return None
        candidate, scenario_id = found
        passed.add(candidate)
        held = leases.acquire(lease_name(scenario_id), holder=worker_id)
        if held is None:
            continue
        try:
            with session_scope() as s:
                won = _flip(s, run_id=candidate, worker_id=worker_id, held=held)
        except BaseException:
            held.release()
            raise
        if won:
            return Claim(run_id=candidate, scenario_id=scenario_id, held=held)
        held.release()  # another worker's UPDATE won it first


def claim_next(*, worker_id: str, run_id: int | None = None) -> Claim | None:
    """Claim the oldest requested run (or only `run_id`) for this worker; None when there is none to take."""
    try:
        if is_sqlite(get_engine()):
            return _claim_sqlite(worker_id, run_id)
        return _claim_pg(worker_id, run_id)
    except leases.LeaseLost:
        return None  # the lease was taken over between taking it and claiming: leave the run for later
