"""A review as the Governance page shows it: who signed what, and the forms its reader may use, as core allows."""

from __future__ import annotations

import streamlit as st

from core import governance
from core.access import Actor
from core.entities import VERDICTS
from ui.actions import act
from ui.documents import documentation_downloads
from ui.session import ROLE_LABELS

STATE_LABELS = {"NOT_STARTED": "⚪ not started", "WAITING_FOR_FEEDBACK": "🟡 waiting for feedback",
                "WAITING_FOR_APPROVAL": "🟠 waiting for approval", "APPROVED": "🟢 approved",
                "REJECTED": "🔴 rejected", "ABANDONED": "⚫ abandoned"}
VERDICT_LABELS = {"APPROVED": "✅ approved", "MINOR_ISSUE": "🟡 minor issue", "MAJOR_ISSUE": "🔴 major issue"}


def escaped(text: str) -> str:
    """People's words shown as written, never as Markdown or HTML."""
    return "".join(f"\\{c}" if c in "\\`*_{}[]()#+-.!|<>~$" else c for c in " ".join(text.split()))


def role_label(role: str | None) -> str:
    return ROLE_LABELS.get(role or "", role or "—")


def with_outcome(text: str):  # noqa: ANN201 - a notice maker for act()
    """The notice of a review action, followed by what came of it (e.g. deployed to production)."""
    return lambda result: text + (f" — {result.outcome}" if getattr(result, "outcome", "") else "")


def review_card(r: governance.ReviewRead, *, actor: Actor) -> None:
    """One open review: its sign-offs, its documentation, and what the reader may do with it, or why not."""
    with st.container(border=True):
        st.markdown(f"**{r.model} v{r.version}** · review #{r.id} · {STATE_LABELS[r.state]} · stage {r.stage} · "
                    f"requested by {r.requested_by} on {r.requested_at:%Y-%m-%d %H:%M}")
        given = {f.role: f for f in r.signoffs}
        for role in r.required_roles:
            f = given.get(role)
            if f is None:
                st.markdown(f"⏳ waiting · **{role_label(role)}**")
                continue
            st.markdown(f"{VERDICT_LABELS[f.verdict]} · **{role_label(role)}** · {f.reviewer} · "
                        f"{f.at:%Y-%m-%d %H:%M}" + (f" — {escaped(f.comment)}" if f.comment else ""))
        approver = f"final approval by a {role_label(r.final_approver_role)}" if r.final_approver_role \
            else "the sign-offs decide (no final approver)"
        if r.approver_distinct_from_signers:
            approver += " who gave none of the feedback"
        st.caption(f"Then: {approver}.")
        documentation_downloads(actor=actor, model=r.model, version=r.version, key=f"gov-docs-{r.id}")
        _feedback_form(r, actor=actor)
        _decision_form(r, actor=actor)
        if r.can_abandon and st.button("Abandon this review", key=f"abandon_{r.id}"):
            act(governance.abandon, actor=actor, review_id=r.id, success=with_outcome(f"Review #{r.id} abandoned"))


def _feedback_form(r: governance.ReviewRead, *, actor: Actor) -> None:
    if not r.can_give_feedback:
        st.caption(f"🔒 Feedback: {r.can_give_feedback.reason}")
        return
    with st.form(f"feedback_{r.id}"):
        st.markdown("**Your feedback**" + (f" (as {role_label(r.signed_as)})" if r.signed_as else ""))
        role = st.selectbox("As", r.signable_roles, format_func=role_label, key=f"fb_role_{r.id}")
        verdict = st.radio("Verdict", VERDICTS, format_func=VERDICT_LABELS.get, horizontal=True,
                           key=f"fb_verdict_{r.id}")
        comment = st.text_area("Comment", key=f"fb_comment_{r.id}")
        if st.form_submit_button("Give feedback", key=f"fb_submit_{r.id}"):
            act(governance.give_feedback, actor=actor, review_id=r.id, role=role, verdict=verdict, comment=comment,
                success=with_outcome(f"Your {role_label(role)} feedback on {r.model} v{r.version} is recorded"))
    for reason in r.sign_refusals:
        st.caption(f"🔒 {reason}")


def _decision_form(r: governance.ReviewRead, *, actor: Actor) -> None:
    if not (r.can_approve or r.can_reject):
        if r.final_approver_role:
            st.caption(f"🔒 Approval: {r.can_approve.reason}")
        return
    with st.form(f"decide_{r.id}"):
        st.markdown("**Final decision**")
        comment = st.text_area("Comment (required to reject)", key=f"decide_comment_{r.id}")
        approve_col, reject_col = st.columns(2)
        if approve_col.form_submit_button("Approve", type="primary", key=f"approve_{r.id}",
                                          disabled=not r.can_approve, help=r.can_approve.reason or None):
            act(governance.approve, actor=actor, review_id=r.id, comment=comment,
                success=with_outcome(f"{r.model} v{r.version} approved"))
        if r.can_reject and reject_col.form_submit_button("Reject", key=f"reject_{r.id}"):
            act(governance.reject, actor=actor, review_id=r.id, comment=comment,
                success=with_outcome(f"{r.model} v{r.version} rejected"))
        if not r.can_approve:
            st.caption(f"🔒 Approval: {r.can_approve.reason}")
