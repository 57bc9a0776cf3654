"""Deployer: what runs where and since when, deploy and roll back through the governance gate, test each endpoint."""

import pandas as pd
import streamlit as st

from core.db import session_scope
from core.entities import POLICIES
from core.governance import deployer, endpoints, environments
from ui import notices
from ui.actions import act, attempt
from ui.forms import INVALID, parse_json
from ui.notices import Notice
from ui.pickers import pick_model
from ui.session import require_page

user = require_page("deployer.view")
actor = user.actor
GATE = {True: "✅ allowed", False: "⛔ blocked"}

with session_scope() as s:
    board = deployer.board(session=s, actor=actor, model=st.session_state.get("dep_model"))

st.title("Deployer")
notices.show()
pick_model(board.models, current=board.model, query=None, key="dep_model")
model = board.model


def deployed(dep: deployer.DeploymentRead) -> Notice:
    return Notice(f"{model} v{dep.version} now runs in {dep.environment}" + (f" — {dep.warning}" if dep.warning else ""),
                  "warning" if dep.warning else "success")


st.subheader("What runs where")
running = {d.environment: d for d in board.running}
for column, e in zip(st.columns(max(len(board.environments), 1)), board.environments, strict=False):
    with column.container(border=True):
        d = running.get(e.name)
        st.metric(f"{e.name} · {e.tier} · policy {e.policy}", f"v{d.version}" if d else "—")
        if d:
            st.markdown(f"**{model} v{d.version}** since {d.since:%Y-%m-%d %H:%M} UTC, deployed by {d.deployed_by}  \n"
                        f"artifact sha256 `{(d.artifact_sha256 or '')[:16]}`")
        else:
            st.markdown(f"{model} is not deployed here.")
        st.caption(f"Endpoint: {e.endpoint_url or 'none configured'}")

st.subheader("Versions and the governance gate")
st.dataframe(pd.DataFrame([
    {"Version": f"v{v.number}", "Status": v.status, "Review": v.review_state.replace("_", " ").lower(),
     **{e.name: ("⚠️ with a warning" if v.gates[e.name].allowed and v.gates[e.name].reason
                 else GATE[v.gates[e.name].allowed]) for e in board.environments}}
    for v in board.versions]), hide_index=True, width="stretch")
for v in board.versions:
    for env, gate in v.gates.items():
        if gate.reason and not gate.allowed and v.status == "candidate":
            st.caption(f"v{v.number} → {env}: {gate.reason}")

can_deploy = actor.has("deploy")
left, right = st.columns(2)
with left, st.form("deploy_form"):
    st.markdown("**Deploy**")
    version = st.selectbox("Version", [v.number for v in board.versions], format_func=lambda n: f"v{n}",
                           key="dep_version")
    env = st.selectbox("Environment", [e.name for e in board.environments], key="dep_env")
    note = st.text_input("Note", key="dep_note")
    if st.form_submit_button("Deploy", type="primary", disabled=not can_deploy, key="dep_submit"):
        act(deployer.deploy, actor=actor, model=model, version=version, environment=env, note=note,
            refused="Deployment refused: ", success=deployed)
with right, st.form("rollback_form"):
    st.markdown("**Roll back**")
    back_env = st.selectbox("Environment", [e.name for e in board.environments], key="rb_env")
    st.caption("Puts back the version that ran there before the current one.")
    if st.form_submit_button("Roll back", disabled=not can_deploy, key="rb_submit"):
        act(deployer.rollback, actor=actor, model=model, environment=back_env, refused="Rollback refused: ",
            success=lambda dep: f"{model} rolled back: v{dep.version} runs in {dep.environment} again")
if not can_deploy:
    st.caption("Deploying and rolling back are for ML engineers, IT & operations and admins.")

st.subheader("Test queries")
st.caption("Sends one record to each environment's scoring endpoint and shows its answer and latency. "
           "Leave the record empty to send the first row of the deployed version's reference sample. "
           "The query is sent as you, with a token that lives for this one request; its prediction is logged.")
for e in board.environments:
    with st.container(border=True):
        st.markdown(f"**{e.name}** · {e.endpoint_url or 'no endpoint configured'}")
        record_text = st.text_area("Record (JSON object)", key=f"tq_record_{e.name}", height=80)
        if st.button(f"Send a test query to {e.name}", key=f"tq_{e.name}", disabled=not e.endpoint_url):
            record = parse_json(record_text, problem="The record is not valid JSON")
            result = None if record is INVALID else attempt(endpoints.send_test_query, actor=actor,
                                                            environment=e.name, model=model, record=record)
            if result is not None and result.status_code is None:
                st.error(f"{e.name}'s endpoint {result.url} did not answer ({result.answer}). "
                         "Is the scoring API running (`watchtower api`)?")
            elif result is not None:
                (st.success if result.ok else st.error)(
                    f"{e.name} answered {result.status_code} in {result.latency_ms:.1f} ms"
                    + (f" (v{result.version})" if result.version else ""))
                st.json(result.answer)

st.subheader("History")
st.dataframe(pd.DataFrame([
    {"Environment": d.environment, "Version": f"v{d.version}", "Deployed (UTC)": d.since.strftime("%Y-%m-%d %H:%M"),
     "By": d.deployed_by, "Until": d.ended_at.strftime("%Y-%m-%d %H:%M") if d.ended_at else "running",
     "Note": d.note} for d in board.history]), hide_index=True, width="stretch")

st.subheader("Environments")
if not actor.has("environment.manage"):
    st.caption("Creating and changing environments, their governance policy included, is for administrators.")
else:
    st.caption("Loosening a policy (block → warn → allow) or marking an environment higher is recorded in the "
               "audit trail and alerts the risk managers.")
    for e in board.environments:
        with st.form(f"env_{e.name}"):
            st.markdown(f"**{e.name}** ({e.tier})")
            url = st.text_input("Scoring endpoint URL", value=e.endpoint_url or "", key=f"env_url_{e.name}")
            tier = st.selectbox("Tier", environments.TIERS, index=environments.TIERS.index(e.tier),
                                key=f"env_tier_{e.name}")
            policy = st.selectbox("Governance policy", POLICIES, index=POLICIES.index(e.policy),
                                  key=f"env_policy_{e.name}")
            if st.form_submit_button("Save", key=f"env_save_{e.name}"):
                act(environments.configure_environment, actor=actor, name=e.name, endpoint_url=url, tier=tier,
                    policy=policy, success=f"{e.name} saved")
    with st.form("env_new"):
        st.markdown("**New environment** (it blocks unapproved versions unless you choose otherwise)")
        new_name = st.text_input("Name", key="env_new_name")
        new_tier = st.selectbox("Tier", environments.TIERS, key="env_new_tier")
        new_policy = st.selectbox("Governance policy", POLICIES, key="env_new_policy")
        new_url = st.text_input("Scoring endpoint URL (optional)", key="env_new_url")
        if st.form_submit_button("Create environment", key="env_new_submit"):
            act(environments.configure_environment, actor=actor, name=new_name.strip(), tier=new_tier,
                policy=new_policy, endpoint_url=new_url,
                success=lambda made: f"{made.name} created ({made.tier}, policy {made.policy})")
