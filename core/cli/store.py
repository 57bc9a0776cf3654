"""store migrate: move predictions kept as SQL rows by an earlier release into the lake."""

from __future__ import annotations

import click

from core.cli.base import fails_cleanly, main


@main.group("store")
def store_group() -> None:
    """The evaluation store's lake of predictions and ground truth."""


@store_group.command("migrate")
@click.option("--chunk", default=200_000, show_default=True, type=click.IntRange(min=1),
              help="Rows per lake commit (an interrupted migration resumes after the last one).")
@click.option("--as", "as_user", default=None, help="Act as this user (authenticated; an administrator).")
@fails_cleanly
def store_migrate(chunk: int, as_user: str | None) -> None:
    """Move every model's SQL prediction and label rows into the lake, checking the counts; resumable."""
    from core.cli.actors import resolve_actor
    from core.lake import migration

    actor = resolve_actor(as_user)
    moved = migration.migrate(actor=actor, chunk=chunk, progress=lambda msg: click.echo(f"  {msg}"))
    if not moved:
        click.echo("nothing to migrate: every prediction is in the lake")
        return
    kept = [m.model for m in moved if not m.moved]
    click.echo(f"{len(moved) - len(kept)} model(s) moved to the lake" + (f"; kept in SQL: {', '.join(kept)}" if kept else ""))
    if kept:
        raise SystemExit(1)
