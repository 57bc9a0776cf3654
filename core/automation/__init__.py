"""Automation: scenarios (a trigger and ordered steps) and their runs. The registry of step kinds says what
permission each kind needs; the steps themselves call the other features' services as the scenario's owner;
the runner executes runs under a lease in the worker process, each claimed by exactly one worker.

- `claims`: Claiming requested runs: each run goes to exactly one worker, and workers never queue behind each other.
- `connections`: Data connections: named, read-only SQL sources for the ingest step, registered by an administrator.
- `run_states`: The life of a scenario run, in one place: which status may follow which.
- `runner`: Executing scenario runs in the worker: claim one, run its steps in order, pause for approvals.
- `scenarios`: Scenarios: a project's automation — a trigger (cron, interval, manual) and ordered steps — and their runs.
- `step_kinds`: The registry of scenario step kinds: each kind is a function of a StepContext returning a StepResult.
- `steps`: The steps themselves: what each built-in scenario step kind does.
- `workload`: Which worker ran what: the recent runs of a project counted per worker and outcome.
- `worker`: The worker: APScheduler's BlockingScheduler in its own process, driven by Watchtower's own tables.
"""

from core.lazy import reexport

__getattr__, __dir__, __all__ = reexport(__name__, {
    "connections": (
        "ConnectionRead", "create_connection", "update_connection", "delete_connection",
        "list_connections", "get_connection", "run_query",
    ),
    "claims": ("Claim", "claim_next"),
    "runner": (
        "execute_run", "run_next", "run_requested", "recover_interrupted", "request_scheduled_run",
    ),
    "workload": ("WorkerLoad", "runs_per_worker"),
    "scenarios": (
        "StepRunRead", "RunRead", "ScenarioRead", "create_scenario", "update_scenario",
        "acting_actor", "delete_scenario", "request_run", "approve_step", "reject_step",
        "list_scenarios", "get_scenario", "list_runs", "get_run",
    ),
})
