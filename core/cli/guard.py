"""Every command acts for a verified person unless it is declared otherwise here.

`RULES` names, per command, who may run it and the permission core checks. A command not listed needs an
identity like any other (fail closed): a command added later is guarded without anyone remembering to.
The guard runs before a command's own code, so a refused command writes nothing. Commands whose service
takes no actor (read-only listings) have their permission checked here, with core.access.require.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import click

from core.access import require
from core.errors import Unauthenticated, WatchtowerError


@dataclass(frozen=True)
class Rule:
    """Who runs a command: `person` (verified identity), `process`, `demo` or `bootstrap`; and what core checks."""

    permission: str = ""        # the permission checked for the person ('' when only the service's rules apply)
    identity: str = "person"
    checked_here: bool = False  # the service takes no actor, so the guard checks the permission itself
    note: str = ""


def _person(permission: str = "", note: str = "") -> Rule:
    return Rule(permission=permission, note=note)


def _listing(permission: str, note: str = "") -> Rule:
    return Rule(permission=permission, checked_here=True, note=note)


PROCESS = "server process, acts for nobody"
RULES: dict[str, Rule] = {
    # Set-up and server processes.
    "admin init": Rule(identity="bootstrap", note="only while no user exists"),
    "init-admin": Rule(identity="bootstrap", note="deprecated alias of `admin init`"),
    "demo": Rule(identity="demo", note="demo mode on a local database only; a database holding anything "
                                       "but the demo is refused unless --reset"),
    "serve": Rule(identity="process", note=f"{PROCESS}: every portal sign-in and page action is checked"),
    "worker": Rule(identity="process", note=f"{PROCESS}: each scenario step is checked for its owner"),
    "api": Rule(identity="process", note=f"{PROCESS}: every request needs a bearer token and its scope"),
    # People and tokens.
    "user create": _person("users.manage"),
    "user roles": _person("users.manage", "the last administrator keeps the role"),
    "user deactivate": _person("users.manage", "the last administrator stays active"),
    "user list": _listing("users.manage"),
    "token create": _person("tokens.manage", "each scope also needs its own permission; a password or demo "
                                             "persona, never a token, creates a token"),
    "token list": _person("tokens.manage", "your own tokens; --all needs users.manage"),
    "token revoke": _person("tokens.manage", "your own tokens; anyone's with users.manage"),
    "audit verify": _person("audit.verify", "a verification against a checkpoint is recorded"),
    "audit checkpoint": _person("audit.verify", "refuses to anchor a broken chain"),
    "store migrate": _person("settings.manage", "resumable; each model's move is audited"),
    # Projects, models, the evaluation store.
    "project create": _person("project.create"),
    "project list": _person("portfolio.view"),
    "project from-template": _person("template.use", "and project.create, model.register, monitoring.manage, "
                                                     "automation.manage"),
    "model register": _person("model.register"),
    "model list": _person("registry.view"),
    "model mapping": _listing("registry.view"),
    "model set-mapping": _person("model.register", "recorded as a new mapping; audited"),
    "model import": _person("model.register", "skops only; a pickle only with an administrator's allowance"),
    "model trust-type": _person("settings.manage", "audited"),
    "model allow-pickle": _person("settings.manage", "one exact file (sha256) for one model; audited"),
    "model import-mlflow": _person("model.register", "only from a tracking server an administrator trusts; "
                                                     "a refusal is audited"),
    "admin trust-mlflow": _person("settings.manage", "audited"),
    "admin mlflow-sources": _person("registry.view"),
    "slices": _person("evaluation.view"),
    "predictions ingest": _person("evaluation.write"),
    "ground-truth ingest": _person("evaluation.write"),
    "evaluate": _person("evaluation.write", "--overwrite is audited"),
    "evaluations": _person("evaluation.view"),
    "docs": _person("documentation.generate"),
    # Experiments and the registry.
    "train": _person("experiments.run"),
    "runs": _listing("experiments.run"),
    "promote": _person("experiments.run"),
    "retrain": _person("experiments.run"),
    "versions": _person("registry.view"),
    "compare": _person("registry.view"),
    # Deployment and governance.
    "deploy": _person("deploy", "and the environment's governance policy"),
    "rollback": _person("deploy", "and the environment's governance policy"),
    "deployments": _listing("deployer.view"),
    "environments": _listing("deployer.view"),
    "environment": _person("environment.manage", "a policy change also environment.policy; loosening alerts "
                                                 "the risk managers"),
    "review": _listing("governance.view", "request: review.request; feedback: a holder of the role; "
                                          "approve/reject: the blueprint's final approver; never the requester"),
    # Monitoring and automation.
    "checks list": _listing("monitoring.manage"),
    "checks run": _person("monitoring.manage"),
    "checks template": _person("monitoring.manage"),
    "scenario list": _listing("automation.view"),
    "scenario run": _person("automation.run"),
    "scenario approve": _person("", "a holder of the step's approver role"),
    "alerts deliver": _listing("alerts.deliveries"),
    "connection create": _person("settings.manage", "never Watchtower's own database; audited"),
    "connection update": _person("settings.manage", "audited"),
    "connection delete": _person("settings.manage", "audited"),
    "connection list": _listing("automation.view", "names, setting names and tables; never a URL"),
    # Catalog, datasets, templates.
    "catalog search": _listing("catalog.view"),
    "catalog show": _listing("catalog.view"),
    "catalog register": _person("catalog.register"),
    "catalog tag": _person("catalog.register"),
    "catalog change": _person("catalog.register", "owners of dependent projects are alerted"),
    "catalog use": _person("catalog.register"),
    "dataset register": _person("dataset.register"),
    "dataset accept": _person("dataset.register"),
    "dataset show": _listing("catalog.view"),
    "template list": _listing("catalog.view"),
    "template save": _person("template.manage"),
}
DEFAULT = Rule(note="not declared: needs an identity; the service checks the permission")


def command_path(ctx: click.Context) -> str:
    """The command's words after the program name, e.g. 'user create'."""
    names: list[str] = []
    while ctx.parent is not None:
        names.append(ctx.info_name or "")
        ctx = ctx.parent
    return " ".join(reversed(names))


def rule_for(path: str) -> Rule:
    return RULES.get(path, DEFAULT)


def check(path: str, as_user: str | None) -> None:
    """Refuse the command unless its rule is met; for a person, verify them (once) and check the permission."""
    from core.cli.actors import current_identity, demo_mode

    rule = rule_for(path)
    if rule.identity in ("process", "bootstrap"):
        return
    if rule.identity == "demo":
        if not demo_mode():
            raise Unauthenticated(f"`{path}` runs only in demo mode (WATCHTOWER_DEMO=1) on a local database")
        return
    identity = current_identity(as_user, what=path)
    if rule.checked_here and rule.permission:
        require(identity.actor, rule.permission)


AS_OPTION_HELP = "Act as this user (WATCHTOWER_USER), proven by WATCHTOWER_TOKEN or a password."


class GuardedCommand(click.Command):
    """A command that checks its rule before it runs, and accepts `--as USER` whether or not it declares it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _add_as_option(self)

    def invoke(self, ctx: click.Context) -> Any:
        as_user = ctx.params.get("as_user")
        if getattr(self, "_as_added", False):
            ctx.params.pop("as_user", None)
        try:
            check(command_path(ctx), as_user)
        except WatchtowerError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
        return super().invoke(ctx)


def _add_as_option(cmd: click.Command) -> None:
    if any(p.name == "as_user" for p in cmd.params):
        return
    cmd.params.append(click.Option(["--as", "as_user"], default=None, metavar="USER", help=AS_OPTION_HELP))
    cmd._as_added = True  # type: ignore[attr-defined]


class WatchtowerGroup(click.Group):
    """A group whose commands and subgroups are all guarded, however they were added."""

    command_class = GuardedCommand
    group_class = type

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        if type(cmd) is click.Command:
            cmd.__class__ = GuardedCommand
            _add_as_option(cmd)
        elif type(cmd) is click.Group:
            cmd.__class__ = WatchtowerGroup
            for sub in list(cmd.commands.values()):
                cmd.add_command(sub)
        elif not isinstance(cmd, (GuardedCommand, WatchtowerGroup)):
            raise TypeError(f"command {cmd.name!r} is a {type(cmd).__name__}, which the guard cannot wrap")
        super().add_command(cmd, name)


def walk(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    """Every runnable command under a group, with its path, depth first."""
    found: list[tuple[str, click.Command]] = []
    for name in sorted(group.commands):
        cmd = group.commands[name]
        path = f"{prefix} {name}".strip()
        if isinstance(cmd, click.Group):
            found += walk(cmd, path)
        else:
            found.append((path, cmd))
    return found


def permission_table(group: click.Group) -> str:
    """The Markdown table of every command, who may run it and the permission core checks (for the README)."""
    rows = ["| command | who | permission checked | notes |", "|---|---|---|---|"]
    who = {"person": "a verified person", "process": "—", "demo": "demo mode", "bootstrap": "anyone, once"}
    for path, _cmd in walk(group):
        rule = rule_for(path)
        perm = f"`{rule.permission}`" if rule.permission else ("—" if rule.identity != "person" else "(see notes)")
        notes = "; ".join(n for n in ("checked before it runs" if rule.checked_here else "", rule.note) if n)
        rows.append(f"| `watchtower {path}` | {who[rule.identity]} | {perm} | {notes} |")
    return "\n".join(rows)
