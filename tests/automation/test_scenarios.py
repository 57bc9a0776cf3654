"""Scenarios: defining triggers and steps, requesting runs, executing them step by step, human approval."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlmodel import func, select

from core.access import Actor
from core.alerting import alerts
from core.automation import runner, scenarios
from core.db import session_scope
from core.entities import AuditEvent, Scenario
from core.errors import Conflict, Forbidden, InvalidInput
from core.identity import users
from core.monitoring import checks
from tests.support import monitoring_world as world
from tests.support.people import ADMINISTRATOR

MAYA = Actor("maya", ("ml_engineer",))
OMAR = Actor("omar", ("it_ops",))
WORKER = "test-host:1:abc"


@pytest.fixture
def version_id(backend, tmp_path):
    vid = world.build(tmp_path)
    with session_scope() as s:
        checks.define_check(session=s, actor=MAYA, project_key="FRAUD", model="fraud-detector", name="auc",
                            kind="metric", metric="roc_auc", threshold=0.85, audience_roles=["ml_engineer"])
    return vid


def _create(steps, **kw):
    with session_scope() as s:
        return scenarios.create_scenario(session=s, actor=MAYA, project_key="FRAUD", model="fraud-detector",
                                         name=kw.pop("name", "daily monitoring"), steps=steps, **kw)


def _request(scenario_id, actor=OMAR):
    with session_scope() as s:
        return scenarios.request_run(session=s, actor=actor, scenario_id=scenario_id)


def _run(run_id):
    return runner.execute_run(run_id=run_id, worker_id=WORKER)


def _get(run_id):
    with session_scope() as s:
        return scenarios.get_run(session=s, run_id=run_id)


def test_a_run_executes_its_steps_in_order_with_status_duration_and_log(version_id):
    with session_scope() as s:
        world.evaluation(s, version_id, 0, auc=0.80)
    sc = _create([{"kind": "checks"}, {"kind": "sleep", "params": {"seconds": 0.2}},
                  {"kind": "notify", "params": {"roles": ["business"]}}], trigger_kind="cron", trigger_value="0 6 * * *")
    assert sc.schedule == "cron 0 6 * * * (UTC)" and sc.next_run_at.hour == 6
    run = _request(sc.id)
    assert run.status == "requested" and run.requested_by == "omar"
    assert _run(run.id) == "succeeded"
    done = _get(run.id)
    assert [(st.kind, st.status) for st in done.steps] == [("checks", "succeeded"), ("sleep", "succeeded"),
                                                           ("notify", "succeeded")]
    assert done.steps[1].duration_s >= 0.2
    assert "auc error" in done.steps[0].log and "1 failed (auc)" in done.steps[0].log
    with session_scope() as s:
        (maya_alert,) = alerts.inbox(session=s, username="maya")
        (bianca_note,) = alerts.inbox(session=s, username="bianca")
    assert maya_alert.title == "auc failed on fraud-detector (error)"
    assert bianca_note.title.endswith("1 check(s) failed")
    assert _run(run.id) is None  # a finished run is never executed again


def test_a_step_that_needs_approval_pauses_the_run_until_the_right_role_approves(version_id):
    with session_scope() as s:
        world.evaluation(s, version_id, 0, auc=0.80)
    sc = _create([{"kind": "checks"}, {"kind": "sleep", "mode": "needs_approval", "approver_role": "ml_engineer",
                                       "when": "checks_failed", "params": {"seconds": 0}}])
    run = _request(sc.id)
    assert _run(run.id) == "waiting_approval"
    paused = _get(run.id)
    assert paused.waiting_step.kind == "sleep" and paused.steps[0].status == "succeeded"
    with session_scope() as s:
        assert any("waits for your approval" in a.title for a in alerts.inbox(session=s, username="maya"))
    with pytest.raises(Forbidden, match="needs approval by a ml engineer; omar is not one"):
        with session_scope() as s:
            scenarios.approve_step(session=s, actor=OMAR, run_id=run.id)
    with session_scope() as s:
        assert scenarios.approve_step(session=s, actor=MAYA, run_id=run.id, comment="go").status == "requested"
    assert _run(run.id) == "succeeded"
    done = _get(run.id)
    assert done.steps[1].approved_by == "maya" and done.steps[1].status == "succeeded"
    with pytest.raises(Conflict, match="not waiting for an approval"):
        with session_scope() as s:
            scenarios.approve_step(session=s, actor=MAYA, run_id=run.id)


def test_a_rejected_step_ends_the_run_and_skips_the_rest(version_id):
    with session_scope() as s:
        world.evaluation(s, version_id, 0, auc=0.80)
    sc = _create([{"kind": "checks"}, {"kind": "sleep", "mode": "needs_approval"}, {"kind": "notify"}])
    run = _request(sc.id)
    _run(run.id)
    with session_scope() as s:
        scenarios.reject_step(session=s, actor=MAYA, run_id=run.id, comment="not this week")
    done = _get(run.id)
    assert done.status == "failed" and [st.status for st in done.steps] == ["succeeded", "skipped", "skipped"]
    assert "rejected by maya: not this week" in done.steps[1].error


def test_a_conditional_step_is_skipped_when_no_check_failed(version_id):
    with session_scope() as s:
        world.evaluation(s, version_id, 0, auc=0.95)
    sc = _create([{"kind": "checks"}, {"kind": "sleep", "mode": "needs_approval", "when": "checks_failed"},
                  {"kind": "notify", "params": {"only_on_failure": True}}])
    run = _request(sc.id)
    assert _run(run.id) == "succeeded"
    steps = _get(run.id).steps
    assert [st.status for st in steps] == ["succeeded", "skipped", "succeeded"]
    assert "no check failed" in steps[1].log and "nobody notified" in steps[2].log


def test_a_failing_step_fails_the_run_skips_the_rest_and_tells_operations(version_id):
    sc = _create([{"kind": "deploy"}, {"kind": "checks"}])
    run = _request(sc.id)
    assert _run(run.id) == "failed"
    done = _get(run.id)
    assert [st.status for st in done.steps] == ["failed", "skipped"]
    assert "step 1 (deploy) failed: the deploy step needs a model and an 'environment' parameter" in done.error
    with session_scope() as s:
        assert [a.title for a in alerts.inbox(session=s, username="omar")] == ["Scenario daily monitoring failed"]


def test_one_run_at_a_time_per_scenario(version_id):
    sc = _create([{"kind": "sleep", "params": {"seconds": 0}}])
    first = _request(sc.id)
    with pytest.raises(Conflict, match=f"already has run #{first.id} requested"):
        _request(sc.id)
    with pytest.raises(Forbidden):
        _request(sc.id, actor=Actor("bianca", ("business",)))


def _counts():
    with session_scope() as s:
        return (s.exec(select(func.count()).select_from(Scenario)).one(),
                s.exec(select(func.count()).select_from(AuditEvent)).one())


@pytest.mark.parametrize("kw, message", [
    ({"trigger_kind": "cron", "trigger_value": "61 * * * *"}, "cron expression '61 * * * *' does not parse"),
    ({"trigger_kind": "cron", "trigger_value": "every day"}, "does not parse: Wrong number of fields"),
    ({"trigger_kind": "interval", "trigger_value": "hourly"}, "interval 'hourly' is not a whole number of seconds"),
    ({"trigger_kind": "weekly"}, "trigger 'weekly' is not one of"),
    ({"steps": [{"kind": "checks"}, {"kind": "teleport"}]}, "step 2: unknown kind 'teleport'"),
    ({"steps": [{"kind": "checks", "mode": "maybe"}]}, "step 1 (checks): mode 'maybe' is not one of"),
    ({"steps": [{"kind": "checks", "mode": "needs_approval", "approver_role": "ceo"}]}, "approver role 'ceo'"),
    ({"steps": []}, "at least one step"),
])
def test_bad_scenarios_are_refused_with_a_clear_message_and_nothing_written(version_id, kw, message):
    before, kw = _counts(), dict(kw)
    with pytest.raises(InvalidInput) as err:
        _create(kw.pop("steps", [{"kind": "checks"}]), **kw)
    assert message in str(err.value)
    assert _counts() == before


def test_a_scenario_can_be_rescheduled_disabled_and_deleted(version_id):
    sc = _create([{"kind": "sleep"}], trigger_kind="interval", trigger_value=3600)
    with session_scope() as s:
        changed = scenarios.update_scenario(session=s, actor=MAYA, scenario_id=sc.id, trigger_kind="cron",
                                            trigger_value="30 5 * * 1", enabled=False)
    assert changed.schedule == "cron 30 5 * * 1 (UTC)" and changed.next_run_at is None
    run = _request(sc.id)
    with pytest.raises(Conflict, match="has a run in progress"):
        with session_scope() as s:
            scenarios.delete_scenario(session=s, actor=MAYA, scenario_id=sc.id)
    _run(run.id)
    with session_scope() as s:
        scenarios.delete_scenario(session=s, actor=MAYA, scenario_id=sc.id)
        assert scenarios.list_scenarios(session=s, project_key="FRAUD") == []


def test_scheduled_requests_from_two_workers_at_the_same_moment_make_one_run(version_id):
    sc = _create([{"kind": "sleep", "params": {"seconds": 0}}], trigger_kind="interval", trigger_value=60)
    first = runner.request_scheduled_run(scenario_id=sc.id, worker_id="w1:1:a")
    second = runner.request_scheduled_run(scenario_id=sc.id, worker_id="w2:2:b")
    assert first is not None and second is None
    _run(first)
    assert runner.request_scheduled_run(scenario_id=sc.id, worker_id="w2:2:b") is None  # same firing
    with session_scope() as s:
        assert scenarios.get_scenario(session=s, scenario_id=sc.id).next_run_at > datetime(2026, 1, 1)


def test_files_dropped_for_a_model_are_ingested_evaluated_and_checked_in_one_run(backend, tmp_path, monkeypatch):
    from tests.support import evaluation_world as cards

    cards.build()
    with session_scope() as s:
        users.create_user(session=s, actor=ADMINISTRATOR, username="maya", name="Maya Engineer", email="maya@bank.example",
                          roles=["ml_engineer"])
        checks.define_check(session=s, actor=MAYA, project_key="CARDS", model="fraud", name="card age drift",
                            kind="field_drift", field="card_age_days", audience_roles=["ml_engineer"])
        sc = scenarios.create_scenario(session=s, actor=MAYA, project_key="CARDS", model="fraud", name="daily",
                                       steps=[{"kind": "ingest", "params": {"id_col": "tx"}},
                                              {"kind": "evaluate", "params": {"every": "1D"}}, {"kind": "checks"}])
    drop = tmp_path / "home" / "drop" / "fraud"
    drop.mkdir(parents=True)
    calm, wave = cards.traffic(400, seed=1), cards.traffic(400, seed=3, new_cards=0.6, start=cards.DAY0.replace(day=5))
    calm.to_csv(drop / "day1.csv", index=False)
    wave.drop(columns=["is_fraud"]).to_csv(drop / "day2.csv", index=False)  # labels of day 2 come later
    run = _request(sc.id, actor=MAYA)
    assert _run(run.id) == "succeeded"
    done = _get(run.id)
    assert sorted(p.name for p in (drop / "done").iterdir()) == ["day1.csv", "day2.csv"] and not list(drop.glob("*.csv"))
    assert "day1.csv: 400 predictions, 400 labels" in done.steps[0].log
    assert "2 new or changed window(s) evaluated" in done.steps[1].log
    with session_scope() as s:
        (hist,) = checks.project_histories(session=s, project_key="CARDS")
    assert hist.icons == "✅❌"  # the wave of new cards drifts card_age_days on day 2
