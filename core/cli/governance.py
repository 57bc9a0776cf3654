"""deploy, rollback, deployments, review, api: the path to production from the command line, under the same gate."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from core.cli.base import fails_cleanly, main
from core.errors import InvalidInput, NotFound
from core.vocabulary import POLICIES, TIERS, VERDICTS

if TYPE_CHECKING:
    from core import governance


@main.command("deploy")
@click.argument("model")
@click.option("--version", "version", type=int, required=True, help="Version number to deploy.")
@click.option("--env", "environment", required=True, help="Environment name, e.g. staging or production.")
@click.option("--note", default="", help="Why (kept with the deployment).")
@click.option("--as", "as_user", default=None, help="Act as this user (authenticated).")
@fails_cleanly
def deploy_command(model: str, version: int, environment: str, note: str, as_user: str | None) -> None:
    """Deploy MODEL version N to an environment, if governance allows it."""
    from core.cli.actors import resolve_actor
    from core.db import session_scope
    from core.governance import deployer

    actor = resolve_actor(as_user)
    with session_scope() as s:
        dep = deployer.deploy(session=s, actor=actor, model=model, version=version, environment=environment,
                              note=note)
    click.echo(f"{dep.model} v{dep.version} now runs in {dep.environment} (since {dep.since:%Y-%m-%d %H:%M} UTC)")
    if dep.warning:
        click.echo(f"warning: {dep.warning}", err=True)


@main.command("rollback")
@click.argument("model")
@click.option("--env", "environment", required=True)
@click.option("--note", default="")
@click.option("--as", "as_user", default=None, help="Act as this user (authenticated).")
@fails_cleanly
def rollback_command(model: str, environment: str, note: str, as_user: str | None) -> None:
    """Put back the version that ran in the environment before the current one."""
    from core.cli.actors import resolve_actor
    from core.db import session_scope
    from core.governance import deployer

    actor = resolve_actor(as_user)
    with session_scope() as s:
        dep = deployer.rollback(session=s, actor=actor, model=model, environment=environment, note=note)
    click.echo(f"{dep.model} rolled back: v{dep.version} runs in {dep.environment} again")


@main.command("deployments")
@click.argument("model", required=False)
@fails_cleanly
def deployments_command(model: str | None) -> None:
    """What runs where, and since when."""
    from core.db import session_scope
    from core.governance import deployer

    with session_scope() as s:
        rows = deployer.what_runs_where(session=s, model=model)
    if not rows:
        click.echo("nothing is deployed")
    for d in rows:
        click.echo(f"{d.environment:<12} {d.model} v{d.version}  since {d.since:%Y-%m-%d %H:%M} UTC  "
                   f"by {d.deployed_by}  sha256 {(d.artifact_sha256 or '')[:12]}")


def _feedback_role(review: governance.ReviewRead, role: str | None) -> str:
    """The role named, or the only one the reviewer may sign (the review, read for them, says which)."""
    if role:
        return role
    mine = review.signable_roles
    if not mine:
        review.can_give_feedback.enforce()
    if len(mine) != 1:
        raise InvalidInput(f"say which role you give feedback as (--role {'|'.join(mine)})")
    return mine[0]


@main.command("review")
@click.argument("model")
@click.argument("action", type=click.Choice(["request", "feedback", "approve", "reject", "abandon", "show"]))
@click.option("--version", "version", type=int, required=True)
@click.option("--role", default=None, help="The role you give feedback as (feedback).")
@click.option("--verdict", type=click.Choice(VERDICTS), default=None, help="Your feedback (feedback).")
@click.option("--comment", default="")
@click.option("--as", "as_user", default=None, help="Act as this user (authenticated).")
@fails_cleanly
def review_command(model: str, action: str, version: int, role: str | None, verdict: str | None, comment: str,
                   as_user: str | None) -> None:
    """Request, give feedback on, approve, reject or abandon the review of MODEL version N."""
    from core import governance
    from core.cli.actors import resolve_actor
    from core.db import session_scope

    actor = resolve_actor(as_user)
    with session_scope() as s:
        if action == "request":
            review = governance.request_review(session=s, actor=actor, model=model, version=version, comment=comment)
        else:
            found = governance.find_review(session=s, model=model, version=version, actor=actor)
            if found is None:
                raise NotFound(f"{model} v{version} has no review; request one first")
            if action == "feedback":
                if verdict is None:
                    raise InvalidInput(f"feedback needs --verdict ({'|'.join(VERDICTS)})")
                review = governance.give_feedback(session=s, actor=actor, review_id=found.id, verdict=verdict,
                                                  role=_feedback_role(found, role), comment=comment)
            elif action == "approve":
                review = governance.approve(session=s, actor=actor, review_id=found.id, comment=comment)
            elif action == "reject":
                review = governance.reject(session=s, actor=actor, review_id=found.id, comment=comment)
            elif action == "abandon":
                review = governance.abandon(session=s, actor=actor, review_id=found.id, comment=comment)
            else:
                review = found
    click.echo(f"review #{review.id} of {review.model} v{review.version}: {review.state}")
    for f in review.signoffs:
        click.echo(f"  {f.role:<14} {f.verdict:<12} {f.reviewer}: {f.comment}")
    if review.missing_roles and review.state == "WAITING_FOR_FEEDBACK":
        click.echo(f"  waiting for feedback from {', '.join(review.missing_roles)}")
    if review.outcome:
        click.echo(f"  {review.outcome}")


@main.command("environments")
@fails_cleanly
def environments_command() -> None:
    """The environments, lowest first, with their tier, governance policy and scoring endpoint."""
    from core.db import session_scope
    from core.governance import environments

    with session_scope() as s:
        rows = environments.list_environments(session=s)
    for e in rows:
        click.echo(f"{e.name:<14} {e.tier:<7} policy {e.policy:<6} {e.endpoint_url or '(no endpoint)'}")


@main.command("environment")
@click.argument("name")
@click.option("--tier", type=click.Choice(TIERS), default=None, help="lower, or higher (production).")
@click.option("--policy", type=click.Choice(POLICIES), default=None,
              help="block (the default for a new environment), warn or allow.")
@click.option("--url", "endpoint_url", default=None, help="The environment's scoring endpoint.")
@click.option("--as", "as_user", default=None, help="Act as this user (an administrator, authenticated).")
@fails_cleanly
def environment_command(name: str, tier: str | None, policy: str | None, endpoint_url: str | None,
                        as_user: str | None) -> None:
    """Create or change the environment NAME (administrators); loosening it alerts the risk managers."""
    from core.cli.actors import resolve_actor
    from core.db import session_scope
    from core.governance import environments

    actor = resolve_actor(as_user)
    with session_scope() as s:
        env = environments.configure_environment(session=s, actor=actor, name=name, tier=tier, policy=policy,
                                                 endpoint_url=endpoint_url)
    click.echo(f"{env.name}: {env.tier}, policy {env.policy}, endpoint {env.endpoint_url or '(none)'}")


@main.command("api")
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--workers", default=1, show_default=True, type=int)
def api_command(port: int, host: str, workers: int) -> None:
    """Serve the HTTP scoring API for the deployed versions (uvicorn)."""
    import uvicorn

    if workers > 1:
        uvicorn.run("core.api:create_app", factory=True, host=host, port=port, workers=workers, log_level="info")
    else:
        from core.api import create_app

        uvicorn.run(create_app(), host=host, port=port, log_level="info")
