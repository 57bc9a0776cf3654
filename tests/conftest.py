"""Shared fixtures: a fresh Watchtower home and database per test, on SQLite and on PostgreSQL.

PostgreSQL tests use a schema of their own inside the `test` database (127.0.0.1:5432, trust auth), one per
test session and so one per pytest-xdist worker: parallel runs never collide. With
WATCHTOWER_REQUIRE_POSTGRES=1 an unreachable server fails the run. WATCHTOWER_TEST_BACKENDS=sqlite (a comma
separated list; default "sqlite,postgres") restricts the backends the `backend` fixture runs on.

Every test gets one speed marker, from where it lives and the fixtures it uses:
- `e2e`: the browser tests under tests/e2e;
- `integration`: a database, files, a server or a subprocess (the fixtures in INTEGRATION_FIXTURES, and the
  page tests under tests/app);
- `unit`: everything else, which must not open a database (`pytest -m unit` runs them alone).
"""

from __future__ import annotations

import os

if os.environ.get("PYTEST_XDIST_WORKER"):  # workers share the cores: one OpenMP thread each (before sklearn loads)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlmodel import SQLModel

from core import db
from core.lake import spool
from tests.support import demo_template as demo_seed
from tests.support.mlflow_world import mlflow_server  # noqa: F401 - a session fixture: a real MLflow server

PG_BASE = os.environ.get("WATCHTOWER_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
ALL_BACKENDS = ("sqlite", "postgres")
BACKENDS = [name.strip() for name in os.environ.get("WATCHTOWER_TEST_BACKENDS", ",".join(ALL_BACKENDS)).split(",")
            if name.strip()]
if not BACKENDS or set(BACKENDS) - set(ALL_BACKENDS):
    raise pytest.UsageError(f"WATCHTOWER_TEST_BACKENDS must name some of {', '.join(ALL_BACKENDS)}, not {BACKENDS}")

TESTS = Path(__file__).resolve().parent
# Fixtures that give a test a database, files, a server or a subprocess; a test using any of them (directly
# or through another fixture) is an integration test.
INTEGRATION_FIXTURES = {
    "backend", "sqlite_home", "demo_home", "demo_template", "pg_schema_url",  # a database
    "tmp_path", "tmp_path_factory",  # files
    "workers", "receiver", "smtp", "provider", "mlflow_server",  # subprocesses and servers
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test e2e, integration or unit (see the module's docstring); drop backends not selected."""
    selected, dropped = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("backend", BACKENDS[0]) not in BACKENDS:
            dropped.append(item)
            continue
        selected.append(item)
        path = Path(str(item.path)).resolve()
        if (TESTS / "e2e") in path.parents:
            item.add_marker(pytest.mark.e2e)
        elif (TESTS / "app") in path.parents or INTEGRATION_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)
        else:
            item.add_marker(pytest.mark.unit)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    # Tests on the demo story last: the other tests run while its template is being seeded.
    items[:] = sorted(selected, key=lambda item: "demo_template" in getattr(item, "fixturenames", ()))


@pytest.fixture(autouse=True)
def _unit_tests_open_no_database(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A unit test that reaches for a database fails: it should use a database fixture, which makes it integration."""
    if request.node.get_closest_marker("unit") is None:
        return

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a unit test opened a database: use `backend` or `sqlite_home` (an integration test)")

    monkeypatch.setattr(db, "make_engine", refuse)


def _pg_reachable() -> str | None:
    try:
        engine = create_engine(PG_BASE, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:  # noqa: BLE001
        return str(exc).splitlines()[0]


@pytest.fixture(scope="session")
def pg_schema_url() -> Iterator[str]:
    """A private schema in the test database for this test session."""
    problem = _pg_reachable()
    if problem:
        if os.environ.get("WATCHTOWER_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL is required but unreachable: {problem}")
        pytest.skip(f"PostgreSQL unreachable: {problem}")
    schema = f"wt_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_BASE)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{PG_BASE}?options=-csearch_path%3D{schema}"
    yield url
    db.dispose_engines()
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def _truncate_all(url: str) -> None:
    import core.entities  # noqa: F401

    engine = db.get_engine(url)
    names = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A clean Watchtower home and database; yields 'sqlite' or 'postgres'."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("WATCHTOWER_HOME", str(home))
    monkeypatch.delenv("WATCHTOWER_DEMO", raising=False)
    if request.param == "sqlite":
        url = f"sqlite:///{home / 'watchtower.db'}"
    else:
        url = request.getfixturevalue("pg_schema_url")
        _truncate_all(url)
    monkeypatch.setenv("WATCHTOWER_DATABASE_URL", url)
    yield request.param
    spool.close_process()  # a scoring API served by the test commits its spool into the test's own lake
    if request.param == "sqlite":
        db.dispose_engines()


@pytest.fixture
def sqlite_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A clean home on SQLite only (for tests about files and processes rather than the backend)."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("WATCHTOWER_HOME", str(home))
    monkeypatch.setenv("WATCHTOWER_DATABASE_URL", f"sqlite:///{home / 'watchtower.db'}")
    monkeypatch.delenv("WATCHTOWER_DEMO", raising=False)
    yield home
    spool.close_process()
    db.dispose_engines()


def _shared_temp(factory: pytest.TempPathFactory) -> Path:
    """The run's base temporary directory, which pytest-xdist workers share (each has its own below it)."""
    base = factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo story seeded once per test run into a template home (SQLite); tests copy it, never change it.
    Its seeding starts in a process of its own once the run's tests are collected (tests/support/demo_template)."""
    return demo_seed.wait(_shared_temp(tmp_path_factory))


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start seeding the demo template at once when a collected test needs it, so that other tests run meanwhile."""
    if any("demo_template" in getattr(item, "fixturenames", ()) for item in session.items):
        demo_seed.start(_shared_temp(session.config._tmp_path_factory))  # noqa: SLF001 - the session's factory


@pytest.fixture
def demo_home(demo_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private copy of the seeded demo home, used as the current Watchtower home."""
    home = tmp_path / "demo"
    shutil.copytree(demo_template, home)
    monkeypatch.setenv("WATCHTOWER_HOME", str(home))
    monkeypatch.setenv("WATCHTOWER_DATABASE_URL", f"sqlite:///{home / 'watchtower.db'}")
    monkeypatch.setenv("WATCHTOWER_DEMO", "1")
    yield home
    spool.close_process()
    db.dispose_engines()
