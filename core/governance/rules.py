"""Separation of duties in a review: who may sign, approve, reject or abandon it now, and why not.

One set of rules serves the review read model (what the Governance page and the command line offer a person)
and the actions themselves (which enforce the same answer), so no entry point re-derives them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.access import Actor
from core.entities import Review, SignOff
from core.errors import Conflict, Forbidden, InvalidInput, WatchtowerError

OPEN_STATES = ("NOT_STARTED", "WAITING_FOR_FEEDBACK", "WAITING_FOR_APPROVAL")


@dataclass(frozen=True)
class Allowed:
    """Whether one person may take one action now; when not, the reason (and the error the action raises)."""

    ok: bool
    reason: str = ""
    error: type[WatchtowerError] = field(default=Forbidden, compare=False, repr=False)

    def __bool__(self) -> bool:
        return self.ok

    def enforce(self) -> None:
        """Raise the refusal, when there is one."""
        if not self.ok:
            raise self.error(self.reason)


YES = Allowed(True)
UNKNOWN = Allowed(False, "no one is signed in")


def signed_as(signoffs: list[SignOff], username: str) -> str:
    return next((s.role for s in signoffs if s.reviewer == username), "")


def sign_rule(review: Review, signoffs: list[SignOff], actor: Actor, role: str, label: str) -> Allowed:
    """May ACTOR give (or revise) ROLE's feedback? Each role by a different person, never by the requester."""
    who, ref = actor.username, f"review #{review.id} of {label}"
    if role not in review.required_roles:
        return Allowed(False, f"{ref} does not ask for {role} feedback (it asks for: "
                              f"{', '.join(review.required_roles) or 'none'})", InvalidInput)
    if role not in actor.roles:
        return Allowed(False, f"{who} does not hold the {role} role, so may not give its feedback")
    if who == review.requested_by:
        return Allowed(False, f"{who} requested {ref}; its feedback must come from someone else")
    if review.state not in ("WAITING_FOR_FEEDBACK", "WAITING_FOR_APPROVAL"):
        return Allowed(False, f"{ref} is {review.state}; feedback is closed", Conflict)
    other = next((s.role for s in signoffs if s.reviewer == who and s.role != role), None)
    if other is not None:
        return Allowed(False, f"{who} already signed {ref} as {other}; one person gives one role's feedback "
                              f"per review, so the {role} feedback must come from someone else")
    given = next((s for s in signoffs if s.role == role), None)
    if given is not None and given.reviewer != who:
        return Allowed(False, f"the {role} feedback on {ref} was given by {given.reviewer}; only they may revise it",
                       Conflict)
    return YES


def feedback_summary(review: Review, actor: Actor, can_sign: tuple[tuple[str, Allowed], ...]) -> Allowed:
    """Whether the actor may give feedback in any role; else the reason that concerns them most."""
    if any(allowed for _, allowed in can_sign):
        return YES
    held = [allowed for role, allowed in can_sign if role in actor.roles]
    if held:
        return held[0]
    return Allowed(False, f"{actor.username} holds none of the roles review #{review.id} asks feedback from "
                          f"({', '.join(review.required_roles) or 'none'})")


def _decider_rule(review: Review, actor: Actor, label: str, verb: str) -> Allowed:
    ref = f"review #{review.id} of {label}"
    if not review.final_approver_role:
        return Allowed(False, f"{ref} has no final approver: its sign-offs decide", Conflict)
    if review.final_approver_role not in actor.roles:
        return Allowed(False, f"only a {review.final_approver_role} may {verb} {ref}; {actor.username} is not one")
    if actor.username == review.requested_by:
        return Allowed(False, f"{actor.username} requested {ref} and so may not {verb} it")
    return YES


def approve_rule(review: Review, signoffs: list[SignOff], actor: Actor, label: str) -> Allowed:
    """May ACTOR give the final approval now? Never the requester; never a signer where the blueprint says so."""
    decider = _decider_rule(review, actor, label, "approve")
    if not decider:
        return decider
    ref = f"review #{review.id} of {label}"
    if review.state != "WAITING_FOR_APPROVAL":
        given = {s.role for s in signoffs}
        missing = [r for r in review.required_roles if r not in given]
        detail = f"; missing feedback from {', '.join(missing)}" if review.state == "WAITING_FOR_FEEDBACK" else ""
        return Allowed(False, f"{ref} is {review.state} and cannot be approved{detail}", Conflict)
    signed = signed_as(signoffs, actor.username)
    if review.approver_distinct_from_signers and signed:
        return Allowed(False, f"{actor.username} signed {ref} as {signed}; its blueprint asks for a final approver "
                              f"who gave no feedback on it")
    return YES


def reject_rule(review: Review, actor: Actor, label: str) -> Allowed:
    """May ACTOR reject the review now (a final approver who did not request it, while it is open)?"""
    decider = _decider_rule(review, actor, label, "reject")
    if decider and review.state not in ("WAITING_FOR_FEEDBACK", "WAITING_FOR_APPROVAL"):
        return Allowed(False, f"review #{review.id} of {label} is {review.state} and cannot be rejected", Conflict)
    return decider


def abandon_rule(review: Review, actor: Actor, label: str) -> Allowed:
    """May ACTOR withdraw the review (its requester, a final approver or an admin, while it is open)?"""
    ref = f"review #{review.id} of {label}"
    if not (actor.username == review.requested_by or review.final_approver_role in actor.roles
            or "admin" in actor.roles):
        return Allowed(False, f"only {review.requested_by}, a {review.final_approver_role or 'final approver'} or an "
                              f"admin may abandon {ref}")
    if review.state not in OPEN_STATES:
        return Allowed(False, f"{ref} is {review.state} and cannot be abandoned", Conflict)
    return YES
