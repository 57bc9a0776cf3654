"""Reviews and sign-offs: the path of a model version to production that nobody can skip.

NOT_STARTED (no review yet) → WAITING_FOR_FEEDBACK (each required role gives its feedback) →
WAITING_FOR_APPROVAL (the final approver decides) → APPROVED | REJECTED; an open review may be ABANDONED.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlmodel import Session, select

from core import audit, users
from core.access import PERMISSIONS, Actor, require
from core.clock import now
from core.entities import VERDICTS, Blueprint, Model, ModelVersion, Project, Review, SignOff
from core.errors import Conflict, InvalidInput, NotFound
from core.registry import model_row, version_row
from core.review_rules import (  # noqa: F401 - Allowed, YES, UNKNOWN are part of the read model
    OPEN_STATES,
    UNKNOWN,
    YES,
    Allowed,
    abandon_rule,
    approve_rule,
    feedback_summary,
    reject_rule,
    sign_rule,
    signed_as,
)

FINAL_STATES = ("APPROVED", "REJECTED", "ABANDONED")
# A project without a blueprint still needs a risk manager's approval before a governed environment.
DEFAULT_STAGE = {"name": "Review", "signoff_roles": [], "final_approver": "risk_manager", "required_checks": [],
                 "auto_deploy": False, "approver_distinct_from_signers": False}


@dataclass(frozen=True)
class SignOffRead:
    role: str
    reviewer: str
    verdict: str
    comment: str
    at: datetime


@dataclass(frozen=True)
class ReviewRead:
    id: int
    project_key: str
    model: str
    version: int
    stage: str
    state: str
    requested_by: str
    requested_at: datetime
    required_roles: tuple[str, ...]
    final_approver_role: str  # empty when the blueprint's sign-offs suffice
    signoffs: tuple[SignOffRead, ...]
    decided_by: str | None
    decided_at: datetime | None
    decision_comment: str
    outcome: str = ""  # what followed a decision, e.g. "deployed to production"
    approver_distinct_from_signers: bool = False  # the final approver may not have signed anything
    # What the person the review was read for may do with it now, each with the reason when not:
    can_sign: tuple[tuple[str, Allowed], ...] = ()  # (required role, whether they may give its feedback)
    can_give_feedback: Allowed = UNKNOWN  # in at least one role; else the reason that matters most
    sign_refusals: tuple[str, ...] = ()  # why they may not sign the required roles they do hold
    can_approve: Allowed = UNKNOWN
    can_reject: Allowed = UNKNOWN
    can_abandon: Allowed = UNKNOWN
    signed_as: str = ""  # the role they already signed this review as

    @property
    def missing_roles(self) -> tuple[str, ...]:
        given = {s.role for s in self.signoffs}
        return tuple(r for r in self.required_roles if r not in given)

    def sign_as(self, role: str) -> Allowed:
        """May the reader give ROLE's feedback on this review?"""
        return dict(self.can_sign).get(role, Allowed(False, f"review #{self.id} does not ask for {role} feedback",
                                                     InvalidInput))

    @property
    def signable_roles(self) -> tuple[str, ...]:
        return tuple(role for role, allowed in self.can_sign if allowed)


@dataclass(frozen=True)
class QueueItem:
    review: ReviewRead
    action: str  # "feedback" | "approval"
    role: str  # the role the user acts in


# --- notifying -------------------------------------------------------------------------------

def notify_users(session: Session, *, usernames: list[str], kind: str, severity: str, title: str, message: str,
                 link: str = "", project_id: int | None = None, review_id: int | None = None) -> int:
    """Alert the named people in their inbox and through every enabled channel; returns how many were alerted."""
    from core import alerts, channels  # alerts pulls in the delivery machinery; only needed when notifying

    if not usernames:
        return 0
    project = session.get(Project, project_id) if project_id else None
    names = [c.name for c in channels.list_channels(session=session) if c.enabled]
    return len(alerts.notify(session=session, project_key=project.key if project else None, roles=[],
                             usernames=list(dict.fromkeys(usernames)), title=title, message=message, link=link,
                             kind=kind, severity=severity, channel_names=names, review_id=review_id))


def notify_roles(session: Session, *, roles: list[str], kind: str, severity: str, title: str, message: str,
                 link: str = "", project_id: int | None = None, review_id: int | None = None,
                 exclude: tuple[str, ...] = ()) -> int:
    """Alert every active holder of any of the roles (but not the excluded users)."""
    names = [u.username for role in roles for u in users.users_with_role(session=session, role=role)
             if u.username not in exclude]
    return notify_users(session, usernames=names, kind=kind, severity=severity, title=title, message=message,
                        link=link, project_id=project_id, review_id=review_id)


# --- reading ---------------------------------------------------------------------------------

def review_stage(blueprint: Blueprint | None) -> dict:
    """The blueprint stage that gates production: the first one naming sign-off roles or a final approver."""
    for stage in (blueprint.stages if blueprint else []):
        if stage.get("signoff_roles") or stage.get("final_approver"):
            return {**DEFAULT_STAGE, **stage, "final_approver": stage.get("final_approver") or None}
    return dict(DEFAULT_STAGE)


def stage_after(blueprint: Blueprint | None, name: str) -> str | None:
    names = [s.get("name") for s in (blueprint.stages if blueprint else [])]
    return names[names.index(name) + 1] if name in names and names.index(name) + 1 < len(names) else None


def _read(session: Session, review: Review, *, outcome: str = "", actor: Actor | None = None) -> ReviewRead:
    """The review as plain data; with an actor, also what that person may do with it now and why not."""
    version = session.get(ModelVersion, review.model_version_id)
    model = version_model(session, version)
    project = session.get(Project, model.project_id)
    signoffs = session.exec(select(SignOff).where(SignOff.review_id == review.id).order_by(SignOff.at)).all()
    facts: dict = {}
    if actor is not None:
        label = f"{model.name} v{version.number}"
        can_sign = tuple((role, sign_rule(review, signoffs, actor, role, label)) for role in review.required_roles)
        facts = {"can_sign": can_sign, "can_give_feedback": feedback_summary(review, actor, can_sign),
                 "can_approve": approve_rule(review, signoffs, actor, label),
                 "can_reject": reject_rule(review, actor, label), "can_abandon": abandon_rule(review, actor, label),
                 "signed_as": signed_as(signoffs, actor.username),
                 "sign_refusals": tuple(dict.fromkeys(allowed.reason for role, allowed in can_sign
                                                      if not allowed and role in actor.roles))}
    return ReviewRead(
        id=review.id, project_key=project.key, model=model.name, version=version.number, stage=review.stage,
        state=review.state, requested_by=review.requested_by, requested_at=review.requested_at,
        required_roles=tuple(review.required_roles), final_approver_role=review.final_approver_role,
        signoffs=tuple(SignOffRead(role=s.role, reviewer=s.reviewer, verdict=s.verdict, comment=s.comment, at=s.at)
                       for s in signoffs),
        decided_by=review.decided_by, decided_at=review.decided_at, decision_comment=review.decision_comment,
        outcome=outcome, approver_distinct_from_signers=review.approver_distinct_from_signers, **facts)


def may_request(actor: Actor) -> Allowed:
    """May ACTOR ask for reviews at all (by their roles)?"""
    if actor.has("review.request"):
        return YES
    return Allowed(False, f"{actor.username} may not request a review (allowed roles: "
                          f"{', '.join(sorted(PERMISSIONS['review.request']))})")


def request_rule(session: Session, actor: Actor, version: ModelVersion, label: str) -> Allowed:
    """May ACTOR ask for the review of this version now?"""
    if not actor.has("review.request"):
        return may_request(actor)
    if not version.artifact_path:
        return Allowed(False, f"{label} has no artifact: only a version Watchtower can serve is reviewed for "
                              f"deployment", InvalidInput)
    latest = latest_review_row(session, version.id)
    if latest is not None and latest.state in OPEN_STATES:
        return Allowed(False, f"{label} is already under review (#{latest.id}, {latest.state})", Conflict)
    if latest is not None and latest.state == "APPROVED":
        return Allowed(False, f"{label} is already approved (review #{latest.id})", Conflict)
    if latest is not None and latest.state == "REJECTED":
        return Allowed(False, f"{label} was rejected by {latest.decided_by}; a new version needs its own review",
                       Conflict)
    return YES


def can_request(*, session: Session, actor: Actor, model: str, version: int) -> Allowed:
    """Whether ACTOR may ask for the review of MODEL vN now, and why not."""
    m = model_row(session, model)
    v = version_row(session, m, version)
    return request_rule(session, actor, v, f"{m.name} v{v.number}")


def version_model(session: Session, version: ModelVersion) -> Model:
    return session.get(Model, version.model_id)


def latest_review_row(session: Session, version_id: int) -> Review | None:
    """The version's most recent review (a version may be reviewed again after an abandoned review)."""
    return session.exec(select(Review).where(Review.model_version_id == version_id)
                        .order_by(Review.id.desc()).limit(1)).first()


def review_state(session: Session, version_id: int) -> str:
    """The version's governance state: its latest review's state, NOT_STARTED when never reviewed."""
    review = latest_review_row(session, version_id)
    return review.state if review else "NOT_STARTED"


def get_review(*, session: Session, review_id: int, actor: Actor | None = None) -> ReviewRead:
    """One review; with an actor, also what that person may do with it now."""
    review = session.get(Review, review_id)
    if review is None:
        raise NotFound(f"no review #{review_id}")
    return _read(session, review, actor=actor)


def find_review(*, session: Session, model: str, version: int, actor: Actor | None = None) -> ReviewRead | None:
    """The latest review of MODEL vN, or None when none was ever requested."""
    v = version_row(session, model_row(session, model), version)
    review = latest_review_row(session, v.id)
    return _read(session, review, actor=actor) if review else None


def reviews_for_model(*, session: Session, model: str) -> list[ReviewRead]:
    m = model_row(session, model)
    rows = session.exec(select(Review).join(ModelVersion, Review.model_version_id == ModelVersion.id)
                        .where(ModelVersion.model_id == m.id).order_by(Review.id.desc())).all()
    return [_read(session, r) for r in rows]


def pending_reviews(*, session: Session, project_id: int | None = None, actor: Actor | None = None) -> list[ReviewRead]:
    """Every open review, oldest first, optionally for one project (and read for one person)."""
    rows = session.exec(select(Review).where(Review.state.in_(OPEN_STATES)).order_by(Review.requested_at)).all()
    reads = [_read(session, r, actor=actor) for r in rows]
    if project_id is not None:
        key = session.get(Project, project_id).key
        reads = [r for r in reads if r.project_key == key]
    return reads


def review_queue(*, session: Session, actor: Actor) -> list[QueueItem]:
    """The reviews waiting for this user: feedback in a role they may still give, or a decision they may take."""
    items: list[QueueItem] = []
    for review in pending_reviews(session=session, actor=actor):
        if review.state == "WAITING_FOR_FEEDBACK":
            items += [QueueItem(review=review, action="feedback", role=role) for role in review.missing_roles
                      if review.sign_as(role)]
        if review.can_approve:
            items.append(QueueItem(review=review, action="approval", role=review.final_approver_role))
    return items


# --- acting ----------------------------------------------------------------------------------

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
    return _read(session, review, actor=actor)


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
    return _read(session, review, outcome=outcome, actor=actor)


def _settle_without_approver(session: Session, actor: Actor, review: Review, label: str, project_id: int,
                             key: str) -> str:
    """Where a blueprint names no final approver the sign-offs decide: any major issue rejects, else approved.

    The person whose sign-off completed the review decides it, so an automatic deployment acts as them.
    """
    from core import deployer

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
    from core import deployer  # the deployer reads review states, so it is imported here, not at the top

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
    return _read(session, review, outcome=outcome, actor=actor)


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
    return _read(session, review, actor=actor)


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
    return _read(session, review, actor=actor)
