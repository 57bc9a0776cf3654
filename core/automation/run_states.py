"""The life of a scenario run, in one place: which status may follow which.

    requested ──▶ running ──▶ succeeded | failed | interrupted
                     │
                     └──▶ waiting_approval ──▶ requested (approved) | failed (rejected)

`succeeded`, `failed` and `interrupted` are final: nothing moves a run out of them. The worker's writes use
`sources(target)` in their UPDATE's WHERE clause (compare-and-set on the status), and an ORM change of
`ScenarioRun.status` that breaks the rules raises `Conflict` at the assignment.
"""

from __future__ import annotations

from sqlalchemy import event

from core.entities import ScenarioRun
from core.errors import Conflict

TRANSITIONS: dict[str, tuple[str, ...]] = {
    "requested": ("running",),
    "running": ("succeeded", "failed", "waiting_approval", "interrupted"),
    "waiting_approval": ("requested", "failed"),
    "succeeded": (),
    "failed": (),
    "interrupted": (),
}
FINAL = tuple(state for state, nexts in TRANSITIONS.items() if not nexts)


def allowed(current: str, target: str) -> bool:
    return target in TRANSITIONS.get(current, ())


def sources(target: str) -> tuple[str, ...]:
    """The statuses a run may be in to move to `target`."""
    return tuple(state for state, nexts in TRANSITIONS.items() if target in nexts)


def check(current: str, target: str, *, run_id: int | None = None) -> None:
    """Raise Conflict unless a run in `current` may become `target`."""
    if not allowed(current, target):
        name = f"run #{run_id}" if run_id is not None else "a run"
        raise Conflict(f"{name} is {current.replace('_', ' ')}; it cannot become {target.replace('_', ' ')}")


@event.listens_for(ScenarioRun.status, "set", active_history=True)
def _guard(run: ScenarioRun, value: str, oldvalue: object, _initiator: object) -> None:
    if isinstance(oldvalue, str) and value != oldvalue:
        check(oldvalue, value, run_id=run.id)
