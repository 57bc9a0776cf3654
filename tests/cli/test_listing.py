"""`watchtower project list` and `watchtower model list`: what a person sees, in a table or as JSON, and who is refused."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from core.access import Actor
from core.cli import main
from core.db import session_scope
from core.errors import Forbidden
from core.models import registry, summaries
from core.projects import blueprints, projects
from tests.support.people import ADMINISTRATOR, cli_token

MODEL_KEYS = {"project", "model", "task", "versions", "latest_version", "latest_status", "active_version", "statuses",
              "created"}
PROJECT_KEYS = {"key", "name", "initiative", "risk_level", "stage", "owner", "health", "active_versions"}


def _add_versions(s, model: str, count: int) -> None:
    reference = pd.DataFrame({"amount": [1.0, 2.0, 3.0, 4.0], "is_fraud": [0, 1, 0, 1]})
    for _ in range(count):
        registry.add_version(session=s, actor=ADMINISTRATOR, model=model, reference=reference,
                             training_metrics={"roc_auc": 0.9})


@pytest.fixture
def store(backend) -> None:
    """FRAUD with fraud-detector v1-v3 (v2 active), CHURN with churn-model v1, and EMPTY without models."""
    features = [{"name": "amount", "type": "numeric"}]
    with session_scope() as s:
        blueprints.ensure_standard_blueprints(session=s)
        for key, name in (("FRAUD", "Credit card fraud"), ("CHURN", "Customer churn"), ("EMPTY", "Nothing yet")):
            projects.create_project(session=s, actor=ADMINISTRATOR, key=key, name=name)
        registry.create_model(session=s, actor=ADMINISTRATOR, project_key="FRAUD", name="fraud-detector",
                              task="binary", target="is_fraud", features=features)
        registry.create_model(session=s, actor=ADMINISTRATOR, project_key="CHURN", name="churn-model",
                              task="binary", target="is_fraud", features=features)
        _add_versions(s, "fraud-detector", 3)
        _add_versions(s, "churn-model", 1)
        registry.set_version_status(session=s, actor=ADMINISTRATOR, model="fraud-detector", version=2, status="active")


def _run(*args: str, env: dict[str, str]):
    return CliRunner().invoke(main, list(args), env={"WATCHTOWER_DEMO": None, **env})


def test_model_list_shows_a_table_by_default(store):
    result = _run("model", "list", env=cli_token("maya", ("ml_engineer",)))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["PROJECT", "MODEL", "TASK", "LATEST", "ACTIVE", "VERSIONS", "CREATED"]
    assert [line.split()[:2] for line in lines[1:]] == [["CHURN", "churn-model"], ["FRAUD", "fraud-detector"]]
    assert lines[2].split()[2:7] == ["binary", "v3", "candidate", "v2", "3"]
    assert lines[1].split()[2:7] == ["binary", "v1", "candidate", "-", "1"]


def test_model_list_as_json_has_stable_keys(store):
    result = _run("model", "list", "--format", "json", env=cli_token("maya", ("ml_engineer",)))
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [set(r) for r in rows] == [MODEL_KEYS, MODEL_KEYS]
    fraud = rows[1]
    assert (fraud["project"], fraud["model"], fraud["versions"], fraud["latest_version"], fraud["latest_status"],
            fraud["active_version"]) == ("FRAUD", "fraud-detector", 3, 3, "candidate", 2)
    assert fraud["statuses"] == {"active": 1, "candidate": 2}
    assert fraud["created"][:4].isdigit() and "T" in fraud["created"]


def test_model_list_filters_by_project_whatever_its_case(store):
    env = cli_token("maya", ("ml_engineer",))
    only = json.loads(_run("model", "list", "--project", "fraud", "--format", "json", env=env).output)
    assert [r["model"] for r in only] == ["fraud-detector"]
    empty = _run("model", "list", "--project", "EMPTY", env=env)
    assert empty.exit_code == 0 and empty.output.strip() == "no models in EMPTY yet"
    assert json.loads(_run("model", "list", "--project", "EMPTY", "--format", "json", env=env).output) == []


def test_an_unknown_project_is_named_in_the_error(store):
    result = _run("model", "list", "--project", "NOPE", env=cli_token("maya", ("ml_engineer",)))
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: no project 'NOPE'"
    assert result.stdout == ""


def test_project_list_in_both_formats(store):
    env = cli_token("bianca", ("business",))
    table = _run("project", "list", env=env)
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert lines[0].split()[:3] == ["KEY", "NAME", "RISK"]
    assert [line.split()[0] for line in lines[1:]] == ["CHURN", "EMPTY", "FRAUD"]
    rows = json.loads(_run("project", "list", "--format", "json", env=env).output)
    assert [set(r) for r in rows] == [PROJECT_KEYS] * 3
    assert rows[2]["key"] == "FRAUD" and rows[2]["name"] == "Credit card fraud" and rows[2]["owner"] == "admin"


def test_an_empty_store_lists_nothing(backend):
    env = cli_token("maya", ("ml_engineer",))
    assert _run("project", "list", env=env).output.strip().startswith("no projects yet")
    assert _run("model", "list", env=env).output.strip() == "no models yet"
    assert json.loads(_run("project", "list", "--format", "json", env=env).output) == []
    assert json.loads(_run("model", "list", "--format", "json", env=env).output) == []


def test_a_person_without_the_registry_view_is_refused(store):
    result = _run("model", "list", env=cli_token("bianca", ("business",)))
    assert result.exit_code == 1
    assert "bianca may not registry view" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("command", [["project", "list"], ["model", "list"]])
def test_an_unknown_or_missing_identity_is_refused(store, command):
    unknown = _run(*command, env={"WATCHTOWER_TOKEN": None, "WATCHTOWER_USER": "ghost",
                                  "WATCHTOWER_PASSWORD": "not-a-password"})
    assert unknown.exit_code == 1 and "unknown user or wrong password" in unknown.stderr
    nobody = _run(*command, env={"WATCHTOWER_TOKEN": None, "WATCHTOWER_USER": None, "WATCHTOWER_PASSWORD": None})
    assert nobody.exit_code == 1 and f"`{' '.join(command)}` needs an identity" in nobody.stderr


def test_the_services_check_the_permission_themselves(store):
    nobody = Actor(username="nobody", roles=())
    with session_scope() as s, pytest.raises(Forbidden, match="nobody may not portfolio view"):
        projects.list_projects(session=s, actor=nobody)
    with session_scope() as s, pytest.raises(Forbidden, match="nobody may not registry view"):
        summaries.list_model_summaries(session=s, actor=nobody)
