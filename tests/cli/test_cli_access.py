"""Every command acts for a verified person: an attacker at the command line without credentials, or with bad
ones, is refused by every command that could change anything, and nothing is written."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlmodel import SQLModel

from core.cli import main
from core.cli.guard import RULES, rule_for, walk
from core.clock import now
from core.db import session_scope
from core.entities import Token
from core.identity import tokens, users
from tests.support.people import ADMINISTRATOR

COMMANDS = walk(main)  # introspected: a command added later is covered without editing this test
PROCESSES = {"serve", "worker", "api"}  # long-running servers; every request or run inside acts for someone
NAMED = {"key": "PROBE", "username": "mallory", "name": "probe", "email": "m@x.io", "roles": "admin", "role": "admin",
         "scopes": "cli", "model": "fraud-detector", "project": "FRAUD", "target": "is_fraud", "dataset": "probe"}
CLEAN = {"WATCHTOWER_TOKEN": None, "WATCHTOWER_USER": None, "WATCHTOWER_PASSWORD": None, "WATCHTOWER_DEMO": None,
         "WATCHTOWER_ADMIN_USER": "mallory", "WATCHTOWER_ADMIN_PASSWORD": "mallory-password"}


def fingerprint(home: Path) -> str:
    """Every row of every table, and every file under the home, as one hash."""
    digest = hashlib.sha256()
    with session_scope() as s:
        for table in SQLModel.metadata.sorted_tables:
            rows = s.execute(text(f'SELECT * FROM "{table.name}"')).all()
            digest.update(f"{table.name}:{sorted(map(repr, rows))}".encode())
    for path in sorted(home.rglob("*")):
        if path.is_file() and not path.name.startswith("watchtower.db"):
            digest.update(str(path.relative_to(home)).encode())
    return digest.hexdigest()


def arguments(cmd: click.Command, probe: Path) -> list[str]:
    """Values for the required arguments and options, so the command passes parsing and meets the guard."""
    args: list[str] = []
    for p in cmd.params:
        if not p.required or p.name == "as_user":
            continue
        if isinstance(p.type, click.Choice):
            value = str(p.type.choices[0])
        elif isinstance(p.type, (click.types.IntParamType, click.types.FloatParamType)):
            value = "1"
        elif isinstance(p.type, click.Path):
            value = str(probe)
        else:
            value = NAMED.get(p.name or "", "probe")
        args += [value] if isinstance(p, click.Argument) else [p.opts[0], value]
    return args


@pytest.fixture
def world(backend, tmp_path: Path) -> dict:
    """An administrator and Maya, with passwords, and the tokens an attacker might hold."""
    with session_scope() as s:
        users.create_first_admin(session=s, username="admin", password="admin-password")
        users.create_user(session=s, actor=ADMINISTRATOR, username="maya", name="Maya", email="m@x.io",
                          roles=["ml_engineer"], password="maya-password")
    with session_scope() as s:
        admin = users.get_user(session=s, username="admin").actor
        maya = users.get_user(session=s, username="maya").actor
        _, revoked = tokens.create_token(session=s, actor=admin, name="old", scopes=["cli"])
        _, expired = tokens.create_token(session=s, actor=admin, name="short", scopes=["cli"],
                                         expires_in=timedelta(hours=1))
        _, api_only = tokens.create_token(session=s, actor=admin, name="api", scopes=["predict:*/*"])
        _, mayas = tokens.create_token(session=s, actor=maya, name="ci", scopes=["cli"])
    with session_scope() as s:
        tokens.revoke_token(session=s, actor=admin, token_id=s.query(Token).filter(Token.name == "old").one().id)
        s.query(Token).filter(Token.name == "short").update({"expires_at": now() - timedelta(seconds=1)})
    probe = tmp_path / "probe.csv"
    probe.write_text("a,is_fraud\n1,0\n")
    return {"probe": probe, "home": tmp_path / "home", "revoked": revoked, "expired": expired, "api_only": api_only,
            "mayas": mayas}


def test_the_command_table_names_every_command_and_only_servers_act_for_nobody():
    paths = {path for path, _ in COMMANDS}
    assert set(RULES) <= paths, f"rules for commands that do not exist: {set(RULES) - paths}"
    assert {p for p in paths if rule_for(p).identity == "process"} == PROCESSES
    assert {p for p in paths if rule_for(p).identity == "bootstrap"} == {"admin init", "init-admin"}
    assert all("--as" in {o for p in cmd.params for o in getattr(p, "opts", [])} for _, cmd in COMMANDS)


def test_every_command_refuses_an_anonymous_caller_and_writes_nothing(world):
    before = fingerprint(world["home"])
    checked = 0
    for path, cmd in COMMANDS:
        rule = rule_for(path)
        if rule.identity == "process":
            continue
        result = CliRunner().invoke(main, [*path.split(), *arguments(cmd, world["probe"])], env=CLEAN)
        assert result.exit_code == 1, (path, result.output)
        reasons = [line for line in result.stderr.strip().splitlines() if not line.startswith("warning:")]
        assert len(reasons) == 1, (path, result.stderr)
        expected = {"person": f"error: `{path}` needs an identity: --as USER with WATCHTOWER_TOKEN "
                              "(watchtower token create --scope cli) or a password",
                    "demo": f"error: `{path}` runs only in demo mode",
                    "bootstrap": "error: an administrator already exists"}[rule.identity]
        assert result.stderr.strip().splitlines()[-1].startswith(expected), (path, result.stderr)
        assert fingerprint(world["home"]) == before, f"{path} wrote something"
        checked += 1
    assert checked == len(COMMANDS) - len(PROCESSES)


@pytest.mark.parametrize("attack", ["revoked token", "expired token", "token without the cli scope",
                                    "token of another user than --as", "wrong password", "no password, no terminal",
                                    "demo mode without a persona"])
def test_bad_credentials_are_refused_by_every_command(world, attack):
    env = {"revoked token": {"WATCHTOWER_TOKEN": world["revoked"]},
           "expired token": {"WATCHTOWER_TOKEN": world["expired"]},
           "token without the cli scope": {"WATCHTOWER_TOKEN": world["api_only"]},
           "token of another user than --as": {"WATCHTOWER_TOKEN": world["mayas"], "WATCHTOWER_USER": "admin"},
           "wrong password": {"WATCHTOWER_USER": "admin", "WATCHTOWER_PASSWORD": "guess-guess"},
           "no password, no terminal": {"WATCHTOWER_USER": "admin"},
           "demo mode without a persona": {"WATCHTOWER_DEMO": "1"}}[attack]
    reason = {"revoked token": "token 'old' was revoked", "expired token": "token 'short' expired",
              "token without the cli scope": "token 'api' has no cli scope",
              "token of another user than --as": "WATCHTOWER_TOKEN belongs to maya, not to admin",
              "wrong password": "unknown user or wrong password",
              "no password, no terminal": "no password for admin",
              "demo mode without a persona": "in demo mode --as names a persona"}[attack]
    before = fingerprint(world["home"])
    for path, cmd in COMMANDS:
        if rule_for(path).identity != "person":
            continue
        result = CliRunner().invoke(main, [*path.split(), *arguments(cmd, world["probe"])], env={**CLEAN, **env})
        assert result.exit_code == 1, (path, result.output)
        if attack != "wrong password":  # repeated failures may lock the account, with their own message
            assert reason in result.stderr, (path, result.stderr)
        if attack == "wrong password":
            continue  # a failed sign-in may itself be recorded; checked below on the tables it cannot touch
        assert fingerprint(world["home"]) == before, f"{path} wrote something"


def test_demo_mode_lets_a_named_persona_act_only_on_a_local_database(world, monkeypatch):
    as_maya = {**CLEAN, "WATCHTOWER_DEMO": "1"}
    shown = CliRunner().invoke(main, ["token", "list", "--as", "maya"], env=as_maya)
    assert shown.exit_code == 0 and "ci" in shown.output
    remote = CliRunner().invoke(main, ["token", "list", "--as", "maya"],
                                env={**as_maya, "WATCHTOWER_DATABASE_URL": "postgresql://watchtower@10.0.0.9/prod"})
    assert remote.exit_code == 1 and "demo mode works on a local database only" in remote.stderr


def test_a_token_acts_for_its_owner_without_as_and_within_the_owners_roles(world):
    env = {**CLEAN, "WATCHTOWER_TOKEN": world["mayas"]}
    mine = CliRunner().invoke(main, ["token", "list", "--format", "json"], env=env)
    assert mine.exit_code == 0 and '"user": "maya"' in mine.output and '"status": "active"' in mine.output
    escalate = CliRunner().invoke(main, ["user", "roles", "maya", "--add", "admin"], env=env)
    assert escalate.exit_code == 1 and "maya may not users manage" in escalate.stderr
    mint = CliRunner().invoke(main, ["token", "create", "--name", "more", "--scope", "cli"], env=env)
    assert mint.exit_code == 1 and "a token cannot create tokens" in mint.stderr


def test_the_readme_lists_every_command_with_its_permission():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for path in RULES:
        rule = rule_for(path)
        row = f"| `watchtower {path}` |"
        assert row in readme, f"README lacks {path}"
        if rule.permission:
            assert f"{row} a verified person | `{rule.permission}` |" in readme, path
