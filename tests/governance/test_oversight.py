"""The Governance page's read model: what each person is offered, with the reason when not, read from core."""

from __future__ import annotations

from core import governance
from core.db import session_scope
from core.governance import oversight
from tests.support.governed import MODEL, PROJECT, actor, build


def page(username: str) -> oversight.GovernancePage:
    with session_scope() as s:
        return oversight.governance_page(session=s, actor=actor(username), key=PROJECT)


def test_the_page_says_which_versions_may_be_sent_to_review_and_why_not_the_others(backend, tmp_path):
    build(tmp_path)
    with session_scope() as s:
        governance.request_review(session=s, actor=actor("maya"), model=MODEL, version=3, comment="retrained")
    maya = page("maya")
    assert maya.can_request
    assert [v.number for v in maya.project.requestable] == [2, 1]
    v3 = next(v for v in maya.project.versions if v.number == 3)
    assert not v3.can_request and "already under review" in v3.can_request.reason
    bianca = page("bianca")
    assert not bianca.can_request and "bianca may not request a review" in bianca.can_request.reason
    assert bianca.project.requestable == ()


def test_each_open_review_on_the_page_is_read_for_the_person_viewing_it(backend, tmp_path):
    build(tmp_path)
    with session_scope() as s:
        governance.request_review(session=s, actor=actor("maya"), model=MODEL, version=3, comment="retrained")
    for_omar = page("omar").project.under_review[0].review
    for_maya = page("maya").project.under_review[0].review
    for_rhea = page("rhea").project.under_review[0].review
    assert for_omar.can_give_feedback and "it_ops" in for_omar.signable_roles
    assert not for_maya.can_give_feedback and "maya holds none of the roles" in \
        for_maya.can_give_feedback.reason
    assert for_maya.can_abandon and not for_maya.can_approve
    assert not for_rhea.can_approve and "missing feedback" in for_rhea.can_approve.reason and for_rhea.can_reject
    assert [q.action for q in page("omar").queue] == ["feedback"]


def test_decided_reviews_and_blueprint_management_come_with_the_page(backend, tmp_path):
    build(tmp_path)
    with session_scope() as s:
        review = governance.request_review(session=s, actor=actor("maya"), model=MODEL, version=3, comment="x")
        governance.abandon(session=s, actor=actor("maya"), review_id=review.id)
    rhea = page("rhea")
    assert [(r.id, r.state) for r in rhea.project.decided] == [(review.id, "ABANDONED")]
    assert rhea.project.under_review == ()
    assert rhea.can_manage_blueprints and not page("maya").can_manage_blueprints
