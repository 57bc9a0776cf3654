"""The Governance and Deployer pages, driven through AppTest as the people who use them."""

from __future__ import annotations

from sqlmodel import select

from core import governance
from core.access import pages_for
from core.db import session_scope
from core.entities import Alert, User
from core.projects import projects
from tests.app.conftest import open_page, texts
from tests.support.governed import MODEL, PROJECT, actor, build, running
from tests.support.lake import stored_predictions
from tests.support.live_api import live_api
from tests.support.people import ADMINISTRATOR

GOVERNANCE, DEPLOYER = "pages/governance.py", "pages/deployer.py"


def requested_with_it_feedback() -> int:
    with session_scope() as s:
        review = governance.request_review(session=s, actor=actor("maya"), model=MODEL, version=3,
                                           comment="retrained after the AUC alert")
    with session_scope() as s:
        governance.give_feedback(session=s, actor=actor("omar"), review_id=review.id, role="it_ops",
                                 verdict="APPROVED", comment="serves within the latency budget")
    return review.id


def give_feedback(username: str, review_id: int, verdict: str, comment: str):  # noqa: ANN201 - AppTest
    at = open_page(GOVERNANCE, username=username)
    at.radio(key=f"fb_verdict_{review_id}").set_value(verdict)
    at.text_area(key=f"fb_comment_{review_id}").input(comment)
    at.button(key=f"fb_submit_{review_id}").click().run()
    return at


def test_the_risk_manager_sees_the_context_the_stage_and_the_review_waiting(backend, tmp_path):
    build(tmp_path)
    review_id = requested_with_it_feedback()
    at = open_page(GOVERNANCE, username="rhea")
    assert not at.exception
    shown = texts(at)
    for expected in ("Card fraud (CARDS)", "Head of payments", "Payments integrity", "High risk",
                     "Where it stands: **Review**", f"review #{review_id}", "🟡 waiting for feedback",
                     "serves within the latency budget", "⏳ waiting", "card-scorer v3: feedback from risk_manager, business"):
        assert expected in shown, expected
    assert [t.label for t in at.tabs][2] == "Waiting for me (1)"
    assert at.selectbox(key=f"fb_role_{review_id}").options == ["Risk manager"]
    assert "Final decision" in shown, "a risk manager may reject before the feedback is complete"


def test_three_roles_give_feedback_and_the_final_approval_deploys_v3(backend, tmp_path):
    build(tmp_path)
    review_id = requested_with_it_feedback()
    at = give_feedback("bianca", review_id, "APPROVED", "fewer missed frauds for customers")
    assert not at.exception and "Your Business stakeholder feedback on card-scorer v3 is recorded" in texts(at)
    at = give_feedback("rhea", review_id, "MINOR_ISSUE", "document the new card-age feature")
    assert "🟠 waiting for approval" in texts(at)

    maya = open_page(GOVERNANCE, username="maya")
    assert "Final decision" not in texts(maya) and not [b for b in maya.button if b.key == f"approve_{review_id}"]

    ruth = open_page(GOVERNANCE, username="rhea")
    ruth.text_area(key=f"decide_comment_{review_id}").input("approved with the documentation follow-up")
    ruth.button(key=f"approve_{review_id}").click().run()
    assert "card-scorer v3 approved — deployed to production automatically" in texts(ruth)
    assert running("production") == 3
    assert "🟢 approved" in texts(ruth) and "Decided reviews" in texts(ruth)


def test_a_wrong_feedback_is_refused_on_the_page_with_its_reason(backend, tmp_path):
    build(tmp_path)
    review_id = requested_with_it_feedback()
    at = give_feedback("bianca", review_id, "MAJOR_ISSUE", "")
    assert [e.value for e in at.error] == ["a MAJOR_ISSUE verdict needs a comment describing the issue"]
    with session_scope() as s:
        assert governance.get_review(session=s, review_id=review_id).missing_roles == ("risk_manager", "business")


def test_the_ml_engineer_asks_for_a_review_on_the_page(backend, tmp_path):
    build(tmp_path)
    at = open_page(GOVERNANCE, username="maya")
    options = at.selectbox(key="rq_version").options
    assert options[0].startswith("card-scorer v3")
    at.text_area(key="rq_comment").input("recall restored on new cards")
    at.button(key="rq_submit").click().run()
    assert "Review of card-scorer v3 requested; the reviewers are notified" in texts(at)
    with session_scope() as s:
        review = governance.find_review(session=s, model=MODEL, version=3)
        omar = s.exec(select(User.id).where(User.username == "omar")).one()
        assert s.exec(select(Alert.title).where(Alert.user_id == omar)).all() == ["Review requested: card-scorer v3"]
    assert review.state == "WAITING_FOR_FEEDBACK" and review.requested_by == "maya"


def test_deploying_an_unapproved_version_from_the_deployer_page_is_refused_and_alerts_risk(backend, tmp_path):
    build(tmp_path)
    at = open_page(DEPLOYER, username="maya")
    assert not at.exception
    shown = texts(at)
    assert "card-scorer v1" in shown and "⛔ blocked" in shown
    assert "v3 → production: production requires an approved review (policy block)" in shown
    at.selectbox(key="dep_version").set_value(3)
    at.selectbox(key="dep_env").set_value("production")
    at.button(key="dep_submit").click().run()
    assert [e.value for e in at.error] == ["Deployment refused: production requires an approved review (policy block): "
                                           "card-scorer v3 has no review (request one)"]
    assert running("production") == 1
    with session_scope() as s:
        rhea = s.exec(select(User.id).where(User.username == "rhea")).one()
        assert s.exec(select(Alert.title).where(Alert.user_id == rhea)).all() == [
            "Deployment blocked: card-scorer v3 to production"]
    at.selectbox(key="dep_env").set_value("staging")
    at.button(key="dep_submit").click().run()
    assert "card-scorer v3 now runs in staging" in texts(at) and running("staging") == 3


def test_the_deployer_page_sends_test_queries_and_shows_answer_and_latency(backend, tmp_path):
    build(tmp_path)
    with live_api() as url:
        at = open_page(DEPLOYER, username="admin")
        at.text_input(key="env_url_production").input(url)
        at.button(key="env_save_production").click().run()
        assert "production saved" in texts(at)
        at.button(key="tq_production").click().run()
        answered = [s.value for s in at.success]
        at.text_area(key="tq_record_production").input('{"amount": 12.5, "card_age_days": "old", "channel": "web"}')
        at.button(key="tq_production").click().run()
        refused = [e.value for e in at.error]
        detail = at.json[-1].value
    assert len(answered) == 1 and answered[0].startswith("production answered 200 in ") and answered[0].endswith("(v1)")
    assert len(refused) == 1 and refused[0].startswith("production answered 422 in ")
    assert "record 0: field 'card_age_days' must be a number, got text" in detail
    rows = stored_predictions()
    assert len(rows) == 1, "the valid test query is logged like any prediction"
    logged_by = rows[0].logged_by
    assert logged_by.startswith("token:") and ":test-query-" in logged_by, "sent as omar, with a one-request token"
    at.text_area(key="tq_record_production").input("")
    at.button(key="tq_production").click().run()  # the server has stopped
    assert at.error[-1].value.startswith(f"production's endpoint {url}/v1/production/card-scorer/predict did not "
                                         "answer (ConnectError")
    assert at.error[-1].value.endswith("Is the scoring API running (`watchtower api`)?")


def test_each_persona_sees_the_pages_of_their_work(backend, tmp_path):
    build(tmp_path)
    titles = {role: [p.title for p in pages_for((role,))] for role in ("business", "risk_manager", "it_ops")}
    assert "Governance" in titles["business"] and "Deployer" not in titles["business"]
    assert "Governance" in titles["risk_manager"] and "Deployer" not in titles["risk_manager"]
    assert {"Governance", "Deployer"} <= set(titles["it_ops"])
    at = open_page(GOVERNANCE, username="rhea")
    at.selectbox(key="assign_bp").set_value("Medium risk")
    at.button(key="assign_submit").click().run()
    assert "CARDS now follows Medium risk" in texts(at)
    with session_scope() as s:
        assert projects.get_project(session=s, key=PROJECT).blueprint == "Medium risk"


def person(username: str, *roles: str) -> None:
    from core.identity import users

    with session_scope() as s:
        users.create_user(session=s, actor=ADMINISTRATOR, username=username, name=username.title(), email=f"{username}@bank.test",
                          roles=list(roles))


def test_a_person_with_every_role_signs_one_on_the_page_and_is_told_why_the_others_are_not_offered(backend, tmp_path):
    build(tmp_path)
    person("ivan", "it_ops", "risk_manager", "business")
    with session_scope() as s:
        review_id = governance.request_review(session=s, actor=actor("maya"), model=MODEL, version=3).id
    at = open_page(GOVERNANCE, username="ivan")
    assert at.selectbox(key=f"fb_role_{review_id}").options == ["IT & operations", "Risk manager",
                                                                 "Business stakeholder"]
    at.selectbox(key=f"fb_role_{review_id}").set_value("it_ops")
    at.text_area(key=f"fb_comment_{review_id}").input("latency fine")
    at.button(key=f"fb_submit_{review_id}").click().run()
    assert "Your IT & operations feedback on card-scorer v3 is recorded" in texts(at)
    again = open_page(GOVERNANCE, username="ivan")
    assert again.selectbox(key=f"fb_role_{review_id}").options == ["IT & operations"], "only a revision of his own"
    shown = texts(again)
    assert f"ivan already signed review #{review_id} of card-scorer v3 as it_ops; one person gives one role's " \
           "feedback per review, so the risk_manager feedback must come from someone else" in shown
    assert "so the business feedback must come from someone else" in shown
    with session_scope() as s:
        read = governance.get_review(session=s, review_id=review_id)
    assert [(f.role, f.reviewer) for f in read.signoffs] == [("it_ops", "ivan")]

    maya = open_page(GOVERNANCE, username="maya")
    assert not [b for b in maya.button if b.key == f"fb_submit_{review_id}"]
    assert "🔒 Feedback: maya holds none of the roles" in texts(maya)


def test_the_approve_button_is_not_offered_to_a_signer_where_the_blueprint_demands_distinct_people(backend,
                                                                                                   tmp_path):
    build(tmp_path, risk="medium")
    person("nina", "data_scientist", "risk_manager")
    with session_scope() as s:
        review_id = governance.request_review(session=s, actor=actor("maya"), model=MODEL, version=3).id
    at = give_feedback("nina", review_id, "APPROVED", "holds up on new cards")
    assert "Your Data scientist feedback on card-scorer v3 is recorded" in texts(at)
    give_feedback("bianca", review_id, "APPROVED", "fine for customers")
    nina = open_page(GOVERNANCE, username="nina")
    assert nina.button(key=f"approve_{review_id}").disabled
    assert f"🔒 Approval: nina signed review #{review_id} of card-scorer v3 as data_scientist; its blueprint asks " \
           "for a final approver who gave no feedback on it" in texts(nina)
    assert "who gave none of the feedback" in texts(nina)
    rhea = open_page(GOVERNANCE, username="rhea")
    assert not rhea.button(key=f"approve_{review_id}").disabled
    rhea.button(key=f"approve_{review_id}").click().run()
    assert "card-scorer v3 approved — now deployable to production" in texts(rhea)


def test_only_an_administrator_creates_an_environment_on_the_deployer_page_and_it_blocks_by_default(backend,
                                                                                                    tmp_path):
    from core.governance import environments

    build(tmp_path)
    omar = open_page(DEPLOYER, username="omar")
    assert not omar.exception
    assert "Creating and changing environments, their governance policy included, is for administrators." \
        in texts(omar)
    assert not [b for b in omar.button if b.key in ("env_new_submit", "env_save_production")]

    admin = open_page(DEPLOYER, username="admin")
    admin.text_input(key="env_new_name").input("production-eu")
    admin.selectbox(key="env_new_tier").set_value("higher")
    admin.button(key="env_new_submit").click().run()
    assert "production-eu created (higher, policy block)" in texts(admin)
    admin.selectbox(key="env_new_tier").set_value("lower")
    admin.text_input(key="env_new_name").input("bad name!")
    admin.button(key="env_new_submit").click().run()
    assert [e.value for e in admin.error] == ["environment name 'bad name!' may hold only letters, digits, '-' and '_'"]
    with session_scope() as s:
        assert [(e.name, e.policy) for e in environments.list_environments(session=s)] == [
            ("staging", "allow"), ("production", "block"), ("production-eu", "block")]
        rhea = s.exec(select(User.id).where(User.username == "rhea")).one()
        assert s.exec(select(Alert.title).where(Alert.user_id == rhea)).all() == [
            "Environment production-eu: marked as a higher (production) environment"]
    maya = open_page(DEPLOYER, username="maya")
    maya.selectbox(key="dep_version").set_value(3)
    maya.selectbox(key="dep_env").set_value("production-eu")
    maya.button(key="dep_submit").click().run()
    assert [e.value for e in maya.error] == ["Deployment refused: production-eu requires an approved review (policy "
                                             "block): card-scorer v3 has no review (request one)"]
    assert running("production-eu") is None
