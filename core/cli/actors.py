"""Who a command acts as: `--as USER` authenticates that user; without it, the local operator (system)."""

from __future__ import annotations

import os

import click

from core import users
from core.access import SYSTEM, Actor
from core.config import get_settings
from core.db import session_scope


def resolve_actor(username: str | None) -> Actor:
    """Authenticate USER (password from WATCHTOWER_PASSWORD or a prompt; none in demo mode)."""
    if not username:
        return SYSTEM
    settings = get_settings()
    password = None
    if not settings.demo:
        password = os.environ.get("WATCHTOWER_PASSWORD")
        if password is None:
            password = click.prompt(f"password for {username}", hide_input=True)
    with session_scope() as s:
        return users.authenticate(session=s, username=username, password=password, demo=settings.demo).actor
