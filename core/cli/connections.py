"""connection commands: the named, read-only SQL sources an ingest step may query (administrators manage them)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from core.cli.base import fails_cleanly, main

if TYPE_CHECKING:
    from core.automation import connections


@main.group("connection")
def connection_group() -> None:
    """Data connections: read-only SQL sources for the ingest step."""


def _show(c: connections.ConnectionRead) -> str:
    state = "" if c.configured else "  (setting not set)"
    return f"{c.name:<20} {c.secret:<32} {', '.join(c.allowed_tables)}{state}"


@connection_group.command("create")
@click.argument("name")
@click.option("--secret", "secret_name", required=True, help="The NAME of the setting holding the database URL.")
@click.option("--allow", "allow", multiple=True, required=True,
              help="A table the queries may read: table, schema.table or schema.* (repeatable).")
@click.option("--as", "as_user", default=None, help="Act as this user (an administrator).")
@fails_cleanly
def connection_create(name: str, secret_name: str, allow: tuple[str, ...], as_user: str | None) -> None:
    """Register connection NAME reading the database whose URL setting SECRET holds."""
    from core.automation import connections
    from core.cli.actors import resolve_actor
    from core.db import session_scope

    actor = resolve_actor(as_user)
    with session_scope() as s:
        c = connections.create_connection(session=s, actor=actor, name=name, secret_name=secret_name,
                                          allow=list(allow))
    click.echo(f"connection {c.name} registered: reads {', '.join(c.allowed_tables)} (URL from {c.secret})")


@connection_group.command("update")
@click.argument("name")
@click.option("--secret", "secret_name", default=None, help="Another setting holding the database URL.")
@click.option("--allow", "allow", multiple=True, help="Replace the allowed tables (repeatable).")
@click.option("--as", "as_user", default=None, help="Act as this user (an administrator).")
@fails_cleanly
def connection_update(name: str, secret_name: str | None, allow: tuple[str, ...], as_user: str | None) -> None:
    """Change connection NAME's setting or allowed tables."""
    from core.automation import connections
    from core.cli.actors import resolve_actor
    from core.db import session_scope

    actor = resolve_actor(as_user)
    with session_scope() as s:
        c = connections.update_connection(session=s, actor=actor, name=name, secret_name=secret_name,
                                          allow=list(allow) if allow else None)
    click.echo(f"connection {c.name} updated: reads {', '.join(c.allowed_tables)} (URL from {c.secret})")


@connection_group.command("list")
@fails_cleanly
def connection_list() -> None:
    """Every data connection: name, setting, allowed tables."""
    from core.automation import connections
    from core.db import session_scope

    with session_scope() as s:
        rows = connections.list_connections(session=s)
    if not rows:
        click.echo("no data connections")
    for c in rows:
        click.echo(_show(c))


@connection_group.command("delete")
@click.argument("name")
@click.option("--as", "as_user", default=None, help="Act as this user (an administrator).")
@fails_cleanly
def connection_delete(name: str, as_user: str | None) -> None:
    """Remove connection NAME."""
    from core.automation import connections
    from core.cli.actors import resolve_actor
    from core.db import session_scope

    actor = resolve_actor(as_user)
    with session_scope() as s:
        connections.delete_connection(session=s, actor=actor, name=name)
    click.echo(f"connection {name} deleted")
