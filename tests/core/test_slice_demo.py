"""The story: the first week the fraud model failed is explained by the wave of new cards."""

from __future__ import annotations

from sqlmodel import select

from core import slice_findings
from core.access import Actor
from core.db import session_scope
from core.entities import Alert, CheckResult, Evaluation, SliceFinding

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
    assert "Top segment: card_age_days <" in recall.message
    assert recall.link.endswith(f"evaluation={first.id}&slice=missed:1")
