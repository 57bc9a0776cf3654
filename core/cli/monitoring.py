"""worker, checks, scenario and alerts commands."""

from __future__ import annotations

import logging
import sys
import time

import click

from core.cli.base import fails_cleanly, main
from core.errors import NotFound


@main.command()
@click.option("--sync-seconds", default=30.0, show_default=True, help="How often jobs are rebuilt from scenarios.")
@click.option("--poll-seconds", default=2.0, show_default=True, help="How often requested runs are picked up.")
@click.option("--once", is_flag=True, help="Run what is requested and send what is due, then exit.")
@fails_cleanly
def worker(sync_seconds: float, poll_seconds: float, once: bool) -> None:
    """Run the scheduler: scenario triggers, requested runs, alert deliveries."""
    from core.automation.worker import Worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # Not a line per poll, nor a warning each time a long run makes the poll skip a beat (max_instances=1).
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    w = Worker(sync_seconds=sync_seconds, poll_seconds=poll_seconds)
    if once:
        w.run_once()
        return
    w.start()


@main.group("checks")
def checks_group() -> None:
    """Checks on models and their history."""


@checks_group.command("list")
@click.argument("project")
@fails_cleanly
def checks_list(project: str) -> None:
    """Every check of PROJECT with its rule, audience and recent ticks."""
    from core.db import session_scope
    from core.monitoring import checks

    with session_scope() as s:
        rows = checks.project_histories(session=s, project_key=project, limit=12)
    if not rows:
        click.echo(f"{project}: no checks")
    for h in rows:
        c = h.check
        audience = ", ".join([*c.audience_roles, *c.audience_users])
        click.echo(f"{c.name:<24} {c.rule:<40} {c.severity:<7} {audience:<28} {h.icons}")


@checks_group.command("run")
@click.argument("model")
@click.option("--evaluation", "evaluation_id", type=int, default=None, help="Default: the latest evaluation.")
@click.option("--as", "as_user", default=None, help="Act as this user.")
@fails_cleanly
def checks_run(model: str, evaluation_id: int | None, as_user: str | None) -> None:
    """Run MODEL's checks on an evaluation and alert their audience about failures."""
    from core.alerting import alerts
    from core.automation.steps import latest_evaluation_ids
    from core.cli.actors import resolve_actor
    from core.db import session_scope
    from core.monitoring import checks

    actor = resolve_actor(as_user)
    ids = [evaluation_id] if evaluation_id else latest_evaluation_ids(model)
    if not ids:
        raise NotFound(f"model {model} has no evaluation of its active version yet")
    with session_scope() as s:
        results = checks.run_checks(session=s, actor=actor, evaluation_id=ids[0])
        alerted = len(alerts.fan_out_many(session=s, check_result_ids=[r.id for r in results
                                                                        if r.status in ("warning", "error")]))
    for r in results:
        click.echo(f"{checks.TICKS.get(r.status, '?')} {r.message}")
    click.echo(f"{len(results)} check(s) on evaluation {ids[0]}; {alerted} alert(s) raised")


@checks_group.command("template")
@click.argument("model")
@click.option("--as", "as_user", default=None, help="Act as this user.")
@fails_cleanly
def checks_template(model: str, as_user: str | None) -> None:
    """Apply the standard AI quality checks to MODEL."""
    from core.cli.actors import resolve_actor
    from core.db import session_scope
    from core.monitoring import checks

    actor = resolve_actor(as_user)
    with session_scope() as s:
        applied = checks.apply_template(session=s, actor=actor, model=model)
    for c in applied:
        click.echo(f"{c.name:<24} {c.rule}")


@main.group("scenario")
def scenario_group() -> None:
    """Scenarios: scheduled automation."""


@scenario_group.command("list")
@click.argument("project", required=False)
@fails_cleanly
def scenario_list(project: str | None) -> None:
    """Scenarios with their schedule, next run and last run."""
    from core.automation import scenarios
    from core.db import session_scope

    with session_scope() as s:
        rows = scenarios.list_scenarios(session=s, project_key=project)
    for sc in rows:
        nxt = f"{sc.next_run_at:%Y-%m-%d %H:%M}" if sc.next_run_at else "—"
        last = f"#{sc.last_run.id} {sc.last_run.status}" if sc.last_run else "never run"
        steps = " → ".join(s["kind"] + ("*" if s["mode"] == "needs_approval" else "") for s in sc.steps)
        click.echo(f"{sc.project_key}/{sc.name}: {sc.schedule}; next {nxt}; {last}; {steps}")


@scenario_group.command("run")
@click.argument("name")
@click.option("--project", default=None, help="The project, when several have a scenario of this name.")
@click.option("--wait", is_flag=True, help="Wait until a worker has finished the run.")
@click.option("--inline", is_flag=True, help="Run it in this process instead of waiting for a worker.")
@click.option("--as", "as_user", default=None, help="Act as this user.")
@fails_cleanly
def scenario_run(name: str, project: str | None, wait: bool, inline: bool, as_user: str | None) -> None:
    """Request a run of scenario NAME now (a worker picks it up within seconds)."""
    from core.automation import runner, scenarios
    from core.cli.actors import resolve_actor
    from core.db import session_scope

    actor = resolve_actor(as_user)
    with session_scope() as s:
        sc = scenarios.get_scenario(session=s, project_key=project, name=name)
        run = scenarios.request_run(session=s, actor=actor, scenario_id=sc.id)
    click.echo(f"run #{run.id} of {sc.project_key}/{sc.name} requested")
    if inline:
        from core import leases

        runner.execute_run(run_id=run.id, worker_id=leases.new_holder_id())
    elif not wait:
        return
    while True:
        with session_scope() as s:
            current = scenarios.get_run(session=s, run_id=run.id)
        if current.status not in ("requested", "running"):
            break
        time.sleep(1)
    for st in current.steps:
        click.echo(f"  {st.position + 1}. {st.kind:<10} {st.status}" + (f" — {st.error}" if st.error else ""))
    click.echo(f"run #{run.id} {current.status.replace('_', ' ')}")
    if current.status in ("failed", "interrupted"):
        sys.exit(1)


@scenario_group.command("approve")
@click.argument("run_id", type=int)
@click.option("--reject", is_flag=True, help="Reject the waiting step instead.")
@click.option("--comment", default="")
@click.option("--as", "as_user", default=None, help="The approver (must hold the step's approver role).")
@fails_cleanly
def scenario_approve(run_id: int, reject: bool, comment: str, as_user: str | None) -> None:
    """Approve (or reject) the step RUN_ID waits on."""
    from core.automation import scenarios
    from core.cli.actors import resolve_actor
    from core.db import session_scope

    actor = resolve_actor(as_user)
    with session_scope() as s:
        fn = scenarios.reject_step if reject else scenarios.approve_step
        run = fn(session=s, actor=actor, run_id=run_id, comment=comment)
    click.echo(f"run #{run.id}: {'rejected' if reject else 'approved; a worker resumes it'}")


@main.group("alerts")
def alerts_group() -> None:
    """Alert deliveries."""


@alerts_group.command("deliver")
@fails_cleanly
def alerts_deliver() -> None:
    """Send the deliveries that are due now (the worker does this every few seconds)."""
    from core.alerting import alerts

    stats = alerts.deliver_due()
    click.echo(f"{stats.sent} sent, {stats.retrying} to retry, {stats.failed} failed")
