"""The demo story seeded once into a template home (SQLite) that tests copy and never change.

The seed runs in a process of its own, started as soon as a run's collected tests show one needs it
(`tests/conftest.py`), so that the test processes go on with other tests meanwhile; the `demo_template` fixture
waits for it. Under pytest-xdist the workers share the one template in the run's base temporary directory: the
first to get the lock starts it, the others find it started.

A seeded template is kept in `.pytest_cache/demo-template/KEY/home` for the runs that follow, where KEY is a digest of
everything the seed depends on: the code under `core/`, this file, `pyproject.toml`, the versions of the
installed packages, the `WATCHTOWER_*` settings and the day (the seed stamps the current time). Any change to
them seeds again; `rm -rf .pytest_cache` or `WATCHTOWER_TEST_RESEED=1` forces it.

    python -m tests.support.demo_template SHARED CACHED   # what the started process runs
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from filelock import FileLock

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".pytest_cache" / "demo-template"
KEEP = 2  # seeded templates kept in the cache, newest first
WAIT_SECONDS = 1200
_OWN_SETTINGS = ("WATCHTOWER_HOME", "WATCHTOWER_DATABASE_URL")


def home(shared: Path) -> Path:
    return shared / "demo-template"


def key() -> str:
    """A digest of what the seeded template depends on."""
    digest = hashlib.sha256(datetime.now(UTC).date().isoformat().encode())
    sources = sorted(p for p in (ROOT / "core").rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    for path in [*sources, Path(__file__).resolve(), ROOT / "pyproject.toml"]:
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    packages = sorted({f"{d.metadata['Name']}=={d.version}" for d in importlib.metadata.distributions()})
    settings = sorted(f"{k}={v}" for k, v in os.environ.items()
                      if k.startswith("WATCHTOWER_") and k not in _OWN_SETTINGS and not k.startswith("WATCHTOWER_TEST"))
    digest.update("\n".join([sys.version, *packages, *settings]).encode())
    return digest.hexdigest()[:20]


def start(shared: Path) -> None:
    """Start seeding the template under SHARED unless someone already has, or take it from the cache."""
    with FileLock(str(shared / "demo-template.lock")):
        started = shared / "demo-template.started"
        if started.exists():
            return
        started.touch()
        cached = CACHE / key()
        if (cached / "done").exists() and os.environ.get("WATCHTOWER_TEST_RESEED") != "1":
            (shared / "demo-template.path").write_text(str(cached / "home"))
            (shared / "demo-template.done").touch()
            return
        log = (shared / "demo-template.log").open("w")
        env = {k: v for k, v in os.environ.items() if k not in _OWN_SETTINGS}
        subprocess.Popen([sys.executable, "-m", "tests.support.demo_template", str(shared), str(cached)],
                         cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
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
    taken = shared / "demo-template.path"
    return Path(taken.read_text()) if taken.exists() else home(shared)


def seed(shared: Path, cached: Path) -> None:
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
    keep(target, cached)


def keep(target: Path, cached: Path) -> None:
    """Copy a seeded template into the cache (whole or not at all) and drop all but the newest KEEP."""
    partial = cached.with_name(cached.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(target, partial / "home")
    (partial / "done").touch()
    shutil.rmtree(cached, ignore_errors=True)
    partial.rename(cached)
    seeded = sorted(CACHE.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in seeded[KEEP:]:
        shutil.rmtree(old, ignore_errors=True)


if __name__ == "__main__":
    seed(Path(sys.argv[1]), Path(sys.argv[2]))
