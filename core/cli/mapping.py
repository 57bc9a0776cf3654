"""model mapping, model set-mapping: which column of a model's data is what."""

from __future__ import annotations

import json

import click

from core.cli.base import fails_cleanly
from core.cli.columns import column_options, declared_from_options, show_proposal
from core.cli.projects import model_group


@model_group.command("mapping")
@click.argument("model")
@click.option("--history", is_flag=True, help="Every recorded mapping, oldest first.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--as", "as_user", default=None, help="Act as this user (authenticated).")
@fails_cleanly
def model_mapping(model: str, history: bool, fmt: str, as_user: str | None) -> None:
    """Show which column of MODEL's data is what (--format json writes a schema file for --schema)."""
    from core.db import session_scope
    from core.models import mappings

    with session_scope() as s:
        rows = (mappings.mapping_history(session=s, model=model) if history
                else [mappings.current_mapping(session=s, model=model)])
    if fmt == "json":
        shown = [m.mapping.as_schema() for m in rows]
        click.echo(json.dumps(shown if history else shown[0], indent=2))
        return
    for info in rows:
        when = f" by {info.created_by} on {info.created_at:%Y-%m-%d %H:%M}" if info.created_at else ""
        click.echo(f"{info.model} mapping {info.number}{when}" + (f" ({info.notes})" if info.notes else ""))
        for column, role in info.mapping.roles().items():
            click.echo(f"  {role:<20} {column}")
        for column in info.ignored:
            click.echo(f"  {'ignored':<20} {column}")


@model_group.command("set-mapping")
@click.argument("model")
@column_options
@click.option("--notes", default="", help="Why the mapping changes (kept with it and in the audit trail).")
@click.option("--dry-run", is_flag=True, help="Show the corrected mapping without recording it.")
@click.option("--as", "as_user", default=None, help="Act as this user (authenticated).")
@fails_cleanly
def model_set_mapping(model: str, id_col: str | None, ts_col: str | None, features: str | None,
                      kinds: tuple[str, ...], schema: str | None, notes: str, dry_run: bool,
                      as_user: str | None) -> None:
    """Correct MODEL's column mapping as a new mapping; later evaluations use its features."""
    from core.cli.actors import resolve_actor
    from core.db import session_scope
    from core.models import mappings

    actor = resolve_actor(as_user)
    declared = declared_from_options(schema=schema, id_col=id_col, ts_col=ts_col, features=features, kinds=kinds)
    with session_scope() as s:
        proposal = mappings.propose_correction(session=s, model=model, declared=declared)
        show_proposal(proposal)
        if dry_run:
            click.echo("dry run: nothing recorded")
            return
        info = mappings.set_mapping(session=s, actor=actor, model=model, declared=declared, notes=notes)
    click.echo(f"{model} mapping {info.number} recorded: {len(info.mapping.features)} feature(s)")
