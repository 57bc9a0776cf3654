"""`audit verify` over 100,000 events: target ≤ 5 s, against computing the same 100,000 HMACs in a plain loop.

The chain is written straight into a database of its own — SQLite in a temporary home, or with --postgres a
private schema in the benchmarks' database (bench/common.py) — then verified against a signed checkpoint of
its head, as `watchtower audit verify --checkpoint FILE` does. Exits 1 when verification misses the target.
Usage: .venv/bin/python bench/bench_audit.py [--events N] [--postgres]   (BENCH_QUICK=1: 10,000 events)
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import sys
import tempfile
import time
from contextlib import nullcontext
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import finish, postgres_url, private_schema, report, sized  # noqa: E402

TARGET_S = 5.0
ACTIONS = ("version.register", "check.run", "deploy", "user.create", "review.sign")


def populate(n: int) -> list[bytes]:
    """Write N chained events in batches; return their payloads (for the baseline)."""
    from sqlalchemy import insert

    from core import audit, db
    from core.entities import AuditEvent, AuditHead

    key = audit.audit_key()
    start = datetime(2026, 1, 1)
    prev, rows, payloads = "", [], []
    engine = db.get_engine()
    for seq in range(1, n + 1):
        at = start + timedelta(seconds=seq, microseconds=seq % 997)
        details = {"model": f"model-{seq % 40}", "version": seq % 9, "rows": seq * 3}
        entity_id = f"model-{seq % 40}:v{seq % 9}"
        action = ACTIONS[seq % len(ACTIONS)]
        payload = audit._payload(seq, at, f"user{seq % 25}", action, "model_version", entity_id, seq % 12 or None,
                                 details, prev)
        digest = hmac.digest(key, payload, hashlib.sha256).hex()
        payloads.append(payload)
        rows.append({"seq": seq, "at": at, "actor": f"user{seq % 25}", "action": action,
                     "entity_type": "model_version", "entity_id": entity_id, "project_id": seq % 12 or None,
                     "details": details, "prev_hash": prev, "hash": digest})
        prev = digest
        if len(rows) == 10_000:
            with engine.begin() as conn:
                conn.execute(insert(AuditEvent), rows)
            rows = []
    with engine.begin() as conn:
        if rows:
            conn.execute(insert(AuditEvent), rows)
        conn.execute(insert(AuditHead), [{"id": 1, "seq": n, "last_hash": prev}])
    return payloads


def measure(n: int, backend: str) -> bool:
    from core import audit, db
    from core.access import SYSTEM

    t0 = time.perf_counter()
    payloads = populate(n)
    print(f"wrote {n:,} chained events in {time.perf_counter() - t0:.1f}s")
    cp_file = Path(os.environ["WATCHTOWER_HOME"]) / "checkpoints.jsonl"
    with db.session_scope() as s:
        cp = audit.write_checkpoint(session=s, actor=SYSTEM, destination=str(cp_file))
    checkpoints = audit.read_checkpoints(cp_file)

    key = audit.audit_key()
    t0 = time.perf_counter()
    for payload in payloads:
        hmac.digest(key, payload, hashlib.sha256).hex()
    baseline = time.perf_counter() - t0

    t0 = time.perf_counter()
    with db.session_scope() as s:
        verified = audit.verify(session=s, checkpoints=checkpoints)
    elapsed = time.perf_counter() - t0
    assert verified.ok and verified.events == n + 1 and cp.seq == n, verified.problems[:3]
    print(f"baseline: {n:,} HMAC-SHA256 in a plain loop      {baseline:6.2f}s")
    print(f"audit verify against a checkpoint ({verified.events:,} events) {elapsed:6.2f}s "
          f"({elapsed / baseline:.1f}× the baseline; target ≤ {TARGET_S:.0f}s)")
    ok = elapsed <= TARGET_S
    report(f"audit verify, {n:,} events ({backend})", f"{elapsed:.2f} s ({elapsed / baseline:.1f}x the plain HMAC loop)",
           f"<= {TARGET_S:.0f} s", ok)
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=sized(100_000, 10_000))
    parser.add_argument("--postgres", action="store_true", help="Use the benchmarks' PostgreSQL database.")
    args = parser.parse_args()
    base = postgres_url() if args.postgres else None
    if args.postgres and not base:
        raise SystemExit(1)
    with tempfile.TemporaryDirectory() as tmp, (private_schema(base, "bench_audit") if base else nullcontext()) as pg:
        os.environ["WATCHTOWER_HOME"] = tmp
        os.environ.pop("WATCHTOWER_AUDIT_KEY", None)
        os.environ["WATCHTOWER_DATABASE_URL"] = pg or f"sqlite:///{tmp}/watchtower.db"
        backend = "postgresql" if pg else "sqlite"
        print(f"backend: {backend}")
        try:
            measure(args.events, backend)
        finally:
            from core import db

            db.dispose_engines()
    finish()


if __name__ == "__main__":
    main()
