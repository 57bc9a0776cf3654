"""Retraining: the active version's recipe trained on the latest labelled window, registered as a candidate."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta

from core import artifacts
from core.access import Actor, require
from core.db import session_scope
from core.errors import InvalidInput
from core.models.labelled_data import labelled_window, latest_labelled_ts
from core.models.registry import VersionInfo, get_model, get_version
from core.models.training import (
    ALGORITHMS,
    Progress,
    Recipe,
    RunInfo,
    fit_recipe,
    no_progress,
    promote_run,
    record_run,
)

DEFAULT_WINDOW_DAYS = 60
_ALGORITHM_OF = {"LogisticRegression": "logistic_regression", "RandomForestClassifier": "random_forest",
                 "RandomForestRegressor": "random_forest",
                 "HistGradientBoostingClassifier": "hist_gradient_boosting",
                 "HistGradientBoostingRegressor": "hist_gradient_boosting"}


@dataclass(frozen=True)
class RetrainOutcome:
    run: RunInfo
    version: VersionInfo


def recipe_of(version: VersionInfo, *, actor: str = "system") -> Recipe:
    """The version's recipe; for a version trained elsewhere, read from its artifact's final estimator."""
    recipe = Recipe.from_dict(version.recipe)
    if recipe.algorithm in ALGORITHMS:
        return recipe
    if not version.artifact_path:
        raise InvalidInput(f"version {version.number} has no recipe and no artifact: there is nothing to retrain")
    estimator = artifacts.load_estimator(path=version.artifact_path, sha256=version.artifact_sha256 or "",
                                         actor=actor, what=f"version {version.number}")
    final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    algorithm = _ALGORITHM_OF.get(type(final).__name__)
    if algorithm is None:
        raise InvalidInput(f"version {version.number} was trained with {type(final).__name__}, which Watchtower "
                           f"cannot retrain (it retrains {', '.join(ALGORITHMS)})")
    params = {k: v for k, v in final.get_params().items() if isinstance(v, (int, float, str, bool, type(None)))}
    return replace(recipe, algorithm=algorithm, params=params)


def retrain(*, actor: Actor, model: str, triggered_by_check_result_id: int | None = None,
            window_days: int | None = None, origin: str = "scheduled_retrain",
            progress: Progress = no_progress) -> RetrainOutcome:
    """Train the active version's recipe on the newest labelled window; register it as a candidate."""
    require(actor, "experiments.run")
    with session_scope() as s:  # read, fit outside any transaction, then register in a short one
        info = get_model(session=s, name=model)
        active = get_version(session=s, model=model)
        latest = latest_labelled_ts(session=s, model=model)
    if latest is None:
        raise InvalidInput(f"no labelled predictions for {model} yet: nothing to retrain on")
    recipe = recipe_of(active, actor=actor.username)
    days = window_days or recipe.window_days
    if not days and active.training_start and active.training_end:
        days = max(1, round((active.training_end - active.training_start).total_seconds() / 86400))
    days = int(days or DEFAULT_WINDOW_DAYS)
    end = latest.replace(microsecond=0) + timedelta(seconds=1)  # exclusive: the newest labelled second is in
    recipe = replace(recipe, start=end - timedelta(days=days), end=end, window_days=days)
    progress(0.0, f"reading {days} days of labelled predictions up to {latest:%Y-%m-%d}")
    with session_scope() as s:
        data = labelled_window(session=s, model=model, start=recipe.start, end=recipe.end)
    trained = fit_recipe(model=info, recipe=recipe, data=data, progress=progress)
    with session_scope() as s:
        run = record_run(session=s, actor=actor, trained=trained)
        version = promote_run(session=s, actor=actor, run_id=run.id, origin=origin,
                              triggered_by_check_result_id=triggered_by_check_result_id,
                              notes=f"Retrained on {recipe.start:%Y-%m-%d} – {latest:%Y-%m-%d} after failed check "
                                    f"result {triggered_by_check_result_id}" if triggered_by_check_result_id
                              else f"Retrained on {recipe.start:%Y-%m-%d} – {latest:%Y-%m-%d}")
    return RetrainOutcome(run=run, version=version)
