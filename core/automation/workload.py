"""Which worker ran what: the recent runs of a project counted per worker and outcome."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlmodel import Session, select

from core.entities import Scenario, ScenarioRun
from core.projects.projects import project_row


@dataclass(frozen=True)
class WorkerLoad:
    worker: str
    runs: int
    by_status: dict[str, int]


def runs_per_worker(*, session: Session, project_key: str | None = None, recent: int = 200) -> list[WorkerLoad]:
    """Of the `recent` latest runs that a worker picked up, how many each worker ran; busiest first."""
    q = (select(ScenarioRun.worker_id, ScenarioRun.status).where(ScenarioRun.worker_id.is_not(None))
         .order_by(ScenarioRun.id.desc()).limit(recent))
    if project_key:
        project = project_row(session, project_key)
        q = q.where(ScenarioRun.scenario_id.in_(select(Scenario.id).where(Scenario.project_id == project.id)))
    counts: dict[str, Counter] = {}
    for worker, status in session.exec(q).all():
        counts.setdefault(worker, Counter())[status] += 1
    loads = [WorkerLoad(worker=w, runs=sum(c.values()), by_status=dict(c)) for w, c in counts.items()]
    return sorted(loads, key=lambda load: (-load.runs, load.worker))
