"""The steps themselves: what each built-in scenario step kind does.

ingest, evaluate, checks, notify, sleep, retrain, review, deploy and endpoint_checks, each registered with
`@step_kind` in `core.automation.step_kinds` (the registry of kinds and the permission each needs), where the
scenario runner looks them up. A step opens its own short units of work: long work (training, drift) must
not hold a transaction open.
"""

from __future__ import annotations

import logging
import shutil
import time
from datetime import timedelta
from pathlib import Path

from sqlmodel import select

from core.alerting import alerts
from core.automation.step_kinds import StepContext, StepResult, step_kind
from core.config import get_settings
from core.db import session_scope
from core.entities import Evaluation, Model, ModelVersion
from core.errors import NotFound, WatchtowerError
from core.governance import deployer, endpoints, signoffs
from core.models import retraining
from core.models.registry import model_row
from core.monitoring import checks

log = logging.getLogger("watchtower.steps")


# --- ingest -----------------------------------------------------------------------------------------

def drop_folder(model: str) -> Path:
    """Where files for a model are dropped: WATCHTOWER_HOME/drop/<model>/*.csv (moved to done/ once read)."""
    return get_settings().drop_dir / model


def _columns(ctx: StepContext, target: str) -> dict:
    p = ctx.params
    return {"id_col": p.get("id_col", "prediction_id"), "ts_col": p.get("ts_col", "ts"),
            "score_col": p.get("score_col", "score"), "prediction_col": p.get("prediction_col", "prediction"),
            "label_col": p.get("label_col", target)}


def _ingest(ctx: StepContext, source, name: str) -> tuple[int, int]:  # noqa: ANN001
    """Predictions (when the source has a score or prediction column) and/or labels; returns (predictions, labels)."""
    from core.models import registry
    from core.monitoring import ingest

    with session_scope() as s:
        target = registry.get_model(session=s, name=ctx.model_name).target
    cols, present = _columns(ctx, target), set(ingest.header(source))
    if cols["id_col"] not in present:
        raise WatchtowerError(f"{name} has no id column {cols['id_col']!r} (columns: {', '.join(sorted(present))})")
    predictions = labels = 0
    with session_scope() as s:  # one unit of work: the predictions and labels of a file land together or not at all
        if cols["score_col"] in present or cols["prediction_col"] in present:
            predictions = ingest.ingest_predictions(
                session=s, actor=ctx.actor, model=ctx.model_name, source=source, id_col=cols["id_col"],
                ts_col=cols["ts_col"] if cols["ts_col"] in present else None,
                score_col=cols["score_col"] if cols["score_col"] in present else None,
                prediction_col=cols["prediction_col"] if cols["prediction_col"] in present else None).rows
        if cols["label_col"] in present:
            labels = ingest.ingest_ground_truth(session=s, actor=ctx.actor, model=ctx.model_name, source=source,
                                                id_col=cols["id_col"], label_col=cols["label_col"]).rows
    if not predictions and not labels:
        raise WatchtowerError(f"{name} has neither a score/prediction column nor a label column "
                              f"{cols['label_col']!r}")
    return predictions, labels


@step_kind("ingest", permission="evaluation.write")
def ingest_step(ctx: StepContext) -> StepResult:
    """Ingest predictions and/or labels from the model's drop folder, or from a read-only SQL query on a data
    connection an administrator registered (params: source=sql, connection, query; optional column names)."""
    if not ctx.model_name:
        return StepResult(ok=False, message="the scenario names no model to ingest for")
    if ctx.params.get("source", "drop") == "sql":
        return _ingest_sql(ctx)
    folder = drop_folder(ctx.model_name)
    files = sorted(folder.glob("*.csv")) if folder.is_dir() else []
    if not files:
        ctx.log(f"no files in drop/{ctx.model_name}/")
        return StepResult(ok=True, message="nothing new in the drop folder", outputs={"ingested_files": []})
    done, total = [], [0, 0]
    for path in files:
        ctx.log(f"ingesting {path.name}")
        try:
            predictions, labels = _ingest(ctx, path, path.name)
        except WatchtowerError as exc:
            return StepResult(ok=False, message=f"{path.name} was not ingested: {exc}",
                              outputs={"ingested_files": done})
        target = folder / "done" / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(path), target)
        total = [total[0] + predictions, total[1] + labels]
        ctx.log(f"{path.name}: {predictions:,} predictions, {labels:,} labels; moved to done/")
        done.append(path.name)
    return StepResult(ok=True, message=f"{len(done)} file(s): {total[0]:,} predictions, {total[1]:,} labels",
                      outputs={"ingested_files": done, "ingested_predictions": total[0], "ingested_labels": total[1]})


def _ingest_sql(ctx: StepContext) -> StepResult:
    from core.automation import connections
    from core.automation.scenarios import _SETTING_KEYS

    named = [k for k in _SETTING_KEYS if k in ctx.params]
    if named:
        return StepResult(ok=False, message=f"this ingest step names a setting or URL ({', '.join(named)}), which "
                                            "is no longer allowed: edit it to name a data connection (params "
                                            "connection and query)")
    name, query = ctx.params.get("connection"), ctx.params.get("query")
    if not name or not query:
        return StepResult(ok=False, message="a SQL ingest needs params connection (a data connection's name) "
                                            "and query")
    ctx.log(f"querying data connection {name} (read-only)")
    try:
        frame = connections.run_query(connection=str(name), query=str(query))
    except WatchtowerError as exc:
        return StepResult(ok=False, message=str(exc))
    ctx.log(f"{len(frame):,} row(s) read")
    try:
        predictions, labels = _ingest(ctx, frame, "the query result")
    except WatchtowerError as exc:
        return StepResult(ok=False, message=f"the query result was not ingested: {exc}")
    return StepResult(ok=True, message=f"{predictions:,} predictions, {labels:,} labels ingested from the query",
                      outputs={"ingested_predictions": predictions, "ingested_labels": labels})


# --- evaluate and check -----------------------------------------------------------------------------

def _latest_prediction(model: str):  # noqa: ANN202
    from core.lake import predictions as prediction_store

    with session_scope() as s:
        m = s.exec(select(Model).where(Model.name == model)).first()
    return prediction_store.span(model_id=m.id)[1] if m else None


@step_kind("evaluate", permission="evaluation.write")
def evaluate_step(ctx: StepContext) -> StepResult:
    """Evaluate the active version's new or changed windows (params: every = 1D | 7D | 1M, lookback_days)."""
    from core.monitoring import evaluation_store

    if not ctx.model_name:
        return StepResult(ok=False, message="the scenario names no model to evaluate")
    every = ctx.params.get("every", "7D")
    latest = _latest_prediction(ctx.model_name)
    if latest is None:
        return StepResult(ok=True, message="no predictions logged yet", outputs={"evaluation_ids": []})
    # Labels arrive late: look back far enough for the windows whose labels came in since the last run.
    start = latest - timedelta(days=float(ctx.params.get("lookback_days", 35)))
    ctx.log(f"evaluating {ctx.model_name} by {every} from {start:%Y-%m-%d} to {latest:%Y-%m-%d}")
    try:
        ids = evaluation_store.evaluate_new(actor=ctx.actor, model=ctx.model_name, start=start, every=every,
                                            progress=ctx.log)
    except WatchtowerError as exc:
        return StepResult(ok=False, message=f"evaluating {ctx.model_name} failed: {exc}")
    return StepResult(ok=True, message=f"{len(ids)} new or changed window(s) evaluated",
                      outputs={"evaluation_ids": ids, "granularity": every})


def latest_evaluation_ids(model: str, *, granularity: str | None = None) -> list[int]:
    """The newest window of the active version (of one granularity, e.g. 7D, when given)."""
    with session_scope() as s:
        m = s.exec(select(Model).where(Model.name == model)).first()
        if m is None:
            return []
        q = select(Evaluation.id).join(ModelVersion, Evaluation.model_version_id == ModelVersion.id) \
            .where(ModelVersion.model_id == m.id, ModelVersion.status == "active")
        if granularity:
            q = q.where(Evaluation.granularity == granularity)
        ev = s.exec(q.order_by(Evaluation.window_end.desc(), Evaluation.id.desc())).first()
        return [ev] if ev else []


@step_kind("checks", permission="monitoring.manage")
def checks_step(ctx: StepContext) -> StepResult:
    """Run the checks on the run's new evaluations (else the latest one of the evaluated granularity) and alert
    on failures (params: granularity, when the run evaluates nothing itself)."""
    every = ctx.params.get("granularity") or ctx.state.get("granularity")
    ids = list(ctx.state.get("evaluation_ids") or []) or (
        latest_evaluation_ids(ctx.model_name, granularity=every) if ctx.model_name else [])
    if not ids:
        return StepResult(ok=True, message="no evaluation to check", outputs={"failed_check_result_ids": []})
    failed, names, counts = [], [], {"pass": 0, "failed": 0, "no_data": 0}
    for evaluation_id in ids:
        with session_scope() as s:
            results = checks.run_checks(session=s, actor=ctx.actor, evaluation_id=int(evaluation_id))
            for r in results:
                counts["pass" if r.status == "pass" else "no_data" if r.status == "no_data" else "failed"] += 1
                if r.status in ("warning", "error"):
                    failed.append(r.id)
                    names.append(r.check_name)
            alerts.fan_out_many(session=s, check_result_ids=[r.id for r in results if r.status in ("warning", "error")])
        ctx.log(f"evaluation {evaluation_id}: " + ", ".join(f"{r.check_name} {r.status}" for r in results))
    summary = f"{sum(counts.values())} check result(s) on {len(ids)} window(s): {counts['pass']} passed, " \
              f"{counts['failed']} failed" + (f" ({', '.join(dict.fromkeys(names))})" if names else "")
    return StepResult(ok=True, message=summary, outputs={"failed_check_result_ids": failed,
                                                         "failed_checks": list(dict.fromkeys(names)),
                                                         "checks_summary": summary})


# --- notify and sleep -------------------------------------------------------------------------------

@step_kind("notify", permission="monitoring.manage")
def notify_step(ctx: StepContext) -> StepResult:
    """Tell people what the run did (params: roles, users, channels, only_on_failure)."""
    failed = ctx.state.get("failed_checks") or []
    if ctx.params.get("only_on_failure") and not failed:
        return StepResult(ok=True, message="nothing failed: nobody notified")
    parts = [ctx.state.get("checks_summary") or "no checks ran"]
    if ctx.state.get("candidate_version"):
        parts.append(f"candidate v{ctx.state['candidate_version']} registered")
    if ctx.state.get("deployed_version"):
        parts.append(f"v{ctx.state['deployed_version']} deployed to {ctx.state.get('deployed_environment')}")
    with session_scope() as s:
        from core.entities import Project

        project = s.get(Project, ctx.project_id)
        sent = alerts.notify(session=s, project_key=project.key, roles=list(ctx.params.get("roles") or ["ml_engineer"]),
                             usernames=list(ctx.params.get("users") or []),
                             channel_names=list(ctx.params.get("channels") or []), kind="scenario",
                             severity="error" if failed else "info",
                             title=f"Scenario run #{ctx.run_id} of {project.name}: "
                                   + (f"{len(failed)} check(s) failed" if failed else "all clear"),
                             message="; ".join(parts) + ".", link="/automation", actor=ctx.actor.username)
    return StepResult(ok=True, message=f"{len(sent)} people notified")


@step_kind("sleep", permission="automation.run")
def sleep_step(ctx: StepContext) -> StepResult:
    """Wait (params: seconds), e.g. for an upstream export to settle; logs once a second."""
    seconds = float(ctx.params.get("seconds", 1))
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        ctx.log(f"waiting, {left:.0f} s left")
        time.sleep(min(1.0, left))
    return StepResult(ok=True, message=f"waited {seconds:g} s")


# --- retrain, review, deploy ---------------------------------------------------------------------

@step_kind("retrain")
def retrain_step(ctx: StepContext) -> StepResult:
    """Scenario step: when a check failed earlier in the run, retrain and register a candidate linked to it."""
    failed = list(ctx.state.get("failed_check_result_ids") or [])
    if not failed:
        return StepResult(ok=True, message="nothing failed", skip_rest=False)
    if not ctx.model_name:
        return StepResult(ok=False, message="the scenario names no model to retrain")
    try:
        outcome = retraining.retrain(actor=ctx.actor, model=ctx.model_name, triggered_by_check_result_id=int(failed[0]),
                          window_days=ctx.params.get("window_days"),
                          progress=lambda fraction, message: ctx.log(f"{fraction:>4.0%} {message}"))
    except WatchtowerError as exc:
        return StepResult(ok=False, message=f"retraining {ctx.model_name} failed: {exc}")
    v, run = outcome.version, outcome.run
    primary = "roc_auc" if "roc_auc" in run.metrics else "rmse"
    return StepResult(ok=True, message=f"{ctx.model_name} v{v.number} registered as a candidate "
                                       f"({primary} {run.metrics.get(primary)} on held-out data, {run.rows:,} rows)",
                      outputs={"candidate_version": v.number, "training_run_id": run.id})


@step_kind("review")
def review_step(ctx: StepContext) -> StepResult:
    """Scenario step: ask for the blueprint's review of the candidate this run registered."""
    number = ctx.state.get("candidate_version")
    if not number or not ctx.model_name:
        return StepResult(ok=True, message="no new candidate: nothing to review")
    failed = ", ".join(ctx.state.get("failed_checks") or []) or "a failed check"
    try:
        with session_scope() as s:
            review = signoffs.request_review(session=s, actor=ctx.actor, model=ctx.model_name, version=int(number),
                                              comment=f"Retrained by scenario run #{ctx.run_id} after {failed}.")
    except WatchtowerError as exc:
        return StepResult(ok=False, message=f"asking for the review of {ctx.model_name} v{number} failed: {exc}")
    waiting = ", ".join(review.required_roles) or review.final_approver_role
    return StepResult(ok=True, message=f"review #{review.id} of {ctx.model_name} v{number} requested "
                                       f"({review.state.lower().replace('_', ' ')}: {waiting})",
                      outputs={"review_id": review.id})


@step_kind("deploy")
def deploy_step(ctx: StepContext) -> StepResult:
    """Scenario step: deploy a version (params: environment, version = N | "latest") through the same gate."""
    environment = ctx.params.get("environment")
    wanted = ctx.params.get("version", "latest")
    if not environment or not ctx.model_name:
        return StepResult(ok=False, message="the deploy step needs a model and an 'environment' parameter")
    try:
        with session_scope() as s:
            m = model_row(s, ctx.model_name)
            newest = s.exec(select(ModelVersion.number).where(ModelVersion.model_id == m.id)
                            .order_by(ModelVersion.number.desc())).first()
            number = newest if wanted == "latest" else int(wanted)
            if number is None:
                raise NotFound(f"model {m.name} has no versions")
            dep = deployer.deploy(session=s, actor=ctx.actor, model=ctx.model_name, version=number, environment=environment,
                                  note=f"scenario run #{ctx.run_id}")
    except (WatchtowerError, ValueError) as exc:
        ctx.log(f"deploy refused: {exc}")
        return StepResult(ok=False, message=str(exc))
    ctx.log(f"{dep.model} v{dep.version} deployed to {dep.environment}" + (f" ({dep.warning})" if dep.warning else ""))
    return StepResult(ok=True, message=f"{dep.model} v{dep.version} now runs in {dep.environment}",
                      outputs={"deployed_version": dep.version, "deployed_environment": dep.environment})


# --- endpoints -------------------------------------------------------------------------------------

@step_kind("endpoint_checks")
def endpoint_checks_step(ctx: StepContext) -> StepResult:
    """Scenario step: probe every endpoint check of the project; failures are alerted like any failed check."""
    results = [endpoints.evaluate_endpoint_check(check_id=i)
               for i in endpoints.endpoint_check_ids(project_id=ctx.project_id)]
    failed = [r for r in results if r.status not in ("pass", "no_data")]
    for r in failed:
        with session_scope() as s:
            alerts.fan_out(session=s, check_result_id=r.id)
    for r in results:
        ctx.log(f"{r.check_name}: {r.status} — {r.message}")
    # Not reported as failed checks of the run: an unreachable endpoint is no reason to retrain the model.
    return StepResult(ok=True, message=f"{len(results)} endpoint check(s), {len(failed)} failing",
                      outputs={"failed_endpoint_check_result_ids": [r.id for r in failed]})
