"""Passwords are scrypt-hashed with a per-user salt; roles are checked; demo mode skips the password."""

from datetime import datetime, timedelta

import pytest
from sqlmodel import select

from core import audit, clock
from core.db import session_scope
from core.entities import User
from core.errors import Conflict, Forbidden, InvalidInput
from core.identity import users
from tests.support.people import ADMINISTRATOR


def test_password_is_never_stored_in_clear(backend):
    with session_scope() as s:
        users.create_user(session=s, actor=ADMINISTRATOR, username="maya", name="Maya", email="m@x.io", roles=["ml_engineer"],
                          password="correct horse")
        users.create_user(session=s, actor=ADMINISTRATOR, username="omar", name="Omar", email="o@x.io", roles=["it_ops"],
                          password="correct horse")
    with session_scope() as s:
        hashes = [u.password_hash for u in s.query(User).all()]
    assert all(h.startswith("scrypt$") and "correct horse" not in h for h in hashes)
    assert hashes[0] != hashes[1], "same password, different salts"


def test_authenticate(backend, monkeypatch):
    with session_scope() as s:
        users.create_user(session=s, actor=ADMINISTRATOR, username="rhea", name="Rhea", email="r@x.io", roles=["risk_manager"],
                          password="s3cret-pass")
    with session_scope() as s:
        assert users.authenticate(session=s, username="rhea", password="s3cret-pass").roles == ("risk_manager",)
        with pytest.raises(Forbidden):
            users.authenticate(session=s, username="rhea", password="wrong-pass")
        monkeypatch.setenv("WATCHTOWER_DEMO", "1")
        assert users.authenticate(session=s, username="rhea", password=None, demo=True).username == "rhea"


def test_bad_users_are_refused(backend):
    with session_scope() as s:
        users.create_user(session=s, actor=ADMINISTRATOR, username="a", name="A", email="a@x.io", roles=["admin"])
    with session_scope() as s:
        with pytest.raises(Conflict):
            users.create_user(session=s, actor=ADMINISTRATOR, username="a", name="A", email="a@x.io", roles=["admin"])
        with pytest.raises(InvalidInput, match="unknown role"):
            users.create_user(session=s, actor=ADMINISTRATOR, username="b", name="B", email="b@x.io", roles=["wizard"])


def test_the_first_administrator_is_created_once_even_when_two_race(backend):
    import threading

    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def bootstrap(name: str) -> None:
        barrier.wait()
        try:
            with session_scope() as s:
                users.create_first_admin(session=s, username=name, password="long-password")
            outcomes.append("created")
        except Exception as exc:  # noqa: BLE001 - the loser's refusal (or its database's) is the point
            outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=bootstrap, args=(n,)) for n in ("ann", "bob")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("created") == 1, outcomes
    with session_scope() as s:
        assert [u.roles for u in users.list_users(session=s)] == [("admin",)]
        with pytest.raises(Conflict, match="an administrator already exists"):
            users.create_first_admin(session=s, username="eve", password="long-password")


def test_only_an_administrator_manages_people_and_every_change_is_audited(backend):
    from core import audit
    from core.errors import NotFound, Unauthenticated
    from core.identity import tokens

    with session_scope() as s:
        root = users.create_first_admin(session=s, username="root", password="long-password").actor
        maya = users.create_user(session=s, actor=root, username="maya", name="Maya", email="m@x.io",
                                 roles=["ml_engineer"]).actor
    with session_scope() as s:
        with pytest.raises(Forbidden, match="maya may not users manage"):
            users.create_user(session=s, actor=maya, username="eve", name="Eve", email="e@x.io", roles=["admin"])
        with pytest.raises(Forbidden):
            users.change_roles(session=s, actor=maya, username="maya", add=["admin"])
        with pytest.raises(Conflict, match="last administrator"):
            users.change_roles(session=s, actor=root, username="root", remove=["admin"])
        with pytest.raises(Conflict, match="last administrator"):
            users.deactivate_user(session=s, actor=root, username="root")
    with session_scope() as s:
        assert users.change_roles(session=s, actor=root, username="maya", add=["it_ops"]).roles == (
            "ml_engineer", "it_ops")
        _, secret = tokens.create_token(session=s, actor=maya, name="ci", scopes=["cli"])
    with session_scope() as s:
        users.deactivate_user(session=s, actor=root, username="maya")
    with session_scope() as s:
        with pytest.raises(Unauthenticated, match="no longer active"):
            tokens.authenticate_token(session=s, secret=secret)
        with pytest.raises(NotFound):
            users.get_user(session=s, username="maya")
        trail = [(e.actor, e.action, e.entity_id) for e in audit.events(session=s) if e.action.startswith("user.")]
    assert trail[::-1] == [("root", "user.create", "root"), ("root", "user.create", "maya"),
                     ("root", "user.roles", "maya"), ("root", "user.deactivate", "maya")]


# --- lockout after repeated failures, and the audit of every sign-in -----------------------------------

def _events(action: str) -> list:
    from core.entities import AuditEvent

    with session_scope() as s:
        return list(s.exec(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)).all())


def _try(username: str, password: str) -> str:
    """Sign in as the form does; return "ok" or the refusal shown to the person."""
    try:
        with session_scope() as s:
            users.authenticate(session=s, username=username, password=password)
        return "ok"
    except Forbidden as exc:
        return str(exc)


class Clock:
    """Moves core.clock.now as a test tells it to."""

    def __init__(self, monkeypatch, start: datetime):
        self.at = start
        monkeypatch.setattr(clock, "now", lambda: self.at)

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


def test_five_wrong_passwords_lock_the_account_and_each_further_failure_doubles_the_wait(backend, monkeypatch):
    t = Clock(monkeypatch, datetime(2026, 12, 4, 9, 0, 0))
    with session_scope() as s:
        users.create_user(session=s, actor=ADMINISTRATOR, username="rhea", name="Rhea", email="r@x.io", roles=["risk_manager"],
                          password="s3cret-pass")
    for _ in range(4):
        assert _try("rhea", "guess") == "unknown user or wrong password"
    assert _try("rhea", "guess") == ("unknown user or wrong password; too many failed sign-ins: "
                                     "locked until 09:00:30 UTC")
    # The right password during the lockout is still refused, and says until when.
    t.advance(29)
    assert _try("rhea", "s3cret-pass") == "too many failed sign-ins: locked until 09:00:30 UTC"
    t.advance(1)
    assert _try("rhea", "guess").endswith("locked until 09:01:30 UTC"), "sixth failure: 60 s"
    t.advance(60)
    assert _try("rhea", "guess").endswith("locked until 09:03:30 UTC"), "seventh failure: 120 s"
    with session_scope() as s:
        assert s.exec(select(User).where(User.username == "rhea")).one().failed_sign_ins == 7
    t.advance(120)
    assert _try("rhea", "s3cret-pass") == "ok"
    with session_scope() as s:
        row = s.exec(select(User).where(User.username == "rhea")).one()
        assert (row.failed_sign_ins, row.locked_until) == (0, None), "a good sign-in clears the count"
    for _ in range(4):
        _try("rhea", "guess")
    assert _try("rhea", "guess").endswith("locked until 09:04:00 UTC"), "back to 30 s after a success"


def test_the_lockout_is_capped(backend, monkeypatch):
    t = Clock(monkeypatch, datetime(2026, 12, 4, 9, 0, 0))
    with session_scope() as s:
        users.create_user(session=s, actor=ADMINISTRATOR, username="omar", name="Omar", email="o@x.io", roles=["it_ops"],
                          password="s3cret-pass")
    for _ in range(20):
        _try("omar", "guess")
        t.advance(users.LOCKOUT_CAP_SECONDS)
    t.advance(-users.LOCKOUT_CAP_SECONDS)
    with session_scope() as s:
        row = s.exec(select(User).where(User.username == "omar")).one()
    assert row.locked_until - t.at == timedelta(seconds=users.LOCKOUT_CAP_SECONDS)


def test_sign_ins_failures_and_sign_outs_are_audited_without_telling_who_exists(backend):
    with session_scope() as s:
        users.create_user(session=s, actor=ADMINISTRATOR, username="maya", name="Maya", email="m@x.io", roles=["ml_engineer"],
                          password="correct horse")
    unknown = _try("mallory", "correct horse")
    wrong = _try("maya", "battery staple")
    assert unknown == wrong == "unknown user or wrong password"
    assert _try("maya", "correct horse") == "ok"
    with session_scope() as s:
        users.record_sign_out(session=s, username="maya")
    failed = _events("user.sign_in_failed")
    assert [(e.actor, e.entity_id, e.details["reason"]) for e in failed] == [
        ("anonymous", "mallory", "unknown user"), ("anonymous", "maya", "wrong password")]
    assert [(e.actor, e.details["method"]) for e in _events("user.sign_in")] == [("maya", "password")]
    assert [e.actor for e in _events("user.sign_out")] == ["maya"]
    with session_scope() as s:
        assert audit.verify(session=s).ok


def test_password_less_sign_in_only_in_demo_mode(backend, monkeypatch):
    with session_scope() as s:
        users.create_user(session=s, actor=ADMINISTRATOR, username="admin", name="Admin", email="a@x.io", roles=["admin"],
                          password="s3cret-pass")
    with session_scope() as s, pytest.raises(Forbidden, match="only possible in demo mode"):
        users.authenticate(session=s, username="admin", password=None, demo=True)
    monkeypatch.setenv("WATCHTOWER_DEMO", "1")
    with session_scope() as s:
        assert users.authenticate(session=s, username="admin", password=None, demo=True).roles == ("admin",)
    assert [e.details["method"] for e in _events("user.sign_in")] == ["demo"]


def test_the_command_line_audits_what_a_person_does_not_each_proof_of_who_they_are(backend):
    from click.testing import CliRunner

    from core.cli import main

    with session_scope() as s:
        users.create_user(session=s, actor=ADMINISTRATOR, username="rhea", name="Rhea", email="r@x.io",
                          roles=["risk_manager"], password="correct horse")
    ok = CliRunner().invoke(main, ["audit", "verify", "--as", "rhea"], env={"WATCHTOWER_PASSWORD": "correct horse"})
    assert ok.exit_code == 0, ok.output
    refused = CliRunner().invoke(main, ["audit", "verify", "--as", "rhea"],
                                 env={"WATCHTOWER_PASSWORD": "battery staple"})
    assert refused.exit_code == 1 and "unknown user or wrong password" in refused.output
    assert _events("user.sign_in") == []
    assert [(e.entity_id, e.details["reason"]) for e in _events("user.sign_in_failed")] == [("rhea", "wrong password")]
