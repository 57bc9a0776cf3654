"""token create, list, revoke: personal access tokens for scripts, the command line and the scoring API."""

from __future__ import annotations

import json

import click

from core.cli.base import fails_cleanly, main
from core.errors import Forbidden


def _when(moment) -> str:  # noqa: ANN001 - datetime | None
    return f"{moment:%Y-%m-%d %H:%M}" if moment else "never"


@main.group("token")
def token_group() -> None:
    """Personal access tokens: shown once, stored as a hash, scoped, expiring, revocable."""


@token_group.command("create")
@click.option("--name", required=True, help="What the token is for, e.g. ci (unique among your active tokens).")
@click.option("--scope", "scopes", multiple=True, required=True,
              help="cli, predict:ENV/MODEL, read:ENV/MODEL or deploy:ENV/MODEL (ENV, MODEL may be *); repeatable.")
@click.option("--expires", default="90d", show_default=True, help="Lifetime: Nd or Nh, at most a year.")
@click.option("--as", "as_user", default=None, help="The user the token acts for (proven by password).")
@fails_cleanly
def token_create(name: str, scopes: tuple[str, ...], expires: str, as_user: str | None) -> None:
    """Create a token and print its secret once: it is never shown again."""
    from core.cli.actors import current_identity
    from core.db import session_scope
    from core.identity import tokens

    identity = current_identity(as_user, what="token create")
    if identity.method == "token":
        # A stolen token must not be able to outlive its own revocation by minting another one.
        raise Forbidden("a token cannot create tokens: unset WATCHTOWER_TOKEN and give your password")
    lifetime = tokens.parse_duration(expires)
    with session_scope() as s:
        token, secret = tokens.create_token(session=s, actor=identity.actor, name=name, scopes=list(scopes),
                                            expires_in=lifetime)
    click.echo(f"token {token.id} {token.name!r} for {token.username}, scopes {', '.join(token.scopes)}, "
               f"expires {_when(token.expires_at)} UTC")
    click.echo(secret)
    click.echo("Copy it now: it is shown only this once.", err=True)
    if "cli" in token.scopes:
        click.echo(f"  command line: export WATCHTOWER_TOKEN={secret}", err=True)
    if any(s != "cli" for s in token.scopes):
        click.echo(f"  scoring API:  curl -H 'Authorization: Bearer {secret}' ...", err=True)


@token_group.command("list")
@click.option("--all", "everyone", is_flag=True, help="Everyone's tokens (administrators).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--as", "as_user", default=None, help="Act as this user (authenticated).")
@fails_cleanly
def token_list(everyone: bool, fmt: str, as_user: str | None) -> None:
    """Your tokens (or everyone's with --all), newest first: never a secret."""
    from core.cli.actors import current_identity
    from core.db import session_scope
    from core.identity import tokens

    actor = current_identity(as_user, what="token list").actor
    with session_scope() as s:
        found = tokens.list_tokens(session=s, actor=actor, everyone=everyone)
    if fmt == "json":
        click.echo(json.dumps([{"id": t.id, "user": t.username, "name": t.name, "prefix": t.prefix,
                                "scopes": list(t.scopes), "created_at": t.created_at.isoformat(),
                                "last_used_at": t.last_used_at.isoformat() if t.last_used_at else None,
                                "expires_at": t.expires_at.isoformat(), "status": t.status} for t in found], indent=2))
        return
    if not found:
        click.echo("no tokens")
    for t in found:
        click.echo(f"{t.id:>4}  {t.username:<12} {t.name:<20} {t.status:<8} {', '.join(t.scopes):<40} "
                   f"created {_when(t.created_at)}  last used {_when(t.last_used_at)}  expires {_when(t.expires_at)}")


@token_group.command("revoke")
@click.argument("token_id", type=int)
@click.option("--as", "as_user", default=None, help="Act as this user (authenticated).")
@fails_cleanly
def token_revoke(token_id: int, as_user: str | None) -> None:
    """Revoke token ID (yours, or anyone's for an administrator): it never works again."""
    from core.cli.actors import current_identity
    from core.db import session_scope
    from core.identity import tokens

    actor = current_identity(as_user, what="token revoke").actor
    with session_scope() as s:
        token = tokens.revoke_token(session=s, actor=actor, token_id=token_id)
    click.echo(f"token {token.id} {token.name!r} of {token.username} revoked")
