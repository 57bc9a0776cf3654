"""The rest of the demo portfolio: projects at every risk level and stage, two of them with a small model."""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression, Ridge
from sqlmodel import Session

from core.access import Actor
from core.demo.training import Trained, train
from core.models import registry
from core.projects import projects


def _contact(name: str, username: str, role: str) -> dict:
    return {"name": name, "email": f"{username}@example.com", "role": role}


PROJECTS: tuple[dict, ...] = (
    {"key": "FRAUD", "name": "Credit card fraud", "risk_level": "high", "initiative": "Payments integrity",
     "stage": "Production", "sponsor": "Elena Fischer, VP Card Payments", "owner": "maya",
     "description": "Scores every card transaction in real time and holds suspicious ones for an analyst "
                    "before they are authorised. Fraud losses and false alarms are both reported to the "
                    "payments board every month.",
     "scope": "In scope: consumer credit and debit cards, all channels (point of sale, online, ATM, "
              "contactless). Out of scope: corporate cards and merchant-side fraud.",
     "contacts": [_contact("Bianca Rossi", "bianca", "Business owner, fraud operations"),
                  _contact("Maya Lindqvist", "maya", "ML engineer, model owner"),
                  _contact("Dario Conti", "dario", "Data scientist"),
                  _contact("Rhea Okafor", "rhea", "Model risk"),
                  _contact("Omar Haddad", "omar", "IT & operations, scoring service on call")],
     "tags": ["fraud", "real-time", "cards"]},
    {"key": "AML", "name": "Anti-money laundering monitoring", "risk_level": "high", "initiative": "Payments integrity",
     "stage": "Qualification", "sponsor": "Elena Fischer, VP Card Payments", "owner": "dario",
     "description": "Flags account activity that may be money laundering for the financial crime team.",
     "scope": "Retail current accounts; wire transfers above 1,000 EUR.",
     "contacts": [_contact("Dario Conti", "dario", "Data scientist, project lead"),
                  _contact("Rhea Okafor", "rhea", "Model risk")],
     "tags": ["compliance", "batch"]},
    {"key": "CHURN", "name": "Customer churn", "risk_level": "medium", "initiative": "Customer retention",
     "stage": "Production", "sponsor": "Tomás Varga, Head of Retail Banking", "owner": "dario",
     "description": "Ranks customers by their risk of closing their account in the next quarter, so that "
                    "relationship managers call the right people.",
     "scope": "Retail customers with a current account older than three months.",
     "contacts": [_contact("Bianca Rossi", "bianca", "Business owner, retail"),
                  _contact("Dario Conti", "dario", "Data scientist, model owner")],
     "tags": ["marketing", "monthly"]},
    {"key": "CREDIT", "name": "Credit scoring", "risk_level": "high", "initiative": "Lending growth",
     "stage": "Review", "sponsor": "Priya Natarajan, Chief Credit Officer", "owner": "maya",
     "description": "Probability of default for personal-loan applications, used in the credit decision.",
     "scope": "Personal loans up to 50,000 EUR; mortgages are out of scope.",
     "contacts": [_contact("Maya Lindqvist", "maya", "ML engineer"),
                  _contact("Rhea Okafor", "rhea", "Model risk, validation")],
     "tags": ["lending", "regulated"]},
    {"key": "CASH", "name": "Branch cash demand forecast", "risk_level": "low",
     "initiative": "Operations efficiency", "stage": "Production", "sponsor": "Jonas Berg, COO",
     "owner": "maya",
     "description": "Forecasts the cash each branch pays out per day so that deliveries are neither short "
                    "nor idle money.",
     "scope": "All branches with an ATM; daily forecast, one week ahead.",
     "contacts": [_contact("Omar Haddad", "omar", "IT & operations"),
                  _contact("Maya Lindqvist", "maya", "ML engineer, model owner")],
     "tags": ["forecast", "regression"]},
    {"key": "DOCS", "name": "Document routing", "risk_level": "low", "initiative": "Operations efficiency",
     "stage": "Exploration", "sponsor": "Jonas Berg, COO", "owner": "dario",
     "description": "Sends incoming customer letters and e-mails to the right back-office team.",
     "scope": "Letters and e-mails in English, German and Italian.",
     "contacts": [_contact("Dario Conti", "dario", "Data scientist")],
     "tags": ["nlp", "exploration"]},
)

CHURN_FEATURES = [{"name": "tenure_months", "type": "numeric"}, {"name": "monthly_fees", "type": "numeric"},
                  {"name": "support_calls_90d", "type": "numeric"}, {"name": "products_held", "type": "numeric"},
                  {"name": "contract", "type": "categorical"}]
CASH_FEATURES = [{"name": "weekday", "type": "numeric"}, {"name": "payday", "type": "numeric"},
                 {"name": "holiday_eve", "type": "numeric"}, {"name": "branch_size", "type": "categorical"},
                 {"name": "temperature_c", "type": "numeric"}]


def churn_history(n: int = 3000, seed: int = 21) -> pd.DataFrame:
    """Customers and whether they left: short tenure, many support calls and few products mean churn."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "tenure_months": rng.integers(3, 120, size=n),
        "monthly_fees": np.round(rng.gamma(3.0, 4.0, size=n), 2),
        "support_calls_90d": rng.poisson(1.2, size=n),
        "products_held": rng.integers(1, 6, size=n),
        "contract": rng.choice(["basic", "plus", "premium"], size=n, p=[0.5, 0.35, 0.15]),
    })
    logit = (-1.2 - 0.02 * frame.tenure_months + 0.05 * frame.monthly_fees + 0.5 * frame.support_calls_90d
             - 0.4 * frame.products_held + np.where(frame.contract == "premium", -0.8, 0.0))
    frame["churned"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame


def cash_history(days: int = 730, branches: int = 4, seed: int = 31) -> pd.DataFrame:
    """Daily cash paid out per branch (thousand EUR): weekday, payday and holiday effects."""
    rng = np.random.default_rng(seed)
    n = days * branches
    size = np.tile(np.array(["small", "medium", "large", "medium"])[:branches], days)
    frame = pd.DataFrame({
        "weekday": np.repeat(np.arange(days) % 7, branches),
        "payday": np.repeat((np.arange(days) % 30 == 27).astype(int), branches),
        "holiday_eve": np.repeat((rng.random(days) < 0.03).astype(int), branches),
        "branch_size": size,
        "temperature_c": np.repeat(np.round(12 + 10 * np.sin(np.arange(days) / 58.0) + rng.normal(0, 3, days), 1),
                                   branches),
    })
    base = pd.Series(size).map({"small": 40.0, "medium": 75.0, "large": 130.0}).to_numpy()
    frame["cash_out_k"] = np.round(base * (1 + 0.12 * (frame.weekday == 4) - 0.35 * (frame.weekday == 6)
                                          + 0.45 * frame.payday + 0.3 * frame.holiday_eve)
                                   + rng.normal(0, 6, n), 1)
    return frame


MODELS: tuple[dict, ...] = (
    {"project_key": "CHURN", "name": "churn-predictor", "task": "binary", "target": "churned",
     "features": CHURN_FEATURES, "decision_threshold": 0.35,
     "description": "Quarterly churn risk per retail customer.",
     "business_metrics": [{"name": "retained_value", "kind": "cost_matrix", "tp": 300.0, "fp": -40.0, "fn": -300.0,
                           "tn": 0.0, "label_text": "Value of retention calls", "better": "higher"}],
     "environments": ["production"]},
    {"project_key": "CASH", "name": "cash-demand-forecaster", "task": "regression", "target": "cash_out_k",
     "features": CASH_FEATURES, "decision_threshold": 0.5,
     "description": "Cash paid out per branch and day, in thousand EUR.", "business_metrics": [],
     "environments": ["staging", "production"]},
)


@functools.cache
def train_models() -> dict[str, Trained]:
    """The small models of the portfolio, trained before any transaction opens (once per process)."""
    return {
        "churn-predictor": train(churn_history(), features=CHURN_FEATURES, target="churned", task="binary",
                                 estimator=LogisticRegression(max_iter=500), scale=True, threshold=0.35,
                                 reference_rows=1000),
        "cash-demand-forecaster": train(cash_history(), features=CASH_FEATURES, target="cash_out_k",
                                        task="regression", estimator=Ridge(alpha=1.0), scale=True,
                                        reference_rows=1000),
    }


def create_projects(session: Session, *, actor: Actor) -> None:
    """Every project of the portfolio, each under the blueprint of its risk level."""
    for spec in PROJECTS:
        projects.create_project(session=session, actor=actor, **spec)


def register_models(session: Session, trained: dict[str, Trained], stored: dict[str, tuple[str, str]], *, actor: Actor,
                    deploy: Callable[..., None], deployer: Actor) -> None:
    """Declare the small models, register their version 1 and record where it runs."""
    for spec in MODELS:
        spec = dict(spec)
        environments = spec.pop("environments")
        model = trained[spec["name"]]
        registry.create_model(session=session, actor=actor, **spec)
        path, sha = stored[spec["name"]]
        registry.add_version(session=session, actor=actor, model=spec["name"], reference=model.reference,
                             artifact_path=path, artifact_sha256=sha, status="active",
                             recipe={"algorithm": model.algorithm,
                                     "features": [f["name"] for f in spec["features"]], "target": spec["target"]},
                             params=model.params, training_metrics=model.metrics)
        for env in environments:
            deploy(session, actor=deployer, model=spec["name"], version=1, environment=env)
