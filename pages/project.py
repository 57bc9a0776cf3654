"""Project dashboard: context, contacts, models and versions, audit trail."""

import pandas as pd
import streamlit as st

from core import audit, projects
from core.db import session_scope
from ui.session import require_page

require_page("project.view")

with session_scope() as s:
    keys = projects.list_project_keys(session=s)
if not keys:
    st.title("Project")
    st.info("No projects yet.")
    st.stop()

wanted = st.query_params.get("project", keys[0])
key = st.selectbox("Project", keys, index=keys.index(wanted) if wanted in keys else 0, key="project_key")
st.query_params["project"] = key

with session_scope() as s:
    project = projects.get_project(session=s, key=key)
    trail = audit.events(session=s, project_id=project.id, limit=100)

st.title(f"{project.name} ({project.key})")
st.caption(f"Health: **{project.health}** · Stage: **{project.stage}** · Blueprint: {project.blueprint or '—'}")

left, right = st.columns([2, 1])
with left:
    st.subheader("Context")
    st.markdown(
        f"- **Business initiative:** {project.initiative or '—'}\n"
        f"- **Sponsor:** {project.sponsor or '—'}\n"
        f"- **Owner:** {project.owner or '—'}\n"
        f"- **Risk level:** {project.risk_level}\n"
        f"- **Tags:** {', '.join(project.tags) or '—'}"
    )
    st.text(project.description or "No description.")
    if project.scope:
        st.markdown("**Scope**")
        st.text(project.scope)
with right:
    st.subheader("Contacts")
    if not project.contacts:
        st.caption("No contacts recorded.")
    for c in project.contacts:
        st.markdown(f"[{c.get('name', '')}](mailto:{c.get('email', '')}) — {c.get('role', '')}")

st.subheader("Models")
if not project.models:
    st.caption("No models registered yet.")
for m in project.models:
    st.markdown(f"**{m.name}** · {m.task} · target `{m.target}`")
    st.dataframe(pd.DataFrame([
        {"Version": f"v{v.number}", "Status": v.status, "Origin": v.origin,
         "Running in": ", ".join(v.environments) or "—", "Created by": v.created_by,
         "Created": v.created_at.strftime("%Y-%m-%d %H:%M"), "Artifact sha256": (v.artifact_sha256 or "—")[:16]}
        for v in m.versions]), hide_index=True, width="stretch")

st.subheader("Audit trail")
if trail:
    st.dataframe(pd.DataFrame([
        {"When": e.at.strftime("%Y-%m-%d %H:%M:%S"), "Who": e.actor, "Action": e.action,
         "Entity": f"{e.entity_type} {e.entity_id}"} for e in trail]), hide_index=True, width="stretch")
else:
    st.caption("No recorded actions.")
