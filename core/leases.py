"""Leases in the database, so that two workers never run the same scenario at the same time.

On SQLite a lease is a `Lease` row with an expiry that its holder renews; a holder that dies stops
renewing and the lease expires. On PostgreSQL it is a session-level advisory lock
(`pg_try_advisory_lock`) on a dedicated connection: the server releases it the moment the holder's
connection dies. `exclusive` wraps a short critical section (check-then-insert) in a lease.

Every acquisition increments the `token` of the lease's row (on PostgreSQL under the advisory lock), so
tokens only grow: the fencing token. A holder's writes call `Held.fence(session)` first, which locks the
row inside the writer's transaction and refuses (`LeaseLost`) when a newer lease exists — even after the
holder's own connection died, which is when it cannot otherwise tell that it lost the lock.
A lease opens its own short units of work: taking or renewing one must commit apart from its holder's work.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from core.clock import now
from core.db import get_engine, is_sqlite, session_scope
from core.entities import Lease


class LeaseLost(Exception):  # noqa: N818  (a state, not a programming error)
    """The holder no longer has its lease: a newer one exists, or it could not renew it."""


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


_schemas: dict[str, str] = {}


def advisory_key(conn: Connection, name: str) -> int:
    """The PostgreSQL advisory lock key of a lease: advisory locks span a database, so the schema is part of it."""
    url = str(conn.engine.url)
    if url not in _schemas:
        _schemas[url] = conn.execute(text("select current_schema()")).scalar() or ""
    return int.from_bytes(hashlib.sha256(f"{_schemas[url]}/{name}".encode()).digest()[:8], "big", signed=True)


@dataclass
class Held:
    """An acquired lease; `release()` it when done (or use it as a context manager)."""

    name: str
    holder: str
    ttl: float
    token: int = 0  # the fencing token: larger than the token of any earlier holder of this lease
    conn: Connection | None = None  # PostgreSQL: the connection that owns the advisory lock
    key: int = 0  # PostgreSQL: the advisory lock key
    released: bool = field(default=False)
    lost: str | None = None  # why the lease was lost, once it was
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)  # one user of `conn` at a time

    def mark_lost(self, reason: str) -> bool:
        """Record why the lease is lost (the first reason stays); returns False."""
        self.lost = self.lost or reason
        return False

    def renew(self) -> bool:
        """Push the expiry forward; False when the lease was lost (then stop working under it, see `lost`).

        On SQLite a database error (e.g. a long lock) propagates: the caller may try again before the expiry.
        """
        if self.lost:
            return False
        if self.conn is not None:
            with self._lock:
                try:
                    token = self.conn.execute(select(Lease.token).where(Lease.name == self.name)).scalar()
                    self.conn.commit()
                except Exception as exc:  # noqa: BLE001  (a dead connection means the lock is gone)
                    return self.mark_lost(f"its database session ended ({str(exc).strip().splitlines()[0]})")
            return token == self.token or self.mark_lost(f"a newer lease (token {token}) was taken")
        with session_scope() as s:
            changed = s.execute(update(Lease).where(Lease.name == self.name, Lease.holder == self.holder,
                                                    Lease.token == self.token)
                                .values(expires_at=now() + timedelta(seconds=self.ttl)))
            if changed.rowcount == 1:
                return True
            newer = s.exec(select(Lease.token).where(Lease.name == self.name)).first()
        return self.mark_lost(f"a newer lease (token {newer}) was taken" if newer else "its lease row was removed")

    def fence(self, session: Session) -> None:
        """Inside the caller's transaction: lock the lease's row and check that it still carries this token.

        Raises LeaseLost when a newer lease exists or this one was lost; the caller's transaction then
        writes nothing. The row stays locked until the caller commits, so no newer lease can be taken
        between this check and the caller's writes.
        """
        if self.lost:
            raise LeaseLost(f"lease {self.name} was lost: {self.lost}")
        if self.conn is not None:
            token = session.exec(select(Lease.token).where(Lease.name == self.name).with_for_update()).first()
            if token == self.token:
                return
        else:
            changed = session.execute(update(Lease).where(Lease.name == self.name, Lease.holder == self.holder,
                                                          Lease.token == self.token)
                                      .values(expires_at=now() + timedelta(seconds=self.ttl)))
            if changed.rowcount == 1:
                return
            token = session.exec(select(Lease.token).where(Lease.name == self.name)).first()
        self.mark_lost(f"a newer lease (token {token}) was taken")
        raise LeaseLost(f"lease {self.name} was lost: {self.lost}")

    def release(self) -> None:
        if self.released:
            return
        self.released = True
        if self.conn is not None:
            with self._lock:
                try:
                    self.conn.execute(update(Lease).where(Lease.name == self.name, Lease.token == self.token)
                                      .values(holder=""))
                    self.conn.execute(text("select pg_advisory_unlock(:k)"), {"k": self.key})
                    self.conn.commit()
                except Exception:  # noqa: BLE001  (drop the session: the server then releases its lock)
                    self.conn.invalidate()
                finally:
                    self.conn.close()
            return
        # The row stays (holder "" = free) so that the next holder's token is larger than this one's.
        with session_scope() as s:
            s.execute(update(Lease).where(Lease.name == self.name, Lease.holder == self.holder,
                                          Lease.token == self.token).values(holder="", expires_at=now()))

    def __enter__(self) -> Held:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _acquire_pg(name: str, holder: str, ttl: float) -> Held | None:
    conn = get_engine().connect()
    try:
        key = advisory_key(conn, name)
        got = conn.execute(text("select pg_try_advisory_lock(:k)"), {"k": key}).scalar()
        if not got:
            conn.commit()
            conn.close()
            return None
        # Under the lock, one statement makes the row or bumps its token.
        expires = now() + timedelta(seconds=ttl)
        stmt = pg_insert(Lease).values(name=name, holder=holder, expires_at=expires, token=1)
        stmt = stmt.on_conflict_do_update(index_elements=[Lease.name], set_={
            "holder": holder, "expires_at": expires, "token": Lease.token + 1}).returning(Lease.token)
        token = conn.execute(stmt).scalar_one()
        conn.commit()
    except BaseException:
        conn.invalidate()  # ending the session drops the advisory lock with it
        conn.close()
        raise
    return Held(name=name, holder=holder, ttl=ttl, token=token, conn=conn, key=key)


def _free(row: Lease, at) -> bool:  # noqa: ANN001
    if not row.holder:
        return True  # released
    alive = _alive_here(row.holder)
    # A live process on this host keeps its lease even if a long write delayed its renewal.
    return alive is False or (alive is None and row.expires_at < at)


def acquire(name: str, *, holder: str, ttl: float | None = None) -> Held | None:
    """Take the lease with a new fencing token, or return None when a live holder has it."""
    ttl = ttl if ttl is not None else ttl_seconds()
    if not is_sqlite(get_engine()):
        return _acquire_pg(name, holder, ttl)
    at = now()
    with session_scope() as s:
        row = s.get(Lease, name)
        seen = None if row is None else (row.token, _free(row, at))
    if seen is None:
        try:
            with session_scope() as s:
                s.add(Lease(name=name, holder=holder, expires_at=at + timedelta(seconds=ttl), token=1))
            return Held(name=name, holder=holder, ttl=ttl, token=1)
        except IntegrityError:
            return None  # another process made the row just now: it holds the lease
    token, free = seen
    if not free:
        return None
    # Compare-and-set on the token: of several takers, exactly one moves it on.
    with session_scope() as s:
        changed = s.execute(update(Lease).where(Lease.name == name, Lease.token == token)
                            .values(holder=holder, expires_at=at + timedelta(seconds=ttl), token=token + 1))
    return Held(name=name, holder=holder, ttl=ttl, token=token + 1) if changed.rowcount == 1 else None


def is_free(name: str) -> bool:
    """Whether nobody alive holds the lease right now."""
    engine = get_engine()
    if not is_sqlite(engine):
        with engine.connect() as conn:
            key = advisory_key(conn, name)
            got = conn.execute(text("select pg_try_advisory_lock(:k)"), {"k": key}).scalar()
            if got:
                conn.execute(text("select pg_advisory_unlock(:k)"), {"k": key})
            conn.commit()
            return bool(got)
    with session_scope() as s:
        row = s.get(Lease, name)
        return row is None or _free(row, now())


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
