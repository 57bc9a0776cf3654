"""The column-mapping options `model register` and `model set-mapping` share, and how a mapping is shown."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from core.models.column_mapping import Declared, Proposal


def column_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--id-col, --ts-col, --features, --kind and --schema, in that order on the help page."""
    for option in reversed((
        click.option("--id-col", "id_col", default=None,
                     help="Column with the row id (default: inferred, a column unique per row)."),
        click.option("--ts-col", "ts_col", default=None,
                     help="Column with the prediction time (default: inferred, a column of dates)."),
        click.option("--features", "features", default=None,
                     help="Comma-separated feature columns (default: every column without another role)."),
        click.option("--kind", "kinds", multiple=True, metavar="NAME=numeric|categorical",
                     help="A feature's kind, e.g. --kind region_code=categorical (repeatable)."),
        click.option("--schema", "schema", default=None, type=click.Path(dir_okay=False),
                     help="YAML or JSON file: id, timestamp, target, score, prediction, features "
                          "(names or {name, kind}); options given as well win."),
    )):
        fn = option(fn)
    return fn


def declared_from_options(*, schema: str | None, id_col: str | None, ts_col: str | None, features: str | None,
                          kinds: tuple[str, ...], target: str | None = None, score_col: str | None = None,
                          prediction_col: str | None = None) -> Declared:
    """The options over the schema file."""
    from core.models.column_mapping import Declared, parse_features, parse_kinds, read_schema

    given = Declared(target=target, id_column=id_col, timestamp_column=ts_col, score_column=score_col,
                     prediction_column=prediction_col, features=parse_features(features), kinds=parse_kinds(kinds))
    return given.over(read_schema(schema) if schema else Declared())


def show_proposal(proposal: Proposal) -> None:
    """What was inferred and the mapping on stdout; warnings on stderr."""
    for line in proposal.inferred:
        click.echo(f"inferred {line}")
    click.echo("column mapping:")
    for line in proposal.lines():
        click.echo(line)
    for warning in proposal.warnings:
        click.echo(f"warning: {warning}", err=True)
