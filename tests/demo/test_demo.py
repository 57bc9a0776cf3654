"""The seeded fraud story: the stable names, v2 in production, ~1% fraud, the August wave, idempotence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import recall_score, roc_auc_score
from sqlalchemy import func
from sqlmodel import SQLModel, select

from core import artifacts, audit
from core.db import session_scope
from core.demo import foundation, portfolio, seed_demo, story
from core.entities import Environment
from core.identity import users
from core.models import registry
from core.projects import blueprints, projects
from tests.support.people import ADMINISTRATOR


def _row_counts() -> dict[str, int]:
    with session_scope() as s:
        return {t.name: s.exec(select(func.count()).select_from(t)).one() for t in SQLModel.metadata.sorted_tables}


def test_the_story_uses_the_names_of_the_design(demo_home):
    with session_scope() as s:
        fraud = projects.get_project(session=s, key="FRAUD")
        people = {u.username: u.roles for u in users.list_users(session=s)}
        envs = {e.name: (e.tier, e.position, e.policy) for e in s.exec(select(Environment)).all()}
        names = {b.name for b in blueprints.list_blueprints(session=s)}
        portfolio = projects.portfolio(session=s)
    assert (fraud.name, fraud.initiative, fraud.risk_level, fraud.blueprint) == (
        "Credit card fraud", "Payments integrity", "high", "High risk")
    assert fraud.sponsor and fraud.scope and fraud.description
    assert {c["email"] for c in fraud.contacts} >= {"bianca@example.com", "maya@example.com"}
    assert people == {"bianca": ("business",), "dario": ("data_scientist",), "maya": ("ml_engineer",),
                      "rhea": ("risk_manager",), "omar": ("it_ops",), "admin": ("admin",)}
    assert envs == {"staging": ("lower", 0, "allow"), "production": ("higher", 1, "block")}
    assert names == {"Low risk", "Medium risk", "High risk"}
    assert len(portfolio) >= 5
    assert {r.risk_level for r in portfolio} == {"low", "medium", "high"}
    assert len({r.stage for r in portfolio}) >= 3
    assert sum(1 for r in portfolio if r.active_versions) >= 3


def test_v2_is_active_in_production_and_better_than_the_archived_v1(demo_home):
    with session_scope() as s:
        model = registry.get_model(session=s, name="fraud-detector")
        v1, v2 = registry.list_versions(session=s, model="fraud-detector")[:2]
        fraud = projects.get_project(session=s, key="FRAUD")
    assert model.target == "is_fraud" and model.feature_names == story.FEATURE_NAMES
    assert {m["name"] for m in model.business_metrics} == {"fraud_missed_amount", "net_value"}
    assert 0.02 <= model.decision_threshold <= 0.5
    assert (v1.status, v2.status) == ("archived", "active")
    assert v2.training_metrics["roc_auc"] > v1.training_metrics["roc_auc"] + 0.02
    assert {"roc_auc", "pr_auc", "precision", "recall", "f1", "accuracy", "log_loss", "brier",
            "positive_rate"} <= set(v2.training_metrics)
    assert (v2.training_start, v2.training_end) == (story.STORY_START, pd.Timestamp(2026, 7, 1))
    running = {v.number: v.environments for v in fraud.models[0].versions}
    assert (running[1], running[2]) == ((), ("production",))


def test_the_artifacts_and_references_verify_and_v2_loses_recall_after_the_wave(demo_home):
    with session_scope() as s:
        v2 = registry.get_version(session=s, model="fraud-detector", version=2)
        v1 = registry.get_version(session=s, model="fraud-detector", version=1)
        chain = audit.verify(session=s)
    assert chain.ok, chain.problems
    assert artifacts.load_estimator(path=v1.artifact_path, sha256=v1.artifact_sha256) is not None
    estimator = artifacts.load_estimator(path=v2.artifact_path, sha256=v2.artifact_sha256)
    reference = artifacts.load_reference(path=v2.reference_path, sha256=v2.reference_sha256)
    assert 2000 <= len(reference) <= 10000
    assert set(reference.columns) == {*story.FEATURE_NAMES, "is_fraud", "__score__"}
    assert np.allclose(reference["__score__"], estimator.predict_proba(reference[story.FEATURE_NAMES])[:, 1])
    before = story.transactions(start=pd.Timestamp(2026, 6, 1).to_pydatetime(), days=61)
    after = story.transactions(start=pd.Timestamp(2026, 9, 1).to_pydatetime(), days=61)

    def quality(frame: pd.DataFrame) -> tuple[float, float]:
        score = estimator.predict_proba(frame[story.FEATURE_NAMES])[:, 1]
        return roc_auc_score(frame.is_fraud, score), recall_score(frame.is_fraud, score >= 0.1)

    (auc_before, recall_before), (auc_after, recall_after) = quality(before), quality(after)
    assert auc_before > 0.9 and auc_after < auc_before - 0.15
    assert recall_after < recall_before - 0.2


def test_seeding_again_changes_nothing(demo_home):
    before = _row_counts()
    assert seed_demo() is False
    assert _row_counts() == before


def test_the_foundation_of_the_story_seeds_on_both_backends(backend):
    steps: list[str] = []
    foundation.seed(progress=steps.append)
    assert steps[-1] == "fraud-detector v2 is active in production"
    counts = _row_counts()
    assert counts["project"] == len(portfolio.PROJECTS) and counts["user"] == 6
    assert counts["modelversion"] == 4 and counts["deployment"] == 5
    with session_scope() as s:
        assert registry.get_version(session=s, model="fraud-detector").number == 2
        fraud = projects.portfolio_view(session=s, initiative="Payments integrity").rows[-1]
        assert (fraud.key, fraud.active_versions) == ("FRAUD", {"production": "fraud-detector v2"})
        assert audit.verify(session=s).ok


@pytest.mark.slow
def test_reset_starts_the_story_over(demo_home):
    before = _row_counts()
    with session_scope() as s:
        users.create_user(session=s, actor=ADMINISTRATOR, username="visitor", name="A Visitor", email="v@example.com", roles=["business"])
    assert seed_demo(reset=True) is True
    assert _row_counts() == before
    with session_scope() as s:
        assert "visitor" not in {u.username for u in users.list_users(session=s)}
        assert audit.verify(session=s).ok


def test_traffic_is_about_one_percent_fraud_and_the_wave_lowers_card_age(sqlite_home):
    frame = story.transactions(start=story.STORY_START, days=story.STORY_DAYS)
    assert len(frame) == story.STORY_DAYS * 1500 and frame.transaction_id.is_unique
    assert 0.008 <= frame.is_fraud.mean() <= 0.013
    assert list(frame.columns) == ["transaction_id", "ts", *story.FEATURE_NAMES, "is_fraud"]
    assert frame.ts.min() >= story.STORY_START and frame.ts.max() < pd.Timestamp(2026, 11, 1)
    assert (frame.hour == frame.ts.dt.hour).all()
    early = frame[frame.ts < story.WAVE_START]
    late = frame[frame.ts >= pd.Timestamp(2026, 9, 1)]
    assert late.card_age_days.median() < 0.5 * early.card_age_days.median()
    assert set(frame.merchant_category) == set(story.CATEGORIES) and set(frame.channel) == set(story.CHANNELS)


def test_traffic_is_deterministic_per_day_and_ids_differ_between_seeds(sqlite_home):
    month = story.transactions(start=story.WAVE_START, days=30, per_day=200)
    day = story.transactions(start=pd.Timestamp(2026, 8, 10).to_pydatetime(), days=1, per_day=200)
    pd.testing.assert_frame_equal(month[month.ts.dt.day == 10].reset_index(drop=True), day)
    other = story.transactions(start=story.WAVE_START, days=30, per_day=200, seed=8)
    assert not set(month.transaction_id) & set(other.transaction_id)
    training = story.training_extract()
    traffic = story.transactions(start=story.STORY_START, days=61)
    assert not set(training.transaction_id) & set(traffic.transaction_id)
    arrival = story.label_arrival(month)
    delay = (arrival - month.ts).dt.total_seconds() / 86400
    assert delay.between(3, 10).all() and delay.std() > 1
    assert story.label_arrival(month.iloc[::-1]).sort_index().equals(arrival)
