"""The Alerts page: each persona's inbox in their own words, acknowledging, check histories, deliveries."""

from __future__ import annotations

import pytest

from core.access import SYSTEM, Actor
from core.alerting import alerts, channels
from core.db import session_scope
from core.models import registry
from core.monitoring import checks
from tests.app.conftest import texts
from tests.support import monitoring_world as world

MAYA = Actor("maya", ("ml_engineer",))
WEEK = 300  # windows far from the seeded story's


@pytest.fixture
def fraud_missed(demo_home, monkeypatch):
    """Three weeks of 'fraud missed amount' for business and ML engineers; the third week over the limit."""
    monkeypatch.delenv("WT_TEST_SLACK", raising=False)
    monkeypatch.setenv("WATCHTOWER_SECRETS_FILE", "/nonexistent/secrets.toml")
    with session_scope() as s:
        version_id = registry.get_version(session=s, model="fraud-detector").id
        channels.define_channel(session=s, actor=SYSTEM, name="#test-fraud", kind="slack",
                                config={"url_secret": "WT_TEST_SLACK"})
        checks.define_check(session=s, actor=MAYA, project_key="FRAUD", model="fraud-detector",
                            name="weekly fraud missed", kind="business", metric="fraud_missed_amount", threshold=5000,
                            audience_roles=["business", "ml_engineer"], channels=["#test-fraud"],
                            business_wording="Fraud missed in the week to {window_end}: {value:,.0f} EUR "
                                             "(limit {threshold:,.0f} EUR)")
        evs = [world.evaluation(s, version_id, WEEK + i, missed=m) for i, m in enumerate([800, 1500, 12_500])]
    for ev in evs:
        with session_scope() as s:
            for r in checks.run_checks(session=s, actor=SYSTEM, evaluation_id=ev):
                alerts.fan_out(session=s, check_result_id=r.id)
    alerts.deliver_due()
    return evs


def _mine(at, title_part: str) -> bool:
    return any(title_part in str(m.value) for m in at.markdown)


def test_the_business_stakeholder_reads_the_alert_in_business_words_with_its_history(fraud_missed, page_as):
    at = page_as("pages/alerts.py", username="bianca")
    assert not at.exception
    shown = texts(at)
    assert "Fraud missed in the week to " in shown and "12,500 EUR (limit 5,000 EUR)" in shown
    assert "fraud_missed_amount" not in shown
    assert "Recent history (oldest first): ✅✅❌" in shown
    assert _mine(at, "**NEW** · **Credit card fraud: weekly fraud missed needs attention**")


def test_the_ml_engineer_reads_the_same_failure_in_metric_words(fraud_missed, page_as):
    at = page_as("pages/alerts.py", username="maya")
    shown = texts(at)
    assert "weekly fraud missed failed (error): fraud missed amount 12,500.00" in shown
    assert "EUR (limit" not in shown


def test_acknowledging_clears_the_unread_count_in_the_sidebar(fraud_missed, page_as):
    at = page_as("pages/alerts.py", username="bianca")
    unread_before = next(int(c.value.split()[0]) for c in at.caption if str(c.value).endswith("unread"))
    assert unread_before >= 1
    with session_scope() as s:
        alert_id = next(a.id for a in alerts.inbox(session=s, username="bianca") if "weekly fraud missed" in a.title)
    at.button(key=f"ack_{alert_id}").click().run()
    assert not at.exception
    with session_scope() as s:
        assert alerts.unread_count(session=s, username="bianca") == unread_before - 1
    assert not any(b.key == f"ack_{alert_id}" for b in at.button)


def test_check_history_shows_the_ticks_of_every_check(fraud_missed, page_as):
    at = page_as("pages/alerts.py", username="bianca")
    at.selectbox(key="history_project").select("FRAUD").run()
    table = next(df.value for df in at.dataframe if "History (oldest → newest)" in df.value.columns)
    row = table[table["Check"] == "weekly fraud missed"].iloc[0]
    assert row["History (oldest → newest)"] == "✅✅❌" and row["Latest"] == "error"


def test_failed_deliveries_are_listed_for_the_engineer_with_their_reason(fraud_missed, page_as):
    at = page_as("pages/alerts.py", username="maya")
    table = next(df.value for df in at.dataframe if "Last error" in df.value.columns)
    failed = table[table["Channel"] == "#test-fraud (slack)"]
    assert len(failed) == 2  # one post per wording: business and engineering
    assert set(failed["Last error"]) == {"not configured: setting WT_TEST_SLACK for channel #test-fraud is not set"}
    at.button(key="retry_delivery").click().run()
    assert "Queued again" in texts(at)


def test_in_the_story_each_persona_finds_their_own_alerts(page_as):
    bianca = texts(page_as("pages/alerts.py", username="bianca"))
    assert "Credit card fraud: fraud screening net value needs attention" in bianca
    assert "more fraud got through than it stopped" in bianca and "failed on fraud-detector" not in bianca
    maya = texts(page_as("pages/alerts.py", username="maya"))
    assert "auc failed on fraud-detector (error)" in maya and "recall failed on fraud-detector (error)" in maya
    assert "card_age_days drifted" in maya and "more fraud got through" not in maya
    with session_scope() as s:
        for username in ("bianca", "maya"):
            unread = alerts.inbox(session=s, username=username, unread_only=True)
            assert unread and all(a.created_at.month >= 10 for a in unread)  # the latest weeks; the rest read
