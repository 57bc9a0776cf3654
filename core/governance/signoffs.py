"""Sign-offs, the acting side of governance: request a review, give feedback, approve, reject, abandon.

Every action locks the review row, checks the rule `core.governance.reviews` shows the reader, is audited and
notifies the people who act next; a final approval hands the version to the deployer.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import Session, select

from core import audit
from core.access import Actor, require
from core.alerting.notifications import notify_roles, notify_users
from core.clock import now
from core.entities import VERDICTS, Blueprint, ModelVersion, Project, Review, SignOff
from core.errors import InvalidInput, NotFound
from core.governance import deployer
from core.governance.reviews import ReviewRead, request_rule, review_read, review_stage, version_model
from core.governance.rules import abandon_rule, approve_rule, reject_rule, sign_rule
from core.models.registry import model_row, version_row


def _locked(session: Session, review_id: int) -> Review:
    """The review row, locked for the rest of the transaction so concurrent sign-offs serialize.

    A no-op UPDATE first takes the row lock on PostgreSQL and the write lock on SQLite, where a read that
    later turns into a write could otherwise fail against a newer snapshot.
    """
    session.execute(update(Review).where(Review.id == review_id).values(state=Review.state))
    review = session.exec(select(Review).where(Review.id == review_id)
                          .execution_options(populate_existing=True)).first()
    if review is None:
        raise NotFound(f"no review #{review_id}")
    return review


def _context(session: Session, review: Review) -> tuple[str, int, str]:
    """(label 'model vN', project id, project key) for messages and the audit trail."""
    version = session.get(ModelVersion, review.model_version_id)
    model = version_model(session, version)
    project = session.get(Project, model.project_id)
    return f"{model.name} v{version.number}", project.id, project.key


def _link(project_key: str) -> str:
    return f"/governance?project={project_key}"


def _signoffs(session: Session, review: Review) -> list[SignOff]:
    return list(session.exec(select(SignOff).where(SignOff.review_id == review.id).order_by(SignOff.at)).all())


def request_review(*, session: Session, actor: Actor, model: str, version: int, comment: str = "") -> ReviewRead:
    """Ask for the sign-offs a version needs before production; the reviewers are notified."""
    require(actor, "review.request")
    m = model_row(session, model)
    v = version_row(session, m, version)
    label = f"{m.name} v{v.number}"
    request_rule(session, actor, v, label).enforce()
    project = session.get(Project, m.project_id)
    blueprint = session.get(Blueprint, project.blueprint_id) if project.blueprint_id else None
    stage = review_stage(blueprint)
    roles = list(dict.fromkeys(stage.get("signoff_roles") or []))
    distinct = bool(stage.get("approver_distinct_from_signers")) and bool(stage["final_approver"])
    review = Review(model_version_id=v.id, stage=stage["name"], state="NOT_STARTED", requested_by=actor.username,
                    requested_at=now(), required_roles=roles, final_approver_role=stage["final_approver"] or "",
                    approver_distinct_from_signers=distinct, decision_comment="")
    session.add(review)
    session.flush()
    review.state = "WAITING_FOR_FEEDBACK" if roles else "WAITING_FOR_APPROVAL"
    if project.stage != stage["name"]:
        project.stage = stage["name"]
        session.add(project)
    session.add(review)
    session.flush()
    audit.record(session, actor=actor.username, action="review.request", entity_type="review", entity_id=review.id,
                 project_id=project.id, details={"version": label, "stage": stage["name"], "roles": roles,
                                                 "final_approver": stage["final_approver"],
                                                 "approver_distinct_from_signers": distinct, "comment": comment})
    who = roles or [stage["final_approver"]]
    notify_roles(session, roles=who, kind="review", severity="warning", project_id=project.id,
                         review_id=review.id, link=_link(project.key),
                         title=f"Review requested: {label}",
                         message=f"{actor.username} asks for sign-off of {label} ({project.key}) at stage "
                                 f"{stage['name']}. {comment}".strip(),
                         exclude=(actor.username,))
    return review_read(session, review, actor=actor)


def give_feedback(*, session: Session, actor: Actor, review_id: int, role: str, verdict: str,
                  comment: str = "") -> ReviewRead:
    """Record one role's feedback (APPROVED, MINOR_ISSUE, MAJOR_ISSUE).

    Each required role is signed by a different person and never by the requester: a person holding several
    roles signs one of them per review (their first sign-off fixes which), and only they may revise it.
    """
    review = _locked(session, review_id)
    label, project_id, key = _context(session, review)
    if verdict not in VERDICTS:
        raise InvalidInput(f"verdict {verdict!r} is not one of {', '.join(VERDICTS)}")
    signoffs = _signoffs(session, review)
    sign_rule(review, signoffs, actor, role, label).enforce()
    if verdict != "APPROVED" and not comment.strip():
        raise InvalidInput(f"a {verdict} verdict needs a comment describing the issue")
    existing = next((s for s in signoffs if s.role == role), None)
    if existing is not None:
        # A reviewer may revise their own feedback until the final decision; the trail keeps both.
        existing.verdict, existing.comment, existing.at = verdict, comment, now()
        session.add(existing)
    else:
        session.add(SignOff(review_id=review.id, role=role, reviewer=actor.username, verdict=verdict,
                            comment=comment, at=now()))
    session.flush()
    given = set(session.exec(select(SignOff.role).where(SignOff.review_id == review.id)).all())
    complete = set(review.required_roles) <= given
    audit.record(session, actor=actor.username, action="review.feedback" if existing is None else "review.feedback_revised",
                 entity_type="review", entity_id=review.id, project_id=project_id,
                 details={"version": label, "role": role, "verdict": verdict, "comment": comment})
    outcome = ""
    if complete and review.state == "WAITING_FOR_FEEDBACK" and not review.final_approver_role:
        outcome = _settle_without_approver(session, actor, review, label, project_id, key)
    elif complete and review.state == "WAITING_FOR_FEEDBACK":
        review.state = "WAITING_FOR_APPROVAL"
        session.add(review)
        session.flush()
        signers = tuple(s.reviewer for s in _signoffs(session, review)) \
            if review.approver_distinct_from_signers else ()
        notify_roles(session, roles=[review.final_approver_role], kind="review", severity="warning",
                     project_id=project_id, review_id=review.id, link=_link(key),
                     title=f"Ready for your decision: {label}",
                     message=f"All feedback is in for {label} ({key}); it waits for final approval.",
                     exclude=(review.requested_by, *signers))
    return review_read(session, review, outcome=outcome, actor=actor)


def _settle_without_approver(session: Session, actor: Actor, review: Review, label: str, project_id: int,
                             key: str) -> str:
    """Where a blueprint names no final approver the sign-offs decide: any major issue rejects, else approved.

    The person whose sign-off completed the review decides it, so an automatic deployment acts as them.
    """
    majors = session.exec(select(SignOff).where(SignOff.review_id == review.id,
                                                SignOff.verdict == "MAJOR_ISSUE")).all()
    if majors:
        first = majors[0]
        review.state, review.decided_by = "REJECTED", first.reviewer
        review.decision_comment = f"major issue raised by {first.reviewer} ({first.role}): {first.comment}"
    else:
        review.state, review.decided_by, review.decision_comment = "APPROVED", actor.username, "every sign-off approved"
    review.decided_at = now()
    session.add(review)
    session.flush()
    audit.record(session, actor=review.decided_by, action="review.reject" if majors else "review.approve",
                 entity_type="review", entity_id=review.id, project_id=project_id,
                 details={"version": label, "comment": review.decision_comment, "by": "sign-offs"})
    outcome = "rejected" if majors else deployer.on_final_approval(session=session, review_id=review.id, actor=actor)
    notify_users(session, usernames=[review.requested_by], kind="governance",
                 severity="error" if majors else "info", project_id=project_id, review_id=review.id,
                 link=_link(key), title=f"{'Rejected' if majors else 'Approved'}: {label}",
                 message=f"{label}: {review.decision_comment}; {outcome}.")
    return outcome


def approve(*, session: Session, actor: Actor, review_id: int, comment: str = "") -> ReviewRead:
    """Final approval; the version then deploys to production (as the approver) if its blueprint says so."""
    review = _locked(session, review_id)
    label, project_id, key = _context(session, review)
    signoffs = _signoffs(session, review)
    approve_rule(review, signoffs, actor, label).enforce()
    majors = [s for s in signoffs if s.verdict == "MAJOR_ISSUE"]
    if majors and not comment.strip():
        raise InvalidInput(f"approving over a major issue ({', '.join(s.role for s in majors)}) needs a comment saying why")
    review.state, review.decided_by, review.decided_at, review.decision_comment = "APPROVED", actor.username, now(), comment
    session.add(review)
    session.flush()
    audit.record(session, actor=actor.username, action="review.approve", entity_type="review", entity_id=review.id,
                 project_id=project_id, details={"version": label, "comment": comment})
    outcome = deployer.on_final_approval(session=session, review_id=review.id, actor=actor)
    notify_users(session, usernames=[review.requested_by], kind="governance", severity="info",
                         project_id=project_id, review_id=review.id, link=_link(key),
                         title=f"Approved: {label}", message=f"{actor.username} approved {label}: {outcome}. {comment}".strip())
    return review_read(session, review, outcome=outcome, actor=actor)


def reject(*, session: Session, actor: Actor, review_id: int, comment: str) -> ReviewRead:
    """Final rejection with a reason; the version can then never be deployed to a governed environment."""
    review = _locked(session, review_id)
    label, project_id, key = _context(session, review)
    reject_rule(review, actor, label).enforce()
    if not comment.strip():
        raise InvalidInput("a rejection needs a comment giving the reason")
    review.state, review.decided_by, review.decided_at, review.decision_comment = "REJECTED", actor.username, now(), comment
    session.add(review)
    session.flush()
    audit.record(session, actor=actor.username, action="review.reject", entity_type="review", entity_id=review.id,
                 project_id=project_id, details={"version": label, "comment": comment})
    notify_users(session, usernames=[review.requested_by], kind="governance", severity="error",
                         project_id=project_id, review_id=review.id, link=_link(key),
                         title=f"Rejected: {label}", message=f"{actor.username} rejected {label}: {comment}")
    return review_read(session, review, actor=actor)


def abandon(*, session: Session, actor: Actor, review_id: int, comment: str = "") -> ReviewRead:
    """Withdraw an open review (its requester, a final approver or an admin); the version may be reviewed again."""
    review = _locked(session, review_id)
    label, project_id, _key = _context(session, review)
    abandon_rule(review, actor, label).enforce()
    review.state, review.decided_by, review.decided_at, review.decision_comment = "ABANDONED", actor.username, now(), comment
    session.add(review)
    session.flush()
    audit.record(session, actor=actor.username, action="review.abandon", entity_type="review", entity_id=review.id,
                 project_id=project_id, details={"version": label, "comment": comment})
    return review_read(session, review, actor=actor)
