"""Personal access tokens: shown once, stored hashed, scoped, revocable, expiring."""

from datetime import timedelta

import pytest

from core.clock import now
from core.db import session_scope
from core.entities import Token
from core.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated
from core.identity import tokens, users
from tests.support.people import ADMINISTRATOR


def _people():
    with session_scope() as s:
        users.create_user(session=s, actor=ADMINISTRATOR, username="maya", name="Maya", email="m@x.io", roles=["ml_engineer"])
        users.create_user(session=s, actor=ADMINISTRATOR, username="bianca", name="Bianca", email="b@x.io", roles=["business"])
        users.create_user(session=s, actor=ADMINISTRATOR, username="admin", name="Admin", email="a@x.io", roles=["admin"])
    with session_scope() as s:
        return {u.username: u.actor for u in users.list_users(session=s)}


def test_a_token_is_shown_once_and_stored_as_a_hash(backend):
    people = _people()
    with session_scope() as s:
        read, secret = tokens.create_token(session=s, actor=people["maya"], name="ci",
                                           scopes=["predict:production/fraud-detector"])
    assert secret.startswith("wt_") and len(secret) > 40
    with session_scope() as s:
        stored = s.query(Token).one()
        assert secret not in (stored.secret_hash, stored.prefix) and len(stored.secret_hash) == 64
        identity = tokens.authenticate_token(session=s, secret=secret)
    assert identity.actor.username == "maya" and identity.token_id == read.id
    assert tokens.require_scope(identity, "predict", environment="production", model="fraud-detector").username == "maya"
    with pytest.raises(Forbidden, match="no deploy scope"):
        tokens.require_scope(identity, "deploy", environment="production", model="fraud-detector")
    with pytest.raises(Forbidden, match="no predict scope"):
        tokens.require_scope(identity, "predict", environment="staging", model="fraud-detector")
    with pytest.raises(Forbidden, match="command line"):
        tokens.require_scope(identity, "cli")
    with session_scope() as s:
        listed = tokens.list_tokens(session=s, actor=people["maya"])
    assert [(t.name, t.status, t.last_used_at is not None) for t in listed] == [("ci", "active", True)]


def test_revoked_expired_and_forged_tokens_are_refused(backend):
    people = _people()
    with session_scope() as s:
        read, secret = tokens.create_token(session=s, actor=people["maya"], name="ci", scopes=["cli"])
        _, short = tokens.create_token(session=s, actor=people["maya"], name="short", scopes=["cli"],
                                       expires_in=timedelta(hours=1))
        s.query(Token).filter(Token.name == "short").update({"expires_at": now() - timedelta(seconds=1)})
    with session_scope() as s:
        with pytest.raises(NotFound):
            tokens.revoke_token(session=s, actor=people["bianca"], token_id=read.id)
        tokens.revoke_token(session=s, actor=people["maya"], token_id=read.id)
    with session_scope() as s:
        with pytest.raises(Unauthenticated, match="revoked"):
            tokens.authenticate_token(session=s, secret=secret)
        with pytest.raises(Unauthenticated, match="expired"):
            tokens.authenticate_token(session=s, secret=short)
        for forged in ("", "wt_" + "A" * 43, secret[:-1] + ("A" if secret[-1] != "A" else "B"), "Bearer " + secret):
            with pytest.raises(Unauthenticated):
                tokens.authenticate_token(session=s, secret=forged)


def test_scopes_are_checked_when_granted(backend):
    people = _people()
    with session_scope() as s:
        with pytest.raises(Forbidden, match="deploy"):
            tokens.create_token(session=s, actor=people["bianca"], name="x", scopes=["deploy:production/*"])
        with pytest.raises(InvalidInput, match="scope"):
            tokens.create_token(session=s, actor=people["maya"], name="x", scopes=["predict:production"])
        with pytest.raises(InvalidInput, match="expiry"):
            tokens.parse_duration("10y")
        with pytest.raises(InvalidInput, match="longer than a year"):
            tokens.parse_duration("400d")
        tokens.create_token(session=s, actor=people["maya"], name="ci", scopes=["read:*/*"])
        with pytest.raises(Conflict):
            tokens.create_token(session=s, actor=people["maya"], name="ci", scopes=["read:*/*"])
    with session_scope() as s:
        assert s.query(Token).count() == 1
        with pytest.raises(Forbidden):
            tokens.list_tokens(session=s, actor=people["maya"], everyone=True)
        assert [t.username for t in tokens.list_tokens(session=s, actor=people["admin"], everyone=True)] == ["maya"]
