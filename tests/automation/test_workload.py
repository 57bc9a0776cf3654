"""Which worker ran what: a project's recent runs counted per worker and outcome."""

from __future__ import annotations

from core.automation import runner, workload
from core.db import session_scope
from tests.automation.test_claims import _request
from tests.automation.test_worker import _scenario
from tests.support import slow_steps  # noqa: F401  (registers the test step kinds in this process)


def test_runs_are_counted_per_worker_busiest_first(backend, tmp_path):
    from tests.support import monitoring_world as world

    world.build(tmp_path)
    ids = [_scenario(f"batch {i}", [{"kind": "record_execution"}]) for i in range(4)]
    for run_id, worker in zip(_request(ids), ["w1:1:a", "w1:1:a", "w2:2:b", "w2:2:b"], strict=True):
        runner.execute_run(run_id=run_id, worker_id=worker)
    _request([ids[0]])  # requested, not picked up yet: no worker to count it for
    with session_scope() as s:
        loads = workload.runs_per_worker(session=s, project_key="FRAUD")
        only_latest = workload.runs_per_worker(session=s, project_key="FRAUD", recent=2)
    assert [(w.worker, w.runs) for w in loads] == [("w1:1:a", 2), ("w2:2:b", 2)]
    assert loads[0].by_status == {"succeeded": 2}
    assert [(w.worker, w.runs) for w in only_latest] == [("w2:2:b", 2)]
