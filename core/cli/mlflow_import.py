"""model import-mlflow, and the MLflow tracking servers administrators trust (admin trust-mlflow, mlflow-sources)."""

from __future__ import annotations

import json

import click

from core.cli.admin import admin_group
from core.cli.base import fails_cleanly
from core.cli.columns import column_options, declared_from_options, show_proposal
from core.cli.projects import model_group


@model_group.command("import-mlflow")
@click.argument("project")
@click.argument("model_uri", metavar="models:/NAME@ALIAS|models:/NAME/VERSION")
@click.option("--tracking-uri", required=True, help="The MLflow tracking server (an administrator must trust it).")
@click.option("--reference", default=None, type=click.Path(dir_okay=False),
              help="Reference data (CSV): the model's input columns and the target, e.g. a validation sample.")
@click.option("--name", default=None, help="The Watchtower model's name (default: the MLflow model's name).")
@click.option("--task", type=click.Choice(["binary", "regression"]), default=None,
              help="Default: read from the scikit-learn model (needed for a pyfunc model).")
@click.option("--target", default=None, help="Target column (default: the one reference column the model does not read).")
@click.option("--score-col", default=None, help="Reference column with the model's score (default: scored at import).")
@click.option("--prediction-col", default=None, help="Reference column with the model's prediction.")
@click.option("--threshold", default=0.5, show_default=True, type=float, help="Decision threshold on the score.")
@column_options
@click.option("--mirror-metrics", is_flag=True,
              help="Write every window evaluation of the version back to its MLflow run as metrics.")
@click.option("--notes", default="")
@click.option("--as", "as_user", default=None, help="Act as this user (authenticated).")
@fails_cleanly
def model_import_mlflow(project: str, model_uri: str, tracking_uri: str, reference: str | None, name: str | None,
                        task: str | None, target: str | None, score_col: str | None, prediction_col: str | None,
                        threshold: float, id_col: str | None, ts_col: str | None, features: str | None,
                        kinds: tuple[str, ...], schema: str | None, mirror_metrics: bool, notes: str,
                        as_user: str | None) -> None:
    """Register a version of a model in PROJECT from an MLflow registered model version."""
    from core.cli.actors import resolve_actor
    from core.models import mlflow_import

    actor = resolve_actor(as_user)
    declared = declared_from_options(schema=schema, id_col=id_col, ts_col=ts_col, features=features, kinds=kinds,
                                     target=target, score_col=score_col, prediction_col=prediction_col)
    done = mlflow_import.import_from_mlflow(
        actor=actor, project_key=project, model_uri=model_uri, tracking_uri=tracking_uri, reference=reference,
        name=name, task=task, columns=declared, decision_threshold=threshold, mirror_metrics=mirror_metrics,
        notes=notes)
    show_proposal(done.proposal)
    v, src = done.version, done.source
    stored = f"saved with skops, sha256 {v.artifact_sha256[:12]}…" if v.artifact_sha256 else \
        "pyfunc: monitored from its logged predictions"
    click.echo(f"{done.model} v{v.number} ({v.status}) imported from MLflow {src.name} v{src.version}"
               f" (run {src.run_id or '—'}, {done.flavor} flavour, {stored}), {v.reference_rows:,} reference rows")
    if done.run_metrics:
        shown = ", ".join(f"{k} {val:.4g}" for k, val in sorted(done.run_metrics.items())[:8])
        click.echo(f"training baseline from the run: {shown}")
    if done.mirror_metrics:
        click.echo(f"window evaluations will be written to MLflow run {src.run_id} (step: window end, epoch ms)")


@admin_group.command("trust-mlflow")
@click.argument("tracking_uri")
@click.option("--revoke", is_flag=True, help="Stop trusting it instead (versions imported from it stay).")
@click.option("--note", default="", help="Why it is trusted (kept with the entry).")
@click.option("--as", "as_user", default=None, help="Act as this user (authenticated; administrators only).")
@fails_cleanly
def admin_trust_mlflow(tracking_uri: str, revoke: bool, note: str, as_user: str | None) -> None:
    """Trust (or --revoke) an MLflow tracking server to import models from; loading a model runs its code."""
    from core.cli.actors import resolve_actor
    from core.db import session_scope
    from core.models import mlflow_sources

    actor = resolve_actor(as_user)
    with session_scope() as s:
        if revoke:
            removed = mlflow_sources.distrust_source(session=s, actor=actor, tracking_uri=tracking_uri)
            uri = mlflow_sources.normalise(tracking_uri)
            click.echo(f"{uri} is no longer trusted" if removed else f"{uri} was not trusted; nothing changed")
            return
        source = mlflow_sources.trust_source(session=s, actor=actor, tracking_uri=tracking_uri, note=note)
    click.echo(f"{source.tracking_uri} is trusted as an MLflow source (by {source.trusted_by})")


@admin_group.command("mlflow-sources")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--as", "as_user", default=None, help="Act as this user (authenticated).")
@fails_cleanly
def admin_mlflow_sources(fmt: str, as_user: str | None) -> None:
    """The MLflow tracking servers models may be imported from."""
    from core.cli.actors import resolve_actor
    from core.db import session_scope
    from core.models import mlflow_sources

    actor = resolve_actor(as_user)
    with session_scope() as s:
        rows = mlflow_sources.list_sources(session=s, actor=actor)
    if fmt == "json":
        click.echo(json.dumps([{"tracking_uri": r.tracking_uri, "trusted_by": r.trusted_by,
                                "trusted_at": r.trusted_at.isoformat(timespec="seconds"), "note": r.note}
                               for r in rows], indent=2))
        return
    if not rows:
        click.echo("no trusted MLflow sources (an administrator adds one with `watchtower admin trust-mlflow URI`)")
    for r in rows:
        click.echo(f"{r.tracking_uri:<48} {r.trusted_by:<12} {r.trusted_at:%Y-%m-%d %H:%M}  {r.note}")
