"""Passwords are scrypt-hashed with a per-user salt; roles are checked; demo mode skips the password."""

import pytest

from core import users
from core.db import session_scope
from core.entities import User
from core.errors import Conflict, Forbidden, InvalidInput
from tests.core.people import ADMINISTRATOR


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


def test_authenticate(backend):
    with session_scope() as s:
        users.create_user(session=s, actor=ADMINISTRATOR, username="rhea", name="Rhea", email="r@x.io", roles=["risk_manager"],
                          password="s3cret-pass")
    with session_scope() as s:
        assert users.authenticate(session=s, username="rhea", password="s3cret-pass").roles == ("risk_manager",)
        with pytest.raises(Forbidden):
            users.authenticate(session=s, username="rhea", password="wrong-pass")
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
    from core import audit, tokens
    from core.errors import NotFound, Unauthenticated

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
