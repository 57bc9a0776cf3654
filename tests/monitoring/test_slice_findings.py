"""Why did it drop: a failed check stores the segments behind it, the alert carries the first one in each
audience's words, a segment can be watched by a check, and the command line lists them."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import func
from sqlmodel import select

from core.access import Actor
from core.alerting import alerts
from core.cli import main
from core.db import session_scope
from core.entities import Check, Evaluation, SliceFinding
from core.errors import Forbidden, InvalidInput
from core.monitoring import checks, slice_findings
from tests.support import slice_world as world

BIANCA = Actor(username="bianca", roles=("business",))
OMAR = Actor(username="omar", roles=("it_ops",))


def _weeks() -> list[int]:
    with session_scope() as s:
        return list(s.exec(select(Evaluation.id).order_by(Evaluation.window_start)).all())


@pytest.fixture
def monitored(backend):
    """Two evaluated weeks: an ordinary one, then one where young cards used online slip through; a recall
    check for the engineers and a fraud-missed check in business words."""
    world.build_monitored()
    with session_scope() as s:
        checks.define_check(session=s, actor=world.MAYA, project_key=world.PROJECT, name="recall", kind="metric",
                            model=world.MODEL, metric="recall", threshold=0.87, audience_roles=["ml_engineer"])
        checks.define_check(session=s, actor=world.MAYA, project_key=world.PROJECT, name="fraud missed",
                            kind="business", model=world.MODEL, metric="fraud_missed_amount", threshold=7000.0,
                            audience_roles=["business"],
                            business_wording="Fraud missed in the week to {window_end}: {value:,.0f} EUR.")
    return _weeks()


def _run_and_alert(evaluation_id: int) -> list[alerts.AlertRead]:
    with session_scope() as s:
        results = checks.run_checks(session=s, actor=world.MAYA, evaluation_id=evaluation_id)
        return alerts.fan_out_many(session=s, check_result_ids=[r.id for r in results
                                                                 if r.status in ("warning", "error")])


def test_a_failed_check_stores_its_segments_and_the_alert_tells_each_audience(monitored):
    ordinary, failed = monitored
    assert _run_and_alert(ordinary) == []
    sent = {a.username: a for a in _run_and_alert(failed)}
    with session_scope() as s:
        stored = {f.loss: f for f in s.exec(select(SliceFinding).where(SliceFinding.evaluation_id == failed)).all()}
        assert s.exec(select(func.count()).select_from(SliceFinding)
                      .where(SliceFinding.evaluation_id == ordinary)).one() == 0
    assert set(stored) == {"missed", "fraud_missed_amount"} and stored["missed"].status == "found"
    top = stored["missed"].segments[0]
    assert {c["field"] for c in top["conditions"]} == {"card_age_days", "channel"}

    business = sent["bianca"].message
    assert business.startswith("Fraud missed in the week to 15 Jun 2026: 9,026 EUR. ")
    assert "% of the fraud missed amount this week came from " in business
    assert "channel online (" in business and "% of the week's volume)." in business
    assert sent["bianca"].link == "/project?project=CARDS"

    engineering = sent["maya"].message
    assert engineering.startswith("recall failed (error): recall 0.")
    assert "Top segment: card_age_days <" in engineering and "AND channel = online" in engineering
    assert "recall 0." in engineering.split("Top segment:")[1] and "inside vs 0.8" in engineering
    assert sent["maya"].link == f"/evaluation_store?model=cards&evaluation={failed}&slice=missed:1"


def test_watch_this_segment_adds_a_check_that_measures_the_segment_only(monitored):
    ordinary, failed = monitored
    with session_scope() as s:
        watched = checks.watch_segment(session=s, actor=world.MAYA, evaluation_id=failed, loss="missed", rank=1)
    assert watched.kind == "metric" and watched.metric == "recall" and watched.condition == "gte"
    assert 0.85 < watched.threshold < 0.95  # recall outside the segment in the failed week
    assert watched.rule.startswith("recall ≥ 0.") and "where card_age_days <" in watched.rule
    with session_scope() as s:
        results = {r.check_name: r for r in checks.run_checks(session=s, actor=world.MAYA, evaluation_id=failed)}
        before = {r.check_name: r for r in checks.run_checks(session=s, actor=world.MAYA, evaluation_id=ordinary)}
    mine = results[watched.name]
    assert mine.status == "error" and mine.value < 0.5
    assert "on the segment" in mine.message and "labelled rows" in mine.message
    assert before[watched.name].status == "pass"  # the same segment was fine in the ordinary week


def test_segment_checks_refuse_bad_conditions_and_write_nothing(monitored):
    bad = [([{"field": "colour", "op": "=", "value": "red"}], "names no feature of cards"),
           ([{"field": "amount", "op": "~", "value": 3}], "has operator '~'"),
           ([{"field": "amount", "op": "<", "value": "lots"}], "needs a finite number"),
           ([{"field": "amount", "op": "<", "value": 1}] * 4, "at most 3 conditions")]
    for conditions, message in bad:
        with pytest.raises(InvalidInput, match=message), session_scope() as s:
            checks.define_check(session=s, actor=world.MAYA, project_key=world.PROJECT, name="bad", kind="metric",
                                model=world.MODEL, metric="recall", threshold=0.5, audience_roles=["ml_engineer"],
                                slice_conditions=conditions)
    with pytest.raises(InvalidInput, match="measures a metric or a business metric"), session_scope() as s:
        checks.define_check(session=s, actor=world.MAYA, project_key=world.PROJECT, name="bad", kind="drift_share",
                            model=world.MODEL, threshold=0.5, audience_roles=["ml_engineer"],
                            slice_conditions=[{"field": "amount", "op": "<", "value": 1}])
    with session_scope() as s:
        assert s.exec(select(Check).where(Check.name == "bad")).first() is None


def test_who_may_see_and_watch_segments(monitored):
    _ordinary, failed = monitored
    with session_scope() as s:
        seen = slice_findings.explain(session=s, actor=BIANCA, evaluation_id=failed, loss="missed")
        assert seen.status == "found" and not seen.stored  # computed for her, not stored: she may not write
        with pytest.raises(Forbidden):
            slice_findings.explain(session=s, actor=OMAR, evaluation_id=failed)
        with pytest.raises(Forbidden):
            checks.watch_segment(session=s, actor=BIANCA, evaluation_id=failed, loss="missed", rank=1)
        with pytest.raises(InvalidInput, match="cards has no loss 'churn'"):
            slice_findings.explain(session=s, actor=world.MAYA, evaluation_id=failed, loss="churn")
        assert s.exec(select(func.count()).select_from(SliceFinding)).one() == 0


def test_a_window_without_labels_answers_not_enough_data(backend):
    world.build_monitored(labelled=False, weeks=1)
    with session_scope() as s:
        found = slice_findings.compute(session=s, evaluation_id=_weeks()[0], loss="missed")
    assert found.status == "not_enough_data" and found.reason.startswith("no labels in this window yet")


def test_the_trend_of_a_segment_inside_and_outside(monitored):
    _ordinary, failed = monitored
    with session_scope() as s:
        top = slice_findings.explain(session=s, actor=world.MAYA, evaluation_id=failed, loss="missed").top
    history = slice_findings.trend(actor=world.MAYA, evaluation_id=failed, conditions=top["conditions"],
                                   loss="missed")
    inside = history[history.series == "inside"].value.tolist()
    outside = history[history.series == "outside"].value.tolist()
    assert len(inside) == len(outside) == 2
    assert inside[0] > 0.8 and inside[1] < 0.5 and min(outside) > 0.8  # the segment broke in the second week


def _cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def test_the_slices_command(monitored, monkeypatch):
    ordinary, failed = monitored
    monkeypatch.setenv("WATCHTOWER_DEMO", "1")  # the personas act on the command line without a password
    code, out, _ = _cli("slices", world.MODEL, "--loss", "missed", "--format", "json", "--as", "maya")
    assert code == 0
    data = json.loads(out)
    assert data["evaluation_id"] == failed and data["status"] == "found"
    assert {c["field"] for c in data["segments"][0]["conditions"]} == {"card_age_days", "channel"}
    code, out, _ = _cli("slices", world.MODEL, "--evaluation", failed, "--loss", "missed", "--as", "maya")
    assert code == 0 and out.splitlines()[0].startswith(f"cards v1, window 2026-06-08 → 2026-06-15 (evaluation {failed})")
    assert " 1  " in out and "channel = online" in out and "region = north 9.8% → 40.2% (no harm)" in out 
    code, _, err = _cli("slices", "nope", "--evaluation", ordinary, "--as", "maya")
    assert code == 1 and err.strip() == f"error: evaluation {ordinary} is not a window of nope"
    code, _, err = _cli("slices", world.MODEL, "--loss", "churn", "--as", "maya")
    assert code == 1 and "cards has no loss 'churn'" in err
    code, _, err = _cli("slices", world.MODEL, "--as", "omar")
    assert code == 1 and "omar may not evaluation view" in err
    code, out, _ = _cli("slices", world.MODEL, "--as", "bianca", "--format", "json")
    assert code == 0 and json.loads(out)["loss"] == "fraud_missed_amount"
