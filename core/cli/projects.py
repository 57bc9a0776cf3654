"""project create, model register."""

from __future__ import annotations

import click

from core.cli.base import fails_cleanly, main


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


@main.group("model")
def model_group() -> None:
    """Models and versions."""


@model_group.command("register")
@click.argument("project")
@click.argument("model")
@click.option("--task", type=click.Choice(["binary", "regression"]), required=True)
@click.option("--target", required=True, help="Target column in the reference file.")
@click.option("--reference", "reference", required=True, type=click.Path(dir_okay=False),
              help="Reference data (CSV) with features and target.")
@click.option("--artifact", default=None, type=click.Path(dir_okay=False),
              help="A scikit-learn estimator saved with joblib (omit for an external model).")
@click.option("--sha256", "sha256", default=None, help="Expected sha256 of the artifact.")
@click.option("--score-col", default=None)
@click.option("--prediction-col", default=None)
@click.option("--threshold", default=0.5, show_default=True, type=float, help="Decision threshold on the score.")
@click.option("--as", "as_user", default=None, help="Act as this user (authenticated).")
@fails_cleanly
def model_register(project: str, model: str, task: str, target: str, reference: str, artifact: str | None,
                   sha256: str | None, score_col: str | None, prediction_col: str | None, threshold: float,
                   as_user: str | None) -> None:
    """Register MODEL in PROJECT with version 1."""
    from core.cli.actors import resolve_actor
    from core.db import session_scope
    from core.models import registry

    actor = resolve_actor(as_user)
    with session_scope() as s:
        v = registry.register_model(session=s, actor=actor, project_key=project, name=model, task=task,
                                    target=target, reference_csv=reference, artifact=artifact,
                                    artifact_sha256=sha256, score_col=score_col, prediction_col=prediction_col,
                                    decision_threshold=threshold)
    click.echo(f"model {model} registered: version {v.number} ({v.origin}), {v.reference_rows} reference rows")
