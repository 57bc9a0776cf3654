"""A failed check reaches each persona in their own words, in-app and over real channels, with retries."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlmodel import func, select

from core.access import SYSTEM, Actor
from core.alerting import alerts, channels
from core.clock import now
from core.db import session_scope
from core.entities import AlertDelivery
from core.errors import Forbidden
from core.monitoring import checks
from tests.support import monitoring_world as world
from tests.support.receivers import free_port

MAYA = Actor("maya", ("ml_engineer",))
BIANCA = Actor("bianca", ("business",))


@pytest.fixture
def world_with_channels(backend, tmp_path, receiver, smtp, monkeypatch):
    """The fraud world with in-app, Slack, e-mail and webhook channels pointing at local receivers."""
    version_id = world.build(tmp_path)
    monkeypatch.setenv("WT_SLACK", receiver.url("/slack"))
    monkeypatch.setenv("WT_HOOK", receiver.url("/hook"))
    monkeypatch.setenv("WT_HOOK_KEY", "hook-key")
    monkeypatch.setenv("WATCHTOWER_BASE_URL", "http://portal.example")
    monkeypatch.setenv("WATCHTOWER_RETRY_BASE_SECONDS", "30")
    with session_scope() as s:
        for name, kind, config in [("in-app", "inapp", {}), ("#fraud", "slack", {"url_secret": "WT_SLACK"}),
                                   ("mail", "email", {"host": "127.0.0.1", "port": smtp.port,
                                                      "sender": "watchtower@bank.example"}),
                                   ("hook", "webhook", {"url_secret": "WT_HOOK", "hmac_secret": "WT_HOOK_KEY"})]:
            channels.define_channel(session=s, actor=SYSTEM, name=name, kind=kind, config=config)
    return version_id


def _failed_result(version_id, *, name="fraud missed amount", kind="business", metric="fraud_missed_amount",
                   roles=("business", "ml_engineer"), chans=("in-app", "#fraud", "mail"), weeks=(900, 1200, 12_500),
                   **kw):
    with session_scope() as s:
        checks.define_check(session=s, actor=MAYA, project_key="FRAUD", model="fraud-detector", name=name, kind=kind,
                            metric=metric, threshold=5000, audience_roles=list(roles), channels=list(chans),
                            business_wording="Fraud missed in the week to {window_end}: {value:,.0f} EUR "
                                             "(limit {threshold:,.0f} EUR)", **kw)
        evs = [world.evaluation(s, version_id, w, missed=m) for w, m in enumerate(weeks)]
    for ev in evs:
        with session_scope() as s:
            results = checks.run_checks(session=s, actor=SYSTEM, evaluation_id=ev)
    return next(r for r in results if r.check_name == name).id


def _fan_out(result_id):
    with session_scope() as s:
        return {a.username: a for a in alerts.fan_out(session=s, check_result_id=result_id)}


def test_the_business_stakeholder_and_the_engineer_read_the_same_failure_in_their_own_words(
        world_with_channels, receiver, smtp):
    sent = _fan_out(_failed_result(world_with_channels))
    assert set(sent) == {"bianca", "maya"}
    assert sent["bianca"].message == "Fraud missed in the week to 23 Mar 2026: 12,500 EUR (limit 5,000 EUR)"
    assert sent["bianca"].link == "/project?project=FRAUD"
    assert "fraud_missed_amount" not in sent["bianca"].message
    assert "fraud missed amount failed (error): fraud missed amount 12,500.00" in sent["maya"].message
    assert sent["maya"].history == sent["bianca"].history == "✅✅❌"

    stats = alerts.deliver_due()
    assert stats.sent == 4 and stats.failed == 0  # one Slack post per wording, one e-mail per person
    texts = sorted(p.json["blocks"][1]["text"]["text"] for p in receiver.to("/slack"))
    assert texts[0].startswith("Fraud missed in the week to 23 Mar 2026") and texts[1].startswith("fraud missed amount failed")
    assert all("✅✅❌" in p.json["blocks"][2]["elements"][0]["text"] for p in receiver.to("/slack"))
    assert all(p.json["blocks"][3]["elements"][0]["url"] == "http://portal.example/project?project=FRAUD"
               for p in receiver.to("/slack"))
    assert sorted(m["To"] for m in smtp.messages) == ["bianca@bank.example", "maya@bank.example"]
    assert alerts.deliver_due().sent == 0  # nothing is sent twice


def test_the_inbox_counts_unread_alerts_and_only_the_recipient_acknowledges(world_with_channels):
    sent = _fan_out(_failed_result(world_with_channels))
    with session_scope() as s:
        assert alerts.unread_count(session=s, username="bianca") == 1
        assert alerts.unread_count(session=s, username="omar") == 0
        with pytest.raises(Forbidden, match="not addressed to maya"):
            alerts.acknowledge(session=s, actor=MAYA, alert_id=sent["bianca"].id)
    with session_scope() as s:
        alerts.acknowledge(session=s, actor=BIANCA, alert_id=sent["bianca"].id)
    with session_scope() as s:
        assert alerts.unread_count(session=s, username="bianca") == 0
        (entry,) = alerts.inbox(session=s, username="bianca")
        assert entry.acknowledged_at is not None and entry.title == "Credit card fraud: fraud missed amount needs attention"


def test_a_result_is_alerted_once_and_a_passing_one_not_at_all(world_with_channels):
    result_id = _failed_result(world_with_channels)
    first, again = _fan_out(result_id), _fan_out(result_id)
    assert {a.id for a in first.values()} == {a.id for a in again.values()}
    with session_scope() as s:
        green = checks.history(session=s, check_id=checks.list_checks(session=s, project_key="FRAUD")[0].id).ticks[0]
        assert alerts.fan_out(session=s, check_result_id=green.id) == []


@pytest.mark.parametrize("behaviour", ["error", "slow", "refused"])
def test_a_failing_webhook_is_retried_with_backoff_then_failed_while_others_arrive(
        world_with_channels, receiver, monkeypatch, behaviour):
    if behaviour == "refused":
        monkeypatch.setenv("WT_HOOK", f"http://127.0.0.1:{free_port()}/hook")
    receiver.behaviour["/hook"] = behaviour
    receiver.slow_seconds = 1.0
    _fan_out(_failed_result(world_with_channels, chans=("#fraud", "hook")))
    at = now()
    first = alerts.deliver_due(at=at, timeout=0.3)
    assert (first.sent, first.retrying) == (2, 2)  # Slack posts arrive although the webhook fails
    delays = []
    for _ in range(alerts.MAX_ATTEMPTS - 1):
        with session_scope() as s:
            pending = s.exec(select(AlertDelivery).where(AlertDelivery.status == "pending")).all()
            delays.append(round((min(d.next_attempt_at for d in pending) - at).total_seconds()))
            at = min(d.next_attempt_at for d in pending)
        assert alerts.deliver_due(at=at - timedelta(seconds=1), timeout=0.3).sent == 0  # not due yet
        alerts.deliver_due(at=at, timeout=0.3)
    assert delays == [30, 60, 120, 240]
    with session_scope() as s:
        failed = alerts.deliveries(session=s, actor=MAYA, status="failed")
    assert len(failed) == 2 and {d.attempts for d in failed} == {alerts.MAX_ATTEMPTS}
    expected = {"error": "answered HTTP 500", "slow": "did not answer", "refused": "refused the connection"}[behaviour]
    assert all(expected in d.last_error and "hook-key" not in d.last_error for d in failed)
    assert len(receiver.to("/slack")) == 2


def test_a_channel_without_its_secret_setting_records_not_configured_without_crashing(world_with_channels, monkeypatch):
    monkeypatch.delenv("WT_SLACK")
    monkeypatch.setenv("WATCHTOWER_SECRETS_FILE", "/nonexistent/secrets.toml")
    _fan_out(_failed_result(world_with_channels, chans=("#fraud", "mail")))
    stats = alerts.deliver_due()
    assert (stats.sent, stats.failed) == (2, 2)
    with session_scope() as s:
        failed = alerts.deliveries(session=s, actor=MAYA, status="failed")
        assert {d.last_error for d in failed} == {"not configured: setting WT_SLACK for channel #fraud is not set"}
        # a person without the deliveries permission sees only deliveries of their own alerts
        assert {d.recipient for d in alerts.deliveries(session=s, actor=BIANCA)} <= {"bianca", "#fraud"}


def test_two_senders_at_once_deliver_every_alert_exactly_once(world_with_channels, receiver):
    _fan_out(_failed_result(world_with_channels, chans=("hook",), roles=("business", "ml_engineer", "it_ops",
                                                                         "risk_manager", "data_scientist")))
    threads = [threading.Thread(target=alerts.deliver_due) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(receiver.to("/hook")) == 2  # two wordings → two signed posts, each once
    with session_scope() as s:
        assert s.exec(select(func.count()).select_from(AlertDelivery)
                      .where(AlertDelivery.status == "sent")).one() == 2


def test_people_can_be_notified_by_role_outside_a_check(world_with_channels, smtp):
    with session_scope() as s:
        sent = alerts.notify(session=s, project_key="FRAUD", roles=["risk_manager"], title="Review waiting",
                             message="fraud-detector v3 waits for your sign-off", link="/governance?project=FRAUD",
                             kind="review", channel_names=["mail"])
    assert [a.username for a in sent] == ["rhea"]
    alerts.deliver_due()
    assert [m["To"] for m in smtp.messages] == ["rhea@bank.example"]
