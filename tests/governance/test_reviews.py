"""Reviews and sign-offs: the whole state machine, and every transition a user must not be able to make."""

from __future__ import annotations

import threading

import pytest
from sqlmodel import select

from core import audit, governance
from core.alerting import channels
from core.db import session_scope
from core.entities import Alert, AlertDelivery, Channel, SignOff, User
from core.errors import Conflict, Forbidden, InvalidInput
from core.governance import deployer
from core.projects import blueprints, projects
from tests.support.governed import MODEL, PROJECT, actor, build, running
from tests.support.people import ADMINISTRATOR


def inbox(username: str) -> list[str]:
    with session_scope() as s:
        user = s.exec(select(User).where(User.username == username)).one()
        return [a.title for a in s.exec(select(Alert).where(Alert.user_id == user.id).order_by(Alert.id)).all()]


def mailed(channel: str) -> list[str]:
    """Who has a delivery pending on a channel."""
    with session_scope() as s:
        rows = s.exec(select(User.username).join(Alert, Alert.user_id == User.id)
                      .join(AlertDelivery, AlertDelivery.alert_id == Alert.id)
                      .join(Channel, AlertDelivery.channel_id == Channel.id)
                      .where(Channel.name == channel).order_by(User.username)).all()
    return list(rows)


def request(version: int = 3, who: str = "maya") -> governance.ReviewRead:
    with session_scope() as s:
        return governance.request_review(session=s, actor=actor(who), model=MODEL, version=version,
                                         comment="retrained on recent data")


def feedback(review_id: int, who: str, role: str, verdict: str = "APPROVED", comment: str = "") -> governance.ReviewRead:
    with session_scope() as s:
        return governance.give_feedback(session=s, actor=actor(who), review_id=review_id, role=role, verdict=verdict,
                                        comment=comment)


def all_feedback(review_id: int) -> governance.ReviewRead:
    feedback(review_id, "omar", "it_ops", comment="runs within latency budget")
    feedback(review_id, "rhea", "risk_manager", "MINOR_ISSUE", "document the new feature")
    return feedback(review_id, "bianca", "business", comment="fewer missed frauds")


def state(review_id: int) -> str:
    with session_scope() as s:
        return governance.get_review(session=s, review_id=review_id).state


def test_high_risk_review_runs_from_request_to_production(backend, tmp_path):
    build(tmp_path, risk="high")
    with session_scope() as s:
        channels.define_channel(session=s, actor=actor("admin"), name="risk-mail", kind="email",
                                config={"host": "127.0.0.1", "sender": "watchtower@bank.test",
                                        "roles": ["risk_manager"]})
    with session_scope() as s:
        assert governance.find_review(session=s, model=MODEL, version=3) is None
        assert governance.review_state(s, registry_version_id(s, 3)) == "NOT_STARTED"

    review = request()
    assert review.state == "WAITING_FOR_FEEDBACK"
    assert review.required_roles == ("it_ops", "risk_manager", "business")
    assert review.final_approver_role == "risk_manager"
    for reviewer in ("omar", "rhea", "ruth", "bianca"):
        assert "Review requested: card-scorer v3" in inbox(reviewer), reviewer
    assert inbox("maya") == [], "the requester is not asked to review their own request"
    assert mailed("risk-mail") == ["raj", "rhea", "ruth"], "reviewers are reached through the alert channels too"
    with session_scope() as s:
        assert projects.get_project(session=s, key=PROJECT).stage == "Review"

    feedback(review.id, "omar", "it_ops", comment="runs within latency budget")
    feedback(review.id, "rhea", "risk_manager", "MINOR_ISSUE", "document the new feature")
    assert state(review.id) == "WAITING_FOR_FEEDBACK"
    done = feedback(review.id, "bianca", "business", comment="fewer missed frauds")
    assert done.state == "WAITING_FOR_APPROVAL"
    assert {(f.role, f.reviewer, f.verdict) for f in done.signoffs} == {
        ("it_ops", "omar", "APPROVED"), ("risk_manager", "rhea", "MINOR_ISSUE"), ("business", "bianca", "APPROVED")}
    assert "Ready for your decision: card-scorer v3" in inbox("ruth")

    with session_scope() as s:
        approved = governance.approve(session=s, actor=actor("ruth"), review_id=review.id, comment="go")
    assert approved.state == "APPROVED" and approved.decided_by == "ruth"
    assert approved.outcome == "deployed to production automatically"
    assert running("production") == 3
    assert "Approved: card-scorer v3" in inbox("maya")
    with session_scope() as s:
        project = projects.get_project(session=s, key=PROJECT)
        statuses = {v.number: v.status for v in project.models[0].versions}
        actions = [e.action for e in audit.events(session=s, project_id=project.id) if e.action != "alert.notify"]
        assert audit.verify(session=s).ok
    assert project.stage == "Production"
    assert statuses == {1: "archived", 2: "candidate", 3: "active"}
    assert actions[:6] == ["deploy", "review.approve", "review.feedback", "review.feedback", "review.feedback",
                           "review.request"]


def registry_version_id(session, number: int) -> int:
    from core.models.registry import get_version

    return get_version(session=session, model=MODEL, version=number).id


def test_only_a_holder_of_the_role_gives_that_roles_feedback(backend, tmp_path):
    build(tmp_path)
    review = request()
    refused = [
        ("bianca", "it_ops", "APPROVED", "", Forbidden, "does not hold the it_ops role"),
        ("omar", "business", "APPROVED", "", Forbidden, "does not hold the business role"),
        ("admin", "risk_manager", "APPROVED", "", Forbidden, "does not hold the risk_manager role"),
        ("dario", "data_scientist", "APPROVED", "", InvalidInput, "does not ask for data_scientist feedback"),
        ("omar", "it_ops", "LOOKS_FINE", "", InvalidInput, "verdict 'LOOKS_FINE' is not one of"),
        ("omar", "it_ops", "MAJOR_ISSUE", " ", InvalidInput, "needs a comment"),
        ("maya", "it_ops", "APPROVED", "", Forbidden, "does not hold the it_ops role"),
    ]
    for who, role, verdict, comment, error, message in refused:
        with pytest.raises(error, match=message):
            feedback(review.id, who, role, verdict, comment)
    with session_scope() as s:
        assert s.exec(select(SignOff)).all() == []
    assert state(review.id) == "WAITING_FOR_FEEDBACK"


def test_whoever_requested_a_review_can_never_approve_or_sign_it(backend, tmp_path):
    build(tmp_path)
    review = request(who="raj")  # raj is an ML engineer and a risk manager
    with pytest.raises(Forbidden, match="its feedback must come from someone else"):
        feedback(review.id, "raj", "risk_manager")
    feedback(review.id, "omar", "it_ops")
    feedback(review.id, "rhea", "risk_manager")
    feedback(review.id, "bianca", "business")
    with session_scope() as s:
        assert [i.action for i in governance.review_queue(session=s, actor=actor("raj"))] == []
        with pytest.raises(Forbidden, match="raj requested review .* and so may not approve it"):
            governance.approve(session=s, actor=actor("raj"), review_id=review.id)
    with session_scope() as s:
        with pytest.raises(Forbidden, match="may not reject it"):
            governance.reject(session=s, actor=actor("raj"), review_id=review.id, comment="no")
    assert state(review.id) == "WAITING_FOR_APPROVAL"
    with session_scope() as s:
        assert governance.approve(session=s, actor=actor("rhea"), review_id=review.id).state == "APPROVED"


def test_only_the_final_approver_role_decides_and_only_when_the_feedback_is_in(backend, tmp_path):
    build(tmp_path)
    review = request()
    feedback(review.id, "omar", "it_ops")
    with session_scope() as s:
        with pytest.raises(Conflict, match="WAITING_FOR_FEEDBACK and cannot be approved; missing feedback from "
                                           "risk_manager, business"):
            governance.approve(session=s, actor=actor("rhea"), review_id=review.id)
    all_feedback(review.id)
    for who in ("omar", "bianca", "maya", "admin"):
        with session_scope() as s:
            with pytest.raises(Forbidden, match="only a risk_manager may approve"):
                governance.approve(session=s, actor=actor(who), review_id=review.id)
    assert state(review.id) == "WAITING_FOR_APPROVAL"


def test_a_rejected_review_is_final_and_blocks_the_version(backend, tmp_path):
    build(tmp_path)
    review = request()
    all_feedback(review.id)
    with session_scope() as s:
        with pytest.raises(InvalidInput, match="needs a comment"):
            governance.reject(session=s, actor=actor("rhea"), review_id=review.id, comment="")
    with session_scope() as s:
        rejected = governance.reject(session=s, actor=actor("rhea"), review_id=review.id,
                                     comment="recall on small merchants fell")
    assert rejected.state == "REJECTED"
    assert "Rejected: card-scorer v3" in inbox("maya")
    with session_scope() as s:
        with pytest.raises(Conflict, match="is REJECTED and cannot be approved"):
            governance.approve(session=s, actor=actor("ruth"), review_id=review.id)
    with pytest.raises(Conflict, match="feedback is closed"):
        feedback(review.id, "omar", "it_ops")
    with session_scope() as s:
        with pytest.raises(Conflict, match="cannot be abandoned"):
            governance.abandon(session=s, actor=actor("maya"), review_id=review.id)
    with pytest.raises(Conflict, match="was rejected by rhea; a new version needs its own review"):
        request()
    with session_scope() as s:
        with pytest.raises(Forbidden, match="was rejected by rhea"):
            deployer.deploy(session=s, actor=actor("maya"), model=MODEL, version=3, environment="production")
    assert running("production") == 1
    assert state(review.id) == "REJECTED"


def test_a_new_version_needs_its_own_review(backend, tmp_path):
    build(tmp_path)
    review = request(version=3)
    all_feedback(review.id)
    with session_scope() as s:
        governance.approve(session=s, actor=actor("rhea"), review_id=review.id)
    with pytest.raises(Conflict, match="already approved"):
        request(version=3)
    with session_scope() as s:
        assert governance.review_state(s, registry_version_id(s, 2)) == "NOT_STARTED"
        with pytest.raises(Forbidden, match="card-scorer v2 has no review"):
            deployer.deploy(session=s, actor=actor("maya"), model=MODEL, version=2, environment="production")
    second = request(version=2)
    assert second.id != review.id and second.state == "WAITING_FOR_FEEDBACK" and second.signoffs == ()


def test_an_open_review_is_abandoned_by_its_requester_and_can_be_asked_again(backend, tmp_path):
    build(tmp_path)
    review = request()
    with pytest.raises(Conflict, match="already under review"):
        request()
    with session_scope() as s:
        with pytest.raises(Forbidden, match="only maya, a risk_manager or an admin may abandon"):
            governance.abandon(session=s, actor=actor("bianca"), review_id=review.id)
    with session_scope() as s:
        assert governance.abandon(session=s, actor=actor("maya"), review_id=review.id,
                                  comment="wrong data window").state == "ABANDONED"
    with session_scope() as s:
        with pytest.raises(Conflict, match="is ABANDONED and cannot be approved"):
            governance.approve(session=s, actor=actor("rhea"), review_id=review.id)
    with pytest.raises(Conflict, match="feedback is closed"):
        feedback(review.id, "omar", "it_ops")
    again = request()
    assert again.state == "WAITING_FOR_FEEDBACK" and again.id != review.id


def test_a_major_issue_is_approved_over_only_with_a_reason(backend, tmp_path):
    build(tmp_path)
    review = request()
    feedback(review.id, "omar", "it_ops", "MAJOR_ISSUE", "p99 latency doubles")
    feedback(review.id, "rhea", "risk_manager")
    feedback(review.id, "bianca", "business")
    with session_scope() as s:
        with pytest.raises(InvalidInput, match=r"approving over a major issue \(it_ops\) needs a comment"):
            governance.approve(session=s, actor=actor("ruth"), review_id=review.id)
    feedback(review.id, "omar", "it_ops", "MINOR_ISSUE", "p99 fine after warm-up")  # a revised verdict
    with session_scope() as s:
        assert governance.approve(session=s, actor=actor("ruth"), review_id=review.id).state == "APPROVED"
        revised = [e for e in audit.events(session=s) if e.action == "review.feedback_revised"]
    assert revised[0].details["verdict"] == "MINOR_ISSUE" and revised[0].actor == "omar"


def test_medium_risk_approval_makes_the_version_deployable_without_deploying_it(backend, tmp_path):
    build(tmp_path, risk="medium")
    review = request()
    assert review.required_roles == ("data_scientist", "business")
    feedback(review.id, "dario", "data_scientist")
    feedback(review.id, "bianca", "business")
    with session_scope() as s:
        approved = governance.approve(session=s, actor=actor("rhea"), review_id=review.id)
    assert approved.outcome == "now deployable to production"
    assert running("production") == 1
    with session_scope() as s:
        deployer.deploy(session=s, actor=actor("maya"), model=MODEL, version=3, environment="production")
    assert running("production") == 3


def test_low_risk_sign_offs_decide_without_a_final_approver(backend, tmp_path):
    build(tmp_path, risk="low")
    review = request(version=3)
    assert review.required_roles == ("business",) and review.final_approver_role == ""
    settled = feedback(review.id, "bianca", "business", comment="fine")
    assert settled.state == "APPROVED" and settled.outcome == "deployed to production automatically"
    assert running("production") == 3
    with session_scope() as s:
        with pytest.raises(Conflict, match="has no final approver"):
            governance.approve(session=s, actor=actor("rhea"), review_id=review.id)
    rejected = feedback(request(version=2).id, "bianca", "business", "MAJOR_ISSUE", "too many false alarms")
    assert rejected.state == "REJECTED"
    assert rejected.decision_comment == "major issue raised by bianca (business): too many false alarms"


def test_each_reviewer_sees_the_reviews_waiting_for_them(backend, tmp_path):
    build(tmp_path)
    review = request()
    with session_scope() as s:
        queue = {who: [(i.action, i.role) for i in governance.review_queue(session=s, actor=actor(who))]
                 for who in ("omar", "rhea", "bianca", "maya")}
    assert queue == {"omar": [("feedback", "it_ops")], "rhea": [("feedback", "risk_manager")],
                     "bianca": [("feedback", "business")], "maya": []}
    all_feedback(review.id)
    with session_scope() as s:
        assert [(i.action, i.role) for i in governance.review_queue(session=s, actor=actor("rhea"))] == [
            ("approval", "risk_manager")]
        assert governance.review_queue(session=s, actor=actor("omar")) == []
        assert [r.id for r in governance.pending_reviews(session=s)] == [review.id]


def test_the_last_two_sign_offs_given_at_the_same_moment_still_complete_the_feedback(backend, tmp_path):
    """Sign-offs lock their review, so whichever lands last sees the other and moves the review on."""
    build(tmp_path)
    review = request()
    feedback(review.id, "omar", "it_ops")
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def sign(who: str, role: str) -> None:
        barrier.wait()
        try:
            feedback(review.id, who, role)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=sign, args=args) for args in (("rhea", "risk_manager"), ("bianca", "business"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert state(review.id) == "WAITING_FOR_APPROVAL"


def test_blueprints_are_managed_by_risk_managers_and_admins(backend, tmp_path):
    build(tmp_path, risk="high")
    stages = [{"name": "Exploration"}, {"name": "Review", "signoff_roles": ["it_ops"],
                                        "final_approver": "risk_manager", "auto_deploy": False},
              {"name": "Production"}, {"name": "Retired"}]
    with session_scope() as s:
        with pytest.raises(Forbidden):
            blueprints.save_blueprint(session=s, actor=actor("maya"), name="Fast lane", risk_levels=["low"],
                                      stages=stages)
        with pytest.raises(InvalidInput, match="unknown role"):
            blueprints.save_blueprint(session=s, actor=actor("rhea"), name="Fast lane", risk_levels=["low"],
                                      stages=[{"name": "Review", "signoff_roles": ["wizard"]}])
        with pytest.raises(Conflict, match=r"CARDS \(Production\) stand in a stage this change removes"):
            blueprints.save_blueprint(session=s, actor=actor("rhea"), name="High risk", risk_levels=["high"],
                                      stages=[{"name": "Review", "final_approver": "risk_manager"}])
    with session_scope() as s:
        made = blueprints.save_blueprint(session=s, actor=actor("rhea"), name="Fast lane", risk_levels=["high"],
                                         stages=stages, description="IT sign-off only")
        blueprints.assign_blueprint(session=s, actor=actor("rhea"), project_key=PROJECT, blueprint="Fast lane")
    assert made.stage("Review").signoff_roles == ("it_ops",)
    review = request()
    assert review.required_roles == ("it_ops",)
    with session_scope() as s:
        assert [e.action for e in audit.events(session=s, entity_type="blueprint")][:1] == ["blueprint.create"]


def test_the_risk_manager_watches_every_project_and_where_each_stands_in_its_blueprint(backend, tmp_path):
    from core.governance import oversight

    build(tmp_path)
    with session_scope() as s:
        projects.create_project(session=s, actor=actor("admin"), key="CHURN", name="Churn", risk_level="low")
    review = request()
    feedback(review.id, "omar", "it_ops", comment="ok")
    with session_scope() as s:
        rows = {r.key: r for r in oversight.governance_portfolio(session=s, actor=actor("rhea"))}
        view = oversight.project_governance(session=s, actor=actor("rhea"), key=PROJECT)
    cards = rows[PROJECT]
    assert (cards.blueprint, cards.stage, cards.risk_level, cards.production, cards.pending_reviews) == (
        "High risk", "Review", "high", "card-scorer v1", 1)
    assert cards.waiting_for == "card-scorer v3: feedback from risk_manager, business"
    assert (rows["CHURN"].blueprint, rows["CHURN"].stage, rows["CHURN"].pending_reviews) == ("Low risk", "Exploration", 0)
    assert [(st.name, st.current, st.passed) for st in view.stages] == [
        ("Exploration", False, True), ("Qualification", False, True), ("Review", True, False),
        ("Production", False, False), ("Retired", False, False)]
    assert view.stages[2].signoff_roles == ("it_ops", "risk_manager", "business") and view.stages[2].auto_deploy
    assert [(v.number, v.review_state, v.environments) for v in view.versions] == [
        (3, "WAITING_FOR_FEEDBACK", ()), (2, "NOT_STARTED", ()), (1, "NOT_STARTED", ("production",))]
    assert [v.number for v in view.under_review] == [3]
    assert view.under_review[0].review.signoffs[0].comment == "ok"
    assert (view.sponsor, view.initiative) == ("Head of payments", "Payments integrity")


# --- separation of duties ------------------------------------------------------------------------

def person(username: str, *roles: str) -> None:
    """One more user of the bank, e.g. someone holding several roles."""
    from core.identity import users

    with session_scope() as s:
        users.create_user(session=s, actor=ADMINISTRATOR, username=username, name=username.title(), email=f"{username}@bank.test",
                          roles=list(roles))


def as_person(username: str):  # noqa: ANN201 - an Actor
    from core.identity import users

    with session_scope() as s:
        return users.get_user(session=s, username=username).actor


def test_a_person_holding_every_role_signs_one_of_them_and_cannot_carry_the_review_alone(backend, tmp_path):
    build(tmp_path)
    person("ivan", "it_ops", "risk_manager", "business")
    review = request()
    ivan = as_person("ivan")
    with session_scope() as s:
        fresh = governance.get_review(session=s, review_id=review.id, actor=ivan)
    assert fresh.signable_roles == ("it_ops", "risk_manager", "business"), "his first sign-off chooses the role"
    with session_scope() as s:
        governance.give_feedback(session=s, actor=ivan, review_id=review.id, role="it_ops", verdict="APPROVED")
    for role in ("risk_manager", "business"):
        with session_scope() as s:
            with pytest.raises(Forbidden, match=rf"ivan already signed review #{review.id} of card-scorer v3 as "
                                                rf"it_ops; one person gives one role's feedback per review"):
                governance.give_feedback(session=s, actor=ivan, review_id=review.id, role=role, verdict="APPROVED")
    with session_scope() as s:
        assert [(f.role, f.reviewer) for f in s.exec(select(SignOff)).all()] == [("it_ops", "ivan")]
        read = governance.get_review(session=s, review_id=review.id, actor=ivan)
        queue = governance.review_queue(session=s, actor=ivan)
    assert read.signed_as == "it_ops" and read.signable_roles == ("it_ops",)
    assert not read.sign_as("business") and "already signed" in read.sign_as("business").reason
    assert read.sign_refusals and all("as it_ops" in r for r in read.sign_refusals)
    assert queue == [], "nothing more waits for him"
    with pytest.raises(Conflict, match="the it_ops feedback on review .* was given by ivan; only they may revise it"):
        feedback(review.id, "omar", "it_ops")
    assert state(review.id) == "WAITING_FOR_FEEDBACK"
    with session_scope() as s:
        refused = [e for e in audit.events(session=s) if e.action.startswith("review.feedback")]
    assert [e.actor for e in refused] == ["ivan"], "a refused sign-off leaves no trace but the refusal"


def test_the_review_tells_each_person_what_they_may_do_and_why_not(backend, tmp_path):
    build(tmp_path)
    review = request(who="raj")  # raj is an ML engineer and a risk manager
    with session_scope() as s:
        for_raj = governance.get_review(session=s, review_id=review.id, actor=actor("raj"))
        for_bianca = governance.get_review(session=s, review_id=review.id, actor=actor("bianca"))
        for_maya = governance.get_review(session=s, review_id=review.id, actor=actor("maya"))
        request_v2 = governance.can_request(session=s, actor=actor("maya"), model=MODEL, version=2)
        request_v3 = governance.can_request(session=s, actor=actor("maya"), model=MODEL, version=3)
        request_bianca = governance.can_request(session=s, actor=actor("bianca"), model=MODEL, version=2)
    assert not for_raj.can_give_feedback and "its feedback must come from someone else" in \
        for_raj.can_give_feedback.reason
    assert not for_raj.can_reject and "raj requested review" in for_raj.can_reject.reason
    assert for_raj.can_abandon, "the requester may withdraw it"
    assert for_bianca.signable_roles == ("business",) and for_bianca.can_give_feedback
    assert not for_bianca.can_approve and "only a risk_manager may approve" in for_bianca.can_approve.reason
    assert not for_maya.can_give_feedback and "maya holds none of the roles" in for_maya.can_give_feedback.reason
    assert request_v2 and not request_v3 and "already under review" in request_v3.reason
    assert not request_bianca and "bianca may not request a review" in request_bianca.reason
    with session_scope() as s:
        for_rhea = governance.get_review(session=s, review_id=review.id, actor=actor("rhea"))
    assert not for_rhea.can_approve and "missing feedback from it_ops, risk_manager, business" in \
        for_rhea.can_approve.reason
    assert for_rhea.can_reject, "a risk manager may reject before the feedback is in"


def test_the_final_approval_by_a_signer_is_refused_where_the_blueprint_demands_distinct_people(backend, tmp_path):
    build(tmp_path, risk="medium")  # Medium risk: the final approver may have signed nothing
    person("nina", "data_scientist", "risk_manager")
    review = request()
    assert review.approver_distinct_from_signers
    with session_scope() as s:
        governance.give_feedback(session=s, actor=as_person("nina"), review_id=review.id, role="data_scientist",
                                 verdict="APPROVED")
    feedback(review.id, "bianca", "business")
    assert state(review.id) == "WAITING_FOR_APPROVAL"
    assert "Ready for your decision: card-scorer v3" not in inbox("nina"), "not asked to decide what she signed"
    assert "Ready for your decision: card-scorer v3" in inbox("rhea")
    with session_scope() as s:
        read = governance.get_review(session=s, review_id=review.id, actor=as_person("nina"))
        with pytest.raises(Forbidden, match=rf"nina signed review #{review.id} of card-scorer v3 as data_scientist; "
                                            r"its blueprint asks for a final approver who gave no feedback on it"):
            governance.approve(session=s, actor=as_person("nina"), review_id=review.id)
    assert not read.can_approve and "as data_scientist" in read.can_approve.reason
    assert state(review.id) == "WAITING_FOR_APPROVAL" and running("production") == 1
    with session_scope() as s:
        assert governance.review_queue(session=s, actor=as_person("nina")) == []
        assert governance.approve(session=s, actor=actor("rhea"), review_id=review.id).decided_by == "rhea"


def test_a_blueprint_demands_a_distinct_final_approver_only_with_a_final_approver(backend, tmp_path):
    build(tmp_path)
    stage = {"name": "Review", "signoff_roles": ["it_ops", "risk_manager"], "final_approver": "risk_manager",
             "approver_distinct_from_signers": True, "auto_deploy": True}
    with session_scope() as s:
        with pytest.raises(InvalidInput, match="asks for a final approver distinct from its signers but names no"):
            blueprints.save_blueprint(session=s, actor=actor("rhea"), name="Four eyes", risk_levels=["high"],
                                      stages=[{**stage, "final_approver": None}])
        made = blueprints.save_blueprint(session=s, actor=actor("rhea"), name="Four eyes", risk_levels=["high"],
                                         stages=[{"name": "Exploration"}, stage, {"name": "Production"},
                                                 {"name": "Retired"}])
        blueprints.assign_blueprint(session=s, actor=actor("rhea"), project_key=PROJECT, blueprint="Four eyes")
    assert made.stage("Review").approver_distinct_from_signers
    review = request()
    feedback(review.id, "omar", "it_ops")
    feedback(review.id, "rhea", "risk_manager")
    with session_scope() as s:
        with pytest.raises(Forbidden, match="rhea signed review .* as risk_manager"):
            governance.approve(session=s, actor=actor("rhea"), review_id=review.id)
    with session_scope() as s:
        approved = governance.approve(session=s, actor=actor("ruth"), review_id=review.id)
    assert approved.outcome == "deployed to production automatically" and running("production") == 3


def test_the_command_line_refuses_a_second_sign_off_under_another_role(backend, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from core.cli import main

    build(tmp_path)
    person("ivan", "it_ops", "risk_manager", "business")
    monkeypatch.setenv("WATCHTOWER_DEMO", "1")  # people act without a password
    cli = CliRunner()

    def run(*args: str):  # noqa: ANN202
        return cli.invoke(main, list(args), catch_exceptions=False)

    assert run("review", MODEL, "request", "--version", "3", "--as", "maya").exit_code == 0
    unsure = run("review", MODEL, "feedback", "--version", "3", "--as", "ivan", "--verdict", "APPROVED")
    assert unsure.exit_code == 1 and "say which role you give feedback as (--role it_ops|risk_manager|business)" \
        in unsure.output
    first = run("review", MODEL, "feedback", "--version", "3", "--as", "ivan", "--role", "it_ops",
                "--verdict", "APPROVED")
    assert first.exit_code == 0, first.output
    second = run("review", MODEL, "feedback", "--version", "3", "--as", "ivan", "--role", "risk_manager",
                 "--verdict", "APPROVED")
    assert second.exit_code == 1
    assert "ivan already signed review" in second.output and "as it_ops" in second.output
    self_sign = run("review", MODEL, "feedback", "--version", "3", "--as", "maya", "--verdict", "APPROVED")
    assert self_sign.exit_code == 1 and "maya holds none of the roles" in self_sign.output
    with session_scope() as s:
        assert [(f.role, f.reviewer) for f in s.exec(select(SignOff)).all()] == [("it_ops", "ivan")]
