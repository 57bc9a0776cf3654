"""Engine factory and the unit of work: SQLite (WAL, busy_timeout, foreign keys) or PostgreSQL via psycopg."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import event, inspect, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, create_engine

from core.config import get_settings

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def _normalize(url: str) -> str:
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str) -> Engine:
    """Build an engine for the URL with the pragmas the house relies on."""
    url = _normalize(url)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # noqa: ANN001
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


def get_engine(url: str | None = None) -> Engine:
    """The process-wide engine for a URL (default: the configured database), created once."""
    url = _normalize(url or get_settings().database_url)
    engine = _engines.get(url)
    if engine is None:
        # Publish the engine only once its tables exist, so no thread ever sees a schema-less database.
        with _engines_lock:
            engine = _engines.get(url)
            if engine is None:
                engine = make_engine(url)
                init_schema(engine)
                _engines[url] = engine
    return engine


def dispose_engines() -> None:
    """Close every cached engine (tests and forked workers)."""
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()


def init_schema(engine: Engine) -> None:
    """Create missing tables, and add the nullable columns a newer release declares to existing ones."""
    import core.entities  # noqa: F401  (registers the tables)

    existing = set(inspect(engine).get_table_names())
    SQLModel.metadata.create_all(engine)
    found = inspect(engine)
    for table in SQLModel.metadata.sorted_tables:
        if table.name not in existing:  # just created with every column
            continue
        have = {c["name"] for c in found.get_columns(table.name)}
        for column in table.columns:
            if column.name not in have and column.nullable:
                kind = column.type.compile(dialect=engine.dialect)
                with engine.begin() as conn:
                    conn.execute(text(f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {kind}'))


def is_sqlite(session_or_engine) -> bool:  # noqa: ANN001
    bind = session_or_engine.get_bind() if isinstance(session_or_engine, Session) else session_or_engine
    return bind.dialect.name == "sqlite"


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    session = Session(get_engine(url), expire_on_commit=False)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
