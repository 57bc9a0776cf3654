"""Data connections: named, read-only SQL sources an administrator registers and an ingest step queries.

The source database is a SQLite file next to a SQLite Watchtower, or a PostgreSQL database of its own next to a
PostgreSQL Watchtower, created by the test.
"""

from __future__ import annotations

import re
import sqlite3
import uuid
from pathlib import Path

import pandas as pd
import psycopg
import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text
from sqlmodel import func, select

from core.access import Actor
from core.automation import connections, runner, scenarios
from core.cli import main
from core.db import session_scope
from core.entities import AuditEvent, DataConnection, Scenario
from core.errors import Forbidden, InvalidInput
from core.identity import users
from tests.support import evaluation_world as cards
from tests.support.people import ADMINISTRATOR

ADMIN, MAYA, DARIO = Actor("admin", ("admin",)), Actor("maya", ("ml_engineer",)), Actor("dario", ("data_scientist",))
PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
GOOD_QUERY = "select * from scored where merchant <> ';' -- ; drop table scored"


def _fill(engine) -> None:  # noqa: ANN001
    with engine.begin() as conn:
        cards.traffic(300, seed=1).assign(ts=lambda f: f["ts"].astype(str)).to_sql("scored", conn, index=False)
        pd.DataFrame({"name": ["ceo", "cfo"], "salary": [900_000, 700_000]}).to_sql("salaries", conn, index=False)
    engine.dispose()


@pytest.fixture
def source(backend, tmp_path):
    """A separate source database holding `scored` (predictions with labels) and `salaries` (not for us)."""
    if backend == "sqlite":
        path = tmp_path / "warehouse.db"
        _fill(create_engine(f"sqlite:///{path}"))
        yield f"sqlite:///{path}"
        return
    name = f"wt_src_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(f"{PG_SERVER}/test", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    _fill(create_engine(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"))
    yield f"{PG_SERVER}/{name}"
    with psycopg.connect(f"{PG_SERVER}/test", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
def world(backend, source, monkeypatch):
    """The card model, an administrator, an ML engineer and a data scientist; WT_WAREHOUSE_URL names the source."""
    cards.build()
    with session_scope() as s:
        for who in (ADMIN, MAYA, DARIO):
            users.create_user(session=s, actor=ADMINISTRATOR, username=who.username, name=who.username.title(),
                              email=f"{who.username}@bank.example", roles=list(who.roles))
    monkeypatch.setenv("WT_WAREHOUSE_URL", source)
    monkeypatch.setenv("WATCHTOWER_DEMO", "1")  # the personas act on the command line without a password
    return source


def cli(*args: str):  # noqa: ANN201
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _register(allow=("scored",)) -> None:  # noqa: ANN001
    result = cli("connection", "create", "warehouse", "--secret", "WT_WAREHOUSE_URL",
                 *[a for t in allow for a in ("--allow", t)], "--as", "admin")
    assert result.exit_code == 0, result.output


def _scenario(query: str = GOOD_QUERY, *, owner: Actor = MAYA, name: str = "from the warehouse"):
    with session_scope() as s:
        return scenarios.create_scenario(session=s, actor=owner, project_key="CARDS", model="fraud", name=name,
                                         steps=[{"kind": "ingest", "params": {
                                             "source": "sql", "connection": "warehouse", "id_col": "tx",
                                             "query": query}}, {"kind": "sleep", "params": {"seconds": 0}}])


def _run(scenario_id: int) -> scenarios.RunRead:
    with session_scope() as s:
        run = scenarios.request_run(session=s, actor=MAYA, scenario_id=scenario_id)
    runner.execute_run(run_id=run.id, worker_id="w:1:a")
    with session_scope() as s:
        return scenarios.get_run(session=s, run_id=run.id)


def _store_steps(scenario_id: int, params: dict) -> None:
    """A step as stored before today's checks existed (or written around them): the run must refuse it too."""
    with session_scope() as s:
        sc = s.get(Scenario, scenario_id)
        sc.steps = [{"kind": "ingest", "mode": "auto", "approver_role": None, "when": "always",
                     "params": {"source": "sql", "id_col": "tx", **params}}]
        s.add(sc)


def _source_rows(url: str) -> tuple[int, set[str]]:
    """Rows of `scored` and the tables of the source database, read outside Watchtower."""
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        rows = conn.execute(text("select count(*) from scored")).scalar_one()
        if engine.dialect.name == "sqlite":
            names = set(conn.execute(text("select name from sqlite_master where type = 'table'")).scalars())
        else:
            names = set(conn.execute(text("select tablename from pg_tables where schemaname = 'public'")).scalars())
    engine.dispose()
    return rows, names


def _counts() -> tuple[int, int, int]:
    with session_scope() as s:
        return (s.exec(select(func.count()).select_from(DataConnection)).one(),
                s.exec(select(func.count()).select_from(Scenario)).one(),
                s.exec(select(func.count()).select_from(AuditEvent)).one())


def test_an_administrator_registers_a_connection_and_a_scenario_ingests_through_it(world):
    _register()
    listed = cli("connection", "list", "--as", "admin")
    assert re.search(r"warehouse\s+WT_WAREHOUSE_URL\s+scored", listed.output)
    sc = _scenario()
    done = _run(sc.id)
    assert done.status == "succeeded", done.error
    log = done.steps[0].log
    assert "querying data connection warehouse (read-only)" in log
    assert "300 predictions, 300 labels ingested from the query" in log
    assert world not in log and "warehouse.db" not in log
    with session_scope() as s:
        (event,) = s.exec(select(AuditEvent).where(AuditEvent.action == "connection.create")).all()
    assert event.actor == "admin" and event.details == {"secret": "WT_WAREHOUSE_URL", "allowed_tables": ["scored"]}


def test_only_an_administrator_manages_connections(world):
    before = _counts()
    refused = cli("connection", "create", "warehouse", "--secret", "WT_WAREHOUSE_URL", "--allow", "scored",
                  "--as", "maya")
    assert refused.exit_code == 1 and "maya may not settings manage (allowed roles: admin)" in refused.output
    assert _counts() == before and "no data connections" in cli("connection", "list", "--as", "admin").output
    _register()
    assert cli("connection", "delete", "warehouse", "--as", "dario").exit_code == 1
    with pytest.raises(Forbidden, match="maya may not settings manage"):
        with session_scope() as s:
            connections.update_connection(session=s, actor=MAYA, name="warehouse", allow=["salaries"])
    with session_scope() as s:
        assert connections.get_connection(session=s, name="warehouse").allowed_tables == ("scored",)
    deleted = cli("connection", "delete", "warehouse", "--as", "admin")
    assert deleted.exit_code == 0 and "no data connections" in cli("connection", "list", "--as", "admin").output
    with session_scope() as s:
        assert s.exec(select(AuditEvent.actor).where(AuditEvent.action == "connection.delete")).all() == ["admin"]


def _watchtowers_own_url_spelled_differently() -> str:
    from core.config import get_settings

    own = get_settings().database_url
    if own.startswith("sqlite"):
        path = Path(own.split("///", 1)[1])
        return f"sqlite:///{path.parent}/../{path.parent.name}/./{path.name}"
    return "postgresql://postgres@localhost/test"  # the tests' Watchtower lives in database `test` on 127.0.0.1


def test_a_connection_may_never_point_at_watchtowers_own_database(world, monkeypatch):
    monkeypatch.setenv("WT_SNEAKY_URL", _watchtowers_own_url_spelled_differently())
    before = _counts()
    for setting in ("WT_SNEAKY_URL", "WATCHTOWER_DATABASE_URL"):
        refused = cli("connection", "create", "mine", "--secret", setting, "--allow", "user", "--as", "admin")
        assert refused.exit_code == 1
        assert f"connection mine: setting {setting} points at Watchtower's own database" in refused.output
    assert _counts() == before
    _register()
    with pytest.raises(Forbidden, match="points at Watchtower's own database"):
        with session_scope() as s:
            connections.update_connection(session=s, actor=ADMIN, name="warehouse", secret_name="WT_SNEAKY_URL")
    sc = _scenario()
    # Later someone changes the setting itself: the run checks again before it queries.
    monkeypatch.setenv("WT_WAREHOUSE_URL", _watchtowers_own_url_spelled_differently())
    done = _run(sc.id)
    assert done.status == "failed" and [st.status for st in done.steps] == ["failed", "skipped"]
    assert done.error == ("step 1 (ingest) failed: connection warehouse: setting WT_WAREHOUSE_URL points at "
                          "Watchtower's own database; a data connection may only read other databases")


BAD_QUERIES = [
    ("select * from scored; delete from scored", r"the query must be one statement; it has 2"),
    ("select * from scored; select * from salaries", r"the query must be one statement; it has 2"),
    ("delete from scored", r"may only read: DELETE is not allowed"),
    ("insert into scored (tx) values ('x')", r"may only read: INSERT is not allowed"),
    ("update scored set score = 1", r"may only read: UPDATE is not allowed"),
    ("drop table scored", r"may only read: DROP is not allowed"),
    ("create table evil (a int)", r"may only read: CREATE is not allowed"),
    ("with gone as (delete from scored returning *) select * from gone", r"may only read: DELETE is not allowed"),
    ("copy scored to '/tmp/scored.csv'", r"may only read: COPY is not allowed"),
    ("attach database '/tmp/other.db' as other", r"ATTACH is not allowed|does not parse"),
    ("pragma writable_schema = on", r"may only read: PRAGMA is not allowed|does not parse"),
    ("select * into evil from scored", r"may only read: INTO is not allowed"),
    ("select * from salaries", r"reads table salaries, which the connection does not allow \(allowed: scored\)"),
    ("select s.* from scored s join salaries p on true", r"reads table salaries, which"),
    ("with x as (select * from salaries) select * from x", r"reads table salaries, which"),
    ("select * from scored where tx in (select name from salaries)", r"reads table salaries, which"),
    ("select * from sqlite_master", r"reads table sqlite_master, which"),
    ("select pg_read_file('/etc/passwd') as tx", r"may not call pg_read_file\(\)"),
]


@pytest.mark.parametrize("query, message", BAD_QUERIES, ids=[q for q, _m in BAD_QUERIES])
def test_a_query_that_could_write_or_read_beyond_its_tables_is_refused(world, query, message):
    _register()
    before = _counts()
    with pytest.raises((InvalidInput, Forbidden)) as refused:
        _scenario(query)
    assert str(refused.value).startswith("step 1 (ingest): ") and re.search(message, str(refused.value))
    assert _counts() == before
    # A scenario stored before the checks (or written around them) is refused by the run itself.
    sc = _scenario(name="stored earlier")
    _store_steps(sc.id, {"connection": "warehouse", "query": query})
    done = _run(sc.id)
    assert done.status == "failed" and done.error.startswith("step 1 (ingest) failed: ")
    assert re.search(message, done.error)
    assert _source_rows(world) == (300, {"scored", "salaries"})


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_sqlite_source_cannot_attach_another_database_even_when_the_checks_are_bypassed(world):
    from core.config import get_settings

    own = get_settings().database_url.split("///", 1)[1]
    with pytest.raises(sqlite3.OperationalError, match="too many attached databases"):
        connections.read_only_frame(world, f"attach database '{own}' as wt")


@pytest.mark.parametrize("statement", ["delete from scored", "create table evil (a int)",
                                       "insert into scored (tx) values ('x')", "drop table salaries"])
def test_the_database_itself_refuses_a_write_even_when_the_query_checks_are_bypassed(world, statement):
    with pytest.raises(Exception, match=r"(?i)read-only|readonly"):
        connections.read_only_frame(world, statement)
    assert _source_rows(world) == (300, {"scored", "salaries"})


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)  # data-modifying WITH is PostgreSQL syntax
def test_a_writing_cte_is_refused_by_postgresql_itself(world):
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        connections.read_only_frame(world, "with gone as (delete from scored returning *) select count(*) from gone")
    assert _source_rows(world) == (300, {"scored", "salaries"})


def test_a_step_naming_a_setting_instead_of_a_connection_is_refused(world):
    before = _counts()
    with pytest.raises(InvalidInput, match=r"step 1 \(ingest\) names a setting or URL \(url_secret\); a SQL "
                                           r"ingest names a data connection"):
        with session_scope() as s:
            scenarios.create_scenario(session=s, actor=MAYA, project_key="CARDS", model="fraud", name="old style",
                                      steps=[{"kind": "ingest", "params": {"source": "sql", "query": "select 1",
                                                                           "url_secret": "WT_WAREHOUSE_URL"}}])
    assert _counts() == before
    _register()
    sc = _scenario(name="stored earlier")
    _store_steps(sc.id, {"url_secret": "WATCHTOWER_DATABASE_URL", "query": "select * from user"})
    done = _run(sc.id)
    assert done.status == "failed"
    assert done.error.startswith("step 1 (ingest) failed: this ingest step names a setting or URL (url_secret)")


def test_a_connection_narrowed_after_the_scenario_was_written_holds_at_run_time(world):
    _register(allow=("scored", "salaries"))
    sc = _scenario("select s.tx, s.ts, s.score, s.is_fraud from scored s join salaries p on p.name = 'ceo'")
    with session_scope() as s:
        connections.update_connection(session=s, actor=ADMIN, name="warehouse", allow=["scored"])
    done = _run(sc.id)
    assert done.status == "failed" and "reads table salaries, which the connection does not allow" in done.error


@pytest.mark.parametrize("args, message", [
    (("--secret", "sqlite:///tmp/x.db", "--allow", "scored"), "must be the NAME of a setting"),
    (("--secret", "WT_NOT_SET_ANYWHERE", "--allow", "scored"), "setting WT_NOT_SET_ANYWHERE is not set"),
    (("--secret", "WT_WAREHOUSE_URL", "--allow", "scored; drop"), "is not a table name"),
])
def test_bad_connections_are_refused_with_a_clear_message(world, args, message):
    before = _counts()
    result = cli("connection", "create", "warehouse", *args, "--as", "admin")
    assert result.exit_code == 1 and message in result.output
    assert _counts() == before


def test_a_sqlite_source_is_opened_read_only(tmp_path):
    path = tmp_path / "plain.db"
    with sqlite3.connect(path) as conn:
        conn.execute("create table t (a int)")
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        connections.read_only_frame(f"sqlite:///{path}", "insert into t values (1)")
    assert connections.read_only_frame(f"sqlite:///{path}", "select count(*) as n from t")["n"].tolist() == [0]
