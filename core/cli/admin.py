"""demo, serve, worker-independent admin commands: users and the audit chain."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import click

from core import audit, users
from core.access import require
from core.cli import fails_cleanly, main
from core.cli.actors import resolve_actor
from core.db import session_scope


@main.command()
@click.option("--reset", is_flag=True, help="Delete everything and seed the story again.")
@fails_cleanly
def demo(reset: bool) -> None:
    """Seed the credit-card fraud story (idempotent; --reset starts over)."""
    from core.demo import seed_demo

    seeded = seed_demo(reset=reset, progress=lambda msg: click.echo(f"  {msg}"))
    click.echo("demo seeded" if seeded else "demo already present (use --reset to start over)")


@main.command()
@click.option("--port", default=8501, show_default=True, type=int)
@click.option("--no-worker", is_flag=True, help="Serve the app without the scheduler worker.")
@fails_cleanly
def serve(port: int, no_worker: bool) -> None:
    """Start the scheduler worker and the Streamlit portal together (local use)."""
    from core.config import get_settings
    from core.demo import seed_demo

    settings = get_settings()
    if settings.demo:
        seed_demo(reset=False, progress=lambda msg: click.echo(f"  {msg}"))
    app = Path(__file__).resolve().parents[2] / "app.py"
    procs: list[subprocess.Popen] = []
    # A plain `kill` (SIGTERM) must stop the worker and the app too, not orphan them.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        if not no_worker and _has_worker():
            procs.append(subprocess.Popen([sys.executable, "-m", "core.cli", "worker"], env=os.environ.copy()))
        cmd = [sys.executable, "-m", "streamlit", "run", str(app), "--server.port", str(port),
               "--server.headless", "true", "--browser.gatherUsageStats", "false"]
        app_proc = subprocess.Popen(cmd, cwd=app.parent, env=os.environ.copy())
        procs.append(app_proc)
        click.echo(f"Watchtower on http://localhost:{port}" + (" with the scheduler worker" if len(procs) > 1 else ""))
        app_proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _has_worker() -> bool:
    return "worker" in main.commands


@main.group("audit")
def audit_group() -> None:
    """The audit trail."""


@audit_group.command("verify")
@click.option("--checkpoint", "checkpoint", default=None, type=click.Path(dir_okay=False),
              help="A checkpoint file (JSONL) written by `audit checkpoint`: also finds a truncated tail or a "
                   "recomputed chain, and records the result.")
@click.option("--as", "as_user", required=True, help="Act as this user (authenticated; admin or risk manager).")
@fails_cleanly
def audit_verify(checkpoint: str | None, as_user: str) -> None:
    """Check the keyed audit chain; exit 1 naming the first wrong event and every problem."""
    actor = resolve_actor(as_user)
    with session_scope() as s:
        if checkpoint:
            report = audit.verify_against_checkpoints(session=s, actor=actor,
                                                      checkpoints=audit.read_checkpoints(checkpoint))
        else:
            require(actor, "audit.verify")
            report = audit.verify(session=s)
    if report.ok:
        click.echo(report.summary)
        return
    if report.first_bad_seq is not None:
        click.echo(f"error: first wrong event: {report.first_bad_seq}", err=True)
    for problem in report.problems:
        click.echo(f"error: {problem}", err=True)
    sys.exit(1)


@audit_group.command("checkpoint")
@click.option("--out", "out", required=True,
              help="A file to append the checkpoint to (JSONL), or an http(s) URL of a write-once store to POST it to.")
@click.option("--as", "as_user", required=True, help="Act as this user (authenticated; admin or risk manager).")
@fails_cleanly
def audit_checkpoint(out: str, as_user: str) -> None:
    """Verify the chain and write a signed checkpoint of its head outside the database."""
    actor = resolve_actor(as_user)
    with session_scope() as s:
        cp = audit.write_checkpoint(session=s, actor=actor, destination=out)
    click.echo(f"checkpoint written to {out}: event {cp.seq}, {cp.events} events, head {cp.head_hash[:12]}…, "
               f"at {cp.at}")


@main.group("user")
def user_group() -> None:
    """Users and roles."""


@user_group.command("create")
@click.argument("username")
@click.option("--name", required=True)
@click.option("--email", required=True)
@click.option("--role", "roles", multiple=True, required=True, help="Repeat for several roles.")
@click.option("--password", default=None, help="Prompted for when omitted (use WATCHTOWER_PASSWORD in scripts).")
@fails_cleanly
def user_create(username: str, name: str, email: str, roles: tuple[str, ...], password: str | None) -> None:
    """Create a user with a scrypt-hashed password."""
    password = password or os.environ.get("WATCHTOWER_PASSWORD") or click.prompt(
        f"password for {username}", hide_input=True, confirmation_prompt=True)
    with session_scope() as s:
        users.create_user(session=s, username=username, name=name, email=email, roles=list(roles),
                          password=password, actor="cli")
    click.echo(f"user {username} created")


@main.command("init-admin")
@fails_cleanly
def init_admin() -> None:
    """Create the first administrator from WATCHTOWER_ADMIN_USER/_PASSWORD or interactive prompts."""
    username = os.environ.get("WATCHTOWER_ADMIN_USER") or click.prompt("admin username", default="admin")
    password = os.environ.get("WATCHTOWER_ADMIN_PASSWORD") or click.prompt(
        "admin password", hide_input=True, confirmation_prompt=True)
    email = os.environ.get("WATCHTOWER_ADMIN_EMAIL", f"{username}@localhost")
    with session_scope() as s:
        users.create_user(session=s, username=username, name="Administrator", email=email, roles=["admin"],
                          password=password, actor="cli")
    click.echo(f"administrator {username} created")
