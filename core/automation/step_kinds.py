"""The registry of scenario step kinds: each kind is a function of a StepContext returning a StepResult.

`core.automation.steps` holds the built-in steps; each registers its kind with `@step_kind("kind",
permission=...)` and the scenario runner looks them up in STEP_KINDS (`load_step_kinds` first). Operators add
their own kinds from modules named in WATCHTOWER_STEP_MODULES=package.module,other.module. A step acts as the scenario's owner: before it runs, the owner must hold the permission its kind
declares (what they would need to do the same by hand), and the services it calls check that actor again.
A kind that declares no permission never runs.
A step opens its own short units of work (`db.session_scope()`); it never receives a session, because
long work (training, drift) must not hold a transaction open.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from core.access import Actor, require
from core.errors import Forbidden

log = logging.getLogger("watchtower.steps")


@dataclass
class StepContext:
    run_id: int
    scenario_id: int
    project_id: int
    model_name: str | None
    params: dict
    state: dict  # values shared between the steps of one run; persisted with the run
    actor: Actor  # the scenario's owner, with the roles they hold now (whoever requested the run)
    log: Callable[[str], None] = print


@dataclass
class StepResult:
    ok: bool
    message: str
    outputs: dict = field(default_factory=dict)  # merged into the run's state for later steps
    skip_rest: bool = False  # e.g. "retrain on failure" when nothing failed


StepFunction = Callable[[StepContext], StepResult]
STEP_KINDS: dict[str, StepFunction] = {}
# The permission each built-in kind checks on the scenario's owner: the one its service needs by hand.
STEP_PERMISSIONS: dict[str, str] = {
    "ingest": "evaluation.write",  # ingest.ingest_predictions / ingest_ground_truth
    "evaluate": "evaluation.write",  # evaluation_store.evaluate
    "checks": "monitoring.manage",  # checks.run_checks
    "endpoint_checks": "monitoring.manage",  # probing endpoint checks, as on the Checks page
    "notify": "monitoring.manage",  # alerting people and channels, as a check's audience does
    "sleep": "automation.run",
    "retrain": "experiments.run",  # retraining.retrain
    "review": "review.request",  # governance.request_review
    "deploy": "deploy",  # deployer.deploy, through the environment's governance gate
}


def step_kind(kind: str, *, permission: str | None = None) -> Callable[[StepFunction], StepFunction]:
    """Register a step kind under a stable name (used in Scenario.steps) with the permission it needs."""

    def register(fn: StepFunction) -> StepFunction:
        STEP_KINDS[kind] = fn
        if permission is not None:
            STEP_PERMISSIONS[kind] = permission
        return fn

    return register


def authorize(kind: str, actor: Actor) -> None:
    """Raise Forbidden unless the actor may do what a step of this kind does."""
    permission = STEP_PERMISSIONS.get(kind)
    if permission is None:
        raise Forbidden(f"step kind {kind!r} declares no permission, so it never runs")
    require(actor, permission)


def load_step_kinds() -> None:
    """Import the built-in steps and the modules named in WATCHTOWER_STEP_MODULES, so every process knows the same kinds."""
    extra = [m.strip() for m in os.environ.get("WATCHTOWER_STEP_MODULES", "").split(",") if m.strip()]
    for name in ("core.automation.steps", *extra):
        if name in sys.modules:
            continue
        try:
            if importlib.util.find_spec(name) is None:
                log.warning("step module %s (WATCHTOWER_STEP_MODULES) was not found", name)
                continue
            importlib.import_module(name)
        except Exception:  # noqa: BLE001  (one broken module must not take the other step kinds down)
            log.exception("step module %s failed to import", name)
