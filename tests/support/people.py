"""Who sets up a test's world, and how a test's command line proves who it is."""

from __future__ import annotations

from core.access import Actor
from core.db import session_scope
from core.errors import NotFound
from core.identity import tokens, users

ADMINISTRATOR = Actor(username="admin", roles=("admin",))


def cli_token(username: str, roles: tuple[str, ...] = ()) -> dict[str, str]:
    """The environment of a command line acting as `username` through a `cli` token (created with the user if new)."""
    with session_scope() as s:
        try:
            person = users.get_user(session=s, username=username)
        except NotFound:
            person = users.create_user(session=s, actor=ADMINISTRATOR, username=username, name=username.title(),
                                       email=f"{username}@bank.test", roles=list(roles))
        existing = len(tokens.list_tokens(session=s, actor=person.actor))
        _, secret = tokens.create_token(session=s, actor=person.actor, name=f"cli-{existing + 1}", scopes=["cli"])
    return {"WATCHTOWER_TOKEN": secret}
