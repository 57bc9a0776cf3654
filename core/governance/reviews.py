"""Reviews, the read side of governance: where each version stands and who may act on it.

NOT_STARTED (no review yet) → WAITING_FOR_FEEDBACK (each required role gives its feedback) →
WAITING_FOR_APPROVAL (the final approver decides) → APPROVED | REJECTED; an open review may be ABANDONED.
A ReviewRead carries, for the person reading it, what they may do (can_sign per role, can_approve,
can_reject, can_abandon), each with the reason when they may not; `core.governance.signoffs` acts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, select

from core.access import PERMISSIONS, Actor
from core.entities import Blueprint, Model, ModelVersion, Project, Review, SignOff
from core.errors import Conflict, InvalidInput, NotFound
from core.governance.rules import (  # noqa: F401 - Allowed, YES, UNKNOWN are part of the read model
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
from core.models.registry import model_row, version_row

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


def review_read(session: Session, review: Review, *, outcome: str = "", actor: Actor | None = None) -> ReviewRead:
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
    return review_read(session, review, actor=actor)


def find_review(*, session: Session, model: str, version: int, actor: Actor | None = None) -> ReviewRead | None:
    """The latest review of MODEL vN, or None when none was ever requested."""
    v = version_row(session, model_row(session, model), version)
    review = latest_review_row(session, v.id)
    return review_read(session, review, actor=actor) if review else None


def reviews_for_model(*, session: Session, model: str) -> list[ReviewRead]:
    m = model_row(session, model)
    rows = session.exec(select(Review).join(ModelVersion, Review.model_version_id == ModelVersion.id)
                        .where(ModelVersion.model_id == m.id).order_by(Review.id.desc())).all()
    return [review_read(session, r) for r in rows]


def pending_reviews(*, session: Session, project_id: int | None = None, actor: Actor | None = None) -> list[ReviewRead]:
    """Every open review, oldest first, optionally for one project (and read for one person)."""
    rows = session.exec(select(Review).where(Review.state.in_(OPEN_STATES)).order_by(Review.requested_at)).all()
    reads = [review_read(session, r, actor=actor) for r in rows]
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
