"""A small monitored world for the monitoring tests: a fraud project, its model, personas and evaluation windows."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
from sqlmodel import Session

from core.access import SYSTEM
from core.db import session_scope
from core.entities import Evaluation
from core.identity import users
from core.models import registry
from core.projects import projects
from tests.support.people import ADMINISTRATOR

BASELINE = {"roc_auc": 0.90, "pr_auc": 0.60, "precision": 0.70, "recall": 0.80, "f1": 0.75, "accuracy": 0.97,
            "log_loss": 0.10, "brier": 0.03, "positive_rate": 0.02}
START = datetime(2026, 3, 2)
PERSONAS = [("bianca", "Bianca Business", ["business"]), ("maya", "Maya Engineer", ["ml_engineer"]),
            ("dario", "Dario Scientist", ["data_scientist"]), ("omar", "Omar Ops", ["it_ops"]),
            ("rhea", "Rhea Risk", ["risk_manager"]), ("admin", "Administrator", ["admin"])]


def build(tmp: Path, *, key: str = "FRAUD", model: str = "fraud-detector", with_users: bool = True) -> int:
    """Create personas, a high-risk project and a binary model with a training baseline; return the version id."""
    reference = pd.DataFrame({"amount": [10.0, 250.0, 31.5, 980.0] * 5, "card_age_days": [3, 400, 90, 12] * 5,
                              "merchant": ["grocery", "travel", "fuel", "online"] * 5,
                              "is_fraud": [0, 0, 0, 1] * 5})
    csv = tmp / f"{model}-reference.csv"
    reference.to_csv(csv, index=False)
    business = [{"name": "fraud_missed_amount", "kind": "amount_sum", "column": "amount", "label": 1,
                 "prediction": 0, "label_text": "Fraud missed (amount)", "better": "lower"}]
    with session_scope() as s:
        if with_users:
            for username, name, roles in PERSONAS:
                users.create_user(session=s, actor=ADMINISTRATOR, username=username, name=name, email=f"{username}@bank.example",
                                  roles=roles)
        projects.create_project(session=s, actor=SYSTEM, key=key, name="Credit card fraud", risk_level="high",
                                initiative="Payments integrity")
        registry.register_model(session=s, actor=SYSTEM, project_key=key, name=model, task="binary",
                                target="is_fraud", reference_csv=csv, business_metrics=business)
        version = registry.version_row(s, registry.model_row(s, model))
        version.training_metrics = dict(BASELINE)
        s.add(version)
        return version.id


def evaluation(session: Session, version_id: int, week: int, *, auc: float = 0.90, recall: float = 0.80,
               missed: float = 1000.0, drift_share: float = 0.0, card_age_drifted: bool = False,
               rows: int = 5000, missing: float = 0.0) -> int:
    """Store one weekly evaluation window (week 0 starts on START) and return its id."""
    start = START + timedelta(days=7 * week)
    metrics = {**BASELINE, "roc_auc": auc, "recall": recall}
    ev = Evaluation(model_version_id=version_id, window_start=start, window_end=start + timedelta(days=7),
                    granularity="7D", rows=rows, labelled_rows=rows, metrics=metrics,
                    estimated_metrics={"roc_auc": auc - 0.01, "recall": recall},
                    business_metrics={"fraud_missed_amount": missed, "net_value": 5000.0},
                    data_quality={"missing_rate": {"amount": missing, "card_age_days": 0.0, "merchant": 0.0},
                                  "rows": rows},
                    drift_share=drift_share, drifted_fields=int(round(drift_share * 3)),
                    field_drift=[{"field": "card_age_days", "type": "numeric", "method": "wasserstein",
                                  "threshold": 0.1, "score": 0.4 if card_age_drifted else 0.02,
                                  "drifted": card_age_drifted},
                                 {"field": "amount", "type": "numeric", "method": "wasserstein", "threshold": 0.1,
                                  "score": 0.01, "drifted": False}])
    session.add(ev)
    session.flush()
    return ev.id
