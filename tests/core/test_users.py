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
