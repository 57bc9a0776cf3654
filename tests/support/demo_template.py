"""The demo story seeded once per test run into a template home (SQLite) that tests copy and never change.

The seed runs in a process of its own, started as soon as a run's collected tests show one needs it
(`tests/conftest.py`), so that the test processes go on with other tests meanwhile; the `demo_template` fixture
waits for it. Under pytest-xdist the workers share the one template in the run's base temporary directory: the
first to get the lock starts it, the others find it started.

    python -m tests.support.demo_template SHARED   # what the started process runs
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from filelock import FileLock

ROOT = Path(__file__).resolve().parents[2]
WAIT_SECONDS = 1200


def home(shared: Path) -> Path:
    return shared / "demo-template"


def start(shared: Path) -> None:
    """Start seeding the template under SHARED unless someone already has."""
    with FileLock(str(shared / "demo-template.lock")):
        started = shared / "demo-template.started"
        if started.exists():
            return
        started.touch()
        log = (shared / "demo-template.log").open("w")
        env = {k: v for k, v in os.environ.items() if k not in ("WATCHTOWER_HOME", "WATCHTOWER_DATABASE_URL")}
        subprocess.Popen([sys.executable, "-m", "tests.support.demo_template", str(shared)], cwd=ROOT, env=env,
                         stdout=log, stderr=subprocess.STDOUT)
        log.close()


def wait(shared: Path) -> Path:
    """The seeded template home, once its process has finished; its log when it failed."""
    start(shared)
    done, failed = shared / "demo-template.done", shared / "demo-template.failed"
    deadline = time.monotonic() + WAIT_SECONDS
    while not done.exists():
        if failed.exists() or time.monotonic() > deadline:
            log = (shared / "demo-template.log").read_text(errors="replace")
            raise RuntimeError(f"seeding the demo template {'failed' if failed.exists() else 'timed out'}:\n"
                               f"{log[-4000:]}")
        time.sleep(0.2)
    return home(shared)


def seed(shared: Path) -> None:
    target = home(shared)
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir()
    os.environ["WATCHTOWER_HOME"] = str(target)
    os.environ["WATCHTOWER_DATABASE_URL"] = f"sqlite:///{target / 'watchtower.db'}"
    try:
        from core.demo import seed_demo

        seed_demo()
    except BaseException:
        (shared / "demo-template.failed").touch()
        raise
    (shared / "demo-template.done").touch()


if __name__ == "__main__":
    seed(Path(sys.argv[1]))
