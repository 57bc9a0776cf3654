"""The evaluation store of the story: six months of production traffic scored by fraud-detector v2, the labels
that had arrived by early November, and daily and weekly evaluations.

From August a wave of new customers with days-old cards arrives (see story.py): `card_age_days` drifts more
than any other field, v2's AUC and recall fall, and the fraud it misses — in amount — rises. Labels arrive
3 to 10 days after each transaction, so the last days of October are evaluated by estimates only.
"""

from __future__ import annotations

from datetime import timedelta

from core import artifacts
from core.db import session_scope
from core.demo import SEEDER, story
from core.models import registry
from core.monitoring import evaluation_store, ingest

MODEL = "fraud-detector"
STORY_END = story.STORY_START + timedelta(days=story.STORY_DAYS)  # Nov 1 2026, midnight
LABELS_UNTIL = STORY_END + timedelta(days=2)  # "today" in the story: labels that arrived by Nov 3


def scored_traffic():  # noqa: ANN201 - a DataFrame
    """The six months of transactions with v2's score, as production logged them."""
    with session_scope() as s:
        v2 = registry.get_version(session=s, model=MODEL, version=2)
    estimator = artifacts.load_estimator(path=v2.artifact_path, sha256=v2.artifact_sha256, what=f"{MODEL} v2")
    traffic = story.transactions(start=story.STORY_START, days=story.STORY_DAYS)
    traffic["score"] = estimator.predict_proba(traffic[story.FEATURE_NAMES])[:, 1].round(6)
    traffic["label_at"] = story.label_arrival(traffic)
    return traffic


def seed(*, progress) -> None:  # noqa: ANN001 - core.demo.Progress
    """Log the predictions and the labels that arrived, then store daily and weekly evaluations of v2."""
    progress("scoring May-October transactions with fraud-detector v2")
    traffic = scored_traffic()
    logged = traffic[["transaction_id", "ts", "score", *story.FEATURE_NAMES]]
    with session_scope() as s:
        ingest.ingest_predictions(session=s, actor=SEEDER, model=MODEL, version=2, source=logged,
                                  id_col="transaction_id", ts_col="ts", score_col="score", environment="production")
    arrived = traffic[traffic.label_at < LABELS_UNTIL]
    progress(f"{len(traffic):,} predictions logged; ingesting the {len(arrived):,} labels that have arrived")
    with session_scope() as s:
        ingest.ingest_ground_truth(session=s, actor=SEEDER, model=MODEL,
                                   source=arrived[["transaction_id", story.TARGET, "label_at"]],
                                   id_col="transaction_id", label_col=story.TARGET, arrived_col="label_at")
    for every, what in (("1D", "daily"), ("7D", "weekly")):
        progress(f"evaluating fraud-detector v2: {what} windows")
        evaluation_store.evaluate(actor=SEEDER, model=MODEL, version=2, start=story.STORY_START, end=STORY_END,
                                  every=every)
