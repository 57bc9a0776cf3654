"""Synthetic windows with a planted failure: the model misses fraud on young cards used online, while a decoy
segment (the north region) only grows, with the model as good there as anywhere."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from core.access import SYSTEM, Actor
from core.db import session_scope
from core.identity import users
from core.models import registry
from core.monitoring import evaluation_store, ingest
from core.monitoring.slice_report import Window
from core.projects import projects
from tests.support.people import ADMINISTRATOR

FEATURES = [{"name": "card_age_days", "type": "numeric"}, {"name": "channel", "type": "categorical"},
            {"name": "amount", "type": "numeric"}, {"name": "region", "type": "categorical"},
            {"name": "hour", "type": "numeric"}, {"name": "customer_age", "type": "numeric"}]
BUSINESS = [{"name": "fraud_missed_amount", "kind": "amount_sum", "column": "amount", "label": 1, "prediction": 0,
             "label_text": "Fraud missed (amount)", "better": "lower"}]


def traffic(n: int, *, seed: int, north: float = 0.1, extra: int = 0) -> pd.DataFrame:
    """n rows of features; `north` is the decoy region's share; `extra` adds that many noise fields."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "card_age_days": rng.integers(1, 3000, n),
        "channel": rng.choice(["pos", "online", "atm"], n, p=[0.5, 0.35, 0.15]),
        "amount": np.round(rng.lognormal(3.6, 0.9, n), 2),
        "region": rng.choice(["north", "south", "east", "west"], n, p=[north, *(np.ones(3) * (1 - north) / 3)]),
        "hour": rng.integers(0, 24, n),
        "customer_age": rng.integers(18, 90, n),
    })
    for i in range(extra):
        frame[f"noise_{i}"] = rng.normal(size=n)
    return frame


def outcomes(frame: pd.DataFrame, *, seed: int, planted: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(label, decision): 5% fraud; the model catches 90% of it, but only 15% on cards younger than 750 days
    (the first quartile of the reference)
    used online (about 9% of the rows)."""
    rng = np.random.default_rng(seed + 1)
    n = len(frame)
    y = (rng.random(n) < 0.05).astype(float)
    weak = planted & (frame["card_age_days"].to_numpy() < 750) & (frame["channel"].to_numpy() == "online")
    caught = rng.random(n) < np.where(weak, 0.15, 0.9)
    false_alarm = rng.random(n) < 0.01
    decision = np.where(y == 1, caught, false_alarm).astype(float)
    return y, decision


def window(n: int = 20_000, *, seed: int = 0, north_now: float = 0.4, extra: int = 0) -> Window:
    """A window where the decoy region grew from 10% to `north_now` of the rows and the planted segment fails."""
    reference = traffic(5000, seed=seed + 1000, extra=extra)
    frame = traffic(n, seed=seed, north=north_now, extra=extra)
    y, decision = outcomes(frame, seed=seed)
    features = FEATURES + [{"name": f"noise_{i}", "type": "numeric"} for i in range(extra)]
    return Window(task="binary", features=features, business=BUSINESS, frame=frame, y=y, decision=decision,
                  score=None, reference=reference, rows=n, granularity="7D")


def planted(frame: pd.DataFrame) -> np.ndarray:
    """The rows of the planted segment."""
    return ((frame["card_age_days"] < 750) & (frame["channel"] == "online")).to_numpy()


# --- the same world, logged and evaluated in Watchtower -------------------------------------------------

MODEL, PROJECT = "cards", "CARDS"
WEEK0 = datetime(2026, 6, 1)  # a Monday
MAYA = Actor(username="maya", roles=("ml_engineer",))


def scored(frame: pd.DataFrame, *, seed: int, planted: bool = True, start: datetime = WEEK0) -> pd.DataFrame:
    """The frame as a week of logged predictions: id, time, score (0.9 when the model flags, else 0.1), label."""
    y, decision = outcomes(frame, seed=seed, planted=planted)
    rng = np.random.default_rng(seed + 2)
    out = frame.copy()
    out.insert(0, "ts", start + pd.to_timedelta(np.sort(rng.integers(0, 7 * 86_400, len(frame))), unit="s"))
    out.insert(0, "tx", [f"{start:%m%d}-{seed}-{i}" for i in range(len(frame))])
    out["score"] = np.where(decision == 1, 0.9, 0.1)
    out["is_fraud"] = y.astype(int)
    return out


def build_monitored(*, rows: int = 20_000, labelled: bool = True, weeks: int = 2) -> None:
    """Project, model and active v1 (reference: ordinary traffic); `weeks` weeks logged, the first ordinary,
    the later ones with the planted failure and the grown decoy region; labels for all of them."""
    reference = scored(traffic(4000, seed=500), seed=500, planted=False).rename(columns={"score": "__score__"})
    with session_scope() as s:
        projects.create_project(session=s, actor=SYSTEM, key=PROJECT, name="Card payments")
        registry.create_model(session=s, actor=SYSTEM, project_key=PROJECT, name=MODEL, task="binary",
                              target="is_fraud", features=FEATURES, decision_threshold=0.5, business_metrics=BUSINESS)
        registry.add_version(session=s, actor=SYSTEM, model=MODEL,
                             reference=reference[[f["name"] for f in FEATURES] + ["is_fraud", "__score__"]],
                             status="active")
        for username, roles in (("maya", ["ml_engineer"]), ("bianca", ["business"]), ("omar", ["it_ops"])):
            users.create_user(session=s, actor=ADMINISTRATOR, username=username, name=username.title(), email=f"{username}@bank.example",
                              roles=roles)
    for week in range(weeks):
        frame = scored(traffic(rows, seed=week, north=0.1 if week == 0 else 0.4), seed=week, planted=week > 0,
                       start=WEEK0 + timedelta(days=7 * week))
        with session_scope() as s:
            ingest.ingest_predictions(session=s, actor=MAYA, model=MODEL, source=frame.drop(columns=["is_fraud"]),
                                      id_col="tx", ts_col="ts", score_col="score")
        if labelled:
            with session_scope() as s:
                ingest.ingest_ground_truth(session=s, actor=MAYA, model=MODEL, source=frame[["tx", "is_fraud"]],
                                           id_col="tx", label_col="is_fraud")
    evaluation_store.evaluate(actor=MAYA, model=MODEL, every="7D")
