"""predictions ingest, ground-truth ingest, evaluate, evaluations: the model evaluation store from the command line."""

from __future__ import annotations

from datetime import datetime

import click

from core.cli.base import fails_cleanly, main
from core.clock import to_utc_naive
from core.errors import InvalidInput
from core.vocabulary import GRANULARITIES

_AS = click.option("--as", "as_user", default=None, help="Act as this user (authenticated).")
_VERSION = click.option("--version", "version", type=int, default=None, help="Version number (default: the active one).")


def _moment(value: str | None, what: str) -> datetime | None:
    if value is None:
        return None
    try:
        return to_utc_naive(datetime.fromisoformat(value))
    except ValueError:
        raise InvalidInput(f"{what} {value!r} is not an ISO 8601 date or time (e.g. 2026-08-01 or 2026-08-01T06:00)") from None


@main.group("predictions")
def predictions_group() -> None:
    """Predictions logged for a model version."""


@predictions_group.command("ingest")
@click.argument("model")
@click.argument("file", type=click.Path(dir_okay=False))
@_VERSION
@click.option("--id-col", default=None, help="Column with the prediction id, unique per model (default: the mapping's).")
@click.option("--ts-col", default=None,
              help="Column with the prediction time (ISO 8601; default: the mapping's, else now).")
@click.option("--score-col", default=None, help="Column with the probability score (binary models; default: the "
                                                "mapping's when neither it nor --prediction-col is given).")
@click.option("--prediction-col", default=None, help="Column with the predicted class or value (default: the "
                                                     "mapping's when neither it nor --score-col is given).")
@click.option("--env", "environment", default=None, help="Environment the predictions were made in.")
@_AS
@fails_cleanly
def predictions_ingest(model: str, file: str, version: int | None, id_col: str | None, ts_col: str | None,
                       score_col: str | None, prediction_col: str | None, environment: str | None,
                       as_user: str | None) -> None:
    """Log the predictions in FILE for MODEL: the whole file, or nothing."""
    from core.cli.actors import resolve_actor
    from core.db import session_scope
    from core.models import mappings
    from core.monitoring import ingest

    actor = resolve_actor(as_user)
    with session_scope() as s:
        mapped = mappings.current_mapping(session=s, model=model).mapping
        if not (score_col or prediction_col):
            score_col, prediction_col = mapped.score_column, mapped.prediction_column
        id_col = id_col or mapped.id_column
        if id_col is None:
            raise InvalidInput(f"{model}'s column mapping names no id column: give --id-col")
        done = ingest.ingest_predictions(session=s, actor=actor, model=model, source=file, version=version,
                                         id_col=id_col, ts_col=ts_col or mapped.timestamp_column,
                                         score_col=score_col, prediction_col=prediction_col,
                                         environment=environment)
    span = f" from {done.window_start:%Y-%m-%d %H:%M} to {done.window_end:%Y-%m-%d %H:%M}" if done.window_start else ""
    click.echo(f"{done.rows:,} predictions of {done.model} v{done.version} logged{span}")
    if done.ignored_columns:
        click.echo(f"ignored column(s), not in the mapping: {', '.join(done.ignored_columns)}")


@main.group("ground-truth")
def ground_truth_group() -> None:
    """Labels that arrive after the predictions."""


@ground_truth_group.command("ingest")
@click.argument("model")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--id-col", required=True, help="Column with the prediction id the label belongs to.")
@click.option("--label-col", required=True, help="Column with the label.")
@_AS
@fails_cleanly
def ground_truth_ingest(model: str, file: str, id_col: str, label_col: str, as_user: str | None) -> None:
    """Join the labels in FILE to MODEL's predictions: same labels change nothing, changed ones are audited."""
    from core.cli.actors import resolve_actor
    from core.db import session_scope
    from core.monitoring import ingest

    actor = resolve_actor(as_user)
    with session_scope() as s:
        done = ingest.ingest_ground_truth(session=s, actor=actor, model=model, source=file, id_col=id_col,
                                          label_col=label_col)
    click.echo(f"{done.rows:,} labels for {done.model}: {done.inserted:,} new, {done.updated:,} changed "
               f"(audited), {done.unchanged:,} unchanged")


@main.command("evaluate")
@click.argument("model")
@_VERSION
@click.option("--start", default=None, help="Start of the period (ISO 8601; default: the first prediction).")
@click.option("--end", default=None, help="End of the period, excluded (ISO 8601; default: after the last one).")
@click.option("--every", type=click.Choice(GRANULARITIES), default=None,
              help="Cut the period into days, Monday weeks or calendar months (default: one window).")
@click.option("--overwrite", is_flag=True, help="Replace windows already stored (audited).")
@_AS
@fails_cleanly
def evaluate(model: str, version: int | None, start: str | None, end: str | None, every: str | None,
             overwrite: bool, as_user: str | None) -> None:
    """Evaluate MODEL over windows and store them in the evaluation store."""
    from core.cli.actors import resolve_actor
    from core.monitoring import evaluation_store

    actor = resolve_actor(as_user)
    done = evaluation_store.evaluate(actor=actor, model=model, version=version, start=_moment(start, "--start"),
                                     end=_moment(end, "--end"), every=every, overwrite=overwrite)
    for e in done:
        auc = e.metrics.get("roc_auc")
        shown = f"AUC {auc:.3f}" if auc is not None else (
            f"estimated AUC {e.estimated_metrics['roc_auc']:.3f}" if e.estimated_metrics.get("roc_auc") is not None
            else "no labels yet")
        click.echo(f"{e.window_start:%Y-%m-%d %H:%M} → {e.window_end:%Y-%m-%d %H:%M}  {e.rows:>8,} rows  "
                   f"{e.labelled_rows:>8,} labelled  {shown}  {e.drifted_fields} drifted field(s)")
    click.echo(f"{len(done)} window(s) of {done[0].model} v{done[0].version} stored")


@main.command("evaluations")
@click.argument("model")
@_VERSION
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
@_AS
@fails_cleanly
def evaluations(model: str, version: int | None, fmt: str, as_user: str | None) -> None:
    """Export MODEL's stored evaluation windows to standard output."""
    from core.cli.actors import resolve_actor
    from core.db import session_scope
    from core.monitoring import evaluation_store

    actor = resolve_actor(as_user)
    with session_scope() as s:
        click.echo(evaluation_store.export_evaluations(session=s, actor=actor, model=model, version=version, fmt=fmt),
                   nl=False)
