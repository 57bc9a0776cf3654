"""Leases in the database, so that two workers never run the same scenario at the same time.

On SQLite a lease is a `Lease` row with an expiry that its holder renews; a holder that dies stops
renewing and the lease expires. On PostgreSQL it is a session-level advisory lock
(`pg_try_advisory_lock`) on a dedicated connection: the server releases it the moment the holder's
connection dies. `exclusive` wraps a short critical section (check-then-insert) in a lease.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import delete, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from core.clock import now
from core.db import get_engine, is_sqlite, session_scope
from core.entities import Lease


def ttl_seconds() -> float:
    """How long a lease outlives its last renewal (renewed every third of it)."""
    return float(os.environ.get("WATCHTOWER_LEASE_TTL", "60"))


def new_holder_id() -> str:
    """A worker identity: host, process id and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def _alive_here(holder: str | None) -> bool | None:
    """Whether the holder's process runs on this host: True / False, or None for another host (unknown)."""
    try:
        host, pid, _ = (holder or "").split(":")
        if host != socket.gethostname():
            return None
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (ValueError, PermissionError):
        return None
    return True


def holder_is_dead_here(holder: str | None) -> bool:
    """True when the holder ran on this host and its process is gone (a fast path before the expiry)."""
    return _alive_here(holder) is False


def _key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@dataclass
class Held:
    """An acquired lease; `release()` it when done (or use it as a context manager)."""

    name: str
    holder: str
    ttl: float
    conn: Connection | None = None  # PostgreSQL: the connection that owns the advisory lock
    released: bool = field(default=False)

    def renew(self) -> bool:
        """Push the expiry forward; False when the lease was lost (then stop working under it)."""
        if self.conn is not None:
            try:
                self.conn.execute(text("select 1"))
                self.conn.commit()
                return True
            except Exception:  # noqa: BLE001  (a dead connection means the lock is gone)
                return False
        with session_scope() as s:
            changed = s.execute(update(Lease).where(Lease.name == self.name, Lease.holder == self.holder)
                                .values(expires_at=now() + timedelta(seconds=self.ttl)))
            return changed.rowcount == 1

    def release(self) -> None:
        if self.released:
            return
        self.released = True
        if self.conn is not None:
            try:
                self.conn.execute(text("select pg_advisory_unlock(:k)"), {"k": _key(self.name)})
                self.conn.commit()
            finally:
                self.conn.close()
            return
        with session_scope() as s:
            s.execute(delete(Lease).where(Lease.name == self.name, Lease.holder == self.holder))

    def __enter__(self) -> Held:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def acquire(name: str, *, holder: str, ttl: float | None = None) -> Held | None:
    """Take the lease, or return None when a live holder has it."""
    ttl = ttl if ttl is not None else ttl_seconds()
    engine = get_engine()
    if not is_sqlite(engine):
        conn = engine.connect()
        got = conn.execute(text("select pg_try_advisory_lock(:k)"), {"k": _key(name)}).scalar()
        conn.commit()
        if not got:
            conn.close()
            return None
        return Held(name=name, holder=holder, ttl=ttl, conn=conn)
    at = now()
    try:
        with session_scope() as s:
            s.add(Lease(name=name, holder=holder, expires_at=at + timedelta(seconds=ttl)))
        return Held(name=name, holder=holder, ttl=ttl)
    except IntegrityError:
        pass
    # The row exists: take it over only if it expired or its holder died here; one UPDATE decides atomically.
    with session_scope() as s:
        row = s.get(Lease, name)
        if row is None:
            return None  # released meanwhile: the next attempt inserts it
        alive = _alive_here(row.holder)
        if alive:
            return None  # a live process on this host: its renewal is only late
        q = update(Lease).where(Lease.name == name, Lease.holder == row.holder)
        if alive is None:
            q = q.where(Lease.expires_at < at)
        changed = s.execute(q.values(holder=holder, expires_at=at + timedelta(seconds=ttl)))
        return Held(name=name, holder=holder, ttl=ttl) if changed.rowcount == 1 else None


def is_free(name: str) -> bool:
    """Whether nobody alive holds the lease right now."""
    engine = get_engine()
    if not is_sqlite(engine):
        with engine.connect() as conn:
            got = conn.execute(text("select pg_try_advisory_lock(:k)"), {"k": _key(name)}).scalar()
            if got:
                conn.execute(text("select pg_advisory_unlock(:k)"), {"k": _key(name)})
            conn.commit()
            return bool(got)
    with session_scope() as s:
        row = s.get(Lease, name)
        if row is None:
            return True
        alive = _alive_here(row.holder)
        # A live process on this host keeps its lease even if a long write delayed its renewal.
        return alive is False or (alive is None and row.expires_at < now())


@contextmanager
def exclusive(name: str, *, holder: str, wait: float = 30.0) -> Iterator[None]:
    """Mutual exclusion across processes for a short critical section (e.g. check-then-insert)."""
    deadline = time.monotonic() + wait
    while (held := acquire(name, holder=holder, ttl=max(wait, 5.0))) is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"lease {name} stayed busy for {wait:g}s")
        time.sleep(0.02)
    try:
        yield
    finally:
        held.release()
