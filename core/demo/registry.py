"""Retraining in the story: fraud-detector v3, produced by the daily scenario's retrain step after the quality alert.

Runs after the monitoring step. The newest week whose checks failed is the one the scenario's morning run
answers: the retrain step receives that run's failed check results (the quality checks first), trains the
active version's recipe (v2's gradient boosting) on the latest labelled window — the last two months,
wave included — and registers v3 as a candidate linked to the failed check. It waits there for review.
"""

from __future__ import annotations

from sqlmodel import select

from core.automation import scenarios
from core.automation.step_kinds import STEP_KINDS, StepContext, load_step_kinds
from core.db import session_scope
from core.entities import Check, CheckResult, Evaluation, Scenario
from core.models.registry import model_row

MODEL = "fraud-detector"
QUALITY_FIRST = ("metric_drop", "metric", "business", "estimated")  # check kinds, the quality alert first


def failed_results(session, model_id: int) -> list[int]:  # noqa: ANN001 - a Session
    """The failed check results of the newest evaluation window that had any, quality checks first."""
    rows = session.exec(select(CheckResult, Check, Evaluation)
                        .join(Check, Check.id == CheckResult.check_id)
                        .join(Evaluation, Evaluation.id == CheckResult.evaluation_id)
                        .where(Check.model_id == model_id, CheckResult.passed == False)  # noqa: E712
                        .order_by(Evaluation.window_end.desc())).all()
    if not rows:
        return []
    newest = rows[0][2].window_end
    latest = [(r, c) for r, c, e in rows if e.window_end == newest and r.status == "error"] \
        or [(r, c) for r, c, e in rows if e.window_end == newest]
    rank = {kind: i for i, kind in enumerate(QUALITY_FIRST)}
    latest.sort(key=lambda rc: (rank.get(rc[1].kind, len(rank)), rc[1].name, rc[0].id))
    return [r.id for r, _c in latest]


def seed(*, progress) -> None:  # noqa: ANN001 - core.demo.Progress
    """fraud-detector v3: retrained on the latest labelled window after the failed quality check, a candidate."""
    load_step_kinds()  # the retrain step kind

    with session_scope() as s:
        model = model_row(s, MODEL)
        failed = failed_results(s, model.id)
        scenario = s.exec(select(Scenario).where(Scenario.model_id == model.id)).first()
        # The retrain acts as the daily scenario would: as its owner, who must be allowed to retrain.
        context = dict(scenario_id=scenario.id, project_id=model.project_id,
                       actor=scenarios.acting_actor(session=s, scenario_id=scenario.id, kind="retrain"))
    if not failed:
        progress("retraining: no failed check to answer, so no retrain")
        return
    progress(f"retraining fraud-detector after failed check result {failed[0]} on the latest labelled window")
    result = STEP_KINDS["retrain"](StepContext(run_id=0, model_name=MODEL, params={},
                                               state={"failed_check_result_ids": failed},
                                               log=lambda line: progress(f"  {line.strip()}"), **context))
    if not result.ok:
        raise RuntimeError(f"the demo's retrain failed: {result.message}")
    progress(result.message)
