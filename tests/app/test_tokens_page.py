"""The Tokens page: a person creates a token, copies its secret once, sees it listed and revokes it."""

from __future__ import annotations

import pytest

from core.db import session_scope
from core.errors import Unauthenticated
from core.identity import tokens, users
from tests.app.conftest import open_page, texts
from tests.support.people import ADMINISTRATOR

PAGE = "pages/tokens.py"


@pytest.fixture
def people(sqlite_home):  # noqa: ANN001, ANN201
    with session_scope() as s:
        for name, role in (("maya", "ml_engineer"), ("bianca", "business"), ("admin", "admin")):
            users.create_user(session=s, actor=ADMINISTRATOR, username=name, name=name.title(),
                              email=f"{name}@bank.test", roles=[role])


def test_a_token_is_created_shown_once_listed_and_revoked(people):
    at = open_page(PAGE, username="maya")
    assert not at.exception and at.title[0].value == "Tokens"
    at.text_input(key="token_name").input("ci")
    at.text_input(key="token_scopes").input("cli, predict:production/fraud-detector")
    at.button(key="token_create").click().run()
    assert not at.exception
    secret = at.code[0].value
    assert secret.startswith("wt_") and "shown only this once" in texts(at)
    listed = at.dataframe[0].value
    assert list(listed["Name"]) == ["ci"] and list(listed["Status"]) == ["active"]
    assert listed.iloc[0]["Scopes"] == "cli, predict:production/fraud-detector"
    with session_scope() as s:
        assert tokens.authenticate_token(session=s, secret=secret).actor.username == "maya"

    at.run()  # any later run: the secret is gone from the page
    assert not at.code and secret not in texts(at)

    at.button(key="token_revoke").click().run()
    assert "revoked: it never works again" in texts(at)
    assert list(at.dataframe[0].value["Status"]) == ["revoked"]
    with session_scope() as s, pytest.raises(Unauthenticated, match="revoked"):
        tokens.authenticate_token(session=s, secret=secret)


def test_a_scope_beyond_the_persons_roles_is_refused_and_only_an_administrator_sees_everyones(people):
    at = open_page(PAGE, username="bianca")
    at.text_input(key="token_name").input("deployer")
    at.text_input(key="token_scopes").input("deploy:production/*")
    at.button(key="token_create").click().run()
    assert "bianca may not hold scope 'deploy:production/*'" in at.error[0].value and not at.code
    assert "No tokens yet." in texts(at)
    with session_scope() as s:
        maya = users.get_user(session=s, username="maya").actor
        tokens.create_token(session=s, actor=maya, name="ci", scopes=["cli"])
    assert not open_page(PAGE, username="bianca").toggle
    admin = open_page(PAGE, username="admin")
    assert "No tokens yet." in texts(admin)
    admin.toggle(key="tokens_all").set_value(True).run()
    assert list(admin.dataframe[0].value["User"]) == ["maya"]
