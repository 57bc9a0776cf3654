"""project create/list, model register/list."""

from __future__ import annotations

import json
from pathlib import Path

import click

from core.cli.base import fails_cleanly, main
from core.cli.columns import column_options, declared_from_options, show_proposal


@main.group("project")
def project_group() -> None:
    """Projects."""


@project_group.command("create")
@click.argument("key")
@click.option("--name", required=True)
@click.option("--risk", type=click.Choice(["low", "medium", "high"]), default="medium", show_default=True)
@click.option("--blueprint", default=None, help="Blueprint name (default: the one for the risk level).")
@click.option("--description", default="")
@click.option("--sponsor", default="")
@click.option("--initiative", default=None)
@click.option("--as", "as_user", default=None, help="Act as this user (authenticated).")
@fails_cleanly
def project_create(key: str, name: str, risk: str, blueprint: str | None, description: str, sponsor: str,
                   initiative: str | None, as_user: str | None) -> None:
    """Create a project KEY."""
    from core.cli.actors import resolve_actor
    from core.db import session_scope
    from core.projects import projects

    actor = resolve_actor(as_user)
    with session_scope() as s:
        p = projects.create_project(session=s, actor=actor, key=key, name=name, risk_level=risk,
                                    blueprint=blueprint, description=description, sponsor=sponsor,
                                    initiative=initiative)
    click.echo(f"project {p.key} created (risk {p.risk_level}, blueprint {p.blueprint or 'none'}, stage {p.stage})")


@project_group.command("list")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--as", "as_user", default=None, help="Act as this user (authenticated).")
@fails_cleanly
def project_list(fmt: str, as_user: str | None) -> None:
    """Every project with its risk, stage, owner, health and what runs where."""
    from core.cli.actors import resolve_actor
    from core.db import session_scope
    from core.projects import projects

    actor = resolve_actor(as_user)
    with session_scope() as s:
        rows = projects.list_projects(session=s, actor=actor)
    if fmt == "json":
        click.echo(json.dumps([{"key": p.key, "name": p.name, "initiative": p.initiative, "risk_level": p.risk_level,
                                "stage": p.stage, "owner": p.owner, "health": p.health,
                                "active_versions": p.active_versions} for p in rows], indent=2))
        return
    if not rows:
        click.echo("no projects yet (create one with `watchtower project create`)")
        return
    click.echo(f"{'KEY':<12} {'NAME':<32} {'RISK':<7} {'STAGE':<14} {'OWNER':<10} {'HEALTH':<8} RUNNING")
    for p in rows:
        running = ", ".join(f"{env}: {what}" for env, what in p.active_versions.items()) or "-"
        click.echo(f"{p.key:<12} {p.name:<32} {p.risk_level:<7} {p.stage:<14} {p.owner:<10} {p.health:<8} {running}")


@main.group("model")
def model_group() -> None:
    """Models and versions."""


@model_group.command("register")
@click.argument("project")
@click.argument("model")
@click.option("--task", type=click.Choice(["binary", "regression"]), required=True)
@click.option("--target", default=None, help="Target column in the reference file (or `target` in --schema).")
@click.option("--reference", "reference", required=True, type=click.Path(dir_okay=False),
              help="Reference data (CSV) with features and target.")
@click.option("--artifact", default=None, type=click.Path(dir_okay=False),
              help="A scikit-learn estimator saved with joblib (omit for an external model).")
@click.option("--sha256", "sha256", default=None, help="Expected sha256 of the artifact.")
@click.option("--score-col", default=None, help="Column with the model's probability score.")
@click.option("--prediction-col", default=None, help="Column with the model's predicted class or value.")
@click.option("--threshold", default=0.5, show_default=True, type=float, help="Decision threshold on the score.")
@column_options
@click.option("--dry-run", is_flag=True, help="Show the column mapping it would record; register nothing.")
@click.option("--as", "as_user", default=None, help="Act as this user (authenticated).")
@fails_cleanly
def model_register(project: str, model: str, task: str, target: str | None, reference: str, artifact: str | None,
                   sha256: str | None, score_col: str | None, prediction_col: str | None, threshold: float,
                   id_col: str | None, ts_col: str | None, features: str | None, kinds: tuple[str, ...],
                   schema: str | None, dry_run: bool, as_user: str | None) -> None:
    """Register MODEL in PROJECT with version 1; prints the column mapping it inferred or was given."""
    from core.cli.actors import resolve_actor
    from core.db import session_scope
    from core.models import registry
    from core.models.column_mapping import propose

    actor = resolve_actor(as_user)
    declared = declared_from_options(schema=schema, id_col=id_col, ts_col=ts_col, features=features, kinds=kinds,
                                     target=target, score_col=score_col, prediction_col=prediction_col)
    proposal = propose(registry.read_reference_csv(reference), declared, source=Path(reference).name)
    if dry_run:
        show_proposal(proposal)
        click.echo("dry run: nothing registered")
        return
    with session_scope() as s:
        v = registry.register_model(session=s, actor=actor, project_key=project, name=model, task=task,
                                    target=declared.target, reference_csv=reference, artifact=artifact,
                                    artifact_sha256=sha256, score_col=declared.score_column,
                                    prediction_col=declared.prediction_column, decision_threshold=threshold,
                                    columns=declared)
    show_proposal(proposal)
    click.echo(f"model {model} registered: version {v.number} ({v.origin}), {v.reference_rows} reference rows")


@model_group.command("list")
@click.option("--project", default=None, help="Only the models of this project (its key).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--as", "as_user", default=None, help="Act as this user (authenticated).")
@fails_cleanly
def model_list(project: str | None, fmt: str, as_user: str | None) -> None:
    """Every model with its project, latest version and status, and the active version."""
    from core.cli.actors import resolve_actor
    from core.db import session_scope
    from core.models import summaries

    actor = resolve_actor(as_user)
    with session_scope() as s:
        rows = summaries.list_model_summaries(session=s, actor=actor, project_key=project)
    if fmt == "json":
        click.echo(json.dumps([{"project": m.project, "model": m.model, "task": m.task, "versions": m.versions,
                                "latest_version": m.latest_version, "latest_status": m.latest_status,
                                "active_version": m.active_version, "statuses": m.statuses,
                                "created": m.created_at.isoformat(timespec="seconds")} for m in rows], indent=2))
        return
    if not rows:
        click.echo(f"no models in {project.upper()} yet" if project else "no models yet")
        return
    click.echo(f"{'PROJECT':<12} {'MODEL':<28} {'TASK':<10} {'LATEST':<14} {'ACTIVE':<7} {'VERSIONS':<8} CREATED")
    for m in rows:
        latest = f"v{m.latest_version} {m.latest_status}" if m.latest_version else "-"
        active = f"v{m.active_version}" if m.active_version else "-"
        click.echo(f"{m.project:<12} {m.model:<28} {m.task:<10} {latest:<14} {active:<7} {m.versions:<8} "
                   f"{m.created_at:%Y-%m-%d}")
