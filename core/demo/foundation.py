"""The first step of the story: people, blueprints, environments, the project portfolio, and fraud-detector.

fraud-detector v1 (logistic regression) and v2 (gradient boosting, clearly better) are trained on the
labelled early months (`story.training_extract()`); v1 is archived and v2 runs in production. Training
happens before the one short unit of work that writes everything through the services, so the audit
trail tells the story as it was seeded.
"""

from __future__ import annotations

import functools
from datetime import timedelta

from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sqlmodel import Session, select

from core import artifacts, audit
from core.access import Actor
from core.clock import now
from core.db import session_scope
from core.demo import SEEDER, portfolio, story
from core.demo.training import Trained, train
from core.entities import Deployment, Environment
from core.errors import NotFound
from core.identity import users
from core.models import registry
from core.projects.blueprints import ensure_standard_blueprints

FRAUD_THRESHOLD = 0.1  # about 1% of transactions are fraud; 0.1 holds roughly one alert in three true

PEOPLE: tuple[dict, ...] = (
    {"username": "bianca", "name": "Bianca Rossi", "roles": ["business"]},
    {"username": "dario", "name": "Dario Conti", "roles": ["data_scientist"]},
    {"username": "maya", "name": "Maya Lindqvist", "roles": ["ml_engineer"]},
    {"username": "rhea", "name": "Rhea Okafor", "roles": ["risk_manager"]},
    {"username": "omar", "name": "Omar Haddad", "roles": ["it_ops"]},
    {"username": "admin", "name": "Alex Morgan", "roles": ["admin"]},
)

ENVIRONMENTS: tuple[dict, ...] = (
    {"name": "staging", "tier": "lower", "position": 0, "policy": "allow"},
    {"name": "production", "tier": "higher", "position": 1, "policy": "block"},
)

FRAUD_MODEL = {
    "name": "fraud-detector",
    "task": "binary",
    "target": story.TARGET,
    "features": story.FEATURES,
    "decision_threshold": FRAUD_THRESHOLD,
    "description": "Scores each card transaction; at or above the threshold it is held for review.",
    "business_metrics": [
        {"name": "fraud_missed_amount", "kind": "amount_sum", "column": "amount", "label": 1, "prediction": 0,
         "label_text": "Fraud missed (amount)", "better": "lower"},
        # A caught fraud saves its typical loss; a false alarm costs an analyst's check and a customer call.
        {"name": "net_value", "kind": "cost_matrix", "tp": 120.0, "fp": -15.0, "fn": -120.0, "tn": 0.0,
         "label_text": "Net value of decisions", "better": "higher"},
    ],
}


def _actor(username: str) -> Actor:
    person = next(p for p in PEOPLE if p["username"] == username)
    return Actor(username=username, roles=tuple(person["roles"]))


@functools.cache
def train_fraud_versions() -> tuple[Trained, Trained]:
    """v1 and v2 of fraud-detector, trained and measured on the same split of the early months.

    Training is deterministic, so a process that seeds more than once (a reset, the tests) trains once.
    """
    history = story.training_extract()
    window = (story.STORY_START, story.STORY_START + timedelta(days=story.TRAINING_DAYS))
    common = {"features": story.FEATURES, "target": story.TARGET, "task": "binary", "threshold": FRAUD_THRESHOLD,
              "window": window}
    v1 = train(history, estimator=LogisticRegression(max_iter=1000), scale=True, **common)
    v2 = train(history, estimator=HistGradientBoostingClassifier(
        max_iter=300, learning_rate=0.05, max_leaf_nodes=15, min_samples_leaf=40, l2_regularization=1.0,
        random_state=0), scale=False, **common)
    return v1, v2


def ensure_people(session: Session) -> None:
    """The six demo personas (no password: they sign in through the demo persona picker)."""
    for person in PEOPLE:
        try:
            users.get_user(session=session, username=person["username"])
        except NotFound:
            users.create_user(session=session, actor=SEEDER, email=f"{person['username']}@example.com", **person)


def ensure_environments(session: Session) -> None:
    """staging (lower, deploy freely) and production (higher, unapproved versions blocked)."""
    for spec in ENVIRONMENTS:
        if session.exec(select(Environment).where(Environment.name == spec["name"])).first():
            continue
        session.add(Environment(**spec))
        session.flush()
        audit.record(session, actor=SEEDER.username, action="environment.create", entity_type="environment",
                     entity_id=spec["name"], details=dict(spec))


def record_deployment(session: Session, *, actor: Actor, model: str, version: int, environment: str,
                      note: str = "") -> None:
    """The version that was running in an environment when Watchtower started watching it."""
    m = registry.model_row(session, model)
    row = registry.version_row(session, m, version)
    env = session.exec(select(Environment).where(Environment.name == environment)).one()
    session.add(Deployment(environment_id=env.id, model_version_id=row.id, model_id=m.id,
                           deployed_by=actor.username, note=note))
    session.flush()
    audit.record(session, actor=actor.username, action="deployment.create", entity_type="deployment",
                 entity_id=f"{model}:v{version}@{environment}", project_id=m.project_id,
                 details={"environment": environment, "version": version, "note": note})


def register_trained(session: Session, *, actor: Actor, model: str, trained: Trained, artifact: tuple[str, str],
                     status: str, notes: str = "") -> registry.VersionInfo:
    """Register a trained estimator, already in the artifact store as (path, sha256), as the next version."""
    path, sha = artifact
    return registry.add_version(session=session, actor=actor, model=model, reference=trained.reference,
                                artifact_path=path, artifact_sha256=sha, origin="manual", status=status,
                                training_start=trained.training_start, training_end=trained.training_end,
                                recipe={"algorithm": trained.algorithm, "features": story.FEATURE_NAMES,
                                        "target": story.TARGET},
                                params=trained.params, training_metrics=trained.metrics, notes=notes)


def seed(*, progress) -> None:  # noqa: ANN001 - core.demo.Progress
    """People, blueprints, environments, the portfolio, fraud-detector v1 (archived) and v2 (in production)."""
    progress("training fraud-detector v1 and v2 on May-June transactions")
    v1, v2 = train_fraud_versions()
    others = portfolio.train_models()
    stored = {key: artifacts.save_estimator(t.estimator) for key, t in {"v1": v1, "v2": v2, **others}.items()}
    progress("seeding people, blueprints, environments and the project portfolio")
    with session_scope() as s:
        ensure_people(s)
        ensure_standard_blueprints(session=s)
        ensure_environments(s)
        portfolio.create_projects(s, actor=_actor("rhea"))
        registry.create_model(session=s, actor=_actor("dario"), project_key="FRAUD", **FRAUD_MODEL)
        register_trained(s, actor=_actor("dario"), model="fraud-detector", trained=v1, artifact=stored["v1"],
                         status="active",
                         notes="Baseline: logistic regression on May-June 2026.")
        record_deployment(s, actor=_actor("omar"), model="fraud-detector", version=1, environment="production")
        register_trained(s, actor=_actor("maya"), model="fraud-detector", trained=v2, artifact=stored["v2"],
                         status="candidate",
                         notes="Gradient boosting: catches the night-time and abroad combinations v1 misses.")
        registry.set_version_status(session=s, actor=_actor("maya"), model="fraud-detector", version=2,
                                    status="active")
        _replace_deployment(s, actor=_actor("omar"), model="fraud-detector", version=2, environment="production")
        portfolio.register_models(s, others, stored, actor=_actor("dario"), deploy=record_deployment,
                                  deployer=_actor("omar"))
    progress("fraud-detector v2 is active in production")


def _replace_deployment(session: Session, *, actor: Actor, model: str, version: int, environment: str) -> None:
    """End what runs in the environment, then record the new version there."""
    m = registry.model_row(session, model)
    env = session.exec(select(Environment).where(Environment.name == environment)).one()
    for dep in session.exec(select(Deployment).where(Deployment.model_id == m.id, Deployment.active,
                                                     Deployment.environment_id == env.id)).all():
        dep.active = False
        dep.ended_at = now()
        session.add(dep)
    record_deployment(session, actor=actor, model=model, version=version, environment=environment,
                      note="replaces the earlier version")
