"""train, runs, promote, retrain, versions, compare, model import."""

from __future__ import annotations

import json
from datetime import datetime

import click

from core.cli.base import fails_cleanly, main
from core.cli.projects import model_group
from core.clock import to_utc_naive
from core.errors import InvalidInput
from core.vocabulary import ALGORITHMS


def _when(value: str | None, option: str) -> datetime | None:
    if not value:
        return None
    try:
        return to_utc_naive(datetime.fromisoformat(value))
    except ValueError as exc:
        raise InvalidInput(f"{option} {value!r} is not an ISO date or datetime") from exc


def _params(pairs: tuple[str, ...]) -> dict:
    out = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise InvalidInput(f"--param {pair!r} must look like NAME=VALUE")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


@main.command("train")
@click.argument("model")
@click.option("--algorithm", type=click.Choice(ALGORITHMS), required=True)
@click.option("--data", "data", default=None, type=click.Path(dir_okay=False),
              help="Training CSV (default: the evaluation store's labelled predictions).")
@click.option("--start", default=None, help="Training window start (ISO, inclusive).")
@click.option("--end", default=None, help="Training window end (ISO, exclusive).")
@click.option("--features", default=None, help="Comma-separated feature columns (default: the model's).")
@click.option("--param", "params", multiple=True, help="Hyperparameter NAME=VALUE (repeatable).")
@click.option("--holdout", default=0.2, show_default=True, type=float, help="Held-out share for the metrics.")
@click.option("--promote", is_flag=True, help="Register the run as a candidate version at once.")
@click.option("--as", "as_user", default=None, help="Act as this user (authenticated).")
@fails_cleanly
def train_command(model: str, algorithm: str, data: str | None, start: str | None, end: str | None,
                  features: str | None, params: tuple[str, ...], holdout: float, promote: bool,
                  as_user: str | None) -> None:
    """Train MODEL's features with ALGORITHM on a window; track the run (and optionally promote it)."""
    from core.cli.actors import resolve_actor
    from core.db import session_scope
    from core.models import training

    actor = resolve_actor(as_user)
    recipe = training.Recipe(algorithm=algorithm, params=_params(params), start=_when(start, "--start"),
                             end=_when(end, "--end"), holdout=holdout,
                             features=tuple(f.strip() for f in features.split(",") if f.strip()) if features else ())
    run = training.train(actor=actor, model=model, recipe=recipe, data=data,
                         progress=lambda f, msg: click.echo(f"{f:>4.0%} {msg}", err=True))
    primary = "roc_auc" if "roc_auc" in run.metrics else "rmse"
    click.echo(f"training run {run.id}: {algorithm} on {run.rows:,} rows in {run.duration_s:.1f}s, "
               f"held-out {primary} {_fmt(run.metrics.get(primary))}")
    if promote:
        with session_scope() as s:
            v = training.promote_run(session=s, actor=actor, run_id=run.id)
        click.echo(f"{model} v{v.number} registered as a candidate from run {run.id}")


@main.command("runs")
@click.argument("model")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@fails_cleanly
def runs_command(model: str, fmt: str) -> None:
    """List MODEL's training runs, newest first."""
    from core.db import session_scope
    from core.models import training

    with session_scope() as s:
        runs = training.list_runs(session=s, model=model)
    if fmt == "json":
        click.echo(json.dumps([{"id": r.id, "algorithm": r.algorithm, "rows": r.rows, "metrics": r.metrics,
                                "params": r.params, "data_start": r.data_start, "data_end": r.data_end,
                                "data_fingerprint": r.data_fingerprint, "duration_s": r.duration_s,
                                "created_by": r.created_by, "promoted_version": r.promoted_version}
                               for r in runs], default=str, indent=2))
        return
    if not runs:
        click.echo(f"{model} has no training runs yet")
    for r in runs:
        primary = "roc_auc" if "roc_auc" in r.metrics else "rmse"
        promoted = f" → v{r.promoted_version}" if r.promoted_version else ""
        click.echo(f"run {r.id:>4}  {r.algorithm:<24} {r.rows:>9,} rows  {primary} {_fmt(r.metrics.get(primary))}  "
                   f"{r.duration_s:>7.1f}s  {r.created_by}  {r.created_at:%Y-%m-%d %H:%M}{promoted}")


@main.command("promote")
@click.argument("run_id", type=int)
@click.option("--notes", default="")
@click.option("--as", "as_user", default=None, help="Act as this user (authenticated).")
@fails_cleanly
def promote_command(run_id: int, notes: str, as_user: str | None) -> None:
    """Register training run RUN_ID as a new candidate version."""
    from core.cli.actors import resolve_actor
    from core.db import session_scope
    from core.models import training

    actor = resolve_actor(as_user)
    with session_scope() as s:
        run = training.get_run(session=s, run_id=run_id)
        v = training.promote_run(session=s, actor=actor, run_id=run_id, notes=notes)
    click.echo(f"{run.model} v{v.number} registered as a candidate from run {run_id}")


@main.command("retrain")
@click.argument("model")
@click.option("--window-days", default=None, type=int, help="Days of labelled data (default: the recipe's).")
@click.option("--check-result", "check_result", default=None, type=int, help="The failed check result it answers.")
@click.option("--as", "as_user", default=None, help="Act as this user (authenticated).")
@fails_cleanly
def retrain_command(model: str, window_days: int | None, check_result: int | None, as_user: str | None) -> None:
    """Retrain MODEL's active recipe on the newest labelled window; register a candidate."""
    from core.cli.actors import resolve_actor
    from core.models import retraining

    outcome = retraining.retrain(actor=resolve_actor(as_user), model=model, window_days=window_days,
                                 triggered_by_check_result_id=check_result, origin="manual",
                                 progress=lambda f, msg: click.echo(f"{f:>4.0%} {msg}", err=True))
    click.echo(f"{model} v{outcome.version.number} registered as a candidate ({outcome.version.origin}) "
               f"from run {outcome.run.id}")


@main.command("versions")
@click.argument("model")
@click.option("--as", "as_user", default=None, help="Act as this user (authenticated).")
@fails_cleanly
def versions_command(model: str, as_user: str | None) -> None:
    """List MODEL's versions with status, origin and where each runs."""
    from core.cli.actors import resolve_actor
    from core.db import session_scope
    from core.models import lineage

    with session_scope() as s:
        rows = lineage.versions_overview(session=s, actor=resolve_actor(as_user), model=model)
    for v in rows:
        click.echo(f"v{v.number:<3} {v.status:<9} {v.origin:<17} {v.primary_metric} {_fmt(v.primary_value)}  "
                   f"running in: {', '.join(v.running_in) or '—'}")


@main.command("compare")
@click.argument("model")
@click.argument("a", type=int)
@click.argument("b", type=int)
@click.option("--as", "as_user", default=None, help="Act as this user (authenticated).")
@fails_cleanly
def compare_command(model: str, a: int, b: int, as_user: str | None) -> None:
    """Compare versions A and B of MODEL on the same recent labelled data."""
    from core.cli.actors import resolve_actor
    from core.validation import comparison

    c = comparison.compare_versions(actor=resolve_actor(as_user), model=model, a=a, b=b)
    click.echo(f"{model} v{a} vs v{b} on {c.rows:,} recent labelled predictions neither was trained on")
    for name, va, vb, better in [*c.metrics, *((label, x, y, w) for _n, label, x, y, w in c.business)]:
        mark = {"a": f"v{a}", "b": f"v{b}"}.get(better or "", "")
        click.echo(f"  {name:<28} {_fmt(va):>12} {_fmt(vb):>12}  {mark}")
    click.echo(f"  drifted fields between their training data: {c.drifted_fields}")


@model_group.command("import")
@click.argument("model")
@click.option("--artifact", required=True, type=click.Path(dir_okay=False),
              help='A scikit-learn estimator saved with skops: skops.io.dump(model, "model.skops").')
@click.option("--reference", required=True, type=click.Path(dir_okay=False),
              help="Reference data (CSV) with the model's features and target.")
@click.option("--sha256", "sha256", default=None, help="Expected sha256 of the artifact.")
@click.option("--notes", default="")
@click.option("--as", "as_user", default=None, help="Act as this user (authenticated).")
@fails_cleanly
def model_import(model: str, artifact: str, reference: str, sha256: str | None, notes: str,
                 as_user: str | None) -> None:
    """Import an existing scikit-learn model as a candidate version of MODEL."""
    from core.cli.actors import resolve_actor
    from core.db import session_scope
    from core.models import registry

    actor = resolve_actor(as_user)
    with session_scope() as s:
        v = registry.import_version(session=s, actor=actor, model=model, artifact=artifact, reference=reference,
                                    expected_sha256=sha256, notes=notes)
    click.echo(f"{model} v{v.number} imported as a candidate (sha256 {v.artifact_sha256[:12]}…, "
               f"{v.reference_rows:,} reference rows)")


@model_group.command("trust-type")
@click.argument("type_names", nargs=-1, required=True)
@click.option("--revoke", is_flag=True, help="Stop trusting the types instead.")
@click.option("--as", "as_user", default=None, help="Act as this user (authenticated; administrators only).")
@fails_cleanly
def model_trust_type(type_names: tuple[str, ...], revoke: bool, as_user: str | None) -> None:
    """Trust (or --revoke) Python types in uploaded skops files, by the names an import refusal lists."""
    from core.cli.actors import resolve_actor
    from core.db import session_scope
    from core.models import registry

    actor = resolve_actor(as_user)
    with session_scope() as s:
        if revoke:
            changed = registry.distrust_types(session=s, actor=actor, type_names=list(type_names))
        else:
            changed = registry.trust_types(session=s, actor=actor, type_names=list(type_names))
    verb = "no longer trusted" if revoke else "trusted"
    click.echo(f"{verb}: {', '.join(changed)}" if changed else "nothing changed")


@model_group.command("allow-pickle")
@click.argument("model")
@click.option("--sha256", "sha256", required=True, help="The sha256 the pickle/joblib file must match.")
@click.option("--as", "as_user", default=None, help="Act as this user (authenticated; administrators only).")
@fails_cleanly
def model_allow_pickle(model: str, sha256: str, as_user: str | None) -> None:
    """Allow one exact pickle/joblib file (by its sha256) to be imported for MODEL."""
    from core.cli.actors import resolve_actor
    from core.db import session_scope
    from core.models import registry

    actor = resolve_actor(as_user)
    with session_scope() as s:
        registry.allow_pickle(session=s, actor=actor, model=model, sha256=sha256)
    click.echo(f"a pickle/joblib file with sha256 {sha256.strip().lower()[:12]}… may now be imported for {model}")
