"""Leases: one holder at a time, handed over when the holder releases, expires or dies."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlmodel import select

from core import leases
from core.db import session_scope
from core.entities import Lease

ROOT = Path(__file__).resolve().parents[2]
HOLD_SCRIPT = """
import sys, time
from core import leases
held = leases.acquire("scenario:7", holder=leases.new_holder_id())
print("held" if held else "busy", flush=True)
time.sleep(60)
"""


def test_a_lease_has_one_holder_until_it_is_released(backend):
    first = leases.acquire("scenario:1", holder="w1:1:a")
    assert first is not None
    assert leases.acquire("scenario:1", holder="w2:2:b") is None
    assert not leases.is_free("scenario:1")
    assert leases.acquire("scenario:2", holder="w2:2:b") is not None  # other scenarios are not blocked
    first.release()
    assert leases.is_free("scenario:1")
    with leases.acquire("scenario:1", holder="w2:2:b") as second:
        assert second.renew()


def _within(seconds: float, condition) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_a_lease_whose_holder_was_killed_is_free_within_moments(backend):
    proc = subprocess.Popen([sys.executable, "-c", HOLD_SCRIPT], cwd=ROOT, env=os.environ.copy(),
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        assert leases.acquire("scenario:7", holder="w2:2:b") is None
    finally:
        proc.kill()
        proc.wait()
    # PostgreSQL drops the dead connection's lock as its backend exits; SQLite sees the holder's process gone.
    assert _within(5, lambda: leases.is_free("scenario:7"))
    assert leases.acquire("scenario:7", holder="w2:2:b") is not None


def test_an_expired_lease_is_taken_over_on_sqlite(sqlite_home):
    stale = leases.acquire("scenario:3", holder="elsewhere:1:a", ttl=0.2)
    assert stale is not None and leases.acquire("scenario:3", holder="w2:2:b") is None
    time.sleep(0.3)
    taken = leases.acquire("scenario:3", holder="w2:2:b")
    assert taken is not None and not stale.renew()  # the old holder learns it lost the lease
    with session_scope() as s:
        assert s.exec(select(Lease.holder).where(Lease.name == "scenario:3")).one() == "w2:2:b"


def test_exclusive_sections_do_not_interleave(backend):
    seen: list[str] = []

    def critical(name: str) -> None:
        with leases.exclusive("schedule:1", holder=f"{name}:0:x"):
            seen.append(f"{name} in")
            time.sleep(0.2)
            seen.append(f"{name} out")

    assert leases.is_free("schedule:1")
    threads = [threading.Thread(target=critical, args=(n,)) for n in ("a", "b", "c")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(seen[i].split()[0] == seen[i + 1].split()[0] for i in range(0, 6, 2)), seen


def test_every_acquisition_gets_a_larger_fencing_token_and_a_stale_holder_is_fenced_off(backend):
    first = leases.acquire("scenario:5", holder="w1:1:a")
    first.release()
    second = leases.acquire("scenario:5", holder="w2:2:b")
    assert second.token > first.token  # tokens grow across releases too
    with session_scope() as s:
        second.fence(s)  # the newest holder passes
        s.execute(update(Lease).where(Lease.name == "scenario:5").values(token=Lease.token + 1))  # a newer lease
    with session_scope() as s, pytest.raises(leases.LeaseLost, match="a newer lease"):
        second.fence(s)
    assert not second.renew() and "newer lease" in second.lost
    second.release()
