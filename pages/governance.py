"""Governance: a project's context and place in its blueprint, its reviews and sign-offs; the risk manager's watch."""

import pandas as pd
import streamlit as st

from core import governance
from core.db import session_scope
from core.governance import oversight
from ui import notices
from ui.actions import act
from ui.blueprint_editor import blueprint_editor
from ui.pickers import pick_project
from ui.reviews import STATE_LABELS, review_card, role_label, with_outcome
from ui.session import require_page

user = require_page("governance.view")
actor = user.actor

HEALTH = {"error": "🔴 error", "warning": "🟠 warning", "pass": "🟢 pass", "no data": "⚪ no data"}

wanted = st.session_state.get("gov_project") or st.query_params.get("project")
with session_scope() as s:
    view = oversight.governance_page(session=s, actor=actor, key=wanted)

st.title("Governance")
notices.show()
if view.project is None:
    st.info("No projects yet.")
    st.stop()
project = view.project

tab_project, tab_watch, tab_queue, tab_blueprints = st.tabs(
    ["Project", "Portfolio watch", f"Waiting for me ({len(view.queue)})", "Blueprints"])

with tab_project:
    pick_project(view.keys, current=project.key, key="gov_project")
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
        review_card(v.review, actor=actor)

    if view.can_request:
        candidates = project.requestable
        with st.form("request_review"):
            st.markdown("**Ask for a review**")
            picked = st.selectbox("Version", candidates, format_func=lambda v: f"{v.model} v{v.number} ({v.status})",
                                  key="rq_version")
            comment = st.text_area("What changed, and why it should go to production", key="rq_comment")
            if st.form_submit_button("Request review", key="rq_submit", disabled=not candidates) and picked is not None:
                act(governance.request_review, actor=actor, model=picked.model, version=picked.number, comment=comment,
                    success=with_outcome(f"Review of {picked.model} v{picked.number} requested; "
                                         "the reviewers are notified"))
            for v in project.versions:
                if not v.can_request:
                    st.caption(f"🔒 {v.model} v{v.number}: {v.can_request.reason}")
    else:
        st.caption(f"🔒 {view.can_request.reason}")

    decided = project.decided
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
        blueprint_editor(view.blueprints, actor=actor, project_key=project.key)
