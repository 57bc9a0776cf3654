"""Who a command acts as: a verified person, never a default.

A person is named by `--as USER` (or WATCHTOWER_USER) and proven by one of:

- WATCHTOWER_TOKEN, a personal access token with the `cli` scope (without `--as`, its owner acts);
- a password: WATCHTOWER_PASSWORD, or a hidden prompt when standard input is a terminal;
- demo mode (WATCHTOWER_DEMO=1 on a local database): the named persona acts without credentials, as the
  portal's persona picker lets it. A persona must still be named.

Without any of these a command that needs a person is refused (core.errors.Unauthenticated).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import click
from sqlalchemy.engine import make_url

from core.access import Actor
from core.config import Settings, get_settings
from core.db import session_scope
from core.errors import Unauthenticated
from core.identity import tokens, users

HOW = "--as USER with WATCHTOWER_TOKEN (watchtower token create --scope cli) or a password"
_LOOPBACK = {"localhost", "127.0.0.1", "::1"}
_META = "watchtower.identity"


@dataclass(frozen=True)
class CliIdentity:
    """The verified person a command acts for, and how they proved it (token, password or demo)."""

    actor: Actor
    method: str
    token_name: str | None = None


def local_database(settings: Settings) -> bool:
    """Whether the configured database is on this machine (an SQLite file or a loopback server)."""
    url = make_url(settings.database_url)
    return url.get_backend_name() == "sqlite" or (url.host or "") in _LOOPBACK


def demo_mode(settings: Settings | None = None) -> bool:
    """Demo mode, which counts only on a local database: WATCHTOWER_DEMO=1 never opens a shared one."""
    settings = settings or get_settings()
    return settings.demo and local_database(settings)


def needs_identity(what: str) -> Unauthenticated:
    """The refusal of a command run without an identity, saying how to give one."""
    hint = "; in demo mode --as names a persona" if get_settings().demo else ""
    return Unauthenticated(f"`{what}` needs an identity: {HOW}{hint}")


def authenticate(username: str | None, *, what: str = "this command") -> CliIdentity:
    """Verify who acts: a token, a password, or a demo persona; Unauthenticated when nobody is proven."""
    username = (username or os.environ.get("WATCHTOWER_USER") or "").strip() or None
    secret = os.environ.get("WATCHTOWER_TOKEN", "").strip()
    settings = get_settings()
    if secret:
        # A token given is the only proof tried: a bad one never falls back to a password or to demo mode.
        with session_scope() as s:
            identity = tokens.authenticate_token(session=s, secret=secret)
            actor = tokens.require_scope(identity, "cli")
            if username and username != actor.username:  # refused inside the unit of work: no use recorded
                raise Unauthenticated(f"WATCHTOWER_TOKEN belongs to {actor.username}, not to {username}")
        return CliIdentity(actor=actor, method="token", token_name=identity.token_name)
    if username is None:
        raise needs_identity(what)
    if settings.demo:
        if not local_database(settings):
            raise Unauthenticated("demo mode works on a local database only (SQLite or a server on localhost); "
                                  f"give {HOW}")
        with session_scope() as s:
            return CliIdentity(users.verify_credentials(session=s, username=username, password=None,
                                                        demo=True).actor,
                               method="demo")
    password = os.environ.get("WATCHTOWER_PASSWORD")
    if password is None:
        if not sys.stdin.isatty():
            raise Unauthenticated(f"no password for {username}: set WATCHTOWER_TOKEN (a token with the cli scope) "
                                  "or WATCHTOWER_PASSWORD, or run in a terminal to be asked")
        password = click.prompt(f"password for {username}", hide_input=True, err=True)
    with session_scope() as s:
        return CliIdentity(users.verify_credentials(session=s, username=username,
                                                        password=password).actor,
                           method="password")


def current_identity(username: str | None = None, *, what: str = "this command") -> CliIdentity:
    """The identity of the running command, verified once per invocation (a password is asked once)."""
    ctx = click.get_current_context(silent=True)
    root = ctx.find_root() if ctx is not None else None
    cached: CliIdentity | None = root.meta.get(_META) if root is not None else None
    wanted = (username or os.environ.get("WATCHTOWER_USER") or "").strip() or None
    if cached is not None and wanted in (None, cached.actor.username):
        return cached
    identity = authenticate(username, what=what)
    if root is not None:
        root.meta[_META] = identity
    return identity


def resolve_actor(username: str | None) -> Actor:
    """The verified person a command acts as; Unauthenticated (exit 1, saying how) when there is none."""
    return current_identity(username).actor
