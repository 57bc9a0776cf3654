"""The process map draws the project's flow from its records, automated and human steps told apart."""

from __future__ import annotations

from core.access import Actor
from core.automation import scenarios
from core.db import session_scope
from core.projects import process_map
from tests.support import monitoring_world as world

MAYA = Actor("maya", ("ml_engineer",))


def _links(pm):
    return {(link.source, link.target): link for link in pm.links}


def test_a_scheduled_scenario_turns_monitoring_automatic_and_its_approval_step_human(backend, tmp_path):
    world.build(tmp_path)
    with session_scope() as s:
        before = process_map.build(session=s, project_key="FRAUD")
    assert not _links(before)[("data", "monitoring")].automated
    assert _links(before)[("monitoring", "retraining")].label == "a person decides to retrain"
    with session_scope() as s:
        scenarios.create_scenario(session=s, actor=MAYA, project_key="FRAUD", model="fraud-detector", name="daily",
                                  trigger_kind="cron", trigger_value="0 6 * * *",
                                  steps=[{"kind": "evaluate"}, {"kind": "checks"},
                                         {"kind": "retrain", "mode": "needs_approval", "approver_role": "ml_engineer",
                                          "when": "checks_failed"}])
        after = process_map.build(session=s, project_key="FRAUD")
    links = _links(after)
    assert links[("data", "monitoring")].automated and links[("data", "retraining")].automated
    retrain = links[("monitoring", "retraining")]
    assert not retrain.automated and retrain.label == "on a failed check: approval by ml engineer"
    assert 'monitoring -> retraining [label="✋ on a failed check: approval by ml engineer", color="#e65100"' in after.dot
    assert 'data -> monitoring [label="⚙ scheduled evaluation and checks", color="#2e7d32"' in after.dot
    assert "fraud-detector v1: active" in after.dot
