"""demo, serve, worker-independent admin commands: users and the audit chain."""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import click

from core.cli.base import fails_cleanly, main
from core.errors import InvalidInput


@main.command()
@click.option("--reset", is_flag=True, help="Delete everything and seed the story again.")
@fails_cleanly
def demo(reset: bool) -> None:
    """Seed the credit-card fraud story (demo mode only; idempotent; --reset starts over)."""
    from core.demo import seed_demo

    seeded = seed_demo(reset=reset, progress=lambda msg: click.echo(f"  {msg}"))
    click.echo("demo seeded" if seeded else "demo already present (use --reset to start over)")


@main.command()
@click.option("--port", default=8501, show_default=True, type=int)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; only this computer can reach the default.")
@click.option("--allow-remote-demo", is_flag=True,
              help="Let a demo-mode portal listen on an address other computers can reach.")
@click.option("--no-worker", is_flag=True, help="Serve the app without the scheduler worker.")
@click.option("--api-port", default=None, type=int,
              help="Also serve the scoring API (`watchtower api`) on this port, stopped with the portal.")
@fails_cleanly
def serve(port: int, host: str, allow_remote_demo: bool, no_worker: bool, api_port: int | None) -> None:
    """Start the scheduler worker and the Streamlit portal together (local use), and the scoring API if asked."""
    from core.config import API_URL_SETTING, get_settings
    from core.demo import seed_demo

    settings = get_settings()
    if settings.demo and not allow_remote_demo and not _is_loopback(host):
        raise InvalidInput(f"demo mode lets anyone sign in as anyone, so it serves only this computer: "
                           f"{host} is not a loopback address (use --allow-remote-demo to serve it anyway)")
    if api_port is not None and not os.environ.get(API_URL_SETTING):
        # the demo's environments point at the API this command starts
        os.environ[API_URL_SETTING] = f"http://127.0.0.1:{api_port}"
    if settings.demo:
        seed_demo(reset=False, progress=lambda msg: click.echo(f"  {msg}"))
    app = Path(__file__).resolve().parents[2] / "app.py"
    procs: list[subprocess.Popen] = []
    # A plain `kill` (SIGTERM) must stop the worker and the app too, not orphan them.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        if not no_worker and _has_worker():
            procs.append(subprocess.Popen([sys.executable, "-m", "core.cli", "worker"], env=os.environ.copy()))
        if api_port is not None:
            procs.append(subprocess.Popen([sys.executable, "-m", "core.cli", "api", "--port", str(api_port),
                                           "--host", host], env=os.environ.copy()))
        cmd = [sys.executable, "-m", "streamlit", "run", str(app), "--server.port", str(port),
               "--server.address", host, "--server.headless", "true", "--browser.gatherUsageStats", "false"]
        app_proc = subprocess.Popen(cmd, cwd=app.parent, env=os.environ.copy())
        procs.append(app_proc)
        shown = "localhost" if _is_loopback(host) else host
        click.echo(f"Watchtower on http://{shown}:{port}" + (" with the scheduler worker" if len(procs) > 1 else "")
                   + (f"; scoring API on http://{shown}:{api_port}" if api_port is not None else ""))
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


def _is_loopback(host: str) -> bool:
    """True when every address the host name resolves to is a loopback address."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback for info in infos)


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
@click.option("--as", "as_user", default=None, help="Act as this user (authenticated; admin or risk manager).")
@fails_cleanly
def audit_verify(checkpoint: str | None, as_user: str | None) -> None:
    """Check the keyed audit chain; exit 1 naming the first wrong event and every problem."""
    from core import audit
    from core.access import require
    from core.cli.actors import resolve_actor
    from core.db import session_scope

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
@click.option("--as", "as_user", default=None, help="Act as this user (authenticated; admin or risk manager).")
@fails_cleanly
def audit_checkpoint(out: str, as_user: str | None) -> None:
    """Verify the chain and write a signed checkpoint of its head outside the database."""
    from core import audit
    from core.cli.actors import resolve_actor
    from core.db import session_scope

    actor = resolve_actor(as_user)
    with session_scope() as s:
        cp = audit.write_checkpoint(session=s, actor=actor, destination=out)
    click.echo(f"checkpoint written to {out}: event {cp.seq}, {cp.events} events, head {cp.head_hash[:12]}…, "
               f"at {cp.at}")


@main.group("user")
def user_group() -> None:
    """Users and roles (administrators only)."""


def _new_password(username: str, no_password: bool) -> str | None:
    """The new user's password: WATCHTOWER_NEW_PASSWORD, else asked on a terminal; none for company sign-in."""
    if no_password:
        return None
    password = os.environ.get("WATCHTOWER_NEW_PASSWORD")
    if password is None:
        if not sys.stdin.isatty():
            raise InvalidInput(f"no password for {username}: set WATCHTOWER_NEW_PASSWORD, run in a terminal to be "
                               "asked, or give --no-password for someone who signs in through the company")
        password = click.prompt(f"password for {username}", hide_input=True, confirmation_prompt=True, err=True)
    return password


@user_group.command("create")
@click.argument("username")
@click.option("--name", required=True)
@click.option("--email", required=True)
@click.option("--role", "roles", multiple=True, required=True, help="Repeat for several roles.")
@click.option("--no-password", is_flag=True, help="No local password (the person signs in through the company).")
@click.option("--as", "as_user", default=None, help="The administrator acting.")
@fails_cleanly
def user_create(username: str, name: str, email: str, roles: tuple[str, ...], no_password: bool,
                as_user: str | None) -> None:
    """Create a user with a scrypt-hashed password (WATCHTOWER_NEW_PASSWORD or a prompt). Audited."""
    from core.cli.actors import resolve_actor
    from core.db import session_scope
    from core.identity import users

    actor = resolve_actor(as_user)
    password = _new_password(username, no_password)
    with session_scope() as s:
        created = users.create_user(session=s, actor=actor, username=username, name=name, email=email,
                                    roles=list(roles), password=password)
    click.echo(f"user {created.username} created with role(s) {', '.join(created.roles)}")


@user_group.command("roles")
@click.argument("username")
@click.option("--add", multiple=True, help="A role to give (repeatable).")
@click.option("--remove", multiple=True, help="A role to take away (repeatable).")
@click.option("--as", "as_user", default=None, help="The administrator acting.")
@fails_cleanly
def user_roles(username: str, add: tuple[str, ...], remove: tuple[str, ...], as_user: str | None) -> None:
    """Add and remove roles of USERNAME. Audited."""
    from core.cli.actors import resolve_actor
    from core.db import session_scope
    from core.identity import users

    actor = resolve_actor(as_user)
    with session_scope() as s:
        changed = users.change_roles(session=s, actor=actor, username=username, add=list(add), remove=list(remove))
    click.echo(f"{changed.username}: {', '.join(changed.roles)}")


@user_group.command("deactivate")
@click.argument("username")
@click.option("--as", "as_user", default=None, help="The administrator acting.")
@fails_cleanly
def user_deactivate(username: str, as_user: str | None) -> None:
    """Deactivate USERNAME: no more sign-in, and their tokens stop working. Audited."""
    from core.cli.actors import resolve_actor
    from core.db import session_scope
    from core.identity import users

    actor = resolve_actor(as_user)
    with session_scope() as s:
        gone = users.deactivate_user(session=s, actor=actor, username=username)
    click.echo(f"user {gone.username} deactivated")


@user_group.command("list")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@fails_cleanly
def user_list(fmt: str) -> None:
    """Active users and their roles."""
    from core.db import session_scope
    from core.identity import users

    with session_scope() as s:
        people = users.list_users(session=s)
    if fmt == "json":
        click.echo(json.dumps([{"username": u.username, "name": u.name, "email": u.email, "roles": list(u.roles)}
                               for u in people], indent=2))
        return
    for u in people:
        click.echo(f"{u.username:<16} {u.name:<24} {u.email:<32} {', '.join(u.roles)}")


@main.group("admin")
def admin_group() -> None:
    """Setting up Watchtower."""


def _init_admin() -> None:
    from core.db import session_scope
    from core.identity import users

    username = os.environ.get("WATCHTOWER_ADMIN_USER") or click.prompt("admin username", default="admin", err=True)
    password = os.environ.get("WATCHTOWER_ADMIN_PASSWORD") or click.prompt(
        "admin password", hide_input=True, confirmation_prompt=True, err=True)
    email = os.environ.get("WATCHTOWER_ADMIN_EMAIL", f"{username}@localhost")
    with session_scope() as s:
        users.create_first_admin(session=s, username=username, password=password, email=email)
    click.echo(f"administrator {username} created; add people with `watchtower user create ... --as {username}`")


@admin_group.command("init")
@fails_cleanly
def admin_init() -> None:
    """Create the first administrator (WATCHTOWER_ADMIN_USER/_PASSWORD or prompts); only while no user exists."""
    _init_admin()


@main.command("init-admin", hidden=True)
@fails_cleanly
def init_admin() -> None:
    """Deprecated: use `watchtower admin init`."""
    click.echo("warning: `watchtower init-admin` is deprecated; use `watchtower admin init`", err=True)
    _init_admin()
