"""Project dashboard: context, contacts, models and versions, audit trail."""

import pandas as pd
import streamlit as st

from core import audit
from core.db import session_scope
from core.errors import NotFound
from core.monitoring import checks
from core.projects import process_map, projects
from ui.session import require_page

require_page("project.view")

HEALTH = {"error": "🔴 error", "warning": "🟠 warning", "pass": "🟢 pass", "no data": "⚪ no data"}
HEADLINE = ("roc_auc", "recall", "precision", "r2", "mae")

wanted = st.session_state.get("project_key") or st.query_params.get("project")
try:
    with session_scope() as s:
        dash = projects.project_dashboard(session=s, key=wanted, actions=st.session_state.get("trail_actions"))
except NotFound as exc:
    st.title("Project")
    st.error(str(exc))
    st.stop()
if dash is None:
    st.title("Project")
    st.info("No projects yet.")
    st.stop()
project = dash.project

st.selectbox("Project", dash.keys, index=dash.keys.index(project.key), key="project_key")
st.query_params["project"] = project.key

st.title(f"{project.name} ({project.key})")
st.caption(f"Health: **{HEALTH.get(project.health, project.health)}** · Blueprint: {project.blueprint or '—'}")
if project.blueprint_stages:
    st.markdown(" → ".join(f"**:blue[{name}]**" if name == project.stage else name
                           for name in project.blueprint_stages))

left, right = st.columns([2, 1])
with left:
    st.subheader("Context")
    st.markdown(
        f"- **Business initiative:** {project.initiative or '—'}\n"
        f"- **Sponsor:** {project.sponsor or '—'}\n"
        f"- **Owner:** {project.owner or '—'}\n"
        f"- **Risk level:** {project.risk_level}\n"
        f"- **Stage:** {project.stage}\n"
        f"- **Tags:** {', '.join(project.tags) or '—'}"
    )
    st.markdown("**Description**")
    st.text(project.description or "No description.")
    if project.scope:
        st.markdown("**Scope**")
        st.text(project.scope)
with right:
    st.subheader("Contacts")
    if not project.contacts:
        st.caption("No contacts recorded.")
    for c in project.contacts:
        st.markdown(f"[{c.get('name', '')}](mailto:{c.get('email', '')}) — {c.get('role', '')}  \n"
                    f":gray[{c.get('email', '')}]")

st.subheader("Models")
if not project.models:
    st.caption("No models registered yet.")
for m in project.models:
    running = [f"v{v.number} in {env}" for v in m.versions for env in v.environments]
    st.markdown(f"**{m.name}** · {m.task} · target `{m.target}` · running: {', '.join(running) or 'nowhere'}")
    st.dataframe(pd.DataFrame([
        {"Version": f"v{v.number}", "Status": v.status, "Origin": v.origin,
         "Running in": ", ".join(v.environments) or "—",
         **{k: round(v.training_metrics[k], 3) for k in HEADLINE if k in v.training_metrics},
         "Created by": v.created_by, "Created": v.created_at.strftime("%Y-%m-%d %H:%M"),
         "Artifact sha256": (v.artifact_sha256 or "—")[:16]}
        for v in m.versions]), hide_index=True, width="stretch")

# --- Monitoring: the health roll-up of the project's checks and its process map (core.monitoring.checks, core.projects.process_map)
with session_scope() as s:
    check_rows = checks.project_histories(session=s, project_key=project.key, limit=26)
    flow = process_map.build(session=s, project_key=project.key)
st.subheader("Checks and process")
if check_rows:
    st.dataframe(pd.DataFrame([{"Check": h.check.name, "Rule": h.check.rule, "History (oldest → newest)": h.icons,
                                "Latest": h.latest.replace("_", " ")} for h in check_rows]), hide_index=True,
                 width="stretch")
st.graphviz_chart(flow.dot)
st.caption("⚙ solid green: automated · ✋ dashed orange: waits for a person")
# --- end of the monitoring block

st.subheader("Audit trail")
# A filter kept from another project may name actions this one never had.
st.session_state["trail_actions"] = [a for a in st.session_state.get("trail_actions", []) if a in dash.trail_actions]
st.multiselect("Actions", dash.trail_actions, key="trail_actions", placeholder="All actions")
if dash.trail:
    st.dataframe(pd.DataFrame([
        {"When": e.at.strftime("%Y-%m-%d %H:%M:%S"), "Who": e.actor, "Action": e.action,
         "Entity": f"{e.entity_type} {e.entity_id}"} for e in dash.trail]), hide_index=True, width="stretch")
    st.caption(f"{len(dash.trail)} most recent recorded actions, newest first")
else:
    st.caption("No recorded actions.")
with session_scope() as s:
    verified = audit.last_verification(session=s)
if verified is None:
    st.caption("The audit trail has not been verified against a checkpoint yet.")
else:
    outcome = "intact" if verified.ok else f"**broken** (first wrong event: {verified.first_bad_seq or '—'})"
    st.caption(f"Audit trail last verified against a checkpoint on {verified.at:%Y-%m-%d %H:%M} UTC by "
               f"{verified.actor}: {outcome} ({verified.events:,} events, checkpoint of {verified.checkpoint_at} "
               f"at event {verified.checkpoint_seq})")
