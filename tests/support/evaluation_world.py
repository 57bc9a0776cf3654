"""A small monitored card-payments world for the evaluation store tests: one model, calibrated scores, three days."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from core.access import SYSTEM, Actor
from core.db import session_scope
from core.models import registry
from core.monitoring import ingest
from core.projects import projects

MAYA = Actor(username="maya", roles=("ml_engineer",))
MODEL = "fraud"
DAY0 = datetime(2026, 5, 4)  # a Monday
FEATURES = [{"name": "amount", "type": "numeric"}, {"name": "merchant", "type": "categorical"},
            {"name": "card_age_days", "type": "numeric"}]
BUSINESS = [{"name": "fraud_missed_amount", "kind": "amount_sum", "column": "amount", "label": 1, "prediction": 0,
             "label_text": "Fraud missed (amount)", "better": "lower"},
            {"name": "net_value", "kind": "cost_matrix", "tp": 100, "fp": -5, "fn": -100, "tn": 0, "better": "higher"}]


def traffic(n: int, *, seed: int, new_cards: float = 0.0, start: datetime = DAY0) -> pd.DataFrame:
    """n transactions over one day; `new_cards` of them from days-old cards. Scores are the true probabilities."""
    rng = np.random.default_rng(seed)
    amount = np.round(rng.lognormal(3.6, 0.9, n), 2)
    merchant = rng.choice(["fuel", "grocery", "travel", "web"], n, p=[0.3, 0.4, 0.1, 0.2])
    card_age = rng.integers(30, 3000, n)
    fresh = rng.random(n) < new_cards
    card_age[fresh] = rng.integers(1, 20, int(fresh.sum()))
    logit = -3.5 + 1.6 * (merchant == "web") + 0.9 * np.log(amount / 40) + 1.2 * (card_age < 60)
    score = 1 / (1 + np.exp(-logit))
    return pd.DataFrame({"tx": [f"{start:%m%d}-{seed}-{i}" for i in range(n)],
                         "ts": start + pd.to_timedelta(np.sort(rng.integers(0, 86_400, n)), unit="s"),
                         "amount": amount, "merchant": merchant, "card_age_days": card_age,
                         "score": np.round(score, 6), "is_fraud": (rng.random(n) < score).astype(int)})


def build(*, reference_rows: int = 2000) -> None:
    """The project, the model and its active version 1, registered from a labelled, scored reference."""
    reference = traffic(reference_rows, seed=100).rename(columns={"score": "__score__"})
    with session_scope() as s:
        projects.create_project(session=s, actor=SYSTEM, key="CARDS", name="Card payments")
        registry.create_model(session=s, actor=SYSTEM, project_key="CARDS", name=MODEL, task="binary",
                              target="is_fraud", features=FEATURES, decision_threshold=0.5, business_metrics=BUSINESS)
        registry.add_version(session=s, actor=SYSTEM, model=MODEL,
                             reference=reference[[f["name"] for f in FEATURES] + ["is_fraud", "__score__"]],
                             status="active")


def log(frame: pd.DataFrame) -> None:
    with session_scope() as s:
        ingest.ingest_predictions(session=s, actor=MAYA, model=MODEL, source=frame, id_col="tx", ts_col="ts",
                                  score_col="score")


def label(frame: pd.DataFrame) -> None:
    with session_scope() as s:
        ingest.ingest_ground_truth(session=s, actor=MAYA, model=MODEL, source=frame[["tx", "is_fraud"]],
                                   id_col="tx", label_col="is_fraud")


def three_days(n: int = 600) -> list[pd.DataFrame]:
    """Two ordinary days, then a day where half the cards are new; labels have arrived for the first two."""
    days = [traffic(n, seed=1), traffic(n, seed=2, start=DAY0 + timedelta(days=1)),
            traffic(n, seed=3, new_cards=0.5, start=DAY0 + timedelta(days=2))]
    for day in days:
        log(day)
    for day in days[:2]:
        label(day)
    return days
