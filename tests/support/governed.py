"""A small governed world for tests: personas, a project under a standard blueprint, a tiny scikit-learn model
with three versions (v1 running in production), staging (allow) and production (block)."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from core import artifacts
from core.access import Actor
from core.db import session_scope
from core.entities import Environment
from core.governance import deployer, environments
from core.identity import users
from core.models import registry
from core.projects import blueprints, projects
from tests.support.people import ADMINISTRATOR
from tests.support.skops_files import save_skops

PERSONAS = {
    "maya": ("ml_engineer",),
    "dario": ("data_scientist",),
    "omar": ("it_ops",),
    "bianca": ("business",),
    "rhea": ("risk_manager",),
    "ruth": ("risk_manager",),
    "raj": ("ml_engineer", "risk_manager"),  # may request reviews and also approve others'
    "admin": ("admin",),
}
PROJECT = "CARDS"
MODEL = "card-scorer"


def actor(username: str) -> Actor:
    return Actor(username=username, roles=PERSONAS[username])


def sample(rows: int = 300, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    amount = rng.gamma(2.0, 60.0, rows).round(2)
    age = rng.integers(1, 2000, rows)
    channel = rng.choice(["web", "pos", "app"], rows)
    logit = 0.01 * amount - 0.002 * age + (channel == "web") * 1.0 - 1.0
    fraud = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame({"amount": amount, "card_age_days": age, "channel": channel, "is_fraud": fraud})


def fit(frame: pd.DataFrame, c: float = 1.0):  # noqa: ANN201 - a fitted scikit-learn pipeline
    """A pipeline fitted on FRAME; on the world's own sample, fitted once per process (tests only save it)."""
    if frame.equals(_SAMPLE):
        return _fitted_on_sample(c)
    return _fit(frame, c)


def _fit(frame: pd.DataFrame, c: float):  # noqa: ANN202 - a fitted scikit-learn pipeline
    prep = ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), ["channel"])], remainder="passthrough")
    return make_pipeline(prep, LogisticRegression(C=c, max_iter=500)).fit(
        frame[["amount", "card_age_days", "channel"]], frame["is_fraud"])


_SAMPLE = sample()


@functools.cache
def _fitted_on_sample(c: float):  # noqa: ANN202 - a fitted scikit-learn pipeline
    return _fit(_SAMPLE, c)


PASSWORD = "correct-horse-battery"


def build(tmp_path: Path, *, risk: str = "high", production_policy: str = "block",
          passwords: bool = False) -> pd.DataFrame:
    """Seed the world (with PASSWORD for everyone if asked); returns the reference frame (valid scoring records)."""
    frame = sample()
    csv = tmp_path / "reference.csv"
    frame.to_csv(csv, index=False)
    model_file = save_skops(fit(frame, 1.0), tmp_path / "v1.skops")
    admin = actor("admin")
    with session_scope() as s:
        blueprints.ensure_standard_blueprints(session=s)
        for name, roles in PERSONAS.items():
            users.create_user(session=s, actor=ADMINISTRATOR, username=name, name=name.title(), email=f"{name}@bank.test",
                              roles=list(roles), password=PASSWORD if passwords else None)
        projects.create_project(session=s, actor=admin, key=PROJECT, name="Card fraud", risk_level=risk,
                                sponsor="Head of payments", initiative="Payments integrity")
        registry.register_model(session=s, actor=admin, project_key=PROJECT, name=MODEL, task="binary",
                                target="is_fraud", reference_csv=csv, artifact=model_file)
        for c in (0.3, 3.0):
            path, sha = artifacts.save_estimator(fit(frame, c))
            registry.add_version(session=s, actor=admin, model=MODEL, reference=frame, artifact_path=path,
                                 artifact_sha256=sha)
        # The environments Watchtower found when it started watching (as the demo seeds them): loosening one
        # through the service would alert the risk managers, which the tests assert on separately.
        s.add(Environment(name="staging", tier="lower", position=0, policy="allow"))
        s.add(Environment(name="production", tier="higher", position=1, policy="allow"))
        s.flush()
        deployer.deploy(session=s, actor=admin, model=MODEL, version=1, environment="production")
        environments.configure_environment(session=s, actor=admin, name="production", policy="block")
        if production_policy != "block":
            s.get(Environment, environments.environment_row(s, "production").id).policy = production_policy
    return frame


def running(environment: str) -> int | None:
    """The version number running in an environment, or None."""
    with session_scope() as s:
        dep = deployer.active_deployment(session=s, model=MODEL, environment=environment)
    return dep.version if dep else None
