"""catalog search/show/register/tag/change/use, dataset register/accept/show, project from-template, template."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from core.cli.base import fails_cleanly, main
from core.cli.projects import project_group
from core.errors import InvalidInput
from core.vocabulary import COMPONENT_KINDS

if TYPE_CHECKING:
    from core.catalog import components

AS_USER = click.option("--as", "as_user", default=None, help="Act as this user (authenticated).")
KIND = click.argument("kind", type=click.Choice(COMPONENT_KINDS))


def _spec(spec: str | None, spec_file: str | None) -> dict | None:
    """A definition given inline (--spec JSON) or in a file (--spec-file FILE.json)."""
    if spec and spec_file:
        raise InvalidInput("give the definition either inline (--spec) or in a file (--spec-file), not both")
    raw, where = (spec, "--spec") if spec else (Path(spec_file).read_text(), spec_file) if spec_file else (None, "")
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"the definition in {where} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise InvalidInput(f"the definition in {where} must be a JSON object")
    return value


def _line(c: components.ComponentRead) -> str:
    used = ", ".join(u.project_key for u in c.used_by) or "-"
    return (f"{c.kind:<17} {c.name:<32} owner {c.owner:<8} {c.trust.status:<10} "
            f"tags {','.join(c.tags) or '-':<24} used by {used}")


@main.group("catalog")
def catalog_group() -> None:
    """Reusable components: datasets, recipes, models, versions, check and scenario templates, business metrics."""


@catalog_group.command("search")
@click.argument("query", nargs=-1)
@click.option("--kind", type=click.Choice(COMPONENT_KINDS), default=None)
@click.option("--tag", default=None)
@click.option("--owner", default=None)
@click.option("--project", default=None, help="Only components this project uses.")
@click.option("--limit", default=50, show_default=True, type=int)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@fails_cleanly
def catalog_search(query: tuple[str, ...], kind: str | None, tag: str | None, owner: str | None,
                   project: str | None, limit: int, fmt: str) -> None:
    """Find components whose name, description, tags or owner hold every word of QUERY."""
    from core.catalog import components
    from core.db import session_scope

    with session_scope() as s:
        found = components.search(session=s, query=" ".join(query), kind=kind, tag=tag, owner=owner, project=project,
                               limit=limit)
    if fmt == "json":
        click.echo(json.dumps({"total": found.total, "hits": [
            {"kind": c.kind, "name": c.name, "owner": c.owner, "owner_email": c.owner_email, "tags": list(c.tags),
             "description": c.description, "trust": c.trust.status, "trust_reason": c.trust.reason,
             "used_by": [u.project_key for u in c.used_by]} for c in found.hits]}, indent=2))
        return
    for c in found.hits:
        click.echo(_line(c))
    click.echo(f"{found.total} component(s)" + (f", first {len(found.hits)} shown" if found.total > len(found.hits)
                                                else ""))


@catalog_group.command("show")
@KIND
@click.argument("name")
@fails_cleanly
def catalog_show(kind: str, name: str) -> None:
    """Everything about one component: owner to contact, trust, who uses it, its definition."""
    from core.catalog import components
    from core.db import session_scope

    with session_scope() as s:
        c = components.get_component(session=s, kind=kind, name=name)
    click.echo(f"{components.KIND_LABELS[c.kind]}: {c.name} (revision {c.revision})")
    click.echo(f"owner: {c.owner_name} <{c.owner_email}>")
    click.echo(f"trust: {c.trust.status} - {c.trust.reason}")
    click.echo(f"tags: {', '.join(c.tags) or '-'}")
    click.echo(f"description: {c.description or '-'}")
    for u in c.used_by:
        click.echo(f"used by {u.project_key} ({u.project_name}, owner {u.project_owner}): {u.how or 'uses it'}")
    if c.spec:
        click.echo("definition: " + json.dumps(c.spec, sort_keys=True))


@catalog_group.command("register")
@KIND
@click.argument("name")
@click.option("--description", default="")
@click.option("--owner", default=None, help="Username to contact (default: you).")
@click.option("--tag", "tags", multiple=True, help="Repeat for several tags.")
@click.option("--project", default=None, help="The project it was built in.")
@click.option("--ref", default="", help="What it points at: a model name, MODEL:vN, a dataset name.")
@click.option("--spec", default=None, help="Its definition as a JSON object (recipes, templates, metrics).")
@click.option("--spec-file", default=None, type=click.Path(exists=True, dir_okay=False))
@AS_USER
@fails_cleanly
def catalog_register(kind: str, name: str, description: str, owner: str | None, tags: tuple[str, ...],
                     project: str | None, ref: str, spec: str | None, spec_file: str | None,
                     as_user: str | None) -> None:
    """Register component NAME of KIND."""
    from core.catalog import components
    from core.cli.actors import resolve_actor
    from core.db import session_scope

    definition = _spec(spec, spec_file)
    actor = resolve_actor(as_user)
    with session_scope() as s:
        c = components.register_component(session=s, actor=actor, kind=kind, name=name, description=description,
                                       owner=owner, tags=list(tags), project_key=project, ref=ref, spec=definition)
    click.echo(f"{components.KIND_LABELS[kind].lower()} {c.name} registered (owner {c.owner}, trust {c.trust.status})")


@catalog_group.command("tag")
@KIND
@click.argument("name")
@click.option("--add", multiple=True)
@click.option("--remove", multiple=True)
@AS_USER
@fails_cleanly
def catalog_tag(kind: str, name: str, add: tuple[str, ...], remove: tuple[str, ...], as_user: str | None) -> None:
    """Add or remove tags of a component."""
    from core.catalog import components
    from core.cli.actors import resolve_actor
    from core.db import session_scope

    actor = resolve_actor(as_user)
    with session_scope() as s:
        c = components.tag_component(session=s, actor=actor, kind=kind, name=name, add=list(add), remove=list(remove))
    click.echo(f"{c.name}: tags {', '.join(c.tags) or '(none)'}")


@catalog_group.command("change")
@KIND
@click.argument("name")
@click.option("--description", default=None)
@click.option("--owner", default=None)
@click.option("--spec", default=None)
@click.option("--spec-file", default=None, type=click.Path(exists=True, dir_okay=False))
@AS_USER
@fails_cleanly
def catalog_change(kind: str, name: str, description: str | None, owner: str | None, spec: str | None,
                   spec_file: str | None, as_user: str | None) -> None:
    """Change a component; warns (on stderr) naming every other project that depends on it."""
    from core.catalog import components
    from core.cli.actors import resolve_actor
    from core.db import session_scope

    definition = _spec(spec, spec_file)
    actor = resolve_actor(as_user)
    with session_scope() as s:
        result = components.update_component(session=s, actor=actor, kind=kind, name=name, description=description,
                                          spec=definition, owner=owner)
    if result.warning:
        click.echo(f"warning: {result.warning}", err=True)
    click.echo(f"{result.component.name} changed (revision {result.component.revision})")


@catalog_group.command("use")
@KIND
@click.argument("name")
@click.argument("project")
@click.option("--how", default="", help="How the project uses it, e.g. 'training data of churn-model'.")
@AS_USER
@fails_cleanly
def catalog_use(kind: str, name: str, project: str, how: str, as_user: str | None) -> None:
    """Record that PROJECT uses a component (its owner is then warned of changes)."""
    from core.catalog import components
    from core.cli.actors import resolve_actor
    from core.db import session_scope

    actor = resolve_actor(as_user)
    with session_scope() as s:
        c = components.record_use(session=s, actor=actor, kind=kind, name=name, project_key=project, how=how)
    click.echo(f"{c.name} is used by {', '.join(u.project_key for u in c.used_by)}")


@main.group("dataset")
def dataset_group() -> None:
    """Datasets: versions of a CSV file or a SQL query, with schema, fingerprint and profile."""


@dataset_group.command("register")
@click.argument("name")
@click.option("--csv", "csv_path", default=None, type=click.Path(dir_okay=False))
@click.option("--query", default=None, help="A SELECT statement.")
@click.option("--url", default=None, envvar="WATCHTOWER_DATASET_URL",
              help="Database the query runs on (default: Watchtower's own; or WATCHTOWER_DATASET_URL).")
@click.option("--description", default="")
@click.option("--owner", default=None)
@click.option("--tag", "tags", multiple=True)
@click.option("--strict", is_flag=True, help="Refuse a version whose schema differs from the previous one.")
@AS_USER
@fails_cleanly
def dataset_register(name: str, csv_path: str | None, query: str | None, url: str | None, description: str,
                     owner: str | None, tags: tuple[str, ...], strict: bool, as_user: str | None) -> None:
    """Register the next version of dataset NAME from a CSV file or a SQL query."""
    from core.catalog import datasets
    from core.cli.actors import resolve_actor
    from core.db import session_scope

    actor = resolve_actor(as_user)
    with session_scope() as s:
        v = datasets.register_dataset(session=s, actor=actor, name=name, csv_path=csv_path, query=query,
                                      database_url=url, description=description, owner=owner, tags=list(tags),
                                      strict=strict)
    if v.warning:
        click.echo(f"warning: {v.warning}", err=True)
    click.echo(f"dataset {v.dataset} v{v.number}: {v.rows} rows, {len(v.columns)} columns, "
               f"fingerprint {v.fingerprint[:12]}{' (FLAGGED: schema changed)' if v.flagged else ''}")


@dataset_group.command("accept")
@click.argument("name")
@click.argument("version", type=int)
@AS_USER
@fails_cleanly
def dataset_accept(name: str, version: int, as_user: str | None) -> None:
    """Accept a version's schema change so scenarios and templates may use it."""
    from core.catalog import datasets
    from core.cli.actors import resolve_actor
    from core.db import session_scope

    actor = resolve_actor(as_user)
    with session_scope() as s:
        v = datasets.accept_version(session=s, actor=actor, name=name, version=version)
    click.echo(f"dataset {v.dataset} v{v.number} accepted by {v.accepted_by}")


@dataset_group.command("show")
@click.argument("name")
@click.option("--version", "version", default=None, type=int)
@fails_cleanly
def dataset_show(name: str, version: int | None) -> None:
    """A version's schema and profile (default: the latest)."""
    from core.catalog import components, datasets
    from core.db import session_scope

    with session_scope() as s:
        info = datasets.get_dataset(session=s, name=name)
    chosen = [v for v in info.versions if version is None or v.number == version]
    if not chosen:
        click.echo(f"error: dataset {name} has no version {version}", err=True)
        sys.exit(1)
    v = chosen[-1]
    click.echo(f"dataset {v.dataset} v{v.number} ({info.source_kind}: {v.source}), {v.rows} rows, "
               f"registered {v.created_at:%Y-%m-%d %H:%M} by {v.created_by}"
               + (f"; FLAGGED: {components.describe_changes(v.schema_changes)}" if v.flagged else ""))
    for p in v.profile:
        click.echo(f"  {p['name']:<24} {p['type']:<12} missing {p['missing_rate']:.1%}  {datasets.describe_summary(p)}")


@project_group.command("from-template")
@click.argument("template")
@click.argument("key")
@click.option("--name", required=True)
@click.option("--dataset", required=True, help="A registered dataset (its latest usable version).")
@click.option("--target", required=True, help="The target column in the dataset.")
@click.option("--risk", type=click.Choice(["low", "medium", "high"]), default="medium", show_default=True)
@click.option("--sponsor", default="")
@click.option("--initiative", default=None)
@click.option("--description", default="")
@click.option("--dataset-version", type=int, default=None)
@click.option("--model", "model_name", default=None, help="Model name (default: KEY-model, lower case).")
@AS_USER
@fails_cleanly
def project_from_template(template: str, key: str, name: str, dataset: str, target: str, risk: str, sponsor: str,
                          initiative: str | None, description: str, dataset_version: int | None,
                          model_name: str | None, as_user: str | None) -> None:
    """Create project KEY from TEMPLATE: blueprint, model trained on the dataset, checks, daily scenario."""
    from core.catalog import templates
    from core.cli.actors import resolve_actor

    actor = resolve_actor(as_user)
    created = templates.create_project_from_template(
        actor=actor, template=template, key=key, name=name, dataset=dataset, target=target, risk_level=risk,
        sponsor=sponsor, initiative=initiative, description=description, dataset_version=dataset_version,
        model_name=model_name, progress=lambda _fraction, message: click.echo(f"  {message}"))
    p = created.project
    click.echo(f"project {p.key} created from template {created.template!r}: blueprint {p.blueprint or 'none'} "
               f"(stage {p.stage}), model {created.model} v{created.version}, {len(created.checks)} checks, "
               f"scenario {created.scenario!r}")


@main.group("template")
def template_group() -> None:
    """Project templates."""


@template_group.command("list")
@fails_cleanly
def template_list() -> None:
    """The templates a project can start from, with the dataset columns they need."""
    from core.catalog import templates
    from core.db import session_scope

    with session_scope() as s:
        found = templates.list_templates(session=s)
    for t in found:
        origin = "standard" if t.standard else f"saved from {t.source_project} by {t.created_by}"
        needs = ", ".join(dict.fromkeys(c for c, _why in t.required_columns)) or "a target column"
        click.echo(f"{t.name}  ({t.task}, {origin}; needs {needs})")


@template_group.command("save")
@click.argument("project")
@click.argument("name")
@click.option("--description", default="")
@AS_USER
@fails_cleanly
def template_save(project: str, name: str, description: str, as_user: str | None) -> None:
    """Save PROJECT's model setup, business metrics, checks and scenario as template NAME."""
    from core.catalog import templates
    from core.cli.actors import resolve_actor
    from core.db import session_scope

    actor = resolve_actor(as_user)
    with session_scope() as s:
        saved = templates.save_as_template(session=s, actor=actor, project_key=project, name=name,
                                           description=description)
    click.echo(f"template {saved.name!r} saved from {saved.source_project}: "
               f"{len(saved.spec['checks']['extra'])} checks, scenario {saved.spec['scenario']['name']!r}")
