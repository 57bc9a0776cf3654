"""A small world for the registry, training and validation tests: a card-fraud model with logged, labelled traffic."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa

from core.access import SYSTEM, Actor
from core.db import session_scope
from core.identity import users
from core.lake import predictions as prediction_store
from core.models import registry, training
from core.projects import projects
from tests.support.people import ADMINISTRATOR

MODEL = "card-fraud"
TARGET = "is_fraud"
START = datetime(2026, 3, 1)
FEATURES = [{"name": "amount", "type": "numeric"}, {"name": "card_age_days", "type": "numeric"},
            {"name": "hour", "type": "numeric"}, {"name": "channel", "type": "categorical"}]
NAMES = [f["name"] for f in FEATURES]
BUSINESS = [{"name": "fraud_missed_amount", "kind": "amount_sum", "column": "amount", "label": 1, "prediction": 0,
             "label_text": "Fraud missed (amount)", "better": "lower"},
            {"name": "net_value", "kind": "cost_matrix", "tp": 100.0, "fp": -5.0, "fn": -100.0, "tn": 0.0,
             "label_text": "Net value", "better": "higher"}]
PEOPLE = {"dario": ["data_scientist"], "maya": ["ml_engineer"], "bianca": ["business"], "rhea": ["risk_manager"]}


def actor(username: str) -> Actor:
    return Actor(username=username, roles=tuple(PEOPLE[username]))


def traffic(n: int, *, seed: int = 0, start: datetime = START, days: int = 30, shift: float = 0.0,
            leak: bool = False) -> pd.DataFrame:
    """Card transactions with about 15-20% fraud: online, young cards, night hours and big amounts are riskier.

    A `shift` share of rows comes from new customers: days-old cards, and fraud that looks harmless to a model
    of the old traffic (small in-store purchases).
    """
    rng = np.random.default_rng(seed)
    amount = np.round(np.exp(rng.normal(3.8, 0.9, n)), 2)
    card_age = np.clip(rng.lognormal(6.0, 0.8, n), 1, 5000).astype(int)
    hour = rng.integers(0, 24, n)
    channel = rng.choice(["pos", "online", "atm"], size=n, p=[0.5, 0.4, 0.1])
    logit = (-2.6 + 1.3 * (channel == "online") + 0.7 * np.log(amount / 45) + 1.0 * ((hour < 5) | (hour > 22))
             - 0.4 * np.log(card_age / 400))
    new = rng.random(n) < shift
    card_age = np.where(new, rng.integers(1, 46, n), card_age)
    logit = np.where(new, -3.0 + 2.5 * (channel == "pos") + 1.5 * (amount < 30), logit)
    fraud = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    ts = start + pd.to_timedelta(np.sort(rng.integers(0, days * 86400, n)), unit="s")
    frame = pd.DataFrame({"prediction_id": [f"tx{seed}-{i:06d}" for i in range(n)], "ts": ts, "amount": amount,
                          "card_age_days": card_age, "hour": hour, "channel": channel, TARGET: fraud})
    if leak:
        flip = rng.random(n) < 0.01
        frame["chargeback_filed"] = np.where(flip, 1 - fraud, fraud)
    return frame


def build(*, leak: bool = False) -> None:
    """People, a project and the model (with a leaking feature declared when `leak`)."""
    features = FEATURES + ([{"name": "chargeback_filed", "type": "numeric"}] if leak else [])
    with session_scope() as s:
        for username, roles in PEOPLE.items():
            users.create_user(session=s, actor=ADMINISTRATOR, username=username, name=username.title(), email=f"{username}@bank.example",
                              roles=roles)
        projects.create_project(session=s, actor=SYSTEM, key="CARDS", name="Card fraud", risk_level="high")
        registry.create_model(session=s, actor=SYSTEM, project_key="CARDS", name=MODEL, task="binary",
                              target=TARGET, features=features, decision_threshold=0.3, business_metrics=BUSINESS)


def train_version(data: pd.DataFrame, *, algorithm: str = "logistic_regression", params: dict | None = None,
                  status: str = "active", by: str = "dario") -> int:
    """Train, promote and set the status of a version; return its number."""
    run = training.train(actor=actor(by), model=MODEL, data=data,
                         recipe=training.Recipe(algorithm=algorithm, params=params or {}))
    with session_scope() as s:
        v = training.promote_run(session=s, actor=actor(by), run_id=run.id)
        if status != "candidate":
            registry.set_version_status(session=s, actor=actor(by), model=MODEL, version=v.number, status=status)
    return v.number


def log_traffic(frame: pd.DataFrame, *, version: int, labelled: bool = True) -> None:
    """Log the frame as the version's predictions (scored by its artifact), with ground truth when `labelled`."""
    from core import artifacts

    with session_scope() as s:
        m = registry.model_row(s, MODEL)
        v = registry.version_row(s, m, version)
        estimator = artifacts.load_estimator(path=v.artifact_path, sha256=v.artifact_sha256)
        names = [f["name"] for f in m.features]
        m_kind = {f["name"]: f["type"] for f in m.features}
        scores = estimator.predict_proba(frame[names])[:, 1]
        features = {n: pa.array(frame[n].astype(float) if m_kind[n] == "numeric" else frame[n].astype(str),
                                type=pa.float64() if m_kind[n] == "numeric" else pa.string()) for n in names}
        ids = frame.prediction_id.astype(str).tolist()
        ts = pa.array(frame.ts.dt.to_pydatetime(), type=pa.timestamp("us"))
        prediction_store.insert_predictions(s, model_id=m.id, version_id=v.id, environment_id=None, ids=ids, ts=ts,
                                            score=pa.array(scores, type=pa.float64()), predicted=None,
                                            features=features)
        if labelled:
            prediction_store.insert_labels(
                s, model_id=m.id, ids=ids, labels=pa.array(frame[TARGET].astype(float), type=pa.float64()),
                arrived=pa.array((frame.ts + timedelta(days=3)).dt.to_pydatetime(), type=pa.timestamp("us")))
