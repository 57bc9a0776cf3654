"""Governance: a project's context and place in its blueprint, its reviews and sign-offs; the risk manager's watch."""

import pandas as pd
import streamlit as st

from core import governance
from core.db import session_scope
from core.entities import ROLES, VERDICTS
from core.errors import WatchtowerError
from core.governance import oversight
from core.projects import blueprints
from ui.documents import documentation_downloads
from ui.session import ROLE_LABELS, require_page

user = require_page("governance.view")
actor = user.actor

STATE_LABELS = {"NOT_STARTED": "⚪ not started", "WAITING_FOR_FEEDBACK": "🟡 waiting for feedback",
                "WAITING_FOR_APPROVAL": "🟠 waiting for approval", "APPROVED": "🟢 approved",
                "REJECTED": "🔴 rejected", "ABANDONED": "⚫ abandoned"}
VERDICT_LABELS = {"APPROVED": "✅ approved", "MINOR_ISSUE": "🟡 minor issue", "MAJOR_ISSUE": "🔴 major issue"}
HEALTH = {"error": "🔴 error", "warning": "🟠 warning", "pass": "🟢 pass", "no data": "⚪ no data"}


def escaped(text: str) -> str:
    """People's words shown as written, never as Markdown or HTML."""
    return "".join(f"\\{c}" if c in "\\`*_{}[]()#+-.!|<>~$" else c for c in " ".join(text.split()))


def role_label(role: str | None) -> str:
    return ROLE_LABELS.get(role or "", role or "—")


def act(success: str, fn, **kwargs) -> None:  # noqa: ANN001 - a core service
    """Call one core service in its own unit of work; show its refusal, or rerun with a notice."""
    try:
        with session_scope() as s:
            result = fn(session=s, actor=actor, **kwargs)
    except WatchtowerError as exc:
        st.error(str(exc))
        return
    outcome = getattr(result, "outcome", "")
    st.session_state["gov_notice"] = success + (f" — {outcome}" if outcome else "")
    st.rerun()


wanted = st.session_state.get("gov_project") or st.query_params.get("project")
with session_scope() as s:
    view = oversight.governance_page(session=s, actor=actor, key=wanted)

st.title("Governance")
if "gov_notice" in st.session_state:
    st.success(st.session_state.pop("gov_notice"))
if view.project is None:
    st.info("No projects yet.")
    st.stop()
project = view.project

tab_project, tab_watch, tab_queue, tab_blueprints = st.tabs(
    ["Project", "Portfolio watch", f"Waiting for me ({len(view.queue)})", "Blueprints"])

with tab_project:
    st.selectbox("Project", view.keys, index=view.keys.index(project.key), key="gov_project")
    st.query_params["project"] = project.key
    st.header(f"{project.name} ({project.key})")
    left, right = st.columns([3, 2])
    with left:
        st.markdown(f"- **Sponsor:** {project.sponsor or '—'}\n- **Business initiative:** {project.initiative or '—'}\n"
                    f"- **Owner:** {project.owner or '—'}\n- **Risk level:** {project.risk_level}\n"
                    f"- **Health:** {HEALTH.get(project.health, project.health)}")
        st.markdown("**Description**")
        st.text(project.description or "No description.")
        st.markdown("**Scope**")
        st.text(project.scope or "No scope recorded.")
    with right:
        st.markdown(f"**Blueprint:** {project.blueprint or 'none'}")
        st.caption(project.blueprint_description)
        if project.stages:
            st.markdown(" → ".join(f"**:blue[{s.name}]**" if s.current else (f"~~{s.name}~~" if s.passed else s.name)
                                   for s in project.stages))
            st.caption(f"Where it stands: **{project.stage}**")
    if project.stages:
        st.dataframe(pd.DataFrame([
            {"Stage": s.name, "Where": "● current" if s.current else ("✓ passed" if s.passed else ""),
             "Sign-off from": ", ".join(role_label(r) for r in s.signoff_roles) or "—",
             "Final approval": role_label(s.final_approver) if s.final_approver else "—",
             "Checks that must pass": ", ".join(f"{n} ({st_})" for n, st_ in s.required_checks) or "—",
             "Deploys on approval": "yes" if s.auto_deploy else "no",
             "Approver signed nothing": "yes" if s.approver_distinct_from_signers else "no"} for s in project.stages]),
            hide_index=True, width="stretch")

    st.subheader("Model versions")
    st.dataframe(pd.DataFrame([
        {"Model": v.model, "Version": f"v{v.number}", "Status": v.status, "Origin": v.origin,
         "Running in": ", ".join(v.environments) or "—", "Review": STATE_LABELS.get(v.review_state, v.review_state),
         "Created by": v.created_by} for v in project.versions]), hide_index=True, width="stretch")

    st.subheader("Under review")
    if not project.under_review:
        st.caption("No version of this project is under review.")
    for v in project.under_review:
        r = v.review
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
            # What this person may do with the review, and why not, comes from core: no rule is re-derived here.
            if r.can_give_feedback:
                with st.form(f"feedback_{r.id}"):
                    st.markdown("**Your feedback**" + (f" (as {role_label(r.signed_as)})" if r.signed_as else ""))
                    role = st.selectbox("As", r.signable_roles, format_func=role_label, key=f"fb_role_{r.id}")
                    verdict = st.radio("Verdict", VERDICTS, format_func=VERDICT_LABELS.get, horizontal=True,
                                       key=f"fb_verdict_{r.id}")
                    comment = st.text_area("Comment", key=f"fb_comment_{r.id}")
                    if st.form_submit_button("Give feedback", key=f"fb_submit_{r.id}"):
                        act(f"Your {role_label(role)} feedback on {r.model} v{r.version} is recorded",
                            governance.give_feedback, review_id=r.id, role=role, verdict=verdict, comment=comment)
                for reason in r.sign_refusals:
                    st.caption(f"🔒 {reason}")
            else:
                st.caption(f"🔒 Feedback: {r.can_give_feedback.reason}")
            if r.can_approve or r.can_reject:
                with st.form(f"decide_{r.id}"):
                    st.markdown("**Final decision**")
                    comment = st.text_area("Comment (required to reject)", key=f"decide_comment_{r.id}")
                    approve_col, reject_col = st.columns(2)
                    if approve_col.form_submit_button("Approve", type="primary", key=f"approve_{r.id}",
                                                      disabled=not r.can_approve, help=r.can_approve.reason or None):
                        act(f"{r.model} v{r.version} approved", governance.approve, review_id=r.id, comment=comment)
                    if r.can_reject and reject_col.form_submit_button("Reject", key=f"reject_{r.id}"):
                        act(f"{r.model} v{r.version} rejected", governance.reject, review_id=r.id, comment=comment)
                    if not r.can_approve:
                        st.caption(f"🔒 Approval: {r.can_approve.reason}")
            elif r.final_approver_role:
                st.caption(f"🔒 Approval: {r.can_approve.reason}")
            if r.can_abandon and st.button("Abandon this review", key=f"abandon_{r.id}"):
                act(f"Review #{r.id} abandoned", governance.abandon, review_id=r.id)

    if view.can_request:
        candidates = [v for v in project.versions if v.can_request]
        with st.form("request_review"):
            st.markdown("**Ask for a review**")
            picked = st.selectbox("Version", candidates, format_func=lambda v: f"{v.model} v{v.number} ({v.status})",
                                  key="rq_version")
            comment = st.text_area("What changed, and why it should go to production", key="rq_comment")
            if st.form_submit_button("Request review", key="rq_submit", disabled=not candidates) and picked is not None:
                act(f"Review of {picked.model} v{picked.number} requested; the reviewers are notified",
                    governance.request_review, model=picked.model, version=picked.number, comment=comment)
            for v in project.versions:
                if not v.can_request:
                    st.caption(f"🔒 {v.model} v{v.number}: {v.can_request.reason}")
    else:
        st.caption(f"🔒 {view.can_request.reason}")

    decided = [r for r in project.reviews if r.state in governance.FINAL_STATES]
    if decided:
        st.subheader("Decided reviews")
        st.dataframe(pd.DataFrame([
            {"Review": f"#{r.id}", "Version": f"{r.model} v{r.version}", "Outcome": STATE_LABELS[r.state],
             "Decided by": r.decided_by, "When": r.decided_at.strftime("%Y-%m-%d %H:%M") if r.decided_at else "",
             "Comment": r.decision_comment} for r in decided]), hide_index=True, width="stretch")

with tab_watch:
    st.caption("Every project across the enterprise: where it stands, what it risks, how it behaves, "
               "and what waits for a decision.")
    st.dataframe(pd.DataFrame([
        {"Project": w.key, "Name": w.name, "Initiative": w.initiative, "Risk": w.risk_level, "Blueprint": w.blueprint,
         "Stage": w.stage, "Health": HEALTH.get(w.health, w.health), "In production": w.production or "—",
         "Pending reviews": w.pending_reviews, "Waiting for": w.waiting_for or "—",
         "Open": f"/governance?project={w.key}"} for w in view.portfolio]),
        hide_index=True, width="stretch",
        column_config={"Open": st.column_config.LinkColumn("Open", display_text="governance")})

with tab_queue:
    if not view.queue:
        st.caption("Nothing waits for you.")
    else:
        st.dataframe(pd.DataFrame([
            {"Project": q.review.project_key, "Version": f"{q.review.model} v{q.review.version}",
             "You are asked for": "feedback" if q.action == "feedback" else "the final decision",
             "As": role_label(q.role), "Requested by": q.review.requested_by,
             "Since": q.review.requested_at.strftime("%Y-%m-%d %H:%M"),
             "Open": f"/governance?project={q.review.project_key}"} for q in view.queue]),
            hide_index=True, width="stretch",
            column_config={"Open": st.column_config.LinkColumn("Open", display_text="review")})

with tab_blueprints:
    for bp in view.blueprints:
        with st.expander(f"{bp.name} — risk {', '.join(bp.risk_levels) or '—'}"):
            st.caption(bp.description)
            st.dataframe(pd.DataFrame([
                {"Stage": s.name, "Sign-off from": ", ".join(s.signoff_roles), "Final approver": s.final_approver or "",
                 "Checks that must pass": ", ".join(s.required_checks), "Deploys on approval": s.auto_deploy,
                 "Approver signed nothing": s.approver_distinct_from_signers}
                for s in bp.stages]), hide_index=True, width="stretch")
    if view.can_manage_blueprints:
        st.subheader("Edit or create a blueprint")
        names = ["New blueprint", *[b.name for b in view.blueprints]]
        chosen = st.selectbox("Blueprint", names, key="bp_pick")
        base = next((b for b in view.blueprints if b.name == chosen), None)
        with st.form("blueprint_form"):
            name = st.text_input("Name", value=base.name if base else "", key=f"bp_name_{chosen}")
            description = st.text_area("Description", value=base.description if base else "", key=f"bp_desc_{chosen}")
            risks = st.multiselect("Applies to risk levels", ["low", "medium", "high"],
                                   default=list(base.risk_levels) if base else [], key=f"bp_risk_{chosen}")
            rows = pd.DataFrame([
                {"stage": s.name, "signoff_roles": ", ".join(s.signoff_roles), "final_approver": s.final_approver or "",
                 "required_checks": ", ".join(s.required_checks), "auto_deploy": s.auto_deploy,
                 "approver_distinct_from_signers": s.approver_distinct_from_signers} for s in base.stages]
                if base else [{"stage": n, "signoff_roles": "", "final_approver": "", "required_checks": "",
                               "auto_deploy": False, "approver_distinct_from_signers": False}
                              for n in blueprints.STAGES])
            edited = st.data_editor(rows, num_rows="dynamic", hide_index=True, key=f"bp_stages_{chosen}",
                                    column_config={"final_approver": st.column_config.SelectboxColumn(
                                        "final_approver", options=["", *ROLES])})
            if st.form_submit_button("Save blueprint", key="bp_save"):
                stages = [{"name": r["stage"], "final_approver": r["final_approver"] or None,
                           "signoff_roles": [x.strip() for x in str(r["signoff_roles"] or "").split(",") if x.strip()],
                           "required_checks": [x.strip() for x in str(r["required_checks"] or "").split(",")
                                               if x.strip()],
                           "auto_deploy": bool(r["auto_deploy"]),
                           "approver_distinct_from_signers": bool(r.get("approver_distinct_from_signers"))}
                          for r in edited.to_dict("records") if r["stage"]]
                act(f"Blueprint {name} saved", blueprints.save_blueprint, name=name, risk_levels=risks,
                    stages=stages, description=description)
        with st.form("assign_blueprint"):
            st.markdown(f"**Put {project.key} under another blueprint**")
            target = st.selectbox("Blueprint", [b.name for b in view.blueprints], key="assign_bp")
            if st.form_submit_button("Assign", key="assign_submit"):
                act(f"{project.key} now follows {target}", blueprints.assign_blueprint, project_key=project.key,
                    blueprint=target)
