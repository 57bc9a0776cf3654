"""The credit-card fraud story, seeded step by step. Each step module owns one part of the story.

To extend the story, add a module with `seed(*, progress)` and append it to STEPS: steps run in
order, each in its own unit(s) of work, after the ones it builds on.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable

from sqlmodel import SQLModel, select

from core.access import Actor
from core.config import get_settings
from core.db import dispose_engines, get_engine, session_scope
from core.entities import Project, User
from core.errors import Conflict

Progress = Callable[[str], None]

DEMO_PROJECT = "FRAUD"
DEMO_MODEL = "fraud-detector"

# Who writes the story while `watchtower demo` seeds it. Used by the demo's seeding steps only: no command,
# page, route or scenario ever acts as it.
SEEDER = Actor(username="demo-seed", roles=("admin",))


def _steps() -> list[Callable[..., None]]:
    from core.demo import catalog, evaluations, foundation, governance, monitoring, registry, validation

    # monitoring after the evaluations it checks; the retrain after the checks that failed; v3's review after
    # the retrain made it; catalog: it catalogs what the other steps built; the lab's findings last, for every version by then
    return [foundation.seed, evaluations.seed, monitoring.seed, registry.seed, governance.seed, catalog.seed,
            validation.seed]


def is_seeded() -> bool:
    with session_scope() as s:
        return s.exec(select(Project).where(Project.key == DEMO_PROJECT)).first() is not None


def reset_database() -> None:
    """Drop every table and the stored files under WATCHTOWER_HOME."""
    import core.entities  # noqa: F401

    engine = get_engine()
    SQLModel.metadata.drop_all(engine)
    dispose_engines()
    home = get_settings().home
    for sub in ("artifacts", "references", "reports", "drop", "documents"):
        shutil.rmtree(home / sub, ignore_errors=True)
    from core.lake import tables

    tables.remove_all()
    get_engine()


def seed_demo(*, reset: bool = False, progress: Progress = lambda _msg: None) -> bool:
    """Seed the story unless it is there already; return whether anything was seeded."""
    if reset:
        progress("resetting the database")
        reset_database()
    if is_seeded():
        return False
    with session_scope() as s:
        if s.exec(select(User.id).limit(1)).first() is not None:
            raise Conflict("the database holds users but not the demo story; the demo is seeded only into an empty "
                           "database (`watchtower demo --reset` deletes everything first)")
    for step in _steps():
        step(progress=progress)
    return True
