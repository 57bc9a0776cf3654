"""An external fraud model's files as its owner exports them: every row with an `id` and a `timestamp`.

The reference sample and the later log come from the same distribution, so an honest drift test finds
nothing; `region_code` is a category coded as small integers.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from core.access import Actor
from core.db import session_scope
from core.projects import blueprints, projects

START = datetime(2026, 6, 1)
FEATURES = ("amount", "merchant", "card_age_days", "region_code")


def transactions(n: int, *, seed: int, first_id: int = 1, start: datetime = START, days: int = 7) -> pd.DataFrame:
    """n scored and labelled transactions with a running id and an ISO timestamp."""
    rng = np.random.default_rng(seed)
    amount = np.round(rng.lognormal(3.6, 0.9, n), 2)
    merchant = rng.choice(["fuel", "grocery", "travel", "web"], n, p=[0.3, 0.4, 0.1, 0.2])
    card_age = rng.integers(30, 3000, n)
    region = rng.integers(1, 6, n)
    logit = -3.5 + 1.6 * (merchant == "web") + 0.9 * np.log(amount / 40) + 0.3 * (region == 4)
    score = 1 / (1 + np.exp(-logit))
    seconds = np.sort(rng.integers(0, days * 86_400, n))
    return pd.DataFrame({"id": [f"tx-{first_id + i:07d}" for i in range(n)],
                         "timestamp": [(start + timedelta(seconds=int(s))).isoformat() for s in seconds],
                         "amount": amount, "merchant": merchant, "card_age_days": card_age, "region_code": region,
                         "score": np.round(score, 6), "is_fraud": (rng.random(n) < score).astype(int)})


def write_files(folder: Path) -> dict[str, Path]:
    """reference.csv (3,000 rows), predictions.csv (a later week, with an extra `batch` column) and labels.csv."""
    reference = transactions(3000, seed=1)
    later = transactions(1500, seed=2, first_id=10_001, start=START + timedelta(days=14))
    paths = {"reference": folder / "reference.csv", "predictions": folder / "predictions.csv",
             "labels": folder / "labels.csv"}
    reference.to_csv(paths["reference"], index=False)
    later.drop(columns=["is_fraud"]).assign(batch="2026-06-15-nightly").to_csv(paths["predictions"], index=False)
    later[["id", "is_fraud"]].to_csv(paths["labels"], index=False)
    return paths


def create_project() -> None:
    """Project FRAUD, where the model is registered."""
    with session_scope() as s:
        blueprints.ensure_standard_blueprints(session=s)
        projects.create_project(session=s, actor=Actor(username="rhea", roles=("risk_manager",)), key="FRAUD",
                                name="Card fraud", risk_level="high")
