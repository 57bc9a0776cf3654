"""The story: the first week the fraud model failed is explained by the wave of new cards."""

from __future__ import annotations

from sqlmodel import select

from core import validation
from core.access import Actor
from core.db import session_scope
from core.entities import Alert, CheckResult, Evaluation, SliceFinding
from core.monitoring import slice_findings

MAYA = Actor(username="maya", roles=("ml_engineer",))


def test_the_first_failed_week_is_explained_by_young_cards(demo_home):
    with session_scope() as s:
        first = s.exec(select(Evaluation).join(SliceFinding, SliceFinding.evaluation_id == Evaluation.id)
                       .order_by(Evaluation.window_start)).first()
        found = slice_findings.explain(session=s, actor=MAYA, evaluation_id=first.id, loss="missed")
        alerts = s.exec(select(Alert).join(CheckResult, Alert.check_result_id == CheckResult.id)
                        .where(CheckResult.evaluation_id == first.id)).all()
    assert found.stored and found.status == "found"
    top = found.top
    young = [c for c in top["conditions"] if c["field"] == "card_age_days"]
    assert young and young[0]["op"] == "<" and young[0]["value"] <= 180
    assert top["grew"] and top["inside"] < top["outside"] and top["loss_share"] > 0.3
    recall = next(a for a in alerts if a.title.startswith("recall failed"))
    # the young cards of the wave, on the larger baskets they bring
    assert "card_age_days <" in recall.message.split("Top segment: ", 1)[1].split(" — ", 1)[0]
    assert recall.link.endswith(f"evaluation={first.id}&slice=missed:1")


def test_v3_repairs_the_new_card_segment_before_it_is_deployed(demo_home):
    with session_scope() as s:
        lab = validation.open_lab(session=s, actor=MAYA, model="fraud-detector", version=3)
    verdict = validation.champion_challenger(lab)
    assert verdict.champion == 2 and verdict.segments
    young = [g for g in verdict.segments if "card_age_days <" in g.segment]
    assert young and all(g.outcome == "repaired" for g in young)
    assert all(g.challenger >= g.champion for g in young)
    assert not [g for g in verdict.segments if g.outcome == "worse"]  # and breaks no other segment


def test_the_model_documentation_carries_the_segment_table(demo_home):
    from core import documentation
    from core.documentation import outline, render

    doc = documentation.gather(actor=Actor(username="rhea", roles=("risk_manager",)), model="fraud-detector",
                               version=3)
    text = render.markdown(outline.build(doc))
    assert "segment (where the champion lost most)" in text
    row = next(line for line in text.splitlines() if "card_age_days \\< " in line and "repaired" in line)
    assert row.startswith("|")
