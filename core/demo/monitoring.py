"""Monitoring in the story: the fraud project's checks, alert channels, daily scenario, and six months of history.

Runs after the evaluations step. The checks are run on fraud-detector v2's stored weekly windows in time
order, as the daily scenario would have run them: weeks of green, then red from August (month four), when
the wave of new cards arrives. Each failure alerted its audience at the time — business words for Bianca,
metric words for Maya — and the alerts older than the last two weeks have been read. The Slack and e-mail
channels name secret settings that the demo leaves unset, so their deliveries are recorded as "not
configured" (set WATCHTOWER_SLACK_FRAUD_URL or WATCHTOWER_SMTP_PASSWORD to see them go out).
"""

from __future__ import annotations

import math
from datetime import timedelta

from sqlmodel import select

from core.alerting import alerts, channels
from core.automation import scenarios
from core.db import session_scope
from core.demo import SEEDER, story
from core.entities import Alert, Blueprint, Project
from core.identity import users
from core.monitoring import checks, evaluation_store

PROJECT, MODEL = "FRAUD", "fraud-detector"
UNREAD_WEEKS = 2
CHANNELS = [
    ("in-app", "inapp", {}),
    ("#fraud-alerts", "slack", {"url_secret": "WATCHTOWER_SLACK_FRAUD_URL"}),
    ("fraud-team-mail", "email", {"host": "smtp.example.com", "port": 587, "starttls": True, "username": "watchtower",
                                  "password_secret": "WATCHTOWER_SMTP_PASSWORD", "sender": "watchtower@example.com"}),
]


def _weekly(session) -> list:  # noqa: ANN001 - a Session
    """v2's weekly windows that are whole weeks (the partial first and last weeks do not count)."""
    return [e for e in evaluation_store.list_evaluations(session=session, actor=SEEDER, model=MODEL, version=2,
                                                         granularity="7D")
            if e.window_start >= story.STORY_START and e.labelled_rows >= 0.9 * e.rows]


def _limits(weekly: list) -> tuple[float, float]:
    """Thresholds the business would have set from the months before the wave: just past the worst week then."""
    before = [e.business_metrics for e in weekly if e.window_end <= story.WAVE_START]
    missed = max([b.get("fraud_missed_amount") or 0.0 for b in before], default=4500.0)
    net = min([b.get("net_value") or 0.0 for b in before], default=-1000.0)
    return math.ceil(missed * 1.05 / 500) * 500, math.floor((net - 1000) / 1000) * 1000


def _checks(session, missed_limit: float, net_limit: float) -> None:  # noqa: ANN001 - a Session
    business = {"audience_roles": ["business"], "channels": ["in-app", "#fraud-alerts", "fraud-team-mail"]}
    engineers = {"audience_roles": ["ml_engineer"], "channels": ["in-app", "#fraud-alerts"]}
    specs = [
        ("fraud missed amount", "business", {"metric": "fraud_missed_amount", "threshold": missed_limit, **business,
         "description": "Fraud the model let through, in EUR per week, against the worst week before August.",
         "business_wording": "Fraud missed in the week to {window_end}: {value:,.0f} EUR, above the "
                             "{threshold:,.0f} EUR we accept in a week."}),
        ("fraud screening net value", "business", {"metric": "net_value", "threshold": net_limit, **business,
         "description": "Value of the screening per week: 100 EUR per fraud caught, minus 100 per fraud missed "
                        "and 5 per false alarm.",
         "business_wording": "Fraud screening lost {value:,.0f} EUR net in the week to {window_end}: more fraud "
                             "got through than it stopped (limit {threshold:,.0f} EUR)."}),
        ("auc", "metric_drop", {"metric": "roc_auc", "threshold": 0.05, **engineers}),
        ("recall", "metric_drop", {"metric": "recall", "threshold": 0.15, **engineers}),
        ("precision", "metric_drop", {"metric": "precision", "threshold": 0.20, "severity": "warning", **engineers}),
        ("data drift", "drift_share", {"threshold": 0.05, "severity": "warning", **engineers}),
        ("card_age_days drift", "field_drift", {"field": "card_age_days", **engineers}),
        ("missing values", "missing_rate", {"threshold": 0.02, "severity": "warning", **engineers}),
    ]
    for name, kind, kw in specs:
        checks.define_check(session=session, actor=SEEDER, project_key=PROJECT, model=MODEL, name=name, kind=kind,
                            **kw)


def _scenario(session) -> None:  # noqa: ANN001 - a Session
    project = session.exec(select(Project).where(Project.key == PROJECT)).one()
    blueprint = session.get(Blueprint, project.blueprint_id) if project.blueprint_id else None
    retrain_mode = "auto" if blueprint is not None and blueprint.auto_deploy else "needs_approval"
    # Maya, the project's ML engineer, sets it up: its steps act as her.
    maya = users.get_user(session=session, username="maya").actor
    scenarios.create_scenario(
        session=session, actor=maya, project_key=PROJECT, model=MODEL, name="Daily monitoring",
        description="New predictions and labels from the drop folder, the week evaluated, checks; on a failed "
                    "check the model is retrained as a candidate and the team is told.",
        trigger_kind="cron", trigger_value="0 6 * * *",
        steps=[{"kind": "ingest", "params": {"id_col": "transaction_id"}},
               {"kind": "evaluate", "params": {"every": "7D"}},
               {"kind": "checks"},
               {"kind": "retrain", "mode": retrain_mode, "approver_role": "ml_engineer", "when": "checks_failed"},
               {"kind": "notify", "params": {"roles": ["business", "ml_engineer"], "only_on_failure": True}}])


def seed(*, progress) -> None:  # noqa: ANN001 - core.demo.Progress
    """Channels, checks and the daily scenario of the fraud project; its check history and everyone's alerts."""
    progress("monitoring: alert channels, the fraud project's checks and its daily scenario")
    with session_scope() as s:
        weekly = _weekly(s)
        missed_limit, net_limit = _limits(weekly)
        for name, kind, config in CHANNELS:
            channels.define_channel(session=s, actor=SEEDER, name=name, kind=kind, config=config)
        _checks(s, missed_limit, net_limit)
        _scenario(s)
    if not weekly:
        progress("no weekly evaluations stored yet: the checks start with the first scenario run")
        return
    progress(f"running the checks on {len(weekly)} weekly windows and alerting each failure's audience")
    latest = max(e.window_end for e in weekly)
    for ev in weekly:
        raised_at = ev.window_end + timedelta(hours=6)  # the morning run after the week closed
        with session_scope() as s:
            failed = [r.id for r in checks.run_checks(session=s, actor=SEEDER, evaluation_id=ev.id)
                      if r.status in ("warning", "error")]
            for sent in alerts.fan_out_many(session=s, check_result_ids=failed):
                alert = s.get(Alert, sent.id)
                alert.created_at = raised_at
                if ev.window_end <= latest - timedelta(weeks=UNREAD_WEEKS):
                    alert.acknowledged_at, alert.acknowledged_by = raised_at + timedelta(hours=3), sent.username
                s.add(alert)
    stats = alerts.deliver_due()
    with session_scope() as s:
        unread = {u: alerts.unread_count(session=s, username=u) for u in ("bianca", "maya")}
    progress(f"alerts: {unread['bianca']} unread for bianca, {unread['maya']} for maya; deliveries: {stats.sent} "
             f"sent, {stats.failed} recorded as failed (channels not configured in the demo)")
