"""Data connections: named, read-only SQL sources for the ingest step, registered by an administrator.

A connection names the setting that holds its database URL (never the URL itself) and the tables a query
may read. A query is one SELECT over allowed tables only, checked by parsing it, and runs in a read-only
transaction (PostgreSQL `SET TRANSACTION READ ONLY`, SQLite opened with `mode=ro`), so the database itself
refuses a write the parser missed. No connection may point at Watchtower's own database: checked when it is
registered or changed and again before every query, since the setting may change in between.
"""

from __future__ import annotations

import os
import re
import socket
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd
import sqlglot
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlglot import exp
from sqlmodel import Session, select

from core import audit
from core.access import Actor, require
from core.clock import now
from core.config import get_settings, secret
from core.entities import DataConnection
from core.errors import Conflict, Forbidden, InvalidInput, NotFound

PERMISSION = "settings.manage"  # administrators only
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_SETTING_NAME = re.compile(r"[A-Z][A-Z0-9_]{2,63}")
_TABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*(\.([A-Za-z_][A-Za-z0-9_$]*|\*))?")
# Statements and clauses that write or change a database, wherever they appear in a query.
_WRITES = tuple(t for t in (getattr(exp, n, None) for n in (
    "Insert", "Update", "Delete", "Merge", "Create", "Drop", "Alter", "AlterColumn", "TruncateTable", "Copy",
    "Command", "Pragma", "Attach", "Detach", "Into", "Set", "Use", "Transaction", "Commit", "Rollback",
    "LoadData", "Grant", "Revoke", "Analyze", "Comment", "Refresh", "Cache", "Uncache", "Lock")) if t is not None)
# Server functions that reach outside the query's tables (files, other databases, settings, processes).
_FORBIDDEN_FUNCTIONS = ("pg_", "lo_", "dblink", "set_config", "current_setting", "query_to_xml", "txid_",
                        "load_extension", "readfile", "writefile", "fts3_tokenizer", "edit", "sqlite_")
_DIALECTS = {"sqlite": "sqlite", "postgresql": "postgres"}


@dataclass(frozen=True)
class ConnectionRead:
    name: str
    secret: str
    allowed_tables: tuple[str, ...]
    created_by: str
    created_at: datetime
    updated_at: datetime
    configured: bool  # the setting holds a URL


def _read(c: DataConnection) -> ConnectionRead:
    return ConnectionRead(name=c.name, secret=c.secret, allowed_tables=tuple(c.allowed_tables),
                          created_by=c.created_by, created_at=c.created_at, updated_at=c.updated_at,
                          configured=bool(secret(c.secret)))


# --- where a URL points -----------------------------------------------------------------------------

def _parse(url: str, what: str):  # noqa: ANN202 - a sqlalchemy URL
    try:
        return make_url(url)
    except (ArgumentError, ValueError):
        raise InvalidInput(f"{what} does not hold a database URL") from None


def _backend(parsed) -> str:  # noqa: ANN001
    return parsed.get_backend_name()


def _sqlite_file(parsed) -> Path | None:  # noqa: ANN001
    database = parsed.database or ""
    if database.startswith("file:"):
        database = database[len("file:"):].split("?", 1)[0]
    if not database or database == ":memory:" or database.startswith("/:memory:"):
        return None
    return Path(os.path.realpath(database))


def _host_addresses(host: str) -> set[str]:
    if not host or host.startswith("/"):
        return {"local"}
    names = {host.lower()}
    try:
        names |= {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        pass
    loopback = {"localhost", "127.0.0.1", "::1"}
    return names | {"local"} if names & loopback or any(n.startswith("127.") for n in names) else names


def _pg_place(parsed) -> tuple[set[str], int, str]:  # noqa: ANN001
    host = parsed.host or str(parsed.query.get("host") or "")
    port = parsed.port or int(parsed.query.get("port") or 5432)
    database = parsed.database or parsed.username or "postgres"
    return _host_addresses(host), port, database


def points_at_watchtower(url: str) -> bool:
    """Whether a URL reaches Watchtower's own database (same SQLite file; same PostgreSQL host, port and db)."""
    own, other = _parse(get_settings().database_url, "WATCHTOWER_DATABASE_URL"), _parse(url, "the setting")
    if _backend(own) != _backend(other):
        return False
    if _backend(own) == "sqlite":
        mine, theirs = _sqlite_file(own), _sqlite_file(other)
        if mine is None or theirs is None:
            return mine is None and theirs is None
        return mine == theirs or (mine.exists() and theirs.exists() and os.path.samefile(mine, theirs))
    if _backend(own) == "postgresql":
        (hosts_a, port_a, db_a), (hosts_b, port_b, db_b) = _pg_place(own), _pg_place(other)
        return bool(hosts_a & hosts_b) and port_a == port_b and db_a == db_b
    return url == get_settings().database_url


def _checked_url(name: str, setting: str) -> str:
    """The URL a connection's setting holds now, refused when unset, unsupported or Watchtower's own database."""
    url = secret(setting)
    if not url:
        raise InvalidInput(f"connection {name}: setting {setting} is not set")
    parsed = _parse(url, f"setting {setting}")
    if _backend(parsed) not in _DIALECTS:
        raise InvalidInput(f"connection {name}: setting {setting} holds a {_backend(parsed)} URL; "
                           "only SQLite and PostgreSQL sources are supported")
    if _backend(parsed) == "sqlite" and _sqlite_file(parsed) is None:
        raise InvalidInput(f"connection {name}: a SQLite source must be a database file")
    if points_at_watchtower(url):
        raise Forbidden(f"connection {name}: setting {setting} points at Watchtower's own database; "
                        "a data connection may only read other databases")
    return url


# --- managing connections ---------------------------------------------------------------------------

def _clean_tables(allow: list[str]) -> list[str]:
    tables = [str(t).strip().lower() for t in allow if str(t).strip()]
    if not tables:
        raise InvalidInput("a connection needs at least one allowed table (--allow TABLE, schema.table or "
                           "schema.*)")
    for t in tables:
        if not _TABLE.fullmatch(t):
            raise InvalidInput(f"allowed table {t!r} is not a table name, schema.table or schema.*")
    return list(dict.fromkeys(tables))


def _validate(name: str, setting: str, allow: list[str]) -> tuple[str, list[str]]:
    if not _NAME.fullmatch(name):
        raise InvalidInput(f"connection name {name!r} must be letters, digits, '_', '.' or '-' (at most 64)")
    if not _SETTING_NAME.fullmatch(setting or ""):
        raise InvalidInput("--secret must be the NAME of a setting holding the database URL (e.g. "
                           "WATCHTOWER_WAREHOUSE_URL), not the URL itself")
    return setting, _clean_tables(allow)


def _row(session: Session, name: str) -> DataConnection:
    found = session.exec(select(DataConnection).where(DataConnection.name == name)).first()
    if found is None:
        known = ", ".join(session.exec(select(DataConnection.name).order_by(DataConnection.name)).all()) or "none"
        raise NotFound(f"no data connection {name!r} (registered: {known})")
    return found


def create_connection(*, session: Session, actor: Actor, name: str, secret_name: str,
                      allow: list[str]) -> ConnectionRead:
    """Register a read-only SQL source; administrators only. Its setting must hold a URL to another database."""
    require(actor, PERMISSION)
    name = (name or "").strip()
    setting, tables = _validate(name, (secret_name or "").strip(), allow)
    if session.exec(select(DataConnection).where(DataConnection.name == name)).first():
        raise Conflict(f"a data connection named {name!r} already exists")
    _checked_url(name, setting)
    row = DataConnection(name=name, secret=setting, allowed_tables=tables, created_by=actor.username)
    session.add(row)
    session.flush()
    audit.record(session, actor=actor.username, action="connection.create", entity_type="data_connection",
                 entity_id=name, details={"secret": setting, "allowed_tables": tables})
    return _read(row)


def update_connection(*, session: Session, actor: Actor, name: str, secret_name: str | None = None,
                      allow: list[str] | None = None) -> ConnectionRead:
    """Point a connection at another setting or change its allowed tables; administrators only."""
    require(actor, PERMISSION)
    row = _row(session, name)
    setting, tables = _validate(row.name, (secret_name or row.secret).strip(),
                                row.allowed_tables if allow is None else allow)
    _checked_url(row.name, setting)
    changes = {k: v for k, v in (("secret", setting), ("allowed_tables", tables))
               if v != getattr(row, k)}
    row.secret, row.allowed_tables, row.updated_at = setting, tables, now()
    session.add(row)
    audit.record(session, actor=actor.username, action="connection.update", entity_type="data_connection",
                 entity_id=row.name, details=changes)
    return _read(row)


def delete_connection(*, session: Session, actor: Actor, name: str) -> None:
    """Remove a connection; scenarios naming it fail at their ingest step until they name another."""
    require(actor, PERMISSION)
    row = _row(session, name)
    session.delete(row)
    audit.record(session, actor=actor.username, action="connection.delete", entity_type="data_connection",
                 entity_id=row.name, details={"secret": row.secret, "allowed_tables": list(row.allowed_tables)})


def list_connections(*, session: Session) -> list[ConnectionRead]:
    """Every connection by name (names of settings only, never their values)."""
    return [_read(c) for c in session.exec(select(DataConnection).order_by(DataConnection.name)).all()]


def get_connection(*, session: Session, name: str) -> ConnectionRead:
    return _read(_row(session, name))


# --- checking a query -------------------------------------------------------------------------------

def _function_name(node: exp.Func) -> str:
    return (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()


def _allowed(table: str, allowed: tuple[str, ...] | list[str]) -> bool:
    schema = table.rsplit(".", 1)[0] if "." in table else None
    return table in allowed or (schema is not None and f"{schema}.*" in allowed)


def dialect_of(setting: str) -> str:
    """The SQL dialect of the database a setting points at (PostgreSQL's when it is unset or unreadable)."""
    try:
        return _DIALECTS.get(_backend(make_url(secret(setting) or "")), "postgres")
    except (ArgumentError, ValueError):
        return "postgres"


def check_query(query: str, *, allowed_tables: tuple[str, ...] | list[str], dialect: str = "sqlite") -> str:
    """Refuse anything but one SELECT over allowed tables; return the statement to run (without a trailing ';')."""
    text = (query or "").strip()
    if not text:
        raise InvalidInput("the query is empty")
    try:
        statements = [s for s in sqlglot.parse(text, read=dialect) if s is not None]
    except sqlglot.errors.SqlglotError as exc:
        raise InvalidInput(f"the query does not parse: {str(exc).splitlines()[0]}") from None
    if len(statements) != 1:
        raise InvalidInput(f"the query must be one statement; it has {len(statements)}")
    (statement,) = statements
    for node in statement.walk():
        if isinstance(node, _WRITES):
            raise InvalidInput(f"the query may only read: {type(node).__name__.upper()} is not allowed")
        if isinstance(node, exp.Func) and _function_name(node).startswith(_FORBIDDEN_FUNCTIONS):
            raise InvalidInput(f"the query may not call {_function_name(node)}()")
    if not isinstance(statement, exp.Query):
        raise InvalidInput(f"the query may only read: it is a {type(statement).__name__.upper()}, not a SELECT")
    ctes = {c.alias_or_name.lower() for c in statement.find_all(exp.CTE)}
    for table in statement.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            raise InvalidInput(f"the query may only read tables, not {table.this.sql(dialect=dialect)}")
        name = ".".join(p for p in (table.catalog, table.db, table.name) if p).lower()
        if name in ctes:
            continue
        if not _allowed(name, allowed_tables):
            raise Forbidden(f"the query reads table {name}, which the connection does not allow "
                            f"(allowed: {', '.join(allowed_tables)})")
    return text.rstrip().rstrip(";")


# --- running a query --------------------------------------------------------------------------------

def read_only_frame(url: str, sql: str) -> pd.DataFrame:
    """Run SQL in a read-only transaction and return its rows; the database refuses any write itself."""
    parsed = make_url(url)
    if _backend(parsed) == "sqlite":
        path = _sqlite_file(parsed)
        if path is None or not path.is_file():
            raise InvalidInput("the SQLite source file does not exist")
        conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
        try:
            conn.execute("PRAGMA query_only = ON")
            conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)  # no ATTACH of another file, Watchtower's included
            cur = conn.execute(sql)
            columns = [d[0] for d in cur.description or []]
            return pd.DataFrame.from_records(cur.fetchall(), columns=columns)
        finally:
            conn.close()
    if _backend(parsed) == "postgresql":
        import psycopg

        params = {k: v for k, v in {"host": parsed.host, "port": parsed.port, "dbname": parsed.database,
                                    "user": parsed.username, "password": parsed.password}.items() if v}
        params.update({k: str(v) for k, v in parsed.query.items() if k != "options"})
        params["options"] = f"{parsed.query.get('options', '')} -c default_transaction_read_only=on".strip()
        with psycopg.connect(**params) as conn:
            with conn.cursor() as cur:
                cur.execute("SET TRANSACTION READ ONLY")
                cur.execute(sql)
                columns = [d.name for d in cur.description or []]
                rows = cur.fetchall()
            conn.rollback()
        return pd.DataFrame.from_records(rows, columns=columns)
    raise InvalidInput(f"only SQLite and PostgreSQL sources are supported, not {_backend(parsed)}")


def run_query(*, connection: str, query: str) -> pd.DataFrame:
    """Check a query against a connection (its tables, one read-only statement) and run it read-only.

    Opens its own short unit of work to read the connection: no transaction stays open while the query runs."""
    from core.db import session_scope

    with session_scope() as s:
        row = _row(s, connection)
        name, setting, allowed = row.name, row.secret, tuple(row.allowed_tables)
    url = _checked_url(name, setting)
    sql = check_query(query, allowed_tables=allowed, dialect=_DIALECTS[_backend(_parse(url, setting))])
    try:
        return read_only_frame(url, sql)
    except Exception as exc:  # noqa: BLE001  (any driver error; the URL is scrubbed from the message)
        first = (str(exc).splitlines() or [""])[0].replace(url, "•••")
        raise InvalidInput(f"the query on connection {name} failed: {type(exc).__name__}: {first}") from None
