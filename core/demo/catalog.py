"""The catalog of the demo: datasets, recipes, models, templates and metrics owned by different people,
and a second project, "Online payments fraud", created from the binary-classifier template."""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from sqlmodel import Session

from core.access import Actor
from core.catalog import components, datasets, templates
from core.db import session_scope
from core.demo import portfolio, story
from core.identity import users
from core.models import registry
from core.monitoring import checks

TEMPLATE_PROJECT = "ONLINE"
_COMPLAINT_TOPICS = {
    "card blocked abroad": 0.55, "double charge at merchant": 0.35, "fee on statement": 0.15,
    "refund not received": 0.45, "unknown transaction": 0.7, "app login problem": 0.1,
}
_TONES = ("Please help,", "This is the second time:", "Very disappointed,", "Hello,", "Urgent:")


def _actor(session: Session, username: str) -> Actor:
    return users.get_user(session=session, username=username).actor


def complaints(n: int = 600, seed: int = 41) -> pd.DataFrame:
    """Short customer complaint texts and whether they were escalated to a manager."""
    rng = np.random.default_rng(seed)
    topics = list(_COMPLAINT_TOPICS)
    topic = rng.choice(topics, size=n)
    tone = rng.choice(_TONES, size=n)
    texts = [f"{t} {p} on {rng.choice(['my debit card', 'my credit card', 'the app'])} ({i})"
             for i, (t, p) in enumerate(zip(tone, topic, strict=True))]
    escalated = (rng.random(n) < np.array([_COMPLAINT_TOPICS[t] for t in topic])).astype(int)
    return pd.DataFrame({"complaint_id": [f"c{i:05d}" for i in range(n)], "channel": rng.choice(["email", "letter",
                                                                                                 "chat"], size=n),
                         "product": rng.choice(["debit", "credit", "app"], size=n), "text": texts,
                         "escalated": escalated})


def online_payments() -> pd.DataFrame:
    """Online card payments of June and July, with their fraud labels: the data of the template project."""
    frame = story.transactions(start=story.STORY_START + timedelta(days=31), days=40, per_day=600, seed=57)
    return frame[frame["channel"] == "online"].reset_index(drop=True)


DATASETS = (
    ("card-transactions", "dario", lambda: story.transactions(start=story.STORY_START, days=14, per_day=1000, seed=5),
     "Card transactions with fraud labels, May 2026: the training extract of fraud-detector.",
     ["fraud", "cards", "payments"], "FRAUD", "training data of fraud-detector"),
    ("online-card-payments", "maya", online_payments,
     "Online card payments of June and July 2026, labelled as fraud or not once chargebacks arrive.",
     ["fraud", "payments", "online"], None, ""),
    ("churn-history", "dario", portfolio.churn_history,
     "Retail customers with tenure, fees, support calls, products held, and whether they left.",
     ["churn", "marketing", "customers"], "CHURN", "training data of churn-predictor"),
    ("customer-complaints", "dario", complaints,
     "Customer complaints by e-mail, letter and chat, with whether they were escalated to a manager.",
     ["text", "nlp", "customers"], "DOCS", "examples for the document router"),
)


def seed(*, progress) -> None:  # noqa: ANN001 - core.demo.Progress
    """Datasets, recipes, models, templates and business metrics in the catalog; a project from a template."""
    progress("registering datasets and reusable components in the catalog")
    with tempfile.TemporaryDirectory() as tmp:
        for name, owner, build, description, tags, project, how in DATASETS:
            path = Path(tmp) / f"{name}.csv"
            build().to_csv(path, index=False)
            with session_scope() as s:
                datasets.register_dataset(session=s, actor=_actor(s, owner), name=name, csv_path=path,
                                          description=description, tags=tags)
                if project:
                    components.record_use(session=s, actor=_actor(s, owner), kind="dataset", name=name,
                                       project_key=project, how=how)
    with session_scope() as s:
        _components(s)
    progress("creating project ONLINE (Online payments fraud) from the binary-classifier template")
    with session_scope() as s:
        maya = _actor(s, "maya")
    templates.create_project_from_template(
        actor=maya, template="Binary classifier with ground-truth monitoring", key=TEMPLATE_PROJECT,
        name="Online payments fraud", dataset="online-card-payments", target="is_fraud", risk_level="medium",
        sponsor="Lena Park, Head of Digital Banking", initiative="Digital channels",
        description="Scores online card payments; started from the binary-classifier template to reuse the "
                    "fraud team's monitoring.")
    with session_scope() as s:
        for kind, name, how in (("check_template", "AI quality checks", "standard checks of online-model"),
                                ("scenario_template", "Daily monitoring with retrain on failure",
                                 "daily scenario of online-model")):
            components.record_use(session=s, actor=maya, kind=kind, name=name, project_key=TEMPLATE_PROJECT, how=how)
    progress("catalog seeded: components of bianca, dario, maya and rhea; project ONLINE from a template")


def _components(s: Session) -> None:
    dario, maya, bianca, rhea = (_actor(s, u) for u in ("dario", "maya", "bianca", "rhea"))
    fraud_v2 = registry.get_version(session=s, model="fraud-detector", version=2)
    components.register_component(
        session=s, actor=maya, kind="recipe", name="Card fraud gradient boosting", project_key="FRAUD",
        spec=fraud_v2.recipe, tags=["fraud", "gradient-boosting", "tabular"],
        description="Histogram gradient boosting on card transaction features (amount, merchant, hour, card age, "
                    "distance from home, channel). Catches night-time and abroad combinations a linear model misses.")
    components.register_component(
        session=s, actor=dario, kind="recipe", name="Customer text classifier", project_key="DOCS",
        spec={"algorithm": "logistic_regression", "text_column": "text", "target": "escalated",
              "vectorizer": {"kind": "tfidf", "ngram_range": [1, 2], "min_df": 2, "sublinear_tf": True},
              "params": {"C": 2.0, "class_weight": "balanced"}},
        tags=["nlp", "text", "customer-feedback"],
        description="TF-IDF words and word pairs with a balanced logistic regression over short customer texts: "
                    "complaints, letters, e-mails, chat and review comments. Built by finance to route card "
                    "disputes; reusable for any customer feedback or review text.")
    for name, owner, tags, description in (
            ("fraud-detector", maya, ["fraud", "real-time"], "Scores each card transaction for fraud."),
            ("churn-predictor", dario, ["churn", "marketing"], "Quarterly churn risk per retail customer.")):
        components.register_component(session=s, actor=owner, kind="model", name=name, tags=tags, description=description)
    for v in registry.list_versions(session=s, model="fraud-detector"):
        if v.number >= 2:
            components.register_component(
                session=s, actor=maya, kind="model_version", name=f"fraud-detector v{v.number}",
                ref=f"fraud-detector:v{v.number}", tags=["fraud"],
                description=f"fraud-detector version {v.number} ({v.origin.replace('_', ' ')}, {v.status}).")
    components.register_component(
        session=s, actor=maya, kind="check_template", name="AI quality checks", project_key="FRAUD",
        spec={"applies": "the standard AI quality checks of a model, in one action",
              "checks": {"binary": ["auc", "recall", "precision", "estimated auc"],
                         "regression": ["r2", "rmse"], "any": ["data drift", "missing values"]},
              "risk_factor": dict(checks.RISK_FACTOR)},
        tags=["monitoring", "quality"],
        description="Relative drop of AUC, recall and precision from training, estimated AUC before labels, drift "
                    "share and missing values; thresholds tighten with the project's risk level.")
    components.register_component(
        session=s, actor=rhea, kind="check_template", name="High-risk release gate", spec={
            "required_passing": ["auc", "recall", "data drift"], "minimum_labelled_rows": 5000,
            "signoffs": ["it_ops", "risk_manager", "business"]},
        tags=["governance", "high-risk"],
        description="What a high-risk model must show before production: passing AUC, recall and drift checks on "
                    "at least 5,000 labelled rows, and sign-offs from IT & operations, risk and the business.")
    components.register_component(
        session=s, actor=maya, kind="scenario_template", name="Daily monitoring with retrain on failure",
        spec={"trigger_kind": "cron", "trigger_value": "0 6 * * *", "steps": templates.DAILY_STEPS},
        tags=["monitoring", "retraining", "daily"],
        description="Every morning: ingest new predictions and labels, evaluate the day, run the checks; when one "
                    "fails, retrain on the latest labelled window and ask for the blueprint's review.")
    fraud_metrics = {b["name"]: b for b in registry.get_model(session=s, name="fraud-detector").business_metrics}
    churn_metrics = {b["name"]: b for b in registry.get_model(session=s, name="churn-predictor").business_metrics}
    for name, spec, project, tags, description in (
            ("Fraud missed amount", fraud_metrics["fraud_missed_amount"], "FRAUD", ["fraud", "finance", "kpi"],
             "Sum of the amounts of fraudulent transactions the model let through: the loss the payments board "
             "reviews every month."),
            ("Net value of decisions", fraud_metrics["net_value"], "FRAUD", ["fraud", "finance", "cost"],
             "Caught fraud saves its typical loss; a false alarm costs an analyst's check and a customer call."),
            ("Value of retention calls", churn_metrics["retained_value"], "CHURN", ["churn", "marketing", "kpi"],
             "What calling the customers the model ranks at risk is worth, net of calls to customers who stay.")):
        components.register_component(session=s, actor=bianca, kind="business_metric", name=name, spec=spec,
                                   project_key=project, tags=tags, description=description)
    components.record_use(session=s, actor=dario, kind="recipe", name="Card fraud gradient boosting",
                       project_key="AML", how="starting point for the laundering model")
