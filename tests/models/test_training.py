"""A data scientist trains candidates from recipes, compares the tracked runs and promotes the best one."""

from __future__ import annotations

from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlmodel import func, select

from core import audit
from core.automation.step_kinds import STEP_KINDS, StepContext
from core.cli import main
from core.db import session_scope
from core.entities import Check, CheckResult, ModelVersion, Project, TrainingRun
from core.errors import Conflict, Forbidden, InvalidInput
from core.models import lineage, registry, training
from tests.support import lab_world as world
from tests.support.people import cli_token


def _count(table) -> int:  # noqa: ANN001
    with session_scope() as s:
        return s.exec(select(func.count()).select_from(table)).one()


def test_training_runs_are_tracked_compared_and_the_best_promoted(backend):
    world.build()
    data = world.traffic(3000, seed=1)
    seen: list[tuple[float, str]] = []
    linear = training.train(actor=world.actor("dario"), model=world.MODEL, data=data,
                            recipe=training.Recipe(algorithm="logistic_regression", params={"C": 0.5}),
                            progress=lambda f, msg: seen.append((f, msg)))
    boosted = training.train(actor=world.actor("maya"), model=world.MODEL, data=data,
                             recipe=training.Recipe(algorithm="hist_gradient_boosting", params={"max_iter": 60}))

    # Progress moved forward to completion, naming what happened.
    assert [f for f, _ in seen] == sorted(f for f, _ in seen) and seen[-1][0] == 1.0
    assert any("fitting Logistic regression" in msg for _, msg in seen)

    with session_scope() as s:
        runs = training.list_runs(session=s, model=world.MODEL)
        comparison = training.compare_runs(session=s, run_ids=[linear.id, boosted.id])
    assert [r.id for r in runs] == [boosted.id, linear.id]
    first = next(r for r in runs if r.id == linear.id)
    assert first.params["C"] == 0.5 and first.created_by == "dario" and first.rows == 3000
    assert first.data_start == data["ts"].min().to_pydatetime() and first.data_end == data["ts"].max().to_pydatetime()
    assert len(first.data_fingerprint) == 64 and first.duration_s > 0
    for key in ("roc_auc", "pr_auc", "precision", "recall", "f1", "accuracy", "log_loss", "brier", "positive_rate"):
        assert first.metrics[key] is not None, key
    assert 0.6 < first.metrics["roc_auc"] <= 1.0
    assert first.metrics["held_out_rows"] == 600 and "train_roc_auc" in first.metrics
    assert comparison.metrics[:2] == ["roc_auc", "pr_auc"]
    winner = comparison.best["roc_auc"]
    assert winner in (linear.id, boosted.id)

    with session_scope() as s:
        version = training.promote_run(session=s, actor=world.actor("dario"), run_id=winner)
    assert (version.number, version.status, version.origin) == (1, "candidate", "manual")
    best = linear if winner == linear.id else boosted
    assert version.data_fingerprint == best.data_fingerprint and version.training_metrics == best.metrics
    assert version.recipe["algorithm"] == best.algorithm and version.artifact_sha256 == best.artifact_sha256
    with session_scope() as s:
        assert training.get_run(session=s, run_id=winner).promoted_version == 1
        trail = [e.action for e in audit.events(session=s, limit=20)]
    assert trail.count("training.run") == 2 and "version.register" in trail
    with pytest.raises(Conflict, match=f"training run {winner} is already version 1"), session_scope() as s:
        training.promote_run(session=s, actor=world.actor("dario"), run_id=winner)


def test_training_on_the_evaluation_stores_labelled_window(backend):
    world.build()
    first = world.train_version(world.traffic(2000, seed=2))
    traffic = world.traffic(1500, seed=3, start=world.START + timedelta(days=40), days=30)
    world.log_traffic(traffic, version=first)
    start, end = world.START + timedelta(days=45), world.START + timedelta(days=60)
    run = training.train(actor=world.actor("dario"), model=world.MODEL,
                         recipe=training.Recipe(algorithm="random_forest", params={"n_estimators": 30},
                                                start=start, end=end))
    expected = traffic[(traffic.ts >= start) & (traffic.ts < end)]
    assert run.rows == len(expected) and (run.data_start, run.data_end) == (start, end)
    assert run.recipe["start"] == start.isoformat() and run.algorithm == "random_forest"


@pytest.mark.parametrize("recipe, data_kind, message", [
    (training.Recipe(algorithm="logistic_regression", features=("amount", "merchant_risk")), "frame",
     "the recipe names column(s) 'merchant_risk' that the training data does not have"),
    (training.Recipe(algorithm="logistic_regression"), "one_class",
     "target 'is_fraud' has a single class (0) in the training data"),
    (training.Recipe(algorithm="gradient_magic"), "frame", "algorithm 'gradient_magic' is not one of"),
    (training.Recipe(algorithm="random_forest", params={"n_trees": 10}), "frame",
     "random_forest has no hyperparameter 'n_trees'"),
    (training.Recipe(algorithm="logistic_regression", start=world.START.replace(year=2030),
                     end=world.START.replace(year=2031)), "store", "no labelled rows for card-fraud between"),
])
def test_a_bad_recipe_is_refused_and_nothing_is_registered(backend, recipe, data_kind, message):
    world.build()
    data = world.traffic(400, seed=4)
    if data_kind == "one_class":
        data[world.TARGET] = 0
    files_before = sorted(p.name for p in _artifacts())
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(").replace(")", r"\)")):
        training.train(actor=world.actor("dario"), model=world.MODEL, recipe=recipe,
                       data=None if data_kind == "store" else data)
    assert _count(TrainingRun) == 0 and _count(ModelVersion) == 0
    assert sorted(p.name for p in _artifacts()) == files_before


def _artifacts() -> list:
    from core.config import get_settings

    store = get_settings().artifacts_dir
    return list(store.glob("*")) if store.is_dir() else []


def test_a_business_stakeholder_cannot_train(backend):
    world.build()
    with pytest.raises(Forbidden, match="bianca may not experiments run"):
        training.train(actor=world.actor("bianca"), model=world.MODEL, data=world.traffic(300),
                       recipe=training.Recipe(algorithm="logistic_regression"))


def _failed_check_results(count: int) -> list[int]:
    with session_scope() as s:
        project = s.exec(select(Project).where(Project.key == "CARDS")).one()
        model = registry.model_row(s, world.MODEL)
        check = Check(project_id=project.id, model_id=model.id, name="Recall at threshold", kind="metric",
                      metric="recall", condition="gte", threshold=0.7)
        s.add(check)
        s.flush()
        results = [CheckResult(check_id=check.id, value=0.41 + i / 100, passed=False, status="error",
                               message=f"recall {0.41 + i / 100} < 0.7") for i in range(count)]
        s.add_all(results)
        s.flush()
        return [r.id for r in results]


def _context(state: dict) -> StepContext:
    from core.access import SYSTEM

    logs: list[str] = []
    return StepContext(run_id=1, scenario_id=1, project_id=1, model_name=world.MODEL, params={}, state=state,
                       actor=SYSTEM, log=logs.append)


def test_the_retrain_step_registers_a_candidate_linked_to_the_failed_check(backend):
    import core.automation.steps  # noqa: F401  (registers the step kinds)

    world.build()
    active = world.train_version(world.traffic(2000, seed=5, days=20))
    recent = world.traffic(2500, seed=6, start=world.START + timedelta(days=60), days=50, shift=0.8)
    world.log_traffic(recent, version=active)
    failed = _failed_check_results(2)

    result = STEP_KINDS["retrain"](_context({"failed_check_result_ids": failed}))

    assert result.ok, result.message
    assert result.outputs["candidate_version"] == 2 and "v2 registered as a candidate" in result.message
    with session_scope() as s:
        v2 = registry.get_version(session=s, model=world.MODEL, version=2)
        story = lineage.lineage(session=s, actor=world.actor("maya"), model=world.MODEL, version=2)
        active_now = registry.get_version(session=s, model=world.MODEL)
    assert (v2.status, v2.origin, v2.triggered_by_check_result_id) == ("candidate", "scheduled_retrain", failed[0])
    assert active_now.number == active  # a retrain never replaces the running version by itself
    # The window has the active recipe's length (its training data spanned 20 days) and ends at the newest label.
    assert v2.training_end - timedelta(seconds=1) == recent["ts"].max().to_pydatetime()
    assert round((v2.training_end - v2.training_start).total_seconds() / 86400) == 20
    assert v2.recipe["algorithm"] == "logistic_regression"
    assert story.trigger.check == "Recall at threshold" and story.trigger.value == pytest.approx(0.41)
    assert story.training_run_id is not None and story.training_rows > 0

    # Asked for by a person on the command line, the same retrain is a manual version.
    by_hand = CliRunner().invoke(main, ["retrain", world.MODEL, "--window-days", "10"], env=cli_token("dario"))
    assert by_hand.exit_code == 0 and "card-fraud v3 registered as a candidate (manual)" in by_hand.output


def test_the_retrain_step_does_nothing_when_no_check_failed(backend):
    import core.automation.steps  # noqa: F401

    world.build()
    world.train_version(world.traffic(800, seed=7))
    result = STEP_KINDS["retrain"](_context({"failed_check_result_ids": []}))
    assert (result.ok, result.skip_rest, result.message) == (True, False, "nothing failed")
    assert _count(ModelVersion) == 1 and _count(TrainingRun) == 1


def test_train_runs_and_promote_from_the_command_line(backend, tmp_path):
    world.build()
    csv = tmp_path / "history.csv"
    world.traffic(1200, seed=8).to_csv(csv, index=False)
    runner = CliRunner(env=cli_token("dario"))
    trained = runner.invoke(main, ["train", world.MODEL, "--algorithm", "random_forest", "--data", str(csv),
                                   "--param", "n_estimators=25", "--param", "max_depth=6"])
    assert trained.exit_code == 0, trained.output
    assert "training run 1: random_forest on 1,200 rows" in trained.output
    listed = runner.invoke(main, ["runs", world.MODEL])
    assert "run    1  random_forest" in listed.output and "roc_auc 0." in listed.output
    promoted = runner.invoke(main, ["promote", "1"])
    assert promoted.exit_code == 0 and "card-fraud v1 registered as a candidate from run 1" in promoted.output
    assert "→ v1" in runner.invoke(main, ["runs", world.MODEL]).output

    bad = runner.invoke(main, ["train", world.MODEL, "--algorithm", "random_forest", "--data", str(csv),
                               "--features", "amount,merchant_risk"])
    assert bad.exit_code == 1
    assert bad.output.strip().splitlines()[-1].startswith("error: the recipe names column(s) 'merchant_risk'")
    assert _count(TrainingRun) == 1


def test_a_forest_shows_its_progress_as_it_grows_and_ends_with_the_same_trees():
    import numpy as np

    data = world.traffic(1500, seed=9)
    numeric = ["amount", "card_age_days", "hour"]

    def forest():  # noqa: ANN202
        return training.build_pipeline(task="binary", algorithm="random_forest", numeric=numeric,
                                       categorical=["channel"], params={"n_estimators": 40})

    at_once = forest().fit(data[world.NAMES], data[world.TARGET])
    seen: list[tuple[float, str]] = []
    grown = forest()
    training._fit(grown, data[world.NAMES], data[world.TARGET], progress=lambda f, msg: seen.append((f, msg)))
    assert [msg for _, msg in seen] == [f"grown {n} of 40 trees" for n in (8, 16, 24, 32, 40)]
    assert [f for f, _ in seen] == sorted(f for f, _ in seen) and seen[-1][0] == 0.75
    assert np.array_equal(grown.predict_proba(data[world.NAMES]), at_once.predict_proba(data[world.NAMES]))
    assert grown.named_steps["model"].get_params()["warm_start"] is False
