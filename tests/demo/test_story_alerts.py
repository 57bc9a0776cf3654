"""The story's first business alert: the amount of fraud missed, green for months, red when the wave arrives."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from core.alerting import alerts
from core.db import session_scope
from core.demo import story
from core.entities import Check, CheckResult, Evaluation


def test_fraud_missed_turns_red_at_the_wave_and_is_the_stakeholders_first_alert(demo_home):
    with session_scope() as s:
        check = s.exec(select(Check).where(Check.name == "fraud missed amount")).one()
        ticks = s.exec(select(Evaluation.window_start, Evaluation.window_end, CheckResult.status, CheckResult.value)
                       .join(Evaluation, CheckResult.evaluation_id == Evaluation.id)
                       .where(CheckResult.check_id == check.id).order_by(Evaluation.window_start)).all()
        first = min((a for a in alerts.inbox(session=s, username="bianca") if a.kind == "check"),
                    key=lambda a: (a.created_at, a.id))
    before = [(status, value) for start, end, status, value in ticks if end <= story.WAVE_START]
    wave = [(start, status, value) for start, end, status, value in ticks
            if end > story.WAVE_START + timedelta(days=7)]
    assert len(before) >= 10 and all(status == "pass" for status, _v in before)
    assert wave and all(status == "error" for _s, status, _v in wave)
    assert wave[0][0] <= story.WAVE_START + timedelta(days=7)  # red in the wave's first whole week
    assert min(v for _s, _st, v in wave) > check.threshold > max(v for _st, v in before)
    assert first.title == "Credit card fraud: fraud missed amount needs attention"
    assert first.message.startswith(f"Fraud missed in the week to {wave[0][0] + timedelta(days=7):%d %b %Y}: ")
    assert "fraud_missed_amount" not in first.message  # her words, not the metric's name
    assert first.history.endswith("✅✅✅❌") and first.history.count("❌") == 1
    assert first.link == "/project?project=FRAUD"
