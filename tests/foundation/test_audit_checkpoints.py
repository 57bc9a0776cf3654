"""The audit trail is keyed and anchored outside the database: every way to rewrite it is caught by a checkpoint."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlmodel import select

from core import audit, db
from core.access import Actor
from core.cli import main
from core.db import session_scope
from core.entities import AuditEvent, AuditVerification
from core.errors import Forbidden
from core.identity import users
from tests.support.people import ADMINISTRATOR

PASSWORD = "s3cret-pass"
ROOT = Path(__file__).resolve().parents[2]


def _trail(n: int = 6) -> None:
    """Rhea (risk manager) and Bo (business), then more people: N events in all."""
    with session_scope() as s:
        users.create_user(session=s, actor=ADMINISTRATOR, username="rhea", name="Rhea", email="rhea@x.io", roles=["risk_manager"],
                          password=PASSWORD)
        users.create_user(session=s, actor=ADMINISTRATOR, username="bo", name="Bo", email="bo@x.io", roles=["business"],
                          password=PASSWORD)
        for i in range(n - 2):
            users.create_user(session=s, actor=ADMINISTRATOR, username=f"u{i}", name=f"U{i}", email=f"u{i}@x.io", roles=["business"])


def _cli(*args: str):  # noqa: ANN202
    return CliRunner().invoke(main, list(args), env={"WATCHTOWER_PASSWORD": PASSWORD})


def _checkpoint(path: Path) -> None:
    result = _cli("audit", "checkpoint", "--out", str(path), "--as", "rhea")
    assert result.exit_code == 0, result.output


def _verify(path: Path):  # noqa: ANN202
    return _cli("audit", "verify", "--checkpoint", str(path), "--as", "rhea")


def _sql(statement: str, **params: object) -> None:
    with db.get_engine().begin() as conn:
        conn.execute(text(statement), params)


def _payload_hash(key: bytes, row: dict, prev_hash: str) -> str:
    return hmac.digest(key, audit._payload(row["seq"], row["at"], row["actor"], row["action"], row["entity_type"],
                                           row["entity_id"], row["project_id"], row["details"], prev_hash),
                       hashlib.sha256).hex()


def _recompute_chain(key: bytes, *, actor_of_2: str) -> None:
    """What an attacker with database access does: rewrite event 2 and recompute every hash after it."""
    with session_scope() as s:
        rows = s.exec(select(AuditEvent).order_by(AuditEvent.seq)).all()
        prev = ""
        for ev in rows:
            if ev.seq == 2:
                ev.actor = actor_of_2
            ev.prev_hash = prev
            ev.hash = _payload_hash(key, ev.model_dump(), prev)
            prev = ev.hash
            s.add(ev)
        s.execute(text("UPDATE audithead SET last_hash = :h"), {"h": prev})


def test_the_four_tamperings_are_each_caught_against_a_checkpoint(backend, tmp_path):
    _trail(6)
    cp = tmp_path / "checkpoints.jsonl"
    _checkpoint(cp)
    written = json.loads(cp.read_text().splitlines()[-1])
    assert (written["seq"], written["events"]) == (6, 6) and len(written["signature"]) == 64
    ok = _verify(cp)
    assert ok.exit_code == 0 and "audit chain intact" in ok.output and "checkpoint" in ok.output
    events = AuditEvent.__table__
    with db.get_engine().connect() as conn:
        pristine = [dict(r._mapping) for r in conn.execute(events.select().order_by(events.c.seq))]
        head = dict(conn.execute(text("SELECT * FROM audithead")).one()._mapping)

    def restore() -> None:
        _sql("DELETE FROM auditevent")
        with db.get_engine().begin() as conn:
            for row in pristine:
                conn.execute(events.insert().values(**row))
            conn.execute(text("UPDATE audithead SET seq = :seq, last_hash = :h"),
                         {"seq": head["seq"], "h": head["last_hash"]})
        assert _verify(cp).exit_code == 0

    # 1. An edit in place.
    _sql("UPDATE auditevent SET actor = 'mallory' WHERE seq = 3")
    edited = _verify(cp)
    assert edited.exit_code == 1 and "first wrong event: 3" in edited.output
    assert "event 3 (user.create by mallory) was edited or forged" in edited.output
    restore()

    # 2. A deletion in the middle.
    _sql("DELETE FROM auditevent WHERE seq = 4")
    deleted = _verify(cp)
    assert deleted.exit_code == 1 and "first wrong event: 4" in deleted.output
    assert "events 4..4 are missing (deleted) before event 5" in deleted.output
    restore()

    # 3. The tail truncated and the head fixed so the database is consistent on its own.
    last = pristine[3]
    _sql("DELETE FROM auditevent WHERE seq > 4")
    _sql("UPDATE audithead SET seq = 4, last_hash = :h", h=last["hash"])
    with session_scope() as s:
        assert audit.verify(session=s).ok  # without the anchor, nothing looks wrong
    truncated = _verify(cp)
    assert truncated.exit_code == 1 and "first wrong event: 5" in truncated.output
    assert "events 5..6 are missing: the checkpoint of" in truncated.output
    assert "its tail was truncated" in truncated.output
    restore()

    # 4. The whole chain recomputed, by someone without the key.
    _recompute_chain(b"a key the attacker guessed", actor_of_2="mallory")
    recomputed = _verify(cp)
    assert recomputed.exit_code == 1 and "first wrong event: 1" in recomputed.output
    assert "event 1 (user.create by admin) was edited or forged" in recomputed.output
    assert "event 6 does not match the checkpoint of" in recomputed.output
    restore()

    # Each verification against the checkpoint is recorded: who, when, ok, the first wrong event.
    with session_scope() as s:
        last_check = audit.last_verification(session=s)
        verified = s.exec(select(AuditVerification).order_by(AuditVerification.id)).all()
    assert last_check is not None and last_check.ok and last_check.actor == "rhea"
    assert [(v.ok, v.first_bad_seq) for v in verified] == [
        (True, None), (False, 3), (True, None), (False, 4), (True, None), (False, 5), (True, None), (False, 1),
        (True, None)]
    assert {v.actor for v in verified} == {"rhea"} and {v.checkpoint_seq for v in verified} == {6}


def test_a_chain_recomputed_with_the_right_key_is_still_caught_by_the_checkpoint(backend, tmp_path):
    _trail(4)
    cp = tmp_path / "cp.jsonl"
    _checkpoint(cp)
    # Even if the key leaked, rewriting history changes the head the checkpoint recorded.
    _recompute_chain(audit.audit_key(), actor_of_2="mallory")
    with session_scope() as s:
        assert audit.verify(session=s).ok
    result = _verify(cp)
    assert result.exit_code == 1 and "event 4 does not match the checkpoint of" in result.output


def test_a_forged_checkpoint_is_refused(backend, tmp_path):
    _trail(3)
    cp = tmp_path / "cp.jsonl"
    _checkpoint(cp)
    forged = json.loads(cp.read_text())
    forged["seq"] = 2
    cp.write_text(json.dumps(forged) + "\n")
    result = _verify(cp)
    assert result.exit_code == 1 and "has an invalid signature" in result.output
    cp.write_text("not json\n")
    bad = _verify(cp)
    assert bad.exit_code == 1 and "line 1 of cp.jsonl is not an audit checkpoint" in bad.output


def test_checkpoint_and_verify_need_an_authenticated_admin_or_risk_manager(backend, tmp_path):
    _trail(3)
    cp = tmp_path / "cp.jsonl"
    anonymous = CliRunner().invoke(main, ["audit", "checkpoint", "--out", str(cp)])
    assert anonymous.exit_code == 1 and "needs an identity" in anonymous.output
    assert CliRunner().invoke(main, ["audit", "verify"]).exit_code == 1
    business = _cli("audit", "checkpoint", "--out", str(cp), "--as", "bo")
    assert business.exit_code == 1 and "bo may not audit verify" in business.output
    assert _cli("audit", "verify", "--as", "bo").exit_code == 1
    wrong = CliRunner().invoke(main, ["audit", "verify", "--as", "rhea"], env={"WATCHTOWER_PASSWORD": "guess"})
    assert wrong.exit_code == 1 and "unknown user or wrong password" in wrong.output
    assert not cp.exists()
    with pytest.raises(Forbidden), session_scope() as s:
        audit.verify_against_checkpoints(session=s, actor=Actor(username="bo", roles=("business",)), checkpoints=[])


def test_the_key_never_lives_in_the_database_and_a_local_key_file_is_private(backend, monkeypatch):
    from core.config import get_settings

    monkeypatch.delenv("WATCHTOWER_AUDIT_KEY", raising=False)
    _trail(2)
    key_file = get_settings().home / "audit.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_text().strip()
    with db.get_engine().connect() as conn:
        for table in ("auditevent", "audithead"):
            dump = " ".join(str(r) for r in conn.execute(text(f"SELECT * FROM {table}")))
            assert key not in dump
    # A key from the settings takes precedence: the chain made with the file's key no longer verifies.
    monkeypatch.setenv("WATCHTOWER_AUDIT_KEY", "team-secret-from-the-vault")
    with session_scope() as s:
        assert not audit.verify(session=s).ok


class _Store(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(201)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.slow
def test_a_checkpoint_is_posted_to_a_write_once_store(backend, tmp_path):
    _trail(3)
    _Store.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Store)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/checkpoints"
        result = _cli("audit", "checkpoint", "--out", url, "--as", "rhea")
        assert result.exit_code == 0, result.output
    finally:
        server.shutdown()
    assert len(_Store.received) == 1 and _Store.received[0]["seq"] == 3
    # What the store kept verifies the trail.
    kept = tmp_path / "kept.jsonl"
    kept.write_text(json.dumps(_Store.received[0]) + "\n")
    assert _verify(kept).exit_code == 0
    down = _cli("audit", "checkpoint", "--out", url, "--as", "rhea")
    assert down.exit_code == 1 and "could not be sent" in down.output


@pytest.mark.slow
def test_the_worker_writes_checkpoints_on_a_schedule(sqlite_home, tmp_path):
    _trail(3)
    cp = tmp_path / "scheduled.jsonl"
    env = {**os.environ, "WATCHTOWER_AUDIT_CHECKPOINT": str(cp), "WATCHTOWER_AUDIT_CHECKPOINT_MINUTES": "0.02"}
    proc = subprocess.Popen([sys.executable, "-m", "core.cli", "worker"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not cp.exists() or len(cp.read_text().splitlines()) < 2):
            time.sleep(0.5)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    lines = [json.loads(line) for line in cp.read_text().splitlines()]
    assert len(lines) >= 2 and lines[0]["seq"] == 3
    # Each checkpoint is itself audited, so the next one covers it.
    assert lines[1]["seq"] == lines[0]["seq"] + 1
    assert _verify(cp).exit_code == 0
