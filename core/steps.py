"""The scenario step interface: each step kind is a function of a StepContext returning a StepResult.

Step modules register their kinds with `@step("kind")`; the scenario runner looks them up in STEP_KINDS.
A step opens its own short units of work (`db.session_scope()`); it never receives a session, because
long work (training, drift) must not hold a transaction open.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from core.access import Actor


@dataclass
class StepContext:
    run_id: int
    scenario_id: int
    project_id: int
    model_name: str | None
    params: dict
    state: dict  # values shared between the steps of one run; persisted with the run
    actor: Actor  # who the run acts as (the system for scheduled runs)
    log: Callable[[str], None] = print


@dataclass
class StepResult:
    ok: bool
    message: str
    outputs: dict = field(default_factory=dict)  # merged into the run's state for later steps
    skip_rest: bool = False  # e.g. "retrain on failure" when nothing failed


StepFunction = Callable[[StepContext], StepResult]
STEP_KINDS: dict[str, StepFunction] = {}


def step(kind: str) -> Callable[[StepFunction], StepFunction]:
    """Register a step kind under a stable name (used in Scenario.steps)."""

    def register(fn: StepFunction) -> StepFunction:
        STEP_KINDS[kind] = fn
        return fn

    return register
